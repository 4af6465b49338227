"""Build the default head as a FLAME-format dict (numpy only, deterministic).

The mesh (``mesh.build_mesh``) is in millimetres; the dict is in metres as
FLAME expects. ``shapedirs`` holds 300 identity components (the first few
meaningful, the rest zero) and then 100 expression components, slots 0..51 the
semantic components of ``components.py`` at full strength.
"""

import numpy as np

from .components import EXPRESSION_NAMES, N_EXPRESSION, N_SHAPE
from .expressions import expression_offsets
from .field import Anatomy
from .mesh import PART_NAMES, HeadMesh, build_mesh
from .rig import jaw_correctives, joint_positions, joint_regressor, skin_jaw_weight, skinning_weights

HEAD_VERSION = 2
KINTREE = np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)


def identity_offsets(mesh: HeadMesh) -> np.ndarray:
    """(V, 3, 6) identity components in mm: size, width, face length, nose, jaw width, eye spacing."""
    v = mesh.verts
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    out = np.zeros((len(v), 3, 6))
    out[:, :, 0] = 0.06 * v                                                   # overall size +6 %
    out[:, 0, 1] = 0.06 * x                                                   # head width
    below = np.clip(-(y - 10.0), 0.0, None)
    out[:, 1, 2] = -0.08 * below * (z > -40)                                  # longer lower face
    nose = np.exp(-0.5 * ((x / 14) ** 2 + ((y + 5) / 22) ** 2 + np.clip(z - 85, None, 0) ** 2 / 12 ** 2))
    out[:, 2, 3] = 4.0 * nose                                                 # nose projection
    jaw = np.clip((-30.0 - y) / 30.0, 0.0, 1.0) * np.clip((y + 120.0) / 20.0, 0.0, 1.0)
    out[:, 0, 4] = 0.08 * x * jaw                                             # jaw width
    eyes = np.exp(-0.5 * (((np.abs(x) - 31.5) / 14) ** 2 + ((y - 16) / 14) ** 2))
    out[:, 0, 5] = 2.0 * np.sign(x) * eyes                                    # eye spacing
    for idx, center in zip(mesh.eyeballs, mesh.eye_centers()):
        c_off = np.array([0.06 * center, (0.06 * center[0], 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0),
                          (2.0 * np.sign(center[0]), 0, 0)]).T                # (3, 6)
        out[idx] = c_off[None]
    return out


def vertex_groups(mesh: HeadMesh) -> dict:
    skin = mesh.skin
    slit = skin.mouth
    cols = range(slit.c0, slit.c1 + 1)
    upper = np.array([skin.grid[slit.row, c] for c in cols])
    lower = np.array([skin.grid_lower[slit.row, c] for c in cols])  # corners: the shared vertex
    p = mesh.verts[: mesh.n_skin]
    front = p[:, 2] > 0
    upper_face = np.flatnonzero(front & (p[:, 1] > -15.0))
    lower_face = np.flatnonzero(front & (p[:, 1] <= -15.0) & (p[:, 1] > -95.0))
    for rim in mesh.eye_rims:
        upper_face = np.concatenate([upper_face, rim.rings.ravel()])
    mouth = np.concatenate([mesh.mouth.rings[1:].ravel(), [mesh.mouth.cap], mesh.teeth_upper, mesh.teeth_lower])
    lower_face = np.concatenate([lower_face, mesh.mouth.rings[0]])
    groups = {
        "upper_lip": upper, "lower_lip": lower, "upper_face": upper_face, "lower_face": lower_face,
        "eyes": np.concatenate(mesh.eyeballs), "left_eye": mesh.eyeballs[0], "right_eye": mesh.eyeballs[1],
        "mouth_interior": mouth,
    }
    return {k: np.sort(v).astype(np.int64) if k not in ("upper_lip", "lower_lip") else v.astype(np.int64)
            for k, v in groups.items()}


def build_head(seed: int = 0) -> dict:
    """The default head as a FLAME-format dict (metres). ``seed`` is kept for the interface;
    the head has no randomness, so every seed gives the same head."""
    mesh = build_mesh(Anatomy())
    n = len(mesh.verts)
    jaw_skin = skin_jaw_weight(mesh)
    expr = expression_offsets(mesh, jaw_skin)                                 # (V, 3, 52) mm
    shapedirs = np.zeros((n, 3, N_SHAPE + N_EXPRESSION))
    ident = identity_offsets(mesh)
    shapedirs[:, :, : ident.shape[2]] = ident
    shapedirs[:, :, N_SHAPE: N_SHAPE + len(EXPRESSION_NAMES)] = expr
    weights = skinning_weights(mesh)
    still = np.abs(expr).max(axis=(1, 2)) < 1e-9
    regressor = joint_regressor(mesh.verts, joint_positions(mesh), still)
    return {
        "v_template": mesh.verts / 1000.0,
        "f": mesh.faces.astype(np.int64),
        "shapedirs": shapedirs / 1000.0,
        "posedirs": jaw_correctives(mesh.verts, weights, mesh.anatomy.jaw_hinge) / 1000.0,
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": KINTREE.copy(),
        "avitalk_expression_names": list(EXPRESSION_NAMES) + [f"reserved_{i:02d}" for i in range(len(EXPRESSION_NAMES), N_EXPRESSION)],
        "avitalk_vertex_groups": vertex_groups(mesh),
        "avitalk_face_parts": mesh.face_part.astype(np.int8),
        "avitalk_part_names": list(PART_NAMES),
        "avitalk_version": HEAD_VERSION,
    }
