"""Key reduction: drop the keys that linear interpolation between the kept ones reproduces.

Ramer-Douglas-Peucker in the value direction: a span keeps its farthest key
when that key is more than ``tolerance`` away (vertically) from the line
through the span's ends, recursively. Every dropped key is then within
``tolerance`` of the linear interpolation of the kept keys.
"""

import numpy as np

from .errors import InputError


def keep_mask(frames: np.ndarray, values: np.ndarray, tolerance: float) -> np.ndarray:
    """(N,) bool: keys to keep so that linear interpolation stays within ``tolerance``; ends always kept."""
    if tolerance < 0:
        raise InputError(f"tolerance must be >= 0, got {tolerance}")
    frames = np.asarray(frames, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo < 2:
            continue
        inner = slice(lo + 1, hi)
        t = (frames[inner] - frames[lo]) / (frames[hi] - frames[lo])  # (M,)
        line = values[lo] + t * (values[hi] - values[lo])
        error = np.abs(values[inner] - line)
        worst = int(np.argmax(error))
        if error[worst] > tolerance:
            mid = lo + 1 + worst
            keep[mid] = True
            stack += [(lo, mid), (mid, hi)]
    return keep


def decimate(frames: np.ndarray, values: np.ndarray, tolerance: float):
    """The kept ``(frames, values)`` of one channel."""
    mask = keep_mask(frames, values, tolerance)
    return np.asarray(frames)[mask], np.asarray(values)[mask]
