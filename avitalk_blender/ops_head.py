"""Operators for the head: import a FLAME head (or ICT-FaceKit's) as a rig, apply a motion file as a take."""

import os

import bpy
import numpy as np

from . import audio, character, flame_map, ict_head, preferences, rig, takes
from .core import backend_ref, timing
from .core.errors import InputError
from .ops_common import rig_poll, run


def _load_shape(path: str):
    """Identity coefficients from a .npy file, or None for the mean shape."""
    if not path:
        return None
    path = bpy.path.abspath(path)
    if not os.path.isfile(path):
        raise InputError(f"shape file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"could not read shape coefficients from {path} (a .npy array): {exc}") from exc


class AVITALK_OT_import_head(bpy.types.Operator):
    """Import a FLAME head as a rig (mesh with FLAME shape keys, armature with FLAME's joints), or ICT-FaceKit's head"""
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
    ict_folder: bpy.props.StringProperty(
        name="ICT-FaceKit Folder",
        description="ICT-FaceKit's FaceXModel folder (download it yourself); when set, imports that head "
                    "instead of a FLAME file. A folder chosen as the FLAME File works too",
        subtype='DIR_PATH',
    )
    name: bpy.props.StringProperty(name="Name", description="Name of the new mesh (the armature gets '_rig')",
                                   default="flame_head")

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

    def _ict_folder(self) -> str:
        if self.ict_folder:
            return bpy.path.abspath(self.ict_folder)
        if self.filepath and os.path.isdir(bpy.path.abspath(self.filepath)):
            return bpy.path.abspath(self.filepath)
        return ""

    def execute(self, context):
        def work():
            collection = context.scene.collection
            folder = self._ict_folder()
            if folder:
                head = backend_ref.module("retarget.ict").load_ict(folder)   # every check before the scene changes
                ours = backend_ref.pickle_io().load_flame(backend_ref.default_head_path())
                solve_map = backend_ref.module("retarget.transfer").solve_map_for_ict(ours, head)
                name = self.name if self.name and self.name != "flame_head" else "ict_head"
                mesh_obj, arm_obj = ict_head.build_ict(collection, head, name)
                mesh_obj["avitalk_solve_map"] = solve_map.as_dict()      # Solve per Frame reads it
                path = folder.rstrip("/\\")
            else:
                path = self._model_path(context)
                model = backend_ref.pickle_io().load_flame(path)
                shape = _load_shape(self.shape_path)
                mesh_obj, arm_obj = rig.build_rig(collection, model, self.name or "flame_head", shape)
            for obj in context.selected_objects:
                obj.select_set(False)
            mesh_obj.select_set(True)
            arm_obj.select_set(True)
            context.view_layer.objects.active = arm_obj
            done = f"imported {os.path.basename(path)} as '{arm_obj.name}'"
            if folder or not flame_map.needs_map(model):
                return done
            return done + "; " + self._fit(arm_obj, path)
        return run(self, work)

    def _fit(self, arm_obj, path: str) -> str:
        """Fit the map from our channels to the file's basis (a worker thread in the UI); what to tell the artist."""
        task = flame_map.begin(arm_obj, path)
        if task.running:
            return "fitting its expression map in the background (Character panel)"
        if task.result is None:
            self.report({'WARNING'}, f"no expression map for {os.path.basename(path)}, its expressions will be "
                                     f"copied unmapped: {task.error}")
            return "expressions copied unmapped"
        return f"expression map fitted in {task.seconds:.1f} s, {task.result.summary()}"


class AVITALK_OT_apply_motion(bpy.types.Operator):
    """Bake an AVI-Talk motion file onto the selected head or ARKit-named character as a new take"""
    bl_idname = "avitalk.apply_motion"
    bl_label = "Apply Motion File"
    bl_options = {'REGISTER', 'UNDO'}

    filepath: bpy.props.StringProperty(name="Motion File", description="AVI-Talk motion file (.npz)",
                                       subtype='FILE_PATH')
    auto_start: bpy.props.BoolProperty(
        name="Start at Sound",
        description="Start at the first sound strip, else the scene start (ignores Frame Start)",
        default=True,
    )
    frame_start: bpy.props.IntProperty(name="Frame Start", description="Timeline frame of the motion's first sample",
                                       default=1)
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
                raise InputError("choose a motion file (.npz)")
            path = bpy.path.abspath(self.filepath)
            character.checked(context.active_object)  # a clear error before reading anything
            motion = backend_ref.motion().load_motion(path)
            scene = context.scene
            start = (timing.default_frame_start(audio.sound_starts(scene), scene.frame_start)
                     if self.auto_start else self.frame_start)
            take = takes.make_take(scene, context.active_object, motion, start, {"avitalk_motion_file": path},
                                   self.push_to_nla, path)
            note = next((a.get("avitalk_retarget", "") for a in takes.take_actions(take) if a is not None), "")
            return f"baked take '{take}' from frame {start}" + (f" ({note})" if note else "")
        return run(self, work)

    def invoke(self, context, event):
        settings = context.scene.avitalk
        if not self.filepath:
            self.filepath = settings.motion_path
        return self.execute(context)
