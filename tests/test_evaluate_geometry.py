"""Metric geometry: the reduced skinning is exact, the lip gap reads the paired contour."""

import numpy as np
import pytest

from backend.evaluate.geometry import CLOSED_GAP_MM, GeometryError, HeadGeometry
from backend.flame.lbs_numpy import flame_forward
from backend.flame.pickle_io import model_from_raw
from backend.flame.synthetic import make_tiny_model
from backend.motion import Motion

UPPER, LOWER, FACE = [3, 7, 11, 15, 19], [4, 8, 12, 16, 20], [30, 31, 32, 40]


def tiny_model(**groups):
    raw = make_tiny_model(n_verts=60, n_expr=8, seed=1)
    raw["avitalk_vertex_groups"] = {"upper_lip": np.array(UPPER), "lower_lip": np.array(LOWER), "upper_face": np.array(FACE),
                                    **groups}
    return model_from_raw(raw)


def random_motion(n_frames=6, n_expr=8, seed=0):
    rng = np.random.default_rng(seed)
    return Motion(fps=25.0, expression=rng.normal(size=(n_frames, n_expr)), jaw_pose=rng.normal(scale=0.2, size=(n_frames, 3)),
                  neck_pose=rng.normal(scale=0.2, size=(n_frames, 3)), global_pose=rng.normal(scale=0.2, size=(n_frames, 3)),
                  eye_pose=rng.normal(scale=0.2, size=(n_frames, 6)))


def test_reduced_skinning_matches_the_full_model_without_head_pose():
    model = tiny_model()
    geo = HeadGeometry.from_model(model)
    motion = random_motion()
    full, _ = flame_forward(model, expression=motion.expression, jaw_pose=motion.jaw_pose, eye_pose=motion.eye_pose)
    verts = geo.vertices(motion)
    np.testing.assert_allclose(geo.group(verts, "upper_face"), full[:, FACE] * 1000, atol=1e-9)
    np.testing.assert_allclose(geo.group(verts, "lips"), full[:, UPPER + LOWER] * 1000, atol=1e-9)
    # head pose does not move the metric vertices
    turned = random_motion(seed=0)
    turned.global_pose[:] = 0.5
    np.testing.assert_allclose(geo.vertices(turned), verts)


def test_lip_gap_is_mean_height_over_the_central_third():
    model = tiny_model()
    geo = HeadGeometry.from_model(model)
    rest = model.v_template * 1000
    x = rest[UPPER, 0]
    central = np.abs(x - (x.max() + x.min()) / 2) <= (x.max() - x.min()) / 6
    expected = (rest[UPPER, 1] - rest[LOWER, 1])[central].mean()
    assert geo.lip_gap(geo.vertices(Motion.zeros(2, 8, 25.0))) == pytest.approx([expected, expected])
    assert geo.mouth_width_mm == pytest.approx(x.max() - x.min())
    assert geo.closed_gap_mm == CLOSED_GAP_MM
    half = HeadGeometry.from_model(model, reference_width_mm=2 * geo.mouth_width_mm)
    assert half.closed_gap_mm == pytest.approx(CLOSED_GAP_MM / 2)


def test_geometry_needs_paired_lip_groups():
    with pytest.raises(GeometryError, match="pair"):
        HeadGeometry.from_model(tiny_model(lower_lip=np.array([4, 8])))
    with pytest.raises(GeometryError, match="outside"):
        HeadGeometry.from_model(tiny_model(upper_face=np.array([999])))
    raw = make_tiny_model(n_verts=60, n_expr=8)
    with pytest.raises(GeometryError, match="vertex_groups"):
        HeadGeometry.from_model(model_from_raw(raw))
