"""The small geometric tools of the retarget package, on data with a known answer (no ICT needed)."""

import numpy as np
import pytest

from backend.flame.lbs_numpy import rodrigues
from backend.retarget.arkit import ARKIT_NAMES
from backend.retarget.compare import nearest, similarity
from backend.retarget.ict import IctFolderError, fit_sphere, hinge, ict_stems, load_ict, read_obj


def test_similarity_recovers_scale_rotation_and_shift():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(7, 3))
    r = rodrigues(np.array([0.1, -0.3, 0.2]))
    dst = 0.88 * src @ r.T + np.array([0.01, -0.02, 0.5])
    s, r_found, t = similarity(src, dst)
    assert s == pytest.approx(0.88) and np.allclose(r_found, r) and np.allclose(t, [0.01, -0.02, 0.5])


def test_hinge_recovers_pivot_axis_and_angle():
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(50, 3)) * 0.01 + np.array([0.0, -0.05, 0.09])
    pivot = np.array([0.0, -0.005, 0.018])
    moved = (pts - pivot) @ rodrigues(np.array([0.3, 0.0, 0.0])).T + pivot
    p, axis, angle = hinge(pts, moved)
    assert angle == pytest.approx(0.3) and np.allclose(axis, [1, 0, 0])
    assert np.allclose(p[1:], pivot[1:], atol=1e-9)                               # on the hinge line


def test_sphere_fit_and_nearest():
    rng = np.random.default_rng(2)
    d = rng.normal(size=(200, 3))
    pts = 0.012 * d / np.linalg.norm(d, axis=1, keepdims=True) + np.array([0.03, 0.03, 0.08])
    assert np.allclose(fit_sphere(pts), [0.03, 0.03, 0.08])
    idx, dist = nearest(pts[:5] + 1e-4, pts, chunk=2)
    assert list(idx) == [0, 1, 2, 3, 4] and np.allclose(dist, np.sqrt(3) * 1e-4)


def test_obj_reader_keeps_order_polygons_uvs_and_negative_indices(tmp_path):
    path = tmp_path / "m.obj"
    path.write_text("# a quad and a triangle\nmtllib x.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0 0.5 0.5 0.5\nv 0 1 0\n"
                    "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nusemtl A\nf 1/1 2/2 3/3 4/4\nf -4/-4/1 -2/-2/1 -1/-1/1\n")
    mesh = read_obj(path)
    assert mesh.vertices.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]      # colour columns dropped
    assert mesh.face_sizes.tolist() == [4, 3] and mesh.face_vertices.tolist() == [0, 1, 2, 3, 0, 2, 3]
    assert mesh.face_uvs.tolist() == [0, 1, 2, 3, 0, 2, 3]
    path.write_text("v 0 0 0\nf 1 2 3\n")
    with pytest.raises(IctFolderError, match="vertex that is not in the file"):
        read_obj(path)
    path.write_text("v 0 zero 0\n")
    with pytest.raises(IctFolderError, match="not a number"):
        read_obj(path)


def test_ict_file_names():
    assert ict_stems("mouthSmileLeft") == ("mouthSmile_L",) and ict_stems("jawLeft") == ("jawLeft",)
    assert ict_stems("browInnerUp") == ("browInnerUp_L", "browInnerUp_R") and ict_stems("jawOpen") == ("jawOpen",)


def test_folder_with_a_mesh_of_another_head_is_refused(tmp_path):
    for stem in ["generic_neutral_mesh"] + [s for n in ARKIT_NAMES if n != "tongueOut" for s in ict_stems(n)]:
        (tmp_path / f"{stem}.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(IctFolderError, match="has 3 vertices; ICT-FaceKit's generic head has 26719"):
        load_ict(tmp_path)
