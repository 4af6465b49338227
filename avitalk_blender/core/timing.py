"""Frame rates and frame offsets: where a motion file's samples land on the timeline."""

import math

import numpy as np

from .errors import InputError


def scene_fps(fps: int, fps_base: float) -> float:
    """Frames per second of a scene (``render.fps / render.fps_base``; 29.97 is 30 / 1.001)."""
    if fps <= 0 or not fps_base > 0:
        raise InputError(f"scene frame rate must be positive, got fps={fps}, fps_base={fps_base}")
    return fps / fps_base


def same_fps(a: float, b: float) -> bool:
    """True when two frame rates are equal up to float noise (no resampling needed)."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


def default_frame_start(sound_starts, scene_start: int) -> int:
    """The first sound strip's start frame, or the scene's start when there is no sound."""
    starts = list(sound_starts)
    if not starts:
        return int(scene_start)
    return int(round(min(starts)))


def key_frames(n_frames: int, frame_start: int) -> np.ndarray:
    """Timeline frame of each resampled motion sample: ``frame_start, frame_start + 1, ...``."""
    return frame_start + np.arange(n_frames, dtype=np.float64)  # (T,)
