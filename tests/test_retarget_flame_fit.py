"""Our motion on FLAME-format heads of other topologies, through the fitted map (numpy only).

The heads are made from ours (``test_retarget_flame_heads.decimated_head``): another vertex
count and triangulation, no teeth or mouth interior, and an expression basis
that is a random rotation of our shapes mixed with extra fields. The map
knows none of that; it must find the coefficients by geometry alone.
"""

import numpy as np
import pytest

from backend.errors import AviTalkError
from backend.flame.lbs_numpy import flame_forward
from backend.flame.pickle_io import FlameFileError, load_flame, save_flame
from backend.flame.synthetic import make_tiny_model
from backend.head import default_head_path
from backend.head.components import EXPRESSION_INDEX
from backend.head.visemes import articulation
from backend.motion import Motion
from backend.phones import Segment
from backend.retarget import flame_fit
from backend.retarget.flame_fit import FlameFitError, FlameMap, fit_flame_map, flame_map_for_file

from test_retarget_flame_heads import decimated_head

FPS = 25.0
PHONES = [Segment("SIL", 0.0, 0.2), Segment("M", 0.2, 0.32), Segment("AA", 0.32, 0.6), Segment("P", 0.6, 0.7),
          Segment("AA", 0.7, 1.0), Segment("B", 1.0, 1.1), Segment("IY", 1.1, 1.4), Segment("SIL", 1.4, 1.6)]
CLOSURES = [p for p in PHONES if p.label in ("M", "P", "B")]
VOWELS = [p for p in PHONES if p.label in ("AA", "IY")]
SCALE = 1.08


def _centre(p):
    return int(round((p.start + p.end) / 2 * FPS))


@pytest.fixture(scope="module")
def ours():
    return load_flame(default_head_path())


@pytest.fixture(scope="module")
def motion():
    """SIL M AA P AA B IY SIL on our head, with a smile rising and the inner brows raised mid-way."""
    n = 40
    channels, _ = articulation(PHONES, n, FPS)
    expression = np.zeros((n, 100))
    for name, value in channels.items():
        if name != "jaw":
            expression[:, EXPRESSION_INDEX[name]] = value
    t = np.arange(n) / n
    for side in "LR":
        expression[:, EXPRESSION_INDEX["smile_" + side]] += 0.6 * np.sin(np.pi * t)
        expression[:, EXPRESSION_INDEX["brow_inner_raise_" + side]] = 0.8 * np.sin(2 * np.pi * t) ** 2
    jaw = np.zeros((n, 3))
    jaw[:, 0] = channels["jaw"]
    zeros = np.zeros((n, 3))
    return Motion(fps=FPS, expression=expression, jaw_pose=jaw, neck_pose=zeros, global_pose=zeros,
                  eye_pose=np.zeros((n, 6)))


@pytest.fixture(scope="module")
def decimated(ours):
    """Some of our vertices, retriangulated, scaled by 1.08 and moved: its map and what is known about it."""
    head, truth = decimated_head(ours, cell=3.5e-3, seed=2, keep_vertices=True, scale=SCALE,
                                 shift=(0.002, -0.01, 0.005))
    return head, truth, fit_flame_map(head, ours)


@pytest.fixture(scope="module")
def remeshed(ours):
    """One vertex per 3.5 mm cell at the mean of ours in it: a smoother head of another resolution."""
    head, truth = decimated_head(ours, cell=3.5e-3, seed=1)
    return head, truth, fit_flame_map(head, ours)


def _lips(ours):
    """Our central third of the inner lip contour: upper and lower vertex indices."""
    groups = ours.extras["avitalk_vertex_groups"]
    up, lo = groups["upper_lip"], groups["lower_lip"]
    x = ours.v_template[up, 0]
    central = np.abs(x - (x.max() + x.min()) / 2) <= (x.max() - x.min()) / 6
    return up[central], lo[central]


def _gap_mm(verts, upper, lower):
    return 1000.0 * (verts[:, upper, 1].mean(axis=1) - verts[:, lower, 1].mean(axis=1))


def _posed(model, motion):
    return flame_forward(model, expression=motion.expression, jaw_pose=motion.jaw_pose)[0]


def _frames():
    return [_centre(p) for p in CLOSURES], [_centre(p) for p in VOWELS]


@pytest.mark.parametrize("per_frame", [False, True])
def test_lip_gap_matches_ours_on_a_decimated_head(ours, motion, decimated, per_frame):
    head, truth, fitted = decimated
    up, lo = _lips(ours)
    cu, cl = np.unique(truth.cluster[up]), np.unique(truth.cluster[lo])         # the head's own lip vertices
    expected = SCALE * _gap_mm(_posed(ours, motion), truth.picked[cu], truth.picked[cl])
    gap = _gap_mm(_posed(head, fitted.apply(motion, per_frame=per_frame)), cu, cl)
    closures, vowels = _frames()
    for f in closures + vowels:
        assert abs(gap[f] - expected[f]) < 1.0, (f, gap[f], expected[f])
    assert max(gap[closures]) < 3.0 and min(gap[vowels]) > 10.0                    # the lips do close and open


