"""Operators: thin translations between Blender and the rig/bake modules.

``_run`` is the one place where the project's exceptions become an error report.
"""

import os

import bpy
import numpy as np

from . import bake, preferences, rig
from .core import backend_ref, timing


def _run(operator, work) -> set:
    """Call ``work()``; a user-facing error becomes ``report({'ERROR'})`` + CANCELLED."""
    try:
        message = work()
    except backend_ref.user_errors() as exc:
        operator.report({'ERROR'}, str(exc))
        return {'CANCELLED'}
    if message:
        operator.report({'INFO'}, message)
    return {'FINISHED'}


def rig_poll(cls, context) -> bool:
    """Object Mode with an AVI-Talk FLAME rig (mesh or armature) active; says why not."""
    if context.mode != 'OBJECT':
        cls.poll_message_set("switch to Object Mode")
        return False
    if not rig.is_rig(context.active_object):
        cls.poll_message_set("select an AVI-Talk FLAME head (mesh or armature)")
        return False
    return True


def _sound_starts(scene):
    editor = scene.sequence_editor
    if editor is None:
        return []
    strips = editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all  # 5.0 / 4.x
    return [strip.frame_start for strip in strips if strip.type == 'SOUND']


def _load_shape(path: str):
    if not path:
        return None
    path = bpy.path.abspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"shape file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"could not read shape coefficients from {path} (a .npy array): {exc}") from exc


class AVITALK_OT_import_head(bpy.types.Operator):
    """Import a FLAME head as a rig: mesh with FLAME shape keys, armature with FLAME's joints"""
    bl_idname = "avitalk.import_head"
    bl_label = "Import FLAME Head"
    bl_options = {'REGISTER', 'UNDO'}

    filepath: bpy.props.StringProperty(
        name="FLAME File",
        description="FLAME model (.pkl); empty uses the add-on preferences, then AVI-Talk's default head",
        subtype='FILE_PATH',
    )
    shape_path: bpy.props.StringProperty(
        name="Shape File",
        description="Optional identity coefficients (.npy, up to the model's shape count); empty is the mean shape",
        subtype='FILE_PATH',
    )
    name: bpy.props.StringProperty(name="Name", default="flame_head")

    @classmethod
    def poll(cls, context):
        if context.mode != 'OBJECT':
            cls.poll_message_set("switch to Object Mode")
            return False
        return True

    def _model_path(self, context) -> str:
        if self.filepath:
            return bpy.path.abspath(self.filepath)
        prefs = preferences.get(context)
        if prefs is not None and prefs.flame_path:
            return bpy.path.abspath(prefs.flame_path)
        return os.fspath(backend_ref.default_head_path())

    def execute(self, context):
        def work():
            path = self._model_path(context)
            model = backend_ref.pickle_io().load_flame(path)
            shape = _load_shape(self.shape_path)
            mesh_obj, arm_obj = rig.build_rig(context.scene.collection, model, self.name or "flame_head", shape)
            for obj in context.selected_objects:
                obj.select_set(False)
            mesh_obj.select_set(True)
            arm_obj.select_set(True)
            context.view_layer.objects.active = arm_obj
            return f"imported {os.path.basename(path)} as '{arm_obj.name}'"
        return _run(self, work)


class AVITALK_OT_apply_motion(bpy.types.Operator):
    """Bake an AVI-Talk motion file onto the selected FLAME head as a new take"""
    bl_idname = "avitalk.apply_motion"
    bl_label = "Apply Motion File"
    bl_options = {'REGISTER', 'UNDO'}

    filepath: bpy.props.StringProperty(name="Motion File", subtype='FILE_PATH')
    auto_start: bpy.props.BoolProperty(
        name="Start at Sound",
        description="Start at the first sound strip, else the scene start (ignores Frame Start)",
        default=True,
    )
    frame_start: bpy.props.IntProperty(name="Frame Start", default=1)
    push_to_nla: bpy.props.BoolProperty(
        name="Push to NLA",
        description="Put the take on new NLA tracks instead of making it the active action",
        default=False,
    )

    @classmethod
    def poll(cls, context):
        return rig_poll(cls, context)

    def execute(self, context):
        def work():
            if not self.filepath:
                raise ValueError("choose a motion file (.npz)")
            path = bpy.path.abspath(self.filepath)
            rig.find_rig(context.active_object)  # a clear error before reading anything
            motion = backend_ref.motion().load_motion(path)
            scene = context.scene
            start = (timing.default_frame_start(_sound_starts(scene), scene.frame_start)
                     if self.auto_start else self.frame_start)
            take, n_frames = bake.apply_motion(context.active_object, motion, scene, start, self.push_to_nla, path)
            return f"baked {n_frames} frames as take '{take}' from frame {start}"
        return _run(self, work)

    def invoke(self, context, event):
        settings = context.scene.avitalk
        if not self.filepath:
            self.filepath = settings.motion_path
        return self.execute(context)
