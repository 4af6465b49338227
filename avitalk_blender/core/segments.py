"""Per-segment instructions: timeline markers split the audio; the segments' motions cross-fade.

Every segment's motion covers the whole clip (the backend caches the speech
features, so each extra instruction costs stage 2 only). ``blend_motions``
then takes each frame from its segment's motion and cross-fades the joins
with a smoothstep over ``blend_seconds`` centred on each marker, so the
result never jumps.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import InputError

MOTION_ARRAYS = ("expression", "jaw_pose", "neck_pose", "global_pose", "eye_pose")
DEFAULT_BLEND_SECONDS = 0.25


def segment_bounds(marker_frames, range_start: int, range_end: int) -> list[tuple[int, int]]:
    """Segments ``[(start, end), ...]`` of ``[range_start, range_end)`` cut at the markers strictly inside it."""
    if range_end <= range_start:
        raise InputError(f"the audio range is empty: frames {range_start} to {range_end}")
    cuts = sorted({int(f) for f in marker_frames if range_start < f < range_end})
    edges = [int(range_start)] + cuts + [int(range_end)]
    return list(zip(edges[:-1], edges[1:]))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def segment_weights(n_frames: int, boundaries, blend_frames: float) -> np.ndarray:
    """(K, T) weights of K = len(boundaries) + 1 segments; they sum to 1 at every frame.

    ``boundaries``: frame positions (floats, in samples) of the joins, ascending.
    Segment k's weight is ``prod_{j<k} s_j * (1 - s_k)`` with ``s_j`` a smoothstep
    from 0 to 1 across join j, so overlapping blends still sum to 1.
    """
    t = np.arange(n_frames, dtype=np.float64)  # (T,)
    half = max(float(blend_frames), 1e-6) / 2.0
    steps = [_smoothstep((t - (b - half)) / (2.0 * half)) for b in boundaries]  # each (T,)
    weights = np.empty((len(steps) + 1, n_frames))
    before = np.ones(n_frames)
    for k, s in enumerate(steps):
        weights[k] = before * (1.0 - s)
        before = before * s
    weights[-1] = before
    return weights


def blend_motions(motions, boundary_seconds, blend_seconds: float = DEFAULT_BLEND_SECONDS):
    """One motion from K motions of the same clip (same fps and length) and K - 1 join times.

    Poses are blended as axis-angle vectors, which is accurate for the small
    angles of a face; the cross-fade lasts ``blend_seconds`` around each join.
    """
    motions = list(motions)
    boundary_seconds = list(boundary_seconds)
    if not motions:
        raise InputError("no motions to blend")
    if len(boundary_seconds) != len(motions) - 1:
        raise InputError(f"{len(motions)} segments need {len(motions) - 1} joins, got {len(boundary_seconds)}")
    if list(boundary_seconds) != sorted(boundary_seconds):
        raise InputError("the joins must be in time order")
    first = motions[0]
    for m in motions[1:]:
        if m.n_frames != first.n_frames or m.fps != first.fps:
            raise InputError("the segments' motions differ in length or frame rate; generate them from the same audio")
    if len(motions) == 1:
        return first
    weights = segment_weights(first.n_frames, [s * first.fps for s in boundary_seconds], blend_seconds * first.fps)
    arrays = {}
    for name in MOTION_ARRAYS:
        stack = np.stack([np.asarray(getattr(m, name), dtype=np.float64) for m in motions])  # (K, T, C)
        arrays[name] = np.einsum("kt,ktc->tc", weights, stack).astype(np.float32)  # (T, C)
    instructions = [m.instruction for m in motions]
    return dataclasses.replace(first, instruction=" | ".join(instructions), **arrays)


def segment_index_at(bounds, frame: int) -> int:
    """Index of the segment holding timeline ``frame`` (the last one for frames past the end)."""
    for i, (start, end) in enumerate(bounds):
        if frame < end:
            return i
    return len(bounds) - 1
