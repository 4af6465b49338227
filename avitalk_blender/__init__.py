"""AVI-Talk: dialogue audio to FLAME facial animation. Registration only.

One package is both a Blender extension (``blender_manifest.toml``, 4.2+) and
a legacy add-on (``bl_info``, for Blender 3.4 to 4.1; 4.2+ ignores it).
"""

import bpy

bl_info = {
    "name": "AVI-Talk",
    "description": "Dialogue audio to expressive FLAME facial animation",
    "author": "AVI-Talk developers",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "3D Viewport > Sidebar > AVI-Talk",
    "category": "Animation",
}

from . import flame_map, ops_backend, ops_character, ops_generate, ops_head, ops_takes, panels, preferences, properties, session

classes = (
    preferences.AVITALK_AddonPreferences,
    properties.AVITALK_Take,
    properties.AVITALK_Segment,
    properties.AVITALK_MapEntry,
    properties.AVITALK_CharacterMap,
    properties.AVITALK_SceneSettings,
    ops_head.AVITALK_OT_import_head,
    ops_head.AVITALK_OT_apply_motion,
    ops_generate.AVITALK_OT_generate,
    ops_generate.AVITALK_OT_regenerate,
    ops_generate.AVITALK_OT_cancel,
    ops_generate.AVITALK_OT_sync_segments,
    ops_character.AVITALK_OT_store_map,
    ops_character.AVITALK_OT_clear_map,
    ops_takes.AVITALK_OT_bake,
    ops_takes.AVITALK_OT_delete_take,
    ops_backend.AVITALK_OT_check_backend,
    ops_backend.AVITALK_OT_open_log,
    ops_backend.AVITALK_OT_restart_backend,
    ops_backend.AVITALK_OT_setup_backend,
    panels.AVITALK_UL_takes,
    panels.AVITALK_UL_segments,
    panels.AVITALK_UL_channels,
    panels.AVITALK_PT_main,
    panels.AVITALK_PT_instruction,
    panels.AVITALK_PT_segments,
    panels.AVITALK_PT_takes,
    panels.AVITALK_PT_character,
    panels.AVITALK_PT_motion_file,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.avitalk = bpy.props.PointerProperty(type=properties.AVITALK_SceneSettings)
    bpy.types.Object.avitalk_map = bpy.props.PointerProperty(type=properties.AVITALK_CharacterMap)
    bpy.types.STATUSBAR_HT_header.append(panels.draw_status)
    bpy.app.handlers.load_pre.append(session.on_load_pre)


def unregister():
    bpy.app.handlers.load_pre.remove(session.on_load_pre)
    bpy.types.STATUSBAR_HT_header.remove(panels.draw_status)
    session.SESSION.shutdown()
    flame_map.stop()
    del bpy.types.Object.avitalk_map
    del bpy.types.Scene.avitalk
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
