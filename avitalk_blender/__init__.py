"""AVI-Talk: dialogue audio to FLAME facial animation. Registration only."""

import bpy

from . import operators, panels, preferences, properties

classes = (
    preferences.AVITALK_AddonPreferences,
    properties.AVITALK_SceneSettings,
    operators.AVITALK_OT_import_head,
    operators.AVITALK_OT_apply_motion,
    panels.AVITALK_PT_main,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.avitalk = bpy.props.PointerProperty(type=properties.AVITALK_SceneSettings)


def unregister():
    del bpy.types.Scene.avitalk
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
