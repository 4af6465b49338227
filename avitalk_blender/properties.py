"""The add-on's one PropertyGroup, stored on the scene as ``scene.avitalk`` (plus its item types)."""

import bpy

from .core import segments


def _audition(self, context):
    """Selecting a take in the list plays it on its rig (plain data changes, no operators)."""
    from . import takes

    takes.audition(context.scene, self.take_index)


class AVITALK_Take(bpy.types.PropertyGroup):
    """One generated take; its data (instruction, seed, settings) lives on its two actions."""
    # ``name`` (built in) is the take name: actions ``<name>_shapes`` and ``<name>_pose``.
    rig: bpy.props.StringProperty(name="Rig", description="Armature object the take was made for")


class AVITALK_Segment(bpy.types.PropertyGroup):
    frame: bpy.props.IntProperty(name="Start", description="Timeline frame where the segment starts (a marker or the audio start)")
    instruction: bpy.props.StringProperty(
        name="Instruction",
        description="This segment's instruction; empty uses the clip's instruction",
    )


class AVITALK_SceneSettings(bpy.types.PropertyGroup):
    # ---- motion file (apply_motion) ----
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
        description="Timeline frame of the motion's first sample (also where an audio file starts)",
        default=1,
    )
    push_to_nla: bpy.props.BoolProperty(
        name="Push to NLA",
        description="Put the take on new NLA tracks instead of making it the active action",
        default=False,
    )

    # ---- audio ----
    audio_source: bpy.props.EnumProperty(
        name="Audio",
        items=(('STRIPS', "Sound Strips", "Mix down the scene's sound strips"),
               ('FILE', "File", "An audio file, starting at Frame Start")),
        default='STRIPS',
    )
    audio_file: bpy.props.StringProperty(name="Audio File", subtype='FILE_PATH')
    use_range: bpy.props.BoolProperty(
        name="Custom Range",
        description="Mix only these frames; off uses the sound strips' extent",
        default=False,
    )
    range_start: bpy.props.IntProperty(name="Start", default=1)
    range_end: bpy.props.IntProperty(name="End", default=250)

    # ---- generation ----
    instruction: bpy.props.StringProperty(
        name="Instruction",
        description="How the speaker looks and feels; Generate writes it from the audio, edit it and Regenerate",
    )
    dialogue: bpy.props.StringProperty(
        name="Dialogue",
        description="What the line says (optional): times the lip closures on P, B and M; "
                    "empty: recognised from the audio (English only)",
    )
    dialogue_language: bpy.props.StringProperty(
        name="Language",
        description="Language of the Dialogue text for the aligner: en, or an espeak-ng code (it, de, fr, ...)",
        default="en",
    )
    seed: bpy.props.IntProperty(name="Seed", description="Variation of the motion for the same instruction", default=0, min=0)
    intensity: bpy.props.FloatProperty(name="Intensity", default=1.0, min=0.0, soft_max=2.0)
    upper_face: bpy.props.FloatProperty(name="Upper Face", default=1.0, min=0.0, soft_max=2.0)
    lower_face: bpy.props.FloatProperty(name="Lower Face", default=1.0, min=0.0, soft_max=2.0)
    smoothing: bpy.props.FloatProperty(name="Smoothing", description="Gaussian smoothing in frames", default=0.0,
                                       min=0.0, soft_max=5.0)
    head_motion: bpy.props.BoolProperty(name="Head Motion", default=True)
    blinks: bpy.props.BoolProperty(name="Blinks", default=True)

    # ---- segments ----
    use_segments: bpy.props.BoolProperty(
        name="Per-Segment Instructions",
        description="Timeline markers split the audio; each segment can have its own instruction",
        default=False,
    )
    segments: bpy.props.CollectionProperty(type=AVITALK_Segment)
    segment_index: bpy.props.IntProperty(name="Segment")
    blend_seconds: bpy.props.FloatProperty(
        name="Blend", description="Cross-fade length at each marker, in seconds",
        default=segments.DEFAULT_BLEND_SECONDS, min=0.0, soft_max=1.0, subtype='TIME_ABSOLUTE', unit='TIME_ABSOLUTE',
    )

    # ---- takes and bake ----
    takes: bpy.props.CollectionProperty(type=AVITALK_Take)
    take_index: bpy.props.IntProperty(name="Take", update=_audition)
    decimate: bpy.props.BoolProperty(name="Reduce Keys", description="Remove keys that linear interpolation reproduces",
                                     default=False)
    tolerance: bpy.props.FloatProperty(name="Tolerance", description="Largest allowed change of any channel",
                                       default=0.001, min=0.0, soft_max=0.05, precision=4)

    def controls(self) -> dict:
        """The MotionControls fields for the backend request."""
        return {"intensity": self.intensity, "upper_face": self.upper_face, "lower_face": self.lower_face,
                "smoothing": self.smoothing, "head_motion": self.head_motion, "blinks": self.blinks}
