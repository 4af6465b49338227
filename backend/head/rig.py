"""Joints, skinning weights and the joint regressor of the default head (numpy only, mm).

Joints: 0 root (neck base), 1 neck, 2 jaw (hinge in front of the ears),
3 left eye, 4 right eye. The jaw weight of the skin is 1 on the lower lip and
chin, 0 on the upper lip and above the hinge, and smooth in between: the free
vertices relax to the mean of their neighbours (a discrete harmonic field).
"""

import numpy as np

from .mesh import HeadMesh
from .skin import mouth_coords, smoothstep as sm

ROOT = (0.0, -105.0, -14.0)
NECK = (0.0, -48.0, -16.0)


def joint_positions(mesh: HeadMesh) -> np.ndarray:
    """(5, 3) rest joint positions in mm."""
    left, right = mesh.eye_centers()
    return np.array([ROOT, NECK, mesh.anatomy.jaw_hinge, left, right], dtype=float)


def _harmonic(n, edges, value, fixed, iterations=400):
    """Relax the free entries of ``value`` to the mean of their neighbours."""
    a, b = edges[:, 0], edges[:, 1]
    degree = np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    v = value.copy()
    for _ in range(iterations):
        total = np.bincount(a, weights=v[b], minlength=n) + np.bincount(b, weights=v[a], minlength=n)
        v = np.where(fixed, value, total / np.maximum(degree, 1))
    return v


def skin_jaw_weight(mesh: HeadMesh) -> np.ndarray:
    """(S,) jaw weight of each skin vertex."""
    skin, anatomy = mesh.skin, mesh.anatomy
    p = mesh.verts[: mesh.n_skin]
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    mu, d = mouth_coords(skin, anatomy)
    upper = (d > 0) | ((d == 0) & ~skin.lower)
    lips = np.abs(mu) < 0.8
    one = (lips & ~upper & (d > -16)) | ((y < anatomy.mouth_y - 13) & (y > -82) & (z > 35))
    zero = ((lips & upper & (d < 16)) | (y > -8) | (y < -100) | ((z < -22) & (y < -8))
            | ((y > anatomy.mouth_y + 6) & (np.abs(x) < 30)))
    value = np.where(one, 1.0, 0.0)
    value[~one & ~zero] = sm((anatomy.mouth_y - y) / 30.0)[~one & ~zero]
    f = skin.faces
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    return np.clip(_harmonic(len(p), edges, value, one | zero), 0.0, 1.0)


def skinning_weights(mesh: HeadMesh) -> np.ndarray:
    """(V, 5) LBS weights summing to 1."""
    n_skin = mesh.n_skin
    jaw = np.zeros(len(mesh.verts))
    jaw[:n_skin] = skin_jaw_weight(mesh)
    for rim in mesh.eye_rims:
        jaw[rim.rings] = jaw[rim.loop][None, :]
    jaw[mesh.mouth.rings] = jaw[mesh.mouth.loop][None, :]
    jaw[mesh.mouth.cap] = 0.5
    jaw[mesh.teeth_lower] = 1.0
    y = mesh.verts[:, 1]
    root = sm((-92.0 - y) / 22.0) * (1.0 - jaw)
    w = np.zeros((len(mesh.verts), 5))
    w[:, 0] = root
    w[:, 2] = jaw
    for j, idx in zip((3, 4), mesh.eyeballs):
        w[idx] = 0.0
        w[idx, j] = 1.0
    eye = np.zeros(len(mesh.verts), dtype=bool)
    eye[np.concatenate(mesh.eyeballs)] = True
    w[~eye, 1] = 1.0 - w[~eye, 0] - w[~eye, 2]
    return w


def joint_regressor(verts: np.ndarray, joints: np.ndarray, still: np.ndarray, reach=(55, 55, 55, 12, 12)) -> np.ndarray:
    """(5, V) affine weights that reproduce each joint exactly from still vertices around it.

    For each joint, the still vertices nearest to six probes at ``reach`` mm
    along +-X, +-Y, +-Z surround it; their minimum-norm affine weights give
    the joint.
    """
    reg = np.zeros((len(joints), len(verts)))
    candidates = np.flatnonzero(still)
    for j, (target, r) in enumerate(zip(joints, reach)):
        probes = target + r * np.concatenate([np.eye(3), -np.eye(3)])
        near = []
        for probe in probes:
            dist = np.round(np.linalg.norm(verts[candidates] - probe, axis=1), 6)
            near.append(candidates[np.lexsort((candidates, dist))[0]])
        near = np.unique(near)
        a = np.vstack([verts[near].T, np.ones(len(near))])          # (4, k)
        b = np.append(target, 1.0)
        reg[j, near] = np.linalg.lstsq(a, b, rcond=None)[0]
    return reg


JAW_SIN_FEATURE = 9 + 7   # pose feature of the jaw block: (R - I)[2, 1] = sin(angle) for a rotation about X
CORRECTIVE_ANGLE = 0.3    # rad of jaw opening at which the corrective is exact


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def jaw_correctives(verts: np.ndarray, weights: np.ndarray, hinge) -> np.ndarray:
    """(V, 3, 36) pose correctives in mm: the jaw's blend zone turns like a partial hinge.

    Plain blending of a rotated and a still copy pulls the cheek and jaw-line
    vertices (jaw weight w between 0 and 1) in toward the hinge when the jaw
    opens. The corrective moves them so that at ``CORRECTIVE_ANGLE`` each one
    lands where a rotation by ``w * angle`` would put it; vertices with w = 0
    or 1 (lips, chin, skull) get none. It rides on the sin(angle) feature.
    """
    hinge = np.asarray(hinge, dtype=float)
    w = weights[:, 2]
    a = CORRECTIVE_ANGLE
    rot = _rot_x(a)
    out = np.zeros((len(verts), 3, 36))
    blend = (w > 1e-6) & (w < 1 - 1e-6)
    for i in np.flatnonzero(blend):
        p = verts[i] - hinge
        lin = (1.0 - w[i]) * np.eye(3) + w[i] * rot                        # the blended transform
        target = _rot_x(w[i] * a) @ p
        out[i, :, JAW_SIN_FEATURE] = (np.linalg.solve(lin, target) - p) / np.sin(a)
    return out
