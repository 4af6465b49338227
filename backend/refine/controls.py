"""The panel's post-processing controls (intensity, face halves, smoothing, head motion, blinks).

They act on a packed motion (``backend.motion``'s channel layout) and are
numpy-only, so Blender's Python may import them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import RequestError, excerpt
from ..head.components import blink_indices, lower_face_indices, upper_face_indices
from ..motion import motion_slices, n_expression_of
from ..protocol import CONTROL_RANGES, CONTROL_SWITCHES


@dataclass
class MotionControls:
    """Panel settings applied to a generated motion after synthesis."""

    intensity: float = 1.0      # scales every expression channel and the jaw
    upper_face: float = 1.0     # extra scale on upper-face expression channels
    lower_face: float = 1.0     # extra scale on lower-face expression channels and the jaw
    smoothing: float = 0.0      # Gaussian sigma in frames; 0 = off
    head_motion: bool = True    # False: neck and global pose held at neutral (zero)
    blinks: bool = True         # False: blink channels held at zero (eyes open)

    def __post_init__(self):
        for name, (low, high, _default) in CONTROL_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise RequestError(f"control '{name}' must be a number, got {excerpt(value)}")
            if not low <= value <= high:  # NaN fails too; no float() on a huge int
                raise RequestError(f"control '{name}' must be between {low:g} and {high:g}, got {excerpt(value)}")
            setattr(self, name, float(value))
        for name in CONTROL_SWITCHES:
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise RequestError(f"control '{name}' must be true or false, got {excerpt(getattr(self, name))}")

    @classmethod
    def from_dict(cls, values) -> "MotionControls":
        """Controls from a request's JSON object; unknown names are refused, missing ones keep their defaults."""
        if not isinstance(values, dict):
            raise RequestError(f"'controls' must be an object of control names, got {excerpt(values)}")
        known = {f.name for f in fields(cls)}
        unknown = [str(name) for name in values if name not in known]
        if unknown:
            raise RequestError(f"unknown control {excerpt(unknown[0])}; the controls are {', '.join(sorted(known))}")
        return cls(**values)


def gaussian_smooth(x: np.ndarray, sigma: float, axis: int = -2) -> np.ndarray:
    """Gaussian filter along ``axis`` (time) with edge padding; sigma in frames."""
    if sigma <= 0:
        return x
    radius = max(1, int(round(3.0 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    moved = np.moveaxis(x, axis, 0)
    n = moved.shape[0]
    padded = np.concatenate([np.repeat(moved[:1], radius, 0), moved, np.repeat(moved[-1:], radius, 0)], 0)
    out = np.zeros_like(moved, dtype=np.result_type(x.dtype, np.float32))
    for k, w in enumerate(kernel):
        out += w * padded[k:k + n]
    return np.moveaxis(out.astype(x.dtype, copy=False), 0, axis)


def apply_controls(motion: np.ndarray, controls: MotionControls) -> np.ndarray:
    """Return a copy of a packed motion (..., T, C) with the panel controls applied."""
    motion = np.array(motion, copy=True)
    if motion.ndim < 2:
        raise ValueError(f"motion must be (..., T, C), got shape {motion.shape}")
    n_expr = n_expression_of(motion.shape[-1])
    parts = motion_slices(n_expr)
    expr = motion[..., parts["expression"]]  # (..., T, E) view
    jaw = motion[..., parts["jaw_pose"]]     # (..., T, 3) view

    expr *= controls.intensity
    jaw *= controls.intensity * controls.lower_face
    upper, lower = upper_face_indices(n_expr), lower_face_indices(n_expr)
    expr[..., upper] *= controls.upper_face
    expr[..., lower] *= controls.lower_face

    if controls.smoothing > 0:
        motion = gaussian_smooth(motion, controls.smoothing, axis=-2)
    if not controls.head_motion:
        motion[..., parts["neck_pose"]] = 0.0
        motion[..., parts["global_pose"]] = 0.0
    if not controls.blinks:
        motion[..., blink_indices(n_expr)] = 0.0
    return motion
