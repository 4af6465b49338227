"""Seeded blinks: the teacher's training motion and the pipeline's generated motion share them."""

import numpy as np

from backend.refine.blinks import add_blinks
from backend.head.components import EXPRESSION_INDEX

L, R = EXPRESSION_INDEX["blink_L"], EXPRESSION_INDEX["blink_R"]


def blinks(seconds=60.0, seed=0, per_minute=17.0, fps=25.0):
    expr = np.zeros((int(seconds * fps), 100), dtype=np.float32)
    add_blinks(expr, fps, np.random.default_rng(seed), per_minute)
    return expr


def closures(track, level=0.5):
    shut = track > level
    return int(np.sum(shut[1:] & ~shut[:-1]) + shut[0])


def test_blinks_come_at_a_natural_rate_and_close_the_eyes():
    expr = blinks()
    n = closures(expr[:, L])
    assert 8 <= n <= 30  # about 17 a minute
    assert expr[:, L].max() > 0.85 and expr[:, R].max() > 0.8 and expr[:, L].min() == 0.0
    assert np.count_nonzero(np.delete(expr, [L, R], axis=1)) == 0  # only the blink channels move
    assert np.mean(expr[:, L] > 0.5) < 0.1  # eyes open most of the time
    assert closures(blinks(per_minute=40.0)[:, L]) > n


def test_blinks_follow_the_seed_and_keep_what_is_there():
    np.testing.assert_array_equal(blinks(seed=3), blinks(seed=3))
    assert not np.array_equal(blinks(seed=3), blinks(seed=4))
    expr = np.full((250, 100), 0.95, dtype=np.float32)
    add_blinks(expr, 25.0, np.random.default_rng(0))
    assert np.all(expr[:, L] >= 0.95)  # blinks only raise the channels
