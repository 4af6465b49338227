"""Operators for takes: bake the chosen take as the rig's animation, delete a take.

Auditioning (choosing a take in the list plays it) is the ``take_index``
update in properties.py; the take logic itself is in takes.py.
"""

import bpy

from . import takes
from .ops_common import run


class AVITALK_OT_bake(bpy.types.Operator):
    """Make the chosen take the rig's animation (its action, or NLA strips at the audio's start), optionally with fewer keys"""
    bl_idname = "avitalk.bake"
    bl_label = "Bake Keyframes"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        if not takes.chosen(context.scene.avitalk):
            cls.poll_message_set("generate a take first")
            return False
        return True

    def execute(self, context):
        def work():
            settings = context.scene.avitalk
            name = takes.bake_take(context.scene, settings.take_index, settings.push_to_nla,
                                   settings.tolerance if settings.decimate else None)
            where = "NLA strips" if settings.push_to_nla else "the active action"
            return f"baked '{name}' as {where}"
        return run(self, work)


class AVITALK_OT_delete_take(bpy.types.Operator):
    """Delete the chosen take and its actions"""
    bl_idname = "avitalk.delete_take"
    bl_label = "Delete Take"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return takes.chosen(context.scene.avitalk)

    def execute(self, context):
        return run(self, lambda: f"deleted take '{takes.delete(context.scene, context.scene.avitalk.take_index)}'")
