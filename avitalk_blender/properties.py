"""The add-on's one PropertyGroup, stored on the scene as ``scene.avitalk`` (plus its item types)."""

import bpy

from . import takes
from .core import backend_ref, segments

protocol = backend_ref.protocol()


def _bounded(name: str) -> dict:
    """Hard min, max and default of a panel control: the ranges the backend accepts."""
    low, high, default = protocol.CONTROL_RANGES[name]
    return {"min": low, "max": high, "default": default}


def _audition(self, context):
    """Selecting a take in the list plays it on its rig (plain data changes, no operators)."""
    takes.audition(context.scene, self.take_index)


class AVITALK_Take(bpy.types.PropertyGroup):
    """One generated take; its data (instruction, seed, settings) lives on its two actions."""
    # ``name`` (built in) is the take name: actions ``<name>_shapes`` and ``<name>_pose``.
    rig: bpy.props.StringProperty(name="Rig", description="Object the take was made for: the armature, "
                                  "or the mesh of a character without one")


class AVITALK_Segment(bpy.types.PropertyGroup):
    frame: bpy.props.IntProperty(name="Start", description="Timeline frame where the segment starts (a marker or the audio start)")
    instruction: bpy.props.StringProperty(
        name="Instruction",
        description="This segment's instruction; empty uses the clip's instruction",
    )


class AVITALK_MapEntry(bpy.types.PropertyGroup):
    """One row of a character's channel map: an ARKit name and the shape key that plays it."""
    arkit: bpy.props.StringProperty(name="ARKit", description="The ARKit blendshape name this row drives")
    key: bpy.props.StringProperty(name="Shape Key", description="The character's shape key that plays it; "
                                  "empty leaves the channel undriven")


class AVITALK_CharacterMap(bpy.types.PropertyGroup):
    """A character's channel map, stored on its mesh (``object.avitalk_map``) so it travels with the .blend.

    Empty (``stored`` off) means: read the names each time (``backend.retarget.names``).
    """
    stored: bpy.props.BoolProperty(name="Stored", description="The map below is used instead of name matching")
    entries: bpy.props.CollectionProperty(type=AVITALK_MapEntry, name="Channels",
                                          description="One row per ARKit name: the shape key that plays it")
    entry_index: bpy.props.IntProperty(name="Channel", description="The row chosen in the channel list")
    jaw: bpy.props.StringProperty(name="Jaw", description="Bone that opens the jaw; empty uses the jawOpen key")
    left_eye: bpy.props.StringProperty(name="Left Eye", description="The character's left eye bone")
    right_eye: bpy.props.StringProperty(name="Right Eye", description="The character's right eye bone")
    head: bpy.props.StringProperty(name="Head", description="Head bone (gets the neck turn)")
    neck: bpy.props.StringProperty(name="Neck", description="Neck bone (gets the whole head turn)")

    def bones(self) -> dict:
        return {role: getattr(self, role) for role in ("jaw", "left_eye", "right_eye", "head", "neck")}


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
        description="Where the dialogue comes from",
        items=(('STRIPS', "Sound Strips", "Mix down the scene's sound strips"),
               ('FILE', "File", "An audio file, starting at Frame Start")),
        default='STRIPS',
    )
    audio_file: bpy.props.StringProperty(name="Audio File", description="The dialogue audio (WAV, FLAC, ...)",
                                         subtype='FILE_PATH')
    use_range: bpy.props.BoolProperty(
        name="Custom Range",
        description="Mix only these frames; off uses the sound strips' extent",
        default=False,
    )
    range_start: bpy.props.IntProperty(name="Start", description="First frame of the audio to mix", default=1)
    range_end: bpy.props.IntProperty(name="End", description="One past the last frame of the audio to mix", default=250)

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
    seed: bpy.props.IntProperty(name="Seed", description="Variation of the motion for the same instruction",
                                default=0, min=0, max=protocol.MAX_SEED)
    intensity: bpy.props.FloatProperty(
        name="Intensity", description="Scales every expression and the jaw",
        **_bounded("intensity"), soft_max=2.0)
    upper_face: bpy.props.FloatProperty(
        name="Upper Face", description="Extra scale on eyes, brows, cheeks and nose",
        **_bounded("upper_face"), soft_max=2.0)
    lower_face: bpy.props.FloatProperty(
        name="Lower Face", description="Extra scale on mouth, lips, chin and jaw",
        **_bounded("lower_face"), soft_max=2.0)
    smoothing: bpy.props.FloatProperty(
        name="Smoothing", description="Gaussian smoothing of the motion, in frames (25: one second)",
        **_bounded("smoothing"), soft_max=5.0)
    head_motion: bpy.props.BoolProperty(name="Head Motion", description="Let the head and neck move",
                                        default=protocol.CONTROL_SWITCHES["head_motion"])
    blinks: bpy.props.BoolProperty(name="Blinks", description="Add eye blinks",
                                   default=protocol.CONTROL_SWITCHES["blinks"])

    # ---- segments ----
    use_segments: bpy.props.BoolProperty(
        name="Per-Segment Instructions",
        description="Timeline markers split the audio; each segment can have its own instruction",
        default=False,
    )
    segments: bpy.props.CollectionProperty(type=AVITALK_Segment, name="Segments",
                                           description="One item per segment between timeline markers")
    segment_index: bpy.props.IntProperty(name="Segment", description="The segment chosen in the list")
    blend_seconds: bpy.props.FloatProperty(
        name="Blend", description="Cross-fade length at each marker, in seconds",
        default=segments.DEFAULT_BLEND_SECONDS, min=0.0, soft_max=1.0, subtype='TIME_ABSOLUTE', unit='TIME_ABSOLUTE',
    )

    # ---- other characters ----
    per_frame_solve: bpy.props.BoolProperty(
        name="Solve per Frame",
        description="On a rig whose shapes are correlated (a FLAME file's PCA basis, ICT-FaceKit's head), solve "
                    "each frame's coefficients by bounded, smoothed least squares that reproduce our head's motion, "
                    "instead of the fitted linear map or the ARKit table",
        default=False,
    )

    # ---- takes and bake ----
    takes: bpy.props.CollectionProperty(type=AVITALK_Take, name="Takes",
                                        description="The takes made in this scene, newest last")
    take_index: bpy.props.IntProperty(name="Take", description="The take chosen in the list; choosing one plays it",
                                      update=_audition)
    decimate: bpy.props.BoolProperty(name="Reduce Keys", description="Remove keys that linear interpolation reproduces",
                                     default=False)
    tolerance: bpy.props.FloatProperty(name="Tolerance", description="Largest allowed change of any channel",
                                       default=0.001, min=0.0, soft_max=0.05, precision=4)

    def controls(self) -> dict:
        """The MotionControls fields for the backend request."""
        return {"intensity": self.intensity, "upper_face": self.upper_face, "lower_face": self.lower_face,
                "smoothing": self.smoothing, "head_motion": self.head_motion, "blinks": self.blinks}
