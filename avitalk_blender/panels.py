"""The "AVI-Talk" tab in the 3D viewport sidebar."""

import bpy

from . import rig


class AVITALK_PT_main(bpy.types.Panel):
    bl_label = "AVI-Talk"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "AVI-Talk"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.avitalk
        layout.operator("avitalk.import_head", icon='MONKEY')

        box = layout.box()
        box.label(text="Motion", icon='ACTION')
        box.prop(settings, "motion_path", text="")
        box.prop(settings, "auto_start")
        row = box.row()
        row.enabled = not settings.auto_start
        row.prop(settings, "frame_start")
        box.prop(settings, "push_to_nla")
        op = box.operator("avitalk.apply_motion", icon='IMPORT')
        op.filepath = settings.motion_path
        op.auto_start = settings.auto_start
        op.frame_start = settings.frame_start
        op.push_to_nla = settings.push_to_nla
        if not rig.is_rig(context.active_object):
            box.label(text="Select an AVI-Talk head", icon='INFO')
