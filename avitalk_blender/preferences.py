"""Add-on preferences: the FLAME model file, and (later) the backend settings."""

import bpy


class AVITALK_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    flame_path: bpy.props.StringProperty(
        name="FLAME Model",
        description="FLAME model file (.pkl) used by 'Import FLAME Head'; empty uses AVI-Talk's default head",
        subtype='FILE_PATH',
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "flame_path")
        box = layout.box()
        box.label(text="Backend", icon='PREFERENCES')
        box.label(text="Backend Python, device and checkpoint folder are set here in a later version.")


def get(context):
    """This add-on's preferences, or None when it was registered outside the add-on system (tests)."""
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None
