"""FLAME-format heads of another topology made from our default head, for the FLAME-map tests.

``decimated_head`` clusters our head's vertices on a grid (upper and lower jaw,
eyeballs and skin kept apart so the lips stay two lips), drops teeth and the
mouth interior, and replaces the expression basis by a random rotation of
our 52 shapes mixed with smooth extra fields, each column rescaled, as a PCA
basis would be. ``truth`` holds what is needed to measure it: the cluster of
every kept vertex of ours and the rotation that maps our coefficients onto it.
"""

from dataclasses import dataclass

import numpy as np

from backend.flame.pickle_io import FlameModel

DROP_PARTS = ("teeth", "mouth")


@dataclass
class Truth:
    cluster: np.ndarray      # (V_ours,) cluster index of each of our vertices, -1 where dropped
    to_target: np.ndarray    # (100, 100): target coefficients = ours @ to_target (exact for our 52 shapes)
    picked: np.ndarray | None  # (V_target,) our vertex each target vertex is (``keep_vertices``), else None


def decimated_head(model: FlameModel, cell: float = 3.5e-3, seed: int = 0, n_extra_fields: int = 48,
                   keep_vertices: bool = False, scale: float = 1.0, shift=(0.0, 0.0, 0.0),
                   turn: float = 0.0) -> tuple[FlameModel, Truth]:
    """A FLAME-format head with one vertex per grid cell of ``cell`` metres.

    Each new vertex is the mean of its cell's vertices (a remeshed, smoother
    head), or with ``keep_vertices`` the cell's vertex nearest that mean (a
    decimated head whose vertices are some of ours). The head is then scaled,
    turned by ``turn`` radians about +Y and shifted.
    """
    rng = np.random.default_rng(seed)
    parts = list(model.extras["avitalk_part_names"])
    face_part = model.extras["avitalk_face_parts"]
    keep_faces = model.faces[~np.isin(face_part, [parts.index(p) for p in DROP_PARTS])]
    kept = np.unique(keep_faces)
    eyes = np.zeros(model.n_verts, dtype=bool)
    eyes[model.extras["avitalk_vertex_groups"]["eyes"]] = True
    lower = model.weights[:, 2] > 0.5
    v = model.v_template
    key = np.concatenate([np.floor(v / cell).astype(np.int64), eyes[:, None], lower[:, None]], axis=1)[kept]
    _, cluster_of_kept = np.unique(key, axis=0, return_inverse=True)
    cluster_of_kept = cluster_of_kept.ravel()
    n = int(cluster_of_kept.max()) + 1
    cluster = np.full(model.n_verts, -1)
    cluster[kept] = cluster_of_kept
    count = np.bincount(cluster_of_kept, minlength=n).astype(np.float64)

    def cluster_mean(a):
        out = np.zeros((n,) + a.shape[1:])
        np.add.at(out, cluster_of_kept, a[kept])
        return out / count.reshape((n,) + (1,) * (a.ndim - 1))

    if keep_vertices:                                                                # the member nearest the mean
        d = np.linalg.norm(v[kept] - cluster_mean(v)[cluster_of_kept], axis=1)
        order = np.lexsort((d, cluster_of_kept))
        first = order[np.r_[True, np.diff(cluster_of_kept[order]) != 0]]
        pick = kept[first]
        mean = lambda a: a[pick]  # noqa: E731
    else:
        pick, mean = None, cluster_mean

    faces = cluster[keep_faces]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    faces = np.unique(faces, axis=0)
    v_new = mean(v)
    weights = mean(model.weights)
    weights /= weights.sum(axis=1, keepdims=True)
    j_reg = np.zeros((5, n))          # our joints, regressed from the 12 nearest new vertices (affine weights)
    for j, joint in enumerate(model.J_regressor @ v):
        near = np.argsort(np.linalg.norm(v_new - joint, axis=1))[:12]
        a = np.vstack([v_new[near].T, np.ones(12)])                                  # (4, 12)
        j_reg[j, near] = np.linalg.lstsq(a, np.append(joint, 1.0), rcond=None)[0]

    dirs = mean(model.exprdirs)                                                      # (n, 3, 100)
    n_ours = int(np.count_nonzero(np.abs(model.exprdirs).reshape(-1, model.n_expr).max(axis=0)))
    for k in range(n_ours, min(n_ours + n_extra_fields, 100)):                       # smooth extra shapes
        freq = rng.normal(size=(3, 3)) / 0.04
        phase = rng.uniform(0, 2 * np.pi, size=3)
        dirs[:, :, k] = 2e-3 * np.sin(v_new @ freq + phase)
    rot, _ = np.linalg.qr(rng.normal(size=(100, 100)))
    gains = rng.uniform(0.5, 2.0, size=100)
    exprdirs = np.einsum("vck,kl->vcl", dirs, rot) * gains                            # column l = sum_k dirs_k rot_kl
    to_target = rot / gains                                              # dirs @ c = exprdirs @ (c @ rot / g)
    c, s_ = np.cos(turn), np.sin(turn)
    rot_y = scale * np.array([[c, 0.0, s_], [0.0, 1.0, 0.0], [-s_, 0.0, c]])
    turned = lambda dirs: np.einsum("ab,vbk->vak", rot_y, dirs)  # noqa: E731
    target = FlameModel(
        v_template=v_new @ rot_y.T + np.asarray(shift), faces=faces.astype(np.int64), shapedirs=np.zeros((n, 3, 0)),
        exprdirs=turned(exprdirs), posedirs=turned(mean(model.posedirs)), J_regressor=j_reg, weights=weights,
        parents=model.parents.copy(), extras={})
    return target, Truth(cluster, to_target, pick)


def test_decimated_head_is_another_topology_with_our_shapes_rotated():
    from backend.flame.lbs_numpy import flame_forward
    from backend.flame.pickle_io import load_flame
    from backend.head import default_head_path

    ours = load_flame(default_head_path())
    head, truth = decimated_head(ours, cell=5e-3, seed=4, keep_vertices=True)
    assert head.n_verts < ours.n_verts / 2 and head.exprdirs.shape == (head.n_verts, 3, 100)
    coeffs = np.zeros((1, 100))
    coeffs[0, :52] = np.random.default_rng(0).uniform(0, 1, 52)
    mine = flame_forward(ours, expression=coeffs)[0][0, truth.picked]
    theirs = flame_forward(head, expression=coeffs @ truth.to_target)[0][0]
    np.testing.assert_allclose(theirs, mine, atol=1e-9)                              # exact under the rotation
    assert np.abs(flame_forward(head, expression=coeffs)[0][0] - mine).max() > 2e-3  # and nothing like it without
    np.testing.assert_allclose(head.J_regressor @ head.v_template, ours.J_regressor @ ours.v_template, atol=1e-9)
