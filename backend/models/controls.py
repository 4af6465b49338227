"""Packed motion channel layout and the post-processing controls of the Blender panel.

A packed motion array has C = E + 15 channels per frame, in the motion file's
order: expression (E), jaw_pose (3), neck_pose (3), global_pose (3), eye_pose (6).
This module is numpy-only (no torch), so Blender's Python may import it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..head.components import EXPRESSION_INDEX, EXPRESSION_NAMES

POSE_PARTS = (("jaw_pose", 3), ("neck_pose", 3), ("global_pose", 3), ("eye_pose", 6))
N_POSE_CHANNELS = sum(n for _, n in POSE_PARTS)

BLINK_NAMES = ("blink_L", "blink_R")
# Eyes, brows, cheeks and nose: the part of the face above the mouth.
UPPER_FACE_PREFIXES = ("blink", "squint", "eye_wide", "brow", "cheek_raise", "nose_wrinkle")


def motion_slices(n_expression: int) -> dict[str, slice]:
    """Channel slice of each motion part in a packed array with ``n_expression`` expression channels."""
    if n_expression < 1:
        raise ValueError(f"n_expression must be positive, got {n_expression}")
    slices = {"expression": slice(0, n_expression)}
    start = n_expression
    for name, size in POSE_PARTS:
        slices[name] = slice(start, start + size)
        start += size
    return slices


def n_expression_of(n_channels: int) -> int:
    """Number of expression channels E of a packed array with C = E + 15 channels."""
    if n_channels <= N_POSE_CHANNELS:
        raise ValueError(f"a packed motion needs more than {N_POSE_CHANNELS} channels, got {n_channels}")
    return n_channels - N_POSE_CHANNELS


def expression_indices(names, n_expression: int) -> list[int]:
    """Indices of the named default-head components that exist among ``n_expression`` channels."""
    return [EXPRESSION_INDEX[n] for n in names if EXPRESSION_INDEX[n] < n_expression]


def upper_face_indices(n_expression: int) -> list[int]:
    names = [n for n in EXPRESSION_NAMES if n.startswith(UPPER_FACE_PREFIXES)]
    return expression_indices(names, n_expression)


def lower_face_indices(n_expression: int) -> list[int]:
    """Mouth, lips, jaw and chin components (everything named that is not upper face)."""
    names = [n for n in EXPRESSION_NAMES if not n.startswith(UPPER_FACE_PREFIXES)]
    return expression_indices(names, n_expression)


def blink_indices(n_expression: int) -> list[int]:
    return expression_indices(BLINK_NAMES, n_expression)


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
        for name in ("intensity", "upper_face", "lower_face", "smoothing"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


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
