"""Per-frame solve: the rig's key weights that reproduce our head's motion (numpy only).

For a rig whose shapes are correlated (combination keys, a PCA basis),
copying weights channel by channel double counts. Instead, per frame t:

    min_w  1/2 |B w_t - y_t|^2 + ridge/2 |w_t|^2 + sparsity * sum(w_t)
           + symmetry/2 sum_pairs (w_ti - w_tj)^2 + smooth/2 |w_t - w_t-1|^2
    s.t.   lower <= w_t <= upper,   w_t[a] <= w_t[b] for each capped pair (mouthClose <= jawOpen)

``B`` (N, K) is the rig's displacement basis over a face region, ``y`` (T, N)
the target displacements. All frames are solved together by accelerated
projected gradient (FISTA) on the (T, K) weight matrix, so the cost is a few
hundred small matrix products whatever T is. With ``sparsity`` > 0 and lower
bounds of 0 the linear term is an L1 penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RequestError


@dataclass
class SolveSettings:
    ridge: float = 1e-4      # relative to the basis' mean squared column norm
    sparsity: float = 0.0    # relative to the same scale, per unit weight
    symmetry: float = 0.0    # tie between each (left, right) pair
    smooth: float = 0.0      # tie between neighbouring frames
    iterations: int = 300


def _check(basis, targets, lower, upper):
    if basis.ndim == 3:
        basis = basis.reshape(-1, basis.shape[-1])
    if basis.ndim != 2 or targets.ndim != 2 or targets.shape[1] != basis.shape[0]:
        raise RequestError(f"the basis must be (V, 3, K) or (N, K) and the targets (T, N) with the same N; "
                           f"got {basis.shape} and {targets.shape}")
    if not (np.all(np.isfinite(basis)) and np.all(np.isfinite(targets))):
        raise RequestError("the basis or the targets hold NaN or infinite values")
    k = basis.shape[1]
    lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), (k,))
    upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (k,))
    if np.any(lower > upper):
        raise RequestError("a key's lower bound is above its upper bound")
    return basis, lower, upper


def _project(w, lower, upper, capped):
    w = np.clip(w, lower, upper)
    for a, b in capped:                                   # w[a] <= w[b]: meet in the middle where violated
        over = w[:, a] > w[:, b]
        mid = 0.5 * (w[over, a] + w[over, b])
        w[over, a] = np.clip(mid, lower[a], upper[a])
        w[over, b] = np.clip(mid, lower[b], upper[b])
        w[:, a] = np.minimum(w[:, a], w[:, b])
    return w


def solve_weights(basis, targets, lower=0.0, upper=1.0, pairs=(), capped=(), settings: SolveSettings = SolveSettings(),
                  start=None) -> np.ndarray:
    """(T, K) key weights; ``pairs`` are (left, right) key indices, ``capped`` (a, b) with w[a] <= w[b]."""
    basis = np.asarray(basis, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    basis, lower, upper = _check(basis, targets, lower, upper)
    n_frames, k = targets.shape[0], basis.shape[1]
    scale = max(float(np.mean(np.sum(basis * basis, axis=0))), 1e-30)
    gram = basis.T @ basis / scale                                     # (K, K)
    rhs = targets @ basis / scale                                      # (T, K)
    tie = np.zeros((k, k))
    for i, j in pairs:
        tie[[i, j], [i, j]] += 1.0
        tie[i, j] -= 1.0
        tie[j, i] -= 1.0
    hessian = gram + settings.ridge * np.eye(k) + settings.symmetry * tie   # (K, K)
    lipschitz = float(np.linalg.eigvalsh(hessian)[-1]) + 4.0 * settings.smooth
    step = 1.0 / max(lipschitz, 1e-12)

    def gradient(w):
        g = w @ hessian - rhs + settings.sparsity
        if settings.smooth and n_frames > 1:
            lap = np.zeros_like(w)
            diff = w[1:] - w[:-1]                                        # (T-1, K)
            lap[1:] += diff
            lap[:-1] -= diff
            g += settings.smooth * lap
        return g

    if start is None:
        start = np.linalg.solve(hessian, (rhs - settings.sparsity).T).T   # unconstrained, then projected
    w = _project(np.array(start, dtype=np.float64), lower, upper, capped)
    y, t = w.copy(), 1.0
    for _ in range(settings.iterations):
        w_next = _project(y - step * gradient(y), lower, upper, capped)
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        y = w_next + ((t - 1.0) / t_next) * (w_next - w)
        w, t = w_next, t_next
    return w


def arkit_ties(keys) -> tuple[list, list]:
    """For a rig's ARKit names in basis order: (left, right) index pairs and the (mouthClose, jawOpen) cap."""
    from .arkit import split_side

    index = {k: i for i, k in enumerate(keys)}
    pairs = []
    for k, i in index.items():
        base, side = split_side(k)
        if side == "Left" and base + "Right" in index:
            pairs.append((i, index[base + "Right"]))
    capped = [(index["mouthClose"], index["jawOpen"])] if "mouthClose" in index and "jawOpen" in index else []
    return pairs, capped
