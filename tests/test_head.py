"""The default head: a valid FLAME file whose components do what their names say."""

import hashlib

import numpy as np
import pytest

from backend.flame.lbs_numpy import flame_forward
from backend.flame.pickle_io import load_flame, model_from_raw
from backend.head import default_head_path
from backend.head.build import build_head
from backend.head.components import EXPRESSION_INDEX, EXPRESSION_NAMES, N_EXPRESSION, VERTEX_GROUPS


@pytest.fixture(scope="module")
def raw():
    return build_head()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_flame(default_head_path(tmp_path_factory.mktemp("cache")))


def _pose(model, expression=None, jaw=0.0):
    e = np.zeros(model.n_expr)
    for name, w in (expression or {}).items():
        e[EXPRESSION_INDEX[name]] = w
    verts, joints = flame_forward(model, expression=e, jaw_pose=(jaw, 0.0, 0.0))
    return verts[0] * 1000.0, joints[0] * 1000.0  # mm


def _central_gap(model, verts):
    groups = model.extras["avitalk_vertex_groups"]
    up, lo = groups["upper_lip"], groups["lower_lip"]
    x = model.v_template[up, 0]
    central = np.abs(x - (x.max() + x.min()) / 2) <= (x.max() - x.min()) / 6
    return float((verts[up[central], 1] - verts[lo[central], 1]).mean())


def test_file_is_a_valid_flame_model(model):
    v = model.n_verts
    assert 5000 <= v <= 15000
    assert model.shapedirs.shape == (v, 3, 300) and model.exprdirs.shape == (v, 3, N_EXPRESSION)
    assert model.posedirs.shape == (v, 3, 36) and model.J_regressor.shape == (5, v)
    np.testing.assert_allclose(model.weights.sum(axis=1), 1.0, atol=1e-9)
    assert model.weights.min() >= 0.0
    assert list(model.parents) == [-1, 0, 1, 1, 1]
    assert list(model.extras["avitalk_expression_names"][: len(EXPRESSION_NAMES)]) == list(EXPRESSION_NAMES)
    assert set(model.extras["avitalk_vertex_groups"]) == set(VERTEX_GROUPS)
    assert len(model.extras["avitalk_face_parts"]) == len(model.faces)
    width = np.ptp(model.v_template[:, 0])
    assert 0.14 < width < 0.19  # metres, adult head
    np.testing.assert_array_equal(model.exprdirs[:, :, len(EXPRESSION_NAMES):], 0.0)


def test_cache_reuses_the_file(tmp_path):
    first = default_head_path(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert default_head_path(tmp_path) == first and first.stat().st_mtime_ns == stamp


@pytest.fixture
def tiny_build(monkeypatch):
    """build_head replaced by a tiny model, counting the builds."""
    import backend.head.build
    from backend.flame.synthetic import make_tiny_model

    builds = []
    build = lambda: builds.append(1) or make_tiny_model(n_verts=12, seed=0)  # noqa: E731
    monkeypatch.setattr(backend.head.build, "build_head", build)
    return builds


def test_a_file_planted_in_the_temp_folder_is_never_used(tmp_path, monkeypatch, tiny_build):
    import tempfile

    shared = tmp_path / "tmp"
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    name = default_head_path(tmp_path / "probe").name
    (shared / "avitalk").mkdir(parents=True)
    (shared / "avitalk" / name).write_bytes(b"planted")
    path = default_head_path(tmp_path / "cache")
    assert path.parent == tmp_path / "cache" and load_flame(path).n_verts == 12


def test_the_cache_is_verified_and_rebuilt_on_mismatch(tmp_path, tiny_build):
    path = default_head_path(tmp_path)
    good = path.read_bytes()
    assert path.with_name(path.name + ".sha256").read_text().strip() == hashlib.sha256(good).hexdigest()
    assert len(tiny_build) == 1

    path.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])  # tampered: rebuilt, never used
    assert default_head_path(tmp_path) == path and path.read_bytes() == good and len(tiny_build) == 2
    path.with_name(path.name + ".sha256").unlink()  # no checksum: rebuilt
    assert default_head_path(tmp_path) == path and len(tiny_build) == 3
    assert default_head_path(tmp_path) == path and len(tiny_build) == 3