def test_copying_coefficients_fails_the_same_check(ours, motion, decimated):
    """The check above can fail: our coefficients read as the head's own mean nothing there."""
    head, truth, _ = decimated
    up, lo = _lips(ours)
    cu, cl = np.unique(truth.cluster[up]), np.unique(truth.cluster[lo])
    expected = SCALE * _gap_mm(_posed(ours, motion), truth.picked[cu], truth.picked[cl])
    gap = _gap_mm(_posed(head, motion), cu, cl)
    closures, vowels = _frames()
    assert max(abs(gap[f] - expected[f]) for f in closures + vowels) > 1.0


@pytest.mark.parametrize("per_frame", [False, True])
def test_remeshed_head_follows_lips_brows_and_corners(ours, motion, remeshed, per_frame):
    head, truth, fitted = remeshed
    ours_v = _posed(ours, motion)
    head_v = _posed(head, fitted.apply(motion, per_frame=per_frame))
    up, lo = _lips(ours)
    cu, cl = truth.cluster[up], truth.cluster[lo]
    # Cell means sit apart from our contour, so the gap is compared as its change from rest.
    want = _gap_mm(ours_v, up, lo)
    got = _gap_mm(head_v, cu, cl)
    closures, vowels = _frames()
    for f in closures + vowels:
        assert abs((got[f] - got[0]) - (want[f] - want[0])) < 1.0, f
    brow = int(np.argmax(np.linalg.norm(ours.exprdirs[:, :, EXPRESSION_INDEX["brow_inner_raise_L"]], axis=1)))
    groups = ours.extras["avitalk_vertex_groups"]
    for vertex in (groups["upper_lip"][0], groups["upper_lip"][-1], brow):         # mouth corners, inner brow
        mine = 1000.0 * (ours_v[:, vertex] - ours_v[0, vertex])
        theirs = 1000.0 * (head_v[:, truth.cluster[vertex]] - head_v[0, truth.cluster[vertex]])
        assert np.abs(mine).max() > 4.0                                              # it does move
        assert np.abs(theirs - mine).max() < 0.5


def test_turned_head_gets_our_fields_turned(ours, motion):
    """A head turned 10 degrees: smiles and brow raises arrive turned with it (no jaw: its axis turns too)."""
    turn = np.radians(10.0)
    head, truth = decimated_head(ours, cell=3.5e-3, seed=5, keep_vertices=True, turn=turn)
    fitted = fit_flame_map(head, ours)
    still = Motion(fps=FPS, expression=motion.expression, jaw_pose=np.zeros_like(motion.jaw_pose),
                   neck_pose=motion.neck_pose, global_pose=motion.global_pose, eye_pose=motion.eye_pose)
    ours_v = _posed(ours, still)
    head_v = _posed(head, fitted.apply(still))
    c, s = np.cos(turn), np.sin(turn)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    brow = int(np.argmax(np.linalg.norm(ours.exprdirs[:, :, EXPRESSION_INDEX["brow_inner_raise_L"]], axis=1)))
    groups = ours.extras["avitalk_vertex_groups"]
    for vertex in (groups["upper_lip"][0], groups["upper_lip"][-1], brow):
        target = truth.cluster[vertex]
        mine = 1000.0 * (ours_v[:, truth.picked[target]] - ours_v[0, truth.picked[target]]) @ rot.T
        theirs = 1000.0 * (head_v[:, target] - head_v[0, target])
        assert np.abs(mine).max() > 4.0 and np.abs(theirs - mine).max() < 0.5


def test_per_frame_solve_keeps_coefficients_in_range(decimated, motion):
    _, _, fitted = decimated
    wild = Motion(fps=FPS, expression=motion.expression * 40.0, jaw_pose=motion.jaw_pose * 10.0,
                  neck_pose=motion.neck_pose, global_pose=motion.global_pose, eye_pose=motion.eye_pose)
    assert np.abs(fitted.apply(wild).expression).max() > flame_fit.COEFF_BOUND      # the plain map has no bounds
    solved = fitted.apply(wild, per_frame=True)
    assert np.abs(solved.expression).max() <= flame_fit.COEFF_BOUND + 1e-5
    low, high = flame_fit.JAW_RANGE
    assert low - 1e-5 <= solved.jaw_pose[:, 0].min() and solved.jaw_pose[:, 0].max() <= high + 1e-5


