"""Our channels in ARKit's vocabulary: the 52 blendshape names and a table from our motion to their weights.

A motion file carries our default head's expression components (``backend.head.components``)
and jaw and eye rotations. ``arkit_weights`` turns it into the 52 ARKit weights, each
``clip(sum gain * channel, 0, 1)`` over its row of ``TABLE``. Most rows copy one component;
the components ARKit has no name for are spread over the shapes that reproduce their
geometry on ICT-FaceKit's head (``compare.fit_on_arkit``; docs/retarget.md has the figures).
The jaw and eyes become channels by the full-weight angles below. ``mouthClose`` is capped
by ``jawOpen``: ARKit's mouthClose closes the lips against an open jaw and means nothing alone.
Left and Right are the character's own, as in ARKit (FLAME's +X is the character's left).
"""

from __future__ import annotations

import numpy as np

from ..errors import RequestError

ARKIT_NAMES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker",
    "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp",
    "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)
ARKIT_INDEX = {name: i for i, name in enumerate(ARKIT_NAMES)}

# Names that end in Left/Right as a direction of motion, not as a side of the face.
DIRECTIONS = ("jawLeft", "jawRight", "mouthLeft", "mouthRight")


def split_side(name: str) -> tuple[str, str | None]:
    """``mouthSmileLeft`` -> (``mouthSmile``, ``Left``); unsided names and directions -> (name, None)."""
    if name not in DIRECTIONS:
        for side in ("Left", "Right"):
            if name.endswith(side):
                return name[: -len(side)], side
    return name, None


# Jaw and eye angles of a full ARKit weight, radians. jawOpen: ICT-FaceKit's jawOpen turns its lower teeth by
# 0.44 rad about +X. Sideways: our jaw turned 0.1 rad about Y moves the chin about as far as ICT's jawLeft.
# Eyes: ICT's eyeLook shapes move only the lids (its eyeballs turn by bones), so this angle is a convention.
JAW_OPEN_RADIANS = 0.44
JAW_SIDE_RADIANS = 0.1
EYE_LOOK_RADIANS = 0.5
# Our jaw_open_lips_closed at 1 seals the lips over 0.107 rad of jaw; ICT's mouthClose at 1 over 0.52 rad.
MOUTH_CLOSE_GAIN = 0.2

_SIDES = {"Left": "_L", "Right": "_R"}


def _sided(base, component, gain=1.0):
    """Rows ``baseLeft`` and ``baseRight`` from ``component_L`` and ``component_R``."""
    return {base + side: ((component + suffix, gain),) for side, suffix in _SIDES.items()}


# ARKit name -> ((our channel, gain), ...). Channels: our expression components and ``pose_channels``'s names.
TABLE = {
    **_sided("eyeBlink", "blink"), **_sided("eyeSquint", "squint"), **_sided("eyeWide", "eye_wide"),
    **_sided("eyeLookUp", "eye_up"), **_sided("eyeLookDown", "eye_down"),
    **_sided("eyeLookIn", "eye_in"), **_sided("eyeLookOut", "eye_out"),
    **_sided("browDown", "brow_lower"), **_sided("browOuterUp", "brow_outer_raise"),
    "browInnerUp": (("brow_inner_raise_L", 0.5), ("brow_inner_raise_R", 0.5)),
    **_sided("cheekSquint", "cheek_raise"), "cheekPuff": (("cheek_puff", 1.0),),
    **_sided("noseSneer", "nose_wrinkle"),
    "jawOpen": (("jaw_open", 1.0),), "jawLeft": (("jaw_left", 1.0),), "jawRight": (("jaw_right", 1.0),),
    "jawForward": (("jaw_forward", 1.0),),
    "mouthClose": (("jaw_open_lips_closed", MOUTH_CLOSE_GAIN),),
    "mouthFunnel": (("funnel", 1.0),),
    "mouthPucker": (("pucker", 1.0),),
    "mouthLeft": (("mouth_left", 1.0),), "mouthRight": (("mouth_right", 1.0),),
    **_sided("mouthSmile", "smile"), **_sided("mouthDimple", "dimple"), **_sided("mouthStretch", "lip_stretch"),
    **_sided("mouthPress", "lip_press"), **_sided("mouthUpperUp", "upper_lip_raise"),
    **_sided("mouthFrown", "lip_corner_depress"), **_sided("mouthLowerDown", "lower_lip_depress"),
    "mouthRollLower": (("lower_lip_roll_in", 1.0),), "mouthRollUpper": (("upper_lip_roll_in", 1.0),),
    "mouthShrugLower": (("chin_raise", 1.0),),
    "mouthShrugUpper": (),
    "tongueOut": (),
}

