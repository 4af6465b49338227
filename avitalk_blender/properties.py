"""The add-on's one PropertyGroup, stored on the scene as ``scene.avitalk``."""

import bpy


class AVITALK_SceneSettings(bpy.types.PropertyGroup):
    motion_path: bpy.props.StringProperty(
        name="Motion File",
        description="AVI-Talk motion file (.npz) to bake onto the selected head",
        subtype='FILE_PATH',
    )
    auto_start: bpy.props.BoolProperty(
        name="Start at Sound",
        description="Start the take at the first sound strip, or at the scene start when there is none",
        default=True,
    )
    frame_start: bpy.props.IntProperty(
        name="Frame Start",
        description="Timeline frame of the motion's first sample",
        default=1,
    )
    push_to_nla: bpy.props.BoolProperty(
        name="Push to NLA",
        description="Put the take on new NLA tracks instead of making it the active action",
        default=False,
    )