def test_brute_force_and_blenders_tree_match_scipys(monkeypatch):
    import sys

    rng = np.random.default_rng(0)
    points, targets = rng.normal(size=(700, 3)), rng.normal(size=(300, 3))
    idx_tree, d2_tree = flame_fit._knn_scipy(points, targets, 4)
    monkeypatch.setitem(sys.modules, "scipy.spatial", None)                          # as in Blender's Python
    monkeypatch.setitem(sys.modules, "mathutils.kdtree", None)                       # and outside Blender
    searches = [flame_fit._knn(points, targets, 4)]
    monkeypatch.delitem(sys.modules, "mathutils.kdtree")
    try:
        import bpy  # noqa: F401  (the bpy module brings Blender's mathutils)
        import mathutils.kdtree  # noqa: F401
    except ImportError:
        pass
    else:
        assert flame_fit._knn_blender(points, targets, 4) is not None
        searches.append(flame_fit._knn(points, targets, 4))
    for idx, d2 in searches:
        order = np.argsort(d2, axis=1)
        np.testing.assert_array_equal(np.take_along_axis(idx, order, axis=1), idx_tree)
        np.testing.assert_allclose(np.take_along_axis(d2, order, axis=1), d2_tree, atol=1e-5)   # Blender's: float32


def test_fit_reports_errors_and_keeps_the_jaw(decimated):
    _, _, fitted = decimated
    assert fitted.channels[-1] == "jaw_open" and len(fitted.channels) == 53
    assert fitted.matrix.shape == (53, 101)
    assert set(fitted.fit_error_mm) == set(fitted.channels)
    for name in ("smile_L", "lip_press_L", "jaw_open_lips_closed", "pucker", "jaw_open"):
        rms, worst = fitted.fit_error_mm[name]
        assert 0.0 <= rms < 0.2 and rms <= worst, name
    assert abs(fitted.matrix[-1, -1] - 1.0) < 0.05                                   # the same jaw, the same angle


def test_map_round_trips_through_npz(decimated, motion, tmp_path):
    _, _, fitted = decimated
    fitted.save(tmp_path / "map.npz")
    back = FlameMap.load(tmp_path / "map.npz")
    assert back.channels == fitted.channels and back.fit_error_mm == fitted.fit_error_mm
    np.testing.assert_allclose(back.apply(motion).expression, fitted.apply(motion).expression)


def test_map_is_cached_by_the_file_hash(ours, tmp_path, monkeypatch):
    head, _ = decimated_head(ours, cell=6e-3, seed=3)
    raw = head.to_raw()
    n = head.n_verts
    raw["shapedirs"] = np.concatenate([np.zeros((n, 3, 300), np.float32), head.exprdirs.astype(np.float32)], axis=2)
    save_flame(tmp_path / "user_flame.pkl", raw)
    first = flame_map_for_file(tmp_path / "user_flame.pkl", cache_dir=tmp_path / "maps")
    assert len(list((tmp_path / "maps").glob("*.npz"))) == 1
    monkeypatch.setattr(flame_fit, "fit_flame_map", lambda *a, **k: pytest.fail("refitted a cached map"))
    again = flame_map_for_file(tmp_path / "user_flame.pkl", cache_dir=tmp_path / "maps")
    np.testing.assert_array_equal(again.matrix, first.matrix)
    assert again.digest == first.digest != ""


def test_file_with_a_missing_key_is_named(tmp_path):
    raw = make_tiny_model(n_verts=60, n_expr=10)
    del raw["posedirs"]
    import pickle

    (tmp_path / "broken.pkl").write_bytes(pickle.dumps(raw, protocol=2))
    with pytest.raises(FlameFileError, match="posedirs"):
        flame_map_for_file(tmp_path / "broken.pkl", cache_dir=tmp_path / "maps")


def test_no_expression_basis_is_refused(ours):
    from backend.flame.pickle_io import model_from_raw

    model = model_from_raw(make_tiny_model(n_verts=60, n_shape=300, n_expr=0))
    with pytest.raises(FlameFileError, match="no expression basis"):
        fit_flame_map(model, ours)


def test_a_head_that_is_not_a_face_is_refused(ours):
    from backend.flame.pickle_io import model_from_raw

    model = model_from_raw(make_tiny_model(n_verts=1200, n_shape=300, n_expr=20))
    with pytest.raises(FlameFitError, match="does not match a head"):
        fit_flame_map(model, ours)
    assert issubclass(FlameFitError, AviTalkError)


def test_too_few_vertices_are_refused_before_the_fit(ours):
    from backend.flame.pickle_io import model_from_raw

    model = model_from_raw(make_tiny_model(n_verts=400, n_shape=300, n_expr=20))
    with pytest.raises(FlameFitError, match="has 400 vertices, too few .* needs 1,000 or more"):
        fit_flame_map(model, ours)


def test_map_round_trips_through_plain_lists(decimated, motion):
    _, _, fitted = decimated
    back = FlameMap.from_dict(fitted.as_dict())
    assert back.channels == fitted.channels
    np.testing.assert_allclose([back.fit_error_mm[c] for c in back.channels],
                               [fitted.fit_error_mm[c] for c in fitted.channels])
    np.testing.assert_allclose(back.apply(motion, per_frame=True).expression,
                               fitted.apply(motion, per_frame=True).expression)
    assert "worst" in fitted.summary() and "mm RMS" in fitted.summary()
    broken = fitted.as_dict()
    broken["matrix"] = broken["matrix"][:-1]
    with pytest.raises(FlameFitError, match="unreadable"):
        FlameMap.from_dict(broken)