# Components ARKit has no name for, as the non-negative mix of ICT's shapes that best reproduces each one's
# displacement field (compare.fit_on_arkit; weights under 0.06 dropped, sides averaged, mouthClose and
# opposite jawLeft/jawRight pairs left out). These rows are added to TABLE.
SPREAD = {
    "lips_part": (("mouthShrugUpper", 0.27), ("mouthLowerDownLeft", 0.23), ("mouthLowerDownRight", 0.23),
                  ("mouthPressLeft", 0.12), ("mouthPressRight", 0.12)),
    "jaw_open_lips_stretch": (("mouthShrugUpper", 0.35), ("mouthLowerDownLeft", 0.25), ("mouthLowerDownRight", 0.25),
                              ("mouthPressLeft", 0.14), ("mouthPressRight", 0.14), ("mouthRollUpper", 0.11),
                              ("mouthRollLower", 0.07)),
    "lower_lip_tuck": (("mouthRollLower", 0.24), ("mouthShrugUpper", 0.14), ("mouthDimpleLeft", 0.06),
                       ("mouthDimpleRight", 0.06)),
    "lip_tighten": (("mouthLeft", 0.08), ("mouthRight", 0.08), ("mouthRollUpper", 0.08), ("mouthRollLower", 0.07)),
    "chin_lower": (("mouthLowerDownLeft", 0.10), ("mouthLowerDownRight", 0.10)),
    "mouth_up": (("mouthShrugUpper", 0.61), ("noseSneerLeft", 0.1), ("noseSneerRight", 0.1), ("mouthRollLower", 0.08),
                 ("mouthSmileLeft", 0.07), ("mouthSmileRight", 0.07), ("mouthPressLeft", 0.06),
                 ("mouthPressRight", 0.06)),
    "mouth_down": (("mouthFrownLeft", 0.75), ("mouthFrownRight", 0.75), ("mouthPressLeft", 0.33),
                   ("mouthPressRight", 0.33), ("mouthLowerDownLeft", 0.19), ("mouthLowerDownRight", 0.19),
                   ("mouthPucker", 0.11), ("jawOpen", 0.10)),
    "lower_lip_roll_out": (("mouthShrugLower", 0.14), ("mouthLowerDownLeft", 0.10), ("mouthLowerDownRight", 0.10),
                           ("jawForward", 0.06)),
    "upper_lip_roll_out": (("mouthShrugUpper", 0.25), ("mouthPucker", 0.17), ("mouthStretchLeft", 0.12),
                           ("mouthStretchRight", 0.12)),
}
GEOMETRIC = tuple(SPREAD)
for _component, _row in SPREAD.items():
    for _name, _gain in _row:
        TABLE[_name] = TABLE[_name] + ((_component, _gain),)

# Our components no ARKit shape reproduces (more than 60 % of the field left over on ICT): not driven.
UNMAPPED = ("cheek_suck", "nostril_flare", "jaw_clench")
# ARKit shapes none of our channels drive: we have no tongue.
UNDRIVEN = ("tongueOut",)

POSE_CHANNELS = ("jaw_open", "jaw_left", "jaw_right") + tuple(
    f"eye_{d}{s}" for s in ("_L", "_R") for d in ("up", "down", "in", "out"))


def pose_channels(jaw_pose, eye_pose) -> dict:
    """Jaw and eye rotations (T, 3), (T, 6) axis-angle -> channels (T,) >= 0, 1 at a full ARKit weight.

    +X turns the jaw open and the eyes down; +Y turns the chin and both gazes toward +X,
    the character's left: out for the left eye, in for the right eye.
    """
    jaw = np.asarray(jaw_pose, dtype=np.float64)
    eye = np.asarray(eye_pose, dtype=np.float64)
    pos = lambda v, full: np.clip(v / full, 0.0, None)
    out = {"jaw_open": pos(jaw[:, 0], JAW_OPEN_RADIANS),
           "jaw_left": pos(jaw[:, 1], JAW_SIDE_RADIANS), "jaw_right": pos(-jaw[:, 1], JAW_SIDE_RADIANS)}
    for suffix, aa, toward_left in (("_L", eye[:, 0:3], "out"), ("_R", eye[:, 3:6], "in")):
        away = "in" if toward_left == "out" else "out"
        out["eye_down" + suffix] = pos(aa[:, 0], EYE_LOOK_RADIANS)
        out["eye_up" + suffix] = pos(-aa[:, 0], EYE_LOOK_RADIANS)
        out[f"eye_{toward_left}" + suffix] = pos(aa[:, 1], EYE_LOOK_RADIANS)
        out[f"eye_{away}" + suffix] = pos(-aa[:, 1], EYE_LOOK_RADIANS)
    return out


def arkit_weights(expression, jaw_pose, eye_pose, names) -> np.ndarray:
    """(T, 52) ARKit weights in ``ARKIT_NAMES`` order from a motion's arrays; ``names`` name the expression columns."""
    expression = np.asarray(expression, dtype=np.float64)
    if expression.ndim != 2 or expression.shape[1] > len(names):
        raise RequestError(f"expression must be (T, E) with E <= {len(names)} named components, got {expression.shape}")
    n = expression.shape[0]
    jaw_pose, eye_pose = np.asarray(jaw_pose), np.asarray(eye_pose)
    if jaw_pose.shape != (n, 3) or eye_pose.shape != (n, 6):
        raise RequestError(f"jaw_pose must be ({n}, 3) and eye_pose ({n}, 6), "
                           f"got {jaw_pose.shape} and {eye_pose.shape}")
    channels = {name: expression[:, i] for i, name in enumerate(names[: expression.shape[1]])}
    channels.update(pose_channels(jaw_pose, eye_pose))
    zero = np.zeros(n)
    out = np.zeros((n, len(ARKIT_NAMES)))
    for k, name in enumerate(ARKIT_NAMES):
        out[:, k] = sum((gain * channels.get(ch, zero) for ch, gain in TABLE[name]), zero)
    out = np.clip(out, 0.0, 1.0)
    close, jaw = ARKIT_INDEX["mouthClose"], ARKIT_INDEX["jawOpen"]
    out[:, close] = np.minimum(out[:, close], out[:, jaw])
    return out


def motion_to_arkit(motion, names=None) -> np.ndarray:
    """(T, 52) ARKit weights of a ``backend.motion.Motion`` (default names: our head's components)."""
    if names is None:
        from ..head.components import EXPRESSION_NAMES as names
    return arkit_weights(motion.expression, motion.jaw_pose, motion.eye_pose, names)
