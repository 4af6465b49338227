"""Semantic expression components of the AVI-Talk default head.

Expression slot ``i`` of the default head's ``shapedirs[:, :, 300 + i]`` is the
component ``EXPRESSION_NAMES[i]``. A value of 1.0 is the full expression.
Slots from ``len(EXPRESSION_NAMES)`` up to ``N_EXPRESSION`` are reserved and zero.
"""

N_SHAPE = 300
N_EXPRESSION = 100

# (name, description); _L/_R are the character's left and right (FLAME +X is the character's left).
COMPONENTS = (
    ("blink_L", "upper and lower eyelids close over the left eyeball"),
    ("blink_R", "upper and lower eyelids close over the right eyeball"),
    ("squint_L", "lower lid rises, lids narrow (left)"),
    ("squint_R", "lower lid rises, lids narrow (right)"),
    ("eye_wide_L", "upper lid lifts to show more eyeball (left)"),
    ("eye_wide_R", "upper lid lifts to show more eyeball (right)"),
    ("brow_inner_raise_L", "inner brow lifts (left)"),
    ("brow_inner_raise_R", "inner brow lifts (right)"),
    ("brow_outer_raise_L", "outer brow lifts (left)"),
    ("brow_outer_raise_R", "outer brow lifts (right)"),
    ("brow_lower_L", "brow drawn down and in (left)"),
    ("brow_lower_R", "brow drawn down and in (right)"),
    ("cheek_raise_L", "cheek lifts toward the eye (left)"),
    ("cheek_raise_R", "cheek lifts toward the eye (right)"),
    ("cheek_puff", "both cheeks blow outward"),
    ("cheek_suck", "both cheeks pull in between the teeth"),
    ("nose_wrinkle_L", "nose side wrinkles up (left)"),
    ("nose_wrinkle_R", "nose side wrinkles up (right)"),
    ("nostril_flare", "both nostrils widen"),
    ("smile_L", "lip corner pulls up and back (left)"),
    ("smile_R", "lip corner pulls up and back (right)"),
    ("lip_corner_depress_L", "lip corner pulls down (left)"),
    ("lip_corner_depress_R", "lip corner pulls down (right)"),
    ("dimple_L", "lip corner pulls straight back (left)"),
    ("dimple_R", "lip corner pulls straight back (right)"),
    ("lip_stretch_L", "lip corner stretches sideways and down (left)"),
    ("lip_stretch_R", "lip corner stretches sideways and down (right)"),
    ("upper_lip_raise_L", "upper lip lifts, showing teeth (left)"),
    ("upper_lip_raise_R", "upper lip lifts, showing teeth (right)"),
    ("lower_lip_depress_L", "lower lip pulls down (left)"),
    ("lower_lip_depress_R", "lower lip pulls down (right)"),
    ("lip_press_L", "lips press together and thin (left)"),
    ("lip_press_R", "lips press together and thin (right)"),
    ("lip_tighten", "lip red narrows, lips tense"),
    ("pucker", "lips push forward and narrow, as in 'oo'"),
    ("funnel", "lips flare outward into a funnel, as in 'sh'"),
    ("upper_lip_roll_in", "upper lip rolls in over the teeth"),
    ("lower_lip_roll_in", "lower lip rolls in over the teeth"),
    ("upper_lip_roll_out", "upper lip everts"),
    ("lower_lip_roll_out", "lower lip everts, a pout"),
    ("chin_raise", "chin boss lifts and pushes the lower lip up"),
    ("mouth_left", "whole mouth shifts to the character's left"),
    ("mouth_right", "whole mouth shifts to the character's right"),
    ("lower_lip_tuck", "lower lip tucks up under the upper teeth, as in 'f'/'v'"),
    ("lips_part", "lips separate slightly with the jaw still"),
    ("jaw_open_lips_closed", "lips stay sealed against an open jaw (add with jaw_pose)"),
    ("jaw_open_lips_stretch", "lips stretch vertically over an open jaw"),
    ("jaw_forward", "jaw thrusts forward"),
    ("jaw_clench", "jaw muscles bulge, lips firm"),
    ("chin_lower", "soft tissue under the lower lip drops"),
    ("mouth_up", "whole mouth lifts"),
    ("mouth_down", "whole mouth drops"),
)

EXPRESSION_NAMES = tuple(name for name, _ in COMPONENTS)
EXPRESSION_INDEX = {name: i for i, name in enumerate(EXPRESSION_NAMES)}

# Face regions of the expression channels: the panel's upper/lower-face controls and stage 2's lip weight.
BLINK_NAMES = ("blink_L", "blink_R")
# Eyes, brows, cheeks and nose: the part of the face above the mouth.
UPPER_FACE_PREFIXES = ("blink", "squint", "eye_wide", "brow", "cheek_raise", "nose_wrinkle")


def expression_indices(names, n_expression: int) -> list[int]:
    """Indices of the named default-head components that exist among ``n_expression`` channels."""
    return [EXPRESSION_INDEX[n] for n in names if EXPRESSION_INDEX[n] < n_expression]


def upper_face_indices(n_expression: int) -> list[int]:
    names = [n for n in EXPRESSION_NAMES if n.startswith(UPPER_FACE_PREFIXES)]
    return expression_indices(names, n_expression)


def lower_face_indices(n_expression: int) -> list[int]:
    """Mouth, lips, jaw and chin components (everything named that is not upper face)."""
    names = [n for n in EXPRESSION_NAMES if not n.startswith(UPPER_FACE_PREFIXES)]
    return expression_indices(names, n_expression)


def blink_indices(n_expression: int) -> list[int]:
    return expression_indices(BLINK_NAMES, n_expression)


# Vertex groups exported with the default head (key ``avitalk_vertex_groups``).
VERTEX_GROUPS = ("upper_lip", "lower_lip", "upper_face", "lower_face", "eyes", "left_eye", "right_eye", "mouth_interior")
