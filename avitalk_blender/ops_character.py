"""Operators for a character's channel map: store the names' automatic map on the mesh to edit it, or clear it."""

import bpy

from . import character
from .core.errors import RigError
from .ops_common import rig_poll, run


def _arkit_character(context):
    found = character.find(context.active_object)
    if found.flame:
        raise RigError("an AVI-Talk FLAME head needs no channel map")
    return found


class AVITALK_OT_store_map(bpy.types.Operator):
    """Store the channel map read from the character's names on its mesh, to edit it in the panel"""
    bl_idname = "avitalk.store_map"
    bl_label = "Edit Channel Map"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return rig_poll(cls, context)

    def execute(self, context):
        def work():
            found = _arkit_character(context)
            channel_map = character.store_map(found.mesh, found.armature)
            return f"stored {len(channel_map.shapes)} matched channels on '{found.mesh.name}'"
        return run(self, work)


class AVITALK_OT_clear_map(bpy.types.Operator):
    """Forget the stored channel map: match the character's names again each time"""
    bl_idname = "avitalk.clear_map"
    bl_label = "Reset Channel Map"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return rig_poll(cls, context)

    def execute(self, context):
        def work():
            found = _arkit_character(context)
            character.clear_map(found.mesh)
            return f"'{found.mesh.name}' matches its names again"
        return run(self, work)
