"""The table from our channels to ARKit's 52 blendshapes."""

import numpy as np
import pytest

from backend.errors import AviTalkError
from backend.head.components import EXPRESSION_INDEX, EXPRESSION_NAMES
from backend.motion import Motion
from backend.retarget.arkit import (ARKIT_INDEX, ARKIT_NAMES, EYE_LOOK_RADIANS, JAW_OPEN_RADIANS, JAW_SIDE_RADIANS,
                                    POSE_CHANNELS, TABLE, UNDRIVEN, UNMAPPED, arkit_weights, motion_to_arkit,
                                    split_side)


def test_table_covers_all_52_names_or_says_why_not():
    assert len(ARKIT_NAMES) == 52 == len(set(ARKIT_NAMES)) and set(TABLE) == set(ARKIT_NAMES)
    assert [n for n in ARKIT_NAMES if not TABLE[n]] == list(UNDRIVEN) == ["tongueOut"]
    used = {ch for row in TABLE.values() for ch, _ in row}
    assert used <= set(EXPRESSION_NAMES) | set(POSE_CHANNELS)
    assert set(EXPRESSION_NAMES) - used == set(UNMAPPED)
    assert all(0 < gain <= 1 for row in TABLE.values() for _, gain in row)


@pytest.mark.parametrize("ours, theirs", [
    ("blink_L", "eyeBlinkLeft"), ("blink_R", "eyeBlinkRight"), ("smile_L", "mouthSmileLeft"),
    ("lip_corner_depress_R", "mouthFrownRight"), ("lip_press_L", "mouthPressLeft"), ("pucker", "mouthPucker"),
    ("funnel", "mouthFunnel"), ("brow_lower_L", "browDownLeft"), ("cheek_puff", "cheekPuff"),
])
def test_one_to_one_rows(ours, theirs):
    assert TABLE[theirs][0] == (ours, 1.0)
    expression = np.zeros((1, len(EXPRESSION_NAMES)))
    expression[0, EXPRESSION_INDEX[ours]] = 0.7
    w = arkit_weights(expression, np.zeros((1, 3)), np.zeros((1, 6)), EXPRESSION_NAMES)
    assert w[0, ARKIT_INDEX[theirs]] == pytest.approx(0.7)
    _, side = split_side(theirs)
    if side:       # the other side stays at rest
        other = theirs[: -len(side)] + ("Right" if side == "Left" else "Left")
        assert w[0, ARKIT_INDEX[other]] == 0.0


def _pose(jaw=(0, 0, 0), left=(0, 0, 0), right=(0, 0, 0)):
    e = np.zeros((1, len(EXPRESSION_NAMES)))
    return arkit_weights(e, np.array([jaw], float), np.array([list(left) + list(right)], float), EXPRESSION_NAMES)[0]


def test_jaw_and_eye_rotations():
    w = _pose(jaw=(JAW_OPEN_RADIANS / 2, 0, 0))
    assert w[ARKIT_INDEX["jawOpen"]] == pytest.approx(0.5) and w.sum() == pytest.approx(0.5)
    assert _pose(jaw=(2.0, 0, 0))[ARKIT_INDEX["jawOpen"]] == 1.0                 # clamped to the key's range
    assert _pose(jaw=(-0.2, 0, 0)).sum() == 0.0                                  # a jaw closed past rest: nothing
    assert _pose(jaw=(0, JAW_SIDE_RADIANS, 0))[ARKIT_INDEX["jawLeft"]] == pytest.approx(1.0)   # chin toward +X
    assert _pose(jaw=(0, -JAW_SIDE_RADIANS, 0))[ARKIT_INDEX["jawRight"]] == pytest.approx(1.0)
    a = EYE_LOOK_RADIANS
    w = _pose(left=(a, 0, 0), right=(-a, 0, 0))                                  # +X turns the gaze down
    assert w[ARKIT_INDEX["eyeLookDownLeft"]] == pytest.approx(1)
    assert w[ARKIT_INDEX["eyeLookUpRight"]] == pytest.approx(1)
    w = _pose(left=(0, a, 0), right=(0, a, 0))                                   # both look toward the character's left
    assert w[ARKIT_INDEX["eyeLookOutLeft"]] == pytest.approx(1) and w[ARKIT_INDEX["eyeLookInRight"]] == pytest.approx(1)
    assert w.sum() == pytest.approx(2.0)


def test_mouth_close_never_exceeds_jaw_open():
    expression = np.zeros((3, len(EXPRESSION_NAMES)))
    expression[:, EXPRESSION_INDEX["jaw_open_lips_closed"]] = 1.0
    jaw = np.array([[0.0, 0, 0], [0.02, 0, 0], [0.4, 0, 0]])
    w = arkit_weights(expression, jaw, np.zeros((3, 6)), EXPRESSION_NAMES)
    close, opened = w[:, ARKIT_INDEX["mouthClose"]], w[:, ARKIT_INDEX["jawOpen"]]
    assert close[0] == 0.0 and close[1] == pytest.approx(opened[1]) and 0 < close[2] < opened[2]


def test_motion_file_arrays_map_frame_by_frame():
    motion = Motion.zeros(5, len(EXPRESSION_NAMES), fps=25.0)
    motion.expression[:, EXPRESSION_INDEX["smile_R"]] = np.linspace(0, 1, 5)
    w = motion_to_arkit(motion)
    assert w.shape == (5, 52)
    np.testing.assert_allclose(w[:, ARKIT_INDEX["mouthSmileRight"]], np.linspace(0, 1, 5), atol=1e-6)
    with pytest.raises(AviTalkError, match="eye_pose"):
        arkit_weights(motion.expression, motion.jaw_pose, np.zeros((5, 3)), EXPRESSION_NAMES)
    with pytest.raises(AviTalkError, match="named components"):
        arkit_weights(np.zeros((5, 60)), motion.jaw_pose, motion.eye_pose, EXPRESSION_NAMES)


def test_retarget_package_needs_only_numpy_and_the_blender_safe_backend():
    """Blender's Python imports backend.retarget: no torch, no bpy, no scipy at module level or inside functions."""
    import ast
    from pathlib import Path

    allowed = ("numpy", "backend.errors", "backend.files", "backend.motion", "backend.flame", "backend.head.components",
               "backend.retarget")
    folder = Path(__file__).resolve().parents[1] / "backend" / "retarget"
    found = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = "backend.retarget" if node.level == 1 else "backend" if node.level == 2 else ""
                module = ".".join(p for p in (base, node.module) if p)
                found.update(f"{module}.{a.name}" if node.level else module for a in node.names)
    import sys
    third_party = {n for n in found if n.split(".")[0] not in sys.stdlib_module_names}
    bad = {n for n in third_party if not any(n == a or n.startswith(a + ".") for a in allowed)}
    # the check's command-line entry builds our default head to compare with; the FLAME fit uses scipy's
    # KD-tree where the interpreter has it (the backend's), Blender's own (mathutils) in Blender's Python, and a
    # numpy search where neither is there; each optional import is guarded
    assert bad == {"backend.head.default_head_path", "scipy.spatial", "mathutils.kdtree"}, bad
