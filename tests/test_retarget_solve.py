"""The per-frame solve: weights that reproduce target displacements on a rig with correlated shapes."""

import numpy as np
import pytest

from backend.errors import AviTalkError
from backend.retarget.solve import SolveSettings, arkit_ties, solve_weights


def _correlated_basis(rng, n_points=400, k=24):
    """(N, K) shapes that share most of their motion: each is a common field plus a smaller own part."""
    common = rng.normal(size=(n_points, 4))
    own = rng.normal(size=(n_points, k))
    return common @ rng.uniform(0.5, 1.0, size=(4, k)) + 0.4 * own


def test_reproduces_a_random_combination_of_a_correlated_basis():
    rng = np.random.default_rng(0)
    basis = _correlated_basis(rng)
    assert np.linalg.cond(basis) > 20                                          # really correlated
    truth = rng.uniform(0.0, 1.0, size=(60, basis.shape[1])) * (rng.uniform(size=(60, basis.shape[1])) < 0.4)
    targets = truth @ basis.T
    w = solve_weights(basis, targets, settings=SolveSettings(ridge=1e-6, iterations=800))
    assert w.shape == truth.shape and w.min() >= 0.0 and w.max() <= 1.0
    assert np.abs(w - truth).max() < 0.02
    residual = np.linalg.norm(w @ basis.T - targets) / np.linalg.norm(targets)
    assert residual < 0.01


def test_weights_stay_in_each_keys_range():
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(100, 3)))[0]                       # independent shapes
    targets = np.array([[2.0, -1.0, 0.5]]) @ basis.T
    w = solve_weights(basis, targets)
    np.testing.assert_allclose(w, [[1.0, 0.0, 0.5]], atol=0.02)
    w = solve_weights(basis, targets, lower=[0, -1, 0], upper=[3, 1, 1])
    np.testing.assert_allclose(w, [[2.0, -1.0, 0.5]], atol=0.02)


def test_mouth_close_cancels_jaw_open_at_the_lips_and_never_exceeds_it():
    rng = np.random.default_rng(2)
    chin, lips, other = rng.normal(size=(3, 300))
    keys = ["jawOpen", "mouthClose", "mouthFunnel"]
    basis = np.stack([chin + lips, -lips, other], axis=1)                     # mouthClose undoes jawOpen's lip part
    pairs, capped = arkit_ties(keys)
    assert capped == [(1, 0)]
    # our head: jaw open with the lips sealed -> both keys on, cancelling at the lips
    w = solve_weights(basis, (0.6 * chin)[None], capped=capped)
    np.testing.assert_allclose(w[0], [0.6, 0.6, 0.0], atol=0.02)
    # lips that close harder than the jaw opens cannot be bought with mouthClose alone
    w = solve_weights(basis, (-0.5 * lips)[None], capped=capped)
    assert w[0, 1] <= w[0, 0] + 1e-9
    unconstrained = solve_weights(basis, (-0.5 * lips)[None])
    assert unconstrained[0, 1] > unconstrained[0, 0] + 0.3


def test_symmetry_ties_left_and_right():
    rng = np.random.default_rng(3)
    keys = ["mouthSmileLeft", "mouthSmileRight", "jawOpen"]
    basis = rng.normal(size=(200, 3))
    pairs, _ = arkit_ties(keys)
    assert pairs == [(0, 1)]
    targets = np.array([[0.8, 0.4, 0.3]]) @ basis.T
    loose = solve_weights(basis, targets)
    tied = solve_weights(basis, targets, pairs=pairs, settings=SolveSettings(symmetry=5.0))
    np.testing.assert_allclose(loose[0], [0.8, 0.4, 0.3], atol=0.01)
    assert abs(tied[0, 0] - tied[0, 1]) < 0.1 and abs(tied[0, 0] + tied[0, 1] - 1.2) < 0.1


def test_smoothness_calms_noise_between_frames():
    rng = np.random.default_rng(4)
    basis = _correlated_basis(rng, k=8)
    t = np.linspace(0, 1, 120)
    truth = 0.5 + 0.3 * np.sin(2 * np.pi * t)[:, None] * np.ones(8)
    targets = truth @ basis.T + 0.8 * rng.normal(size=(120, basis.shape[0]))
    rough = solve_weights(basis, targets)
    smooth = solve_weights(basis, targets, settings=SolveSettings(smooth=5.0, iterations=600))
    jitter = lambda w: np.abs(np.diff(w, axis=0)).mean()
    assert jitter(smooth) < 0.3 * jitter(rough)
    assert np.abs(smooth - truth).mean() < np.abs(rough - truth).mean()


def test_sparsity_turns_off_keys_that_add_little():
    rng = np.random.default_rng(5)
    basis = _correlated_basis(rng, k=12)
    truth = np.zeros((1, 12))
    truth[0, [2, 7]] = [0.9, 0.6]
    targets = truth @ basis.T + 0.5 * rng.normal(size=(1, basis.shape[0]))
    dense = solve_weights(basis, targets)
    sparse = solve_weights(basis, targets, settings=SolveSettings(sparsity=0.3, iterations=600))
    spurious = lambda w: np.delete(w[0], [2, 7]).sum()
    assert spurious(dense) > 0.05 and spurious(sparse) < 0.3 * spurious(dense)
    assert sparse[0, 2] > 0.7 and sparse[0, 7] > 0.3


def test_bad_shapes_and_values_are_refused():
    with pytest.raises(AviTalkError, match="same N"):
        solve_weights(np.zeros((10, 3)), np.zeros((4, 9)))
    with pytest.raises(AviTalkError, match="NaN"):
        solve_weights(np.full((10, 3), np.nan), np.zeros((4, 10)))
    with pytest.raises(AviTalkError, match="lower bound"):
        solve_weights(np.ones((10, 3)), np.zeros((4, 10)), lower=1.0, upper=0.0)
