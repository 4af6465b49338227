"""Add-on preferences: the FLAME model file and the backend (its Python, device, weights, model folders)."""

import os
import sys

import bpy

from . import compat, session
from .core.client import BackendConfig
from .core.session import check_summary

PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def default_env_dir() -> str:
    """Where the backend environment goes: the extension's user folder, else Blender's user data folder."""
    folder = compat.extension_user_dir(__package__)
    if folder is None:  # a legacy add-on or a source checkout (tests)
        folder = bpy.utils.user_resource('DATAFILES', path="avitalk", create=True)
    return os.path.join(folder, "backend_env")


def default_base_python() -> str:
    """The interpreter that creates the venv: Blender's bundled Python (only borrowed; nothing is installed into it)."""
    return sys.executable


class AVITALK_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    flame_path: bpy.props.StringProperty(
        name="FLAME Model",
        description="FLAME model file (.pkl) used by 'Import FLAME Head'; empty uses AVI-Talk's default head",
        subtype='FILE_PATH',
    )
    backend_python: bpy.props.StringProperty(
        name="Backend Python",
        description="Python interpreter with the backend's packages (torch, ...); never Blender's own Python",
        subtype='FILE_PATH',
    )
    device: bpy.props.EnumProperty(
        name="Device",
        description="Where the backend runs the models",
        items=(('AUTO', "Auto", "The GPU when torch sees one, else the CPU"),
               ('CUDA', "CUDA", "An NVIDIA GPU"), ('CPU', "CPU", "The processor")),
        default='AUTO',
    )
    checkpoint_dir: bpy.props.StringProperty(
        name="Checkpoint Folder",
        description="Folder with stage1.safetensors and stage2.safetensors; empty uses the shipped weights",
        subtype='DIR_PATH',
    )
    speech_model_dir: bpy.props.StringProperty(
        name="HuBERT / Speech Model", description="Optional local folder of the style speech encoder", subtype='DIR_PATH')
    content_model_dir: bpy.props.StringProperty(
        name="wav2vec 2.0 Model", description="Optional local folder of the content speech encoder", subtype='DIR_PATH')
    llm_dir: bpy.props.StringProperty(
        name="LLM", description="Optional local folder of the causal language model for stage 1", subtype='DIR_PATH')
    stall_timeout: bpy.props.FloatProperty(
        name="Timeout", description="Seconds without any progress before the backend is stopped and restarted",
        default=300.0, min=5.0, subtype='TIME_ABSOLUTE', unit='TIME_ABSOLUTE',
    )
    env_dir: bpy.props.StringProperty(
        name="Environment Folder", description="Where 'Create Backend Environment' puts the venv; empty: the user folder",
        subtype='DIR_PATH',
    )
    base_python: bpy.props.StringProperty(
        name="Base Python", description="Python 3.10+ that creates the venv; empty: Blender's bundled Python",
        subtype='FILE_PATH',
    )
    torch_cpu_index: bpy.props.StringProperty(
        name="CPU Torch Index",
        description=("Optional package index for the CPU build of torch (PyTorch's is " + PYTORCH_CPU_INDEX
                     + "); empty uses the index your pip is configured for"),
        default="",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "flame_path")

        box = layout.box()
        box.label(text="Backend", icon='PREFERENCES')
        box.prop(self, "backend_python")
        box.prop(self, "device")
        box.prop(self, "checkpoint_dir")
        box.prop(self, "speech_model_dir")
        box.prop(self, "content_model_dir")
        box.prop(self, "llm_dir")
        box.prop(self, "stall_timeout")
        row = box.row()
        row.operator("avitalk.check_backend", icon='CHECKMARK')
        row.operator("avitalk.restart_backend", icon='FILE_REFRESH')
        if session.SESSION.check:
            for line in check_summary(session.SESSION.check).split("; "):
                box.label(text=line, icon='INFO')

        box = layout.box()
        box.label(text="Create the backend environment (a venv; Blender's own Python is not changed)", icon='CONSOLE')
        box.prop(self, "env_dir")
        box.prop(self, "base_python")
        box.prop(self, "torch_cpu_index")
        row = box.row()
        row.operator("avitalk.setup_backend", text="Create (CUDA)").torch_build = 'CUDA'
        row.operator("avitalk.setup_backend", text="Create (CPU)").torch_build = 'CPU'
        setup = session.SESSION.setup
        if setup is not None:
            text = f"{setup.step + 1}/{len(setup.commands)} {setup.label}" if setup.state == "running" else setup.state
            compat.progress(box, setup.fraction, text)
            if setup.state == "running" and setup.last_line:
                box.label(text=setup.last_line)
            elif setup.state == "failed":
                box.label(text=setup.error, icon='ERROR')
            elif setup.state == "done":
                box.label(text=f"Backend Python: {setup.python}", icon='CHECKMARK')


def get(context):
    """This add-on's preferences, or None when it was registered outside the add-on system (tests)."""
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def config_from(context) -> BackendConfig:
    """The backend settings: the add-on preferences, else ``session.configure(...)``, else this interpreter."""
    config = BackendConfig(backend_root=session.backend_root(), log=session.log_path(),
                           motion_dir=session.private_dir())
    prefs = get(context)
    if prefs is not None:
        config.python = _abspath(prefs.backend_python)
        config.checkpoint = _abspath(prefs.checkpoint_dir)
        config.device = prefs.device.lower()
        config.speech_model = _abspath(prefs.speech_model_dir)
        config.content_model = _abspath(prefs.content_model_dir)
        config.llm = _abspath(prefs.llm_dir)
        config.stall_timeout = float(prefs.stall_timeout)
    else:
        config.python = sys.executable  # the bpy module: this interpreter has the backend's packages
    for name, value in session.script_config.items():
        setattr(config, name, value)
    return config


def _abspath(path: str) -> str:
    return bpy.path.abspath(path) if path else ""
