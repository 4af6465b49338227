"""Post-processing controls of the Blender panel on packed motion arrays (numpy only)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.errors import RequestError
from backend.head.components import EXPRESSION_INDEX, blink_indices, lower_face_indices, upper_face_indices
from backend.motion import motion_slices
from backend.refine.controls import MotionControls, apply_controls, gaussian_smooth

E = 100
C = E + 15


def random_motion(T=40, seed=0):
    return np.random.default_rng(seed).normal(size=(T, C)).astype(np.float32)


def test_face_regions_split_the_named_components():
    upper, lower = upper_face_indices(E), lower_face_indices(E)
    assert EXPRESSION_INDEX["brow_lower_L"] in upper and EXPRESSION_INDEX["blink_R"] in upper
    assert EXPRESSION_INDEX["pucker"] in lower and EXPRESSION_INDEX["smile_L"] in lower
    assert not set(upper) & set(lower)
    assert sorted(upper + lower) == list(range(len(EXPRESSION_INDEX)))
    assert blink_indices(E) == [EXPRESSION_INDEX["blink_L"], EXPRESSION_INDEX["blink_R"]]
    assert all(i < 10 for i in lower_face_indices(10))


def test_defaults_change_nothing():
    motion = random_motion()
    np.testing.assert_array_equal(apply_controls(motion, MotionControls()), motion)


def test_intensity_and_region_scales():
    motion = random_motion()
    parts = motion_slices(E)
    out = apply_controls(motion, MotionControls(intensity=0.5, upper_face=2.0, lower_face=0.0))
    up, low = upper_face_indices(E), lower_face_indices(E)
    np.testing.assert_allclose(out[:, up], motion[:, up], rtol=1e-6)          # 0.5 * 2.0
    np.testing.assert_array_equal(out[:, low], 0.0)
    np.testing.assert_array_equal(out[:, parts["jaw_pose"]], 0.0)            # the jaw follows the lower face
    np.testing.assert_allclose(out[:, 60:E], 0.5 * motion[:, 60:E], rtol=1e-6)  # unnamed slots: overall only
    np.testing.assert_array_equal(out[:, parts["global_pose"]], motion[:, parts["global_pose"]])
    with pytest.raises(RequestError, match="between 0 and 3"):
        MotionControls(intensity=-1.0)


def test_head_motion_and_blinks_off():
    motion = random_motion()
    parts = motion_slices(E)
    out = apply_controls(motion, MotionControls(head_motion=False, blinks=False))
    np.testing.assert_array_equal(out[:, parts["neck_pose"]], 0.0)
    np.testing.assert_array_equal(out[:, parts["global_pose"]], 0.0)
    np.testing.assert_array_equal(out[:, blink_indices(E)], 0.0)
    np.testing.assert_array_equal(out[:, parts["eye_pose"]], motion[:, parts["eye_pose"]])
    np.testing.assert_array_equal(out[:, 2:E], motion[:, 2:E])


def test_smoothing_reduces_jitter_and_keeps_constants():
    motion = random_motion(T=200)
    smooth = apply_controls(motion, MotionControls(smoothing=2.0))
    assert np.abs(np.diff(smooth, axis=0)).mean() < 0.3 * np.abs(np.diff(motion, axis=0)).mean()
    const = np.full((30, 4), 1.5, dtype=np.float32)
    np.testing.assert_allclose(gaussian_smooth(const, 3.0, axis=0), const, rtol=1e-6)
    batched = np.stack([motion, motion[::-1]])
    np.testing.assert_allclose(apply_controls(batched, MotionControls(smoothing=2.0))[0], smooth, rtol=1e-5, atol=1e-6)


def test_controls_module_does_not_import_torch():
    code = "import sys; import backend.refine.controls; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "False"
