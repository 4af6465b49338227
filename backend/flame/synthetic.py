"""Tiny random FLAME-format models for tests.

The dict has FLAME's pickle keys and shapes (see docs/architecture.md), filled
with deterministic random data that still behaves like a head: five joints
placed where FLAME puts them (root, neck, jaw, eyes), a regressor whose rows
are convex combinations of nearby vertices, and skinning weights that sum to 1.
"""

import numpy as np

# FLAME joint order and parents: root, neck, jaw, left_eye, right_eye.
JOINT_NAMES = ("root", "neck", "jaw", "left_eye", "right_eye")
PARENTS = (-1, 0, 1, 1, 1)
# FLAME stores the root's parent as uint32(-1).
ROOT_PARENT_IN_FILE = 4294967295

# Rough joint positions in metres (Y up, face along +Z, +X the character's left).
_JOINT_POSITIONS = np.array([
    [0.0, -0.03, -0.01],     # root
    [0.0, -0.02, -0.02],     # neck
    [0.0, -0.03, 0.02],      # jaw
    [0.03, 0.03, 0.06],      # left eye
    [-0.03, 0.03, 0.06],     # right eye
])


def _sphere_points(n: int) -> np.ndarray:
    """n points spread evenly over a 10 cm sphere (Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    y = 1.0 - 2.0 * i / n
    r = np.sqrt(np.maximum(0.0, 1.0 - y * y))
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    return 0.1 * np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def make_tiny_model(n_verts: int = 50, n_shape: int = 300, n_expr: int = 10, seed: int = 0,
                    with_extras: bool = False) -> dict:
    """A raw FLAME-format dict (what a FLAME pickle holds), small and deterministic.

    With ``with_extras`` the dict also carries ``avitalk_expression_names`` and
    ``avitalk_version`` like our default head.
    """
    if n_verts < 5:
        raise ValueError(f"n_verts must be at least 5 (one per joint), got {n_verts}")
    if n_shape < 0 or n_expr < 0:
        raise ValueError(f"n_shape and n_expr must be >= 0, got {n_shape} and {n_expr}")
    rng = np.random.default_rng(seed)

    v_template = _sphere_points(n_verts) + rng.normal(scale=0.002, size=(n_verts, 3))
    # A triangle strip over consecutive lattice points: valid, non-degenerate indices.
    faces = np.stack([np.arange(n_verts - 2), np.arange(1, n_verts - 1), np.arange(2, n_verts)], axis=1)

    shapedirs = rng.normal(scale=1e-3, size=(n_verts, 3, n_shape + n_expr))
    posedirs = rng.normal(scale=1e-3, size=(n_verts, 3, 36))

    # Regressor rows: convex weights on the vertices nearest each target joint,
    # so the regressed joint lies inside the mesh near that target.
    dist2 = ((_JOINT_POSITIONS[:, None, :] - v_template[None, :, :]) ** 2).sum(-1)  # (5, V)
    J_regressor = _softmax_rows(-dist2 / 0.002)

    # Skinning: each vertex mostly follows its nearest joints, weights sum to 1.
    weights = _softmax_rows(-dist2.T / 0.003 + rng.normal(scale=0.1, size=(n_verts, 5)))

    kintree_table = np.array([[ROOT_PARENT_IN_FILE, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)

    raw = {
        "v_template": v_template,
        "f": faces.astype(np.uint32),
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": J_regressor,
        "weights": weights,
        "kintree_table": kintree_table,
    }
    if with_extras:
        raw["avitalk_expression_names"] = [f"expr{i:03d}" for i in range(n_expr)]
        raw["avitalk_version"] = 1
    return raw


def write_tiny_model(path, **kw) -> dict:
    """Write ``make_tiny_model(**kw)`` as a FLAME pickle at ``path``; returns the dict."""
    from .pickle_io import save_flame

    raw = make_tiny_model(**kw)
    save_flame(path, raw)
    return raw