def test_cache_folder_is_the_users_own(tmp_path, monkeypatch):
    from backend.files import cache_folder

    monkeypatch.setenv("AVITALK_CACHE", str(tmp_path / "mine"))
    assert cache_folder() == tmp_path / "mine"
    monkeypatch.delenv("AVITALK_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_folder() == tmp_path / "home" / ".cache" / "avitalk"


def test_an_unwritable_cache_folder_is_a_clear_error(tmp_path, tiny_build):
    from backend.errors import AviTalkError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(AviTalkError, match="cannot write the default head to .*AVITALK_CACHE"):
        default_head_path(blocker / "cache")


def test_build_is_deterministic(raw):
    again = build_head(seed=0)
    for key in ("v_template", "f", "shapedirs", "J_regressor", "weights"):
        np.testing.assert_array_equal(raw[key], again[key])


def test_lips_rest_slightly_apart_and_the_jaw_opens_them(model):
    rest, _ = _pose(model)
    assert 1.2 < _central_gap(model, rest) < 2.0
    opened, _ = _pose(model, jaw=0.25)
    assert _central_gap(model, opened) > 10.0
    chin = model.weights[:, 2] > 0.99
    assert (opened[chin, 1] < rest[chin, 1] - 1.0).mean() > 0.9  # the chin moves down


def test_bilabial_settings_close_the_lips(model):
    pressed, _ = _pose(model, {"lip_press_L": 1.0, "lip_press_R": 1.0})
    assert _central_gap(model, pressed) <= 0.3
    teacher, _ = _pose(model, {"lip_press_L": 0.55, "lip_press_R": 0.55, "jaw_open_lips_closed": 0.3}, jaw=0.03)
    assert _central_gap(model, teacher) <= 0.3


def test_blink_closes_the_lids_over_the_eyeball(model, raw):
    from backend.head.mesh import build_mesh

    mesh = build_mesh()
    rest, _ = _pose(model)
    closed, _ = _pose(model, {"blink_L": 1.0})
    skin = mesh.skin
    slit = skin.eyes[0]
    upper = [skin.grid[slit.row, c] for c in slit.interior()]
    lower = [skin.grid_lower[slit.row, c] for c in slit.interior()]
    assert np.ptp(rest[upper, 1] - rest[lower, 1]) > 5.0  # open at rest
    np.testing.assert_allclose(closed[upper], closed[lower], atol=1e-6)
    centre = np.asarray(mesh.anatomy.eye_center)
    lid = np.linalg.norm(closed[upper] - centre, axis=1)
    assert (lid > mesh.anatomy.eye_radius).all()
    right = model.extras["avitalk_vertex_groups"]["right_eye"]
    np.testing.assert_array_equal(closed[right], rest[right])


def test_expressions_do_not_move_joints(model):
    moved = np.einsum("jv,vkl->jkl", model.J_regressor, model.exprdirs)
    assert np.abs(moved).max() < 1e-12
    _, joints = _pose(model)
    np.testing.assert_allclose(joints[2], (0.0, -4.0, 6.0), atol=1e-6)


def test_left_and_right_components_mirror(model):
    v = model.v_template
    rng = np.random.default_rng(0)
    sample = rng.choice(len(v), 400, replace=False)
    mirror = np.argmin(np.linalg.norm(v[sample, None] * (-1, 1, 1) - v[None], axis=2), axis=1)
    assert np.linalg.norm(v[mirror] - v[sample] * (-1, 1, 1), axis=1).max() < 1e-9
    flip = np.array([-1.0, 1.0, 1.0])
    for left in [n for n in EXPRESSION_NAMES if n.endswith("_L")] + ["mouth_left"]:
        right = left[:-2] + "_R" if left.endswith("_L") else "mouth_right"
        a = model.exprdirs[sample, :, EXPRESSION_INDEX[left]] * flip
        b = model.exprdirs[mirror, :, EXPRESSION_INDEX[right]]
        np.testing.assert_allclose(a, b, atol=1e-9, err_msg=left)


def test_smile_lifts_the_mouth_corners(model):
    rest, _ = _pose(model)
    smile, _ = _pose(model, {"smile_L": 1.0, "smile_R": 1.0})
    upper = model.extras["avitalk_vertex_groups"]["upper_lip"]
    corners = upper[[0, -1]]
    lift = smile[corners, 1] - rest[corners, 1]
    assert (lift > 6.0).all() and (lift < 12.0).all()


def test_jaw_corrective_turns_the_blend_zone_like_a_partial_hinge(model):
    # At 0.3 rad, a cheek vertex with jaw weight w sits where a rotation by w * 0.3 about the hinge puts it.
    w = model.weights[:, 2]
    blend = np.flatnonzero((w > 0.2) & (w < 0.8))
    assert len(blend) > 100
    still = np.flatnonzero((w < 1e-9) | (w > 1 - 1e-9))
    assert np.abs(model.posedirs[still]).max() == 0.0
    verts, _ = _pose(model, jaw=0.3)
    hinge = (model.J_regressor @ model.v_template)[2] * 1000.0
    angle = w[blend] * 0.3
    p = model.v_template[blend] * 1000.0 - hinge
    c, s = np.cos(angle), np.sin(angle)
    expected = np.stack([p[:, 0], c * p[:, 1] - s * p[:, 2], s * p[:, 1] + c * p[:, 2]], axis=1) + hinge
    assert np.abs(verts[blend] - expected).max() < 1e-6
