"""Eye blinks as a seeded random process: about 17 a minute, each 0.10-0.20 s, 40% of it closing.

Nothing in speech says when a speaker blinks, so the talking generator learns no blinks
(its blink channels stay under 0.001 on held-out clips). The teacher puts blinks into
the training motion with ``add_blinks``, and ``refine`` adds them to generated motion
the same way, seeded by the take's seed.
"""

from __future__ import annotations

import numpy as np

from ..head.components import EXPRESSION_INDEX

BLINKS_PER_MINUTE = 17.0


def blink_curves(n_frames: int, fps: float, rng: np.random.Generator, per_minute: float = BLINKS_PER_MINUTE,
                 duration: float | None = None) -> np.ndarray:
    """Left and right eyelid closure (T, 2) in [0, 1] for blinks at random times until ``duration``
    seconds (default: the motion's length)."""
    t = np.arange(n_frames) / fps
    duration = n_frames / fps if duration is None else duration
    curves = np.zeros((n_frames, 2))
    rate = per_minute / 60.0
    start = rng.exponential(1.0 / rate) * rng.uniform(0.2, 1.0)
    while start < duration:
        length = rng.uniform(0.10, 0.20)
        close = length * 0.4
        shape = np.where(t < start, 0.0, np.where(t < start + close, (t - start) / close,
                         np.clip(1 - (t - start - close) / (length - close), 0.0, 1.0)))
        depth = rng.uniform(0.9, 1.0)
        curves[:, 0] = np.maximum(curves[:, 0], depth * shape)
        curves[:, 1] = np.maximum(curves[:, 1], depth * rng.uniform(0.93, 1.0) * shape)
        start += length + max(rng.exponential(1.0 / rate), 0.25)
    return curves


def add_blinks(expr: np.ndarray, fps: float, rng: np.random.Generator, per_minute: float = BLINKS_PER_MINUTE,
               duration: float | None = None) -> None:
    """Raise the blink channels of ``expr`` (T, E) in place to ``blink_curves``."""
    columns = [EXPRESSION_INDEX["blink_L"], EXPRESSION_INDEX["blink_R"]]
    expr[:, columns] = np.maximum(expr[:, columns], blink_curves(expr.shape[0], fps, rng, per_minute, duration))
