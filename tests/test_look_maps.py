"""The default head's shader maps: round iris on the ball, hairs on the brows, lashes on the lid margin,
lips' red on the lips, gums at the roots of the teeth."""

import numpy as np
import pytest

from avitalk_blender.core.look_maps import look_maps
from backend.flame.pickle_io import load_flame
from backend.head import default_head_path


@pytest.fixture(scope="module")
def head():
    model = load_flame(default_head_path())
    names = list(model.extras["avitalk_part_names"])
    parts = np.asarray(model.extras["avitalk_face_parts"])
    eyes = (model.J_regressor @ model.v_template)[[3, 4]]
    maps = look_maps(model.v_template, model.faces, parts, names, eyes)
    return model, names, parts, eyes, maps


def _part_vertices(head, part):
    model, names, parts, _, _ = head
    return np.unique(model.faces[parts == names.index(part)])


def test_the_iris_edge_is_the_unit_circle(head):
    eye = head[4].eye
    r = np.hypot(eye[:, 0], eye[:, 1])
    pupil, iris, white = (_part_vertices(head, p) for p in ("pupil", "iris", "eye_white"))
    assert r[pupil].max() < 0.45
    assert r[iris].max() == pytest.approx(1.0, abs=0.12)
    front_white = np.setdiff1d(white, iris)
    assert r[front_white].min() > 0.95
    skin = _part_vertices(head, "skin")
    assert np.all(r[np.setdiff1d(skin, np.concatenate([white, iris, pupil]))] >= 4.0)


def test_brows_fade_out_and_stay_on_the_brows(head):
    model, _, _, _, maps = head
    brow = maps.skin[:, 0]
    assert brow[_part_vertices(head, "brows")].mean() > 0.6
    mm = model.v_template * 1000.0
    far = (mm[:, 1] < 10.0) | (mm[:, 1] > 50.0) | (np.abs(mm[:, 0]) < 8.0)
    assert brow[far].max() < 0.05
    assert 0.05 < np.median(brow[(brow > 0.01) & (brow < 0.99)]) < 0.95  # a soft edge, not a step


def test_the_lash_line_hugs_the_eyeballs(head):
    model, _, _, eyes, maps = head
    lash = maps.skin[:, 1] > 0.3
    assert lash.sum() > 40
    gap = np.min([np.linalg.norm(model.v_template[lash] - c, axis=1) for c in eyes], axis=0) - 0.012
    assert gap.max() < 0.003


def test_lips_red_covers_the_lips_and_gums_sit_at_the_roots(head):
    model, _, _, _, maps = head
    lip = maps.mouth[:, 2]
    assert np.median(lip[_part_vertices(head, "lips")]) > 0.8
    mm = model.v_template * 1000.0
    assert lip[(mm[:, 1] > 0.0) | (mm[:, 1] < -75.0)].max() == 0.0
    teeth = _part_vertices(head, "teeth")
    gum = maps.mouth[teeth, 0]
    upper = mm[teeth, 1] > np.median(mm[teeth, 1])
    # Upper row: gums at the top; lower row: at the bottom.
    assert np.corrcoef(gum[upper], mm[teeth[upper], 1])[0, 1] > 0.9
    assert np.corrcoef(gum[~upper], mm[teeth[~upper], 1])[0, 1] < -0.9


def test_scalp_hair_covers_the_crown_and_leaves_the_face(head):
    model, _, _, _, maps = head
    mm = model.v_template * 1000.0
    hair = maps.hair[:, 0]
    crown = mm[:, 1] > mm[:, 1].max() - 10.0
    assert hair[crown].min() == 1.0
    face = (mm[:, 2] > 40.0) & (mm[:, 1] < 50.0) & (np.abs(mm[:, 0]) < 45.0)  # brows (top 38 mm), eyes, nose, mouth, chin
    assert hair[face].max() == 0.0
