"""Lip seal: the lips close on every P, B and M at its phone time (numpy only).

The talking generator learns closures from the audio alone and misses the
short ones inside words most. The seal times them from the phones that
``speech.lips`` aligned to the words of the line: the mouth channels blend to
the closed viseme with the visemes' own dominance weights (``head.visemes``),
so a sealed closure looks like those the generator was trained on; the rest of
the face is left as generated.
"""

from __future__ import annotations

import numpy as np

from ..head.components import EXPRESSION_INDEX, EXPRESSION_NAMES
from ..head.visemes import ARTICULATION, CLOSED, LIP_OPENING, MOUTH, articulation
from ..motion import motion_slices, n_expression_of
from ..phones import Segment

def closure_weight(phones: list[Segment], n_frames: int, fps: float) -> np.ndarray:
    """(T,) how closed the lips should be, 0..1: the teacher's bilabial dominance share."""
    if not phones or n_frames == 0:
        return np.zeros(n_frames)
    return articulation(phones, n_frames, fps)[1]


def seal(packed: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A copy of packed motion (T, C) with the mouth closed where ``weight`` (T,) is high.

    Articulation channels and the jaw's opening blend to the closed viseme,
    channels that part the lips fade out faster, other mouth channels (smile,
    dimples) are reduced as in the teacher; the jaw's sideways turn and the
    unnamed components (the teacher never moves them) fade. Brows, eyes and
    head are untouched.
    """
    packed = np.array(packed, dtype=np.float32, copy=True)
    if packed.ndim != 2 or len(weight) != len(packed):
        raise ValueError(f"need packed (T, C) and weight (T,), got {packed.shape} and {np.shape(weight)}")
    n_expr = n_expression_of(packed.shape[1])
    parts = motion_slices(n_expr)
    w = np.clip(np.asarray(weight, dtype=np.float32), 0.0, 1.0)
    expr = packed[:, parts["expression"]]  # (T, E) view
    for name in set(ARTICULATION) | LIP_OPENING:
        k = EXPRESSION_INDEX[name]
        if k < n_expr:
            wk = 1.0 - (1.0 - w) ** 4 if name in LIP_OPENING else w
            expr[:, k] += wk * (CLOSED.get(name, 0.0) - expr[:, k])
    for name in MOUTH - set(ARTICULATION) - LIP_OPENING:
        k = EXPRESSION_INDEX[name]
        if k < n_expr:
            expr[:, k] *= 1.0 - 0.7 * w
    expr[:, len(EXPRESSION_NAMES):] *= (1.0 - w)[:, None]
    jaw = packed[:, parts["jaw_pose"]]  # (T, 3) view
    jaw[:, 0] += w * (CLOSED["jaw"] - jaw[:, 0])
    jaw[:, 1:] *= (1.0 - w)[:, None]  # no sideways jaw in the closed viseme
    return packed
