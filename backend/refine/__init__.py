"""What is done to stage 2's motion afterwards, in one place and one order.

    packed = refine(packed, fps, seed, controls, closure)

1. blinks: speech does not time them, so the generator learns none; they are
   drawn per seed, as the teacher drew them for training (``blinks``);
2. the panel's controls: intensity, face halves, smoothing, head motion,
   blinks on or off (``controls``);
3. the lip seal: the mouth closed on P, B and M, timed from the words of the
   line (``lipseal``; ``closure`` is its per-frame weight, None when off).

numpy only: it runs on a packed (T, E + 15) array in ``backend.motion``'s layout.
"""

from __future__ import annotations

import numpy as np

from ..head.components import blink_indices
from ..motion import n_expression_of
from .blinks import blink_curves
from .controls import MotionControls, apply_controls
from .lipseal import seal

BLINK_STREAM = 7  # the blinks' random stream beside the seed's


def refine(packed: np.ndarray, fps: float, seed: int, controls: MotionControls | None = None,
           closure: np.ndarray | None = None) -> np.ndarray:
    """A refined copy of a packed motion (T, E + 15): blinks, then the controls, then the lip seal."""
    out = np.array(packed, copy=True)
    if out.ndim != 2:
        raise ValueError(f"a packed motion is (T, C), got shape {out.shape}")
    columns = blink_indices(n_expression_of(out.shape[1]))
    if len(columns) == 2:
        curves = blink_curves(len(out), fps, np.random.default_rng([seed, BLINK_STREAM]))  # (T, 2)
        out[:, columns] = np.maximum(out[:, columns], curves)
    if controls is not None:
        out = apply_controls(out, controls)
    if closure is not None:
        out = seal(out, closure)
    return out
