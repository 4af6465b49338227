"""AVI-Talk: dialogue audio to FLAME facial animation. Registration only."""

import bpy

from . import operators, panels, preferences, properties, workflow_ops
from .runner import RUNNER

classes = (
    preferences.AVITALK_AddonPreferences,
    properties.AVITALK_Take,
    properties.AVITALK_Segment,
    properties.AVITALK_SceneSettings,
    operators.AVITALK_OT_import_head,
    operators.AVITALK_OT_apply_motion,
    workflow_ops.AVITALK_OT_generate,
    workflow_ops.AVITALK_OT_regenerate,
    workflow_ops.AVITALK_OT_cancel,
    workflow_ops.AVITALK_OT_bake,
    workflow_ops.AVITALK_OT_delete_take,
    workflow_ops.AVITALK_OT_sync_segments,
    workflow_ops.AVITALK_OT_check_backend,
    workflow_ops.AVITALK_OT_restart_backend,
    workflow_ops.AVITALK_OT_setup_backend,
    panels.AVITALK_UL_takes,
    panels.AVITALK_UL_segments,
    panels.AVITALK_PT_main,
    panels.AVITALK_PT_instruction,
    panels.AVITALK_PT_segments,
    panels.AVITALK_PT_takes,
    panels.AVITALK_PT_motion_file,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.avitalk = bpy.props.PointerProperty(type=properties.AVITALK_SceneSettings)
    bpy.types.STATUSBAR_HT_header.append(workflow_ops.draw_status)
    bpy.app.handlers.load_pre.append(workflow_ops.on_load_pre)


def unregister():
    bpy.app.handlers.load_pre.remove(workflow_ops.on_load_pre)
    bpy.types.STATUSBAR_HT_header.remove(workflow_ops.draw_status)
    RUNNER.shutdown()
    del bpy.types.Scene.avitalk
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
