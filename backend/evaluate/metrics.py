"""Motion metrics on vertices and lip gaps (numpy only).

Lip sync (see README.md for the protocol):

- ``lip_vertex_error``: LVE as in FaceFormer/EMOTE, the max over lip vertices
  of the per-vertex L2 error in each frame, averaged over frames.
- ``lip_sync_counts``: bilabial events (P, B, M phones of the alignment)
  against lip-closure intervals (runs of frames whose lip gap is at or below
  the closed threshold), matched with a 40 ms tolerance; pooled into
  precision, recall and F1 by ``LipSyncCounts``.
- ``vowel_open_counts``: vowels whose middle frame has the lips open.

Upper face:

- ``face_dynamics_deviation``: FDD as in CodeTalker/EMOTE, per vertex the
  standard deviation over time of its displacement norm, generated against
  ground truth (absolute difference), averaged over vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..phones import BILABIALS, SILENCE, VOWELS, Segment, phone_at_frames

TOLERANCE_S = 0.040  # bilabial events and closures match when at most this far apart


def _check_pair(generated: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    generated = np.asarray(generated, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if generated.ndim != 3 or generated.shape[2] != 3 or generated.shape[1:] != truth.shape[1:]:
        raise ValueError(f"vertex arrays must both be (T, V, 3) with the same V, got {generated.shape} and {truth.shape}")
    if len(generated) == 0 or len(truth) == 0:
        raise ValueError("vertex arrays have no frames")
    n = min(len(generated), len(truth))  # one frame more or less from rounding the duration
    return generated[:n], truth[:n]


def lip_vertex_error(generated: np.ndarray, truth: np.ndarray) -> float:
    """LVE of (T, V, 3) lip vertex tracks: mean over frames of the max vertex error, in the input's units."""
    generated, truth = _check_pair(generated, truth)
    error = np.linalg.norm(generated - truth, axis=2)  # (T, V)
    return float(error.max(axis=1).mean())


def face_dynamics_deviation(generated: np.ndarray, truth: np.ndarray, rest: np.ndarray) -> float:
    """FDD of (T, V, 3) vertex tracks against the rest positions ``rest`` (V, 3), in the input's units."""
    generated, truth = _check_pair(generated, truth)
    rest = np.asarray(rest, dtype=np.float64)
    if rest.shape != generated.shape[1:]:
        raise ValueError(f"rest must be (V, 3) = {generated.shape[1:]}, got {rest.shape}")
    std_gen = np.linalg.norm(generated - rest, axis=2).std(axis=0)  # (V,)
    std_true = np.linalg.norm(truth - rest, axis=2).std(axis=0)  # (V,)
    return float(np.abs(std_gen - std_true).mean())


# ---------------------------------------------------------------- lip closures


@dataclass(frozen=True)
class Interval:
    start: float  # seconds
    end: float  # seconds

    def near(self, other: "Interval", tolerance: float = TOLERANCE_S) -> bool:
        """True when the two intervals overlap once one is widened by ``tolerance`` on each side."""
        return self.start - tolerance <= other.end and other.start - tolerance <= self.end


@dataclass
class LipSyncCounts:
    """Counts that pool over clips; precision, recall and F1 come from the pooled counts."""

    events: int = 0            # bilabial events
    events_hit: int = 0        # ... near a closure
    closures: int = 0          # closure intervals (cut at phone boundaries, silence left out)
    closures_hit: int = 0      # ... near a bilabial event
    vowels: int = 0
    vowels_open: int = 0       # vowels whose middle frame has the lips open

    def __add__(self, other: "LipSyncCounts") -> "LipSyncCounts":
        return LipSyncCounts(*(a + b for a, b in zip(self._values(), other._values())))

    def _values(self) -> tuple[int, ...]:
        return (self.events, self.events_hit, self.closures, self.closures_hit, self.vowels, self.vowels_open)

    @property
    def recall(self) -> float | None:
        return self.events_hit / self.events if self.events else None

    @property
    def precision(self) -> float | None:
        """None without closures and without events; 0 when events exist but the lips never close."""
        if self.closures:
            return self.closures_hit / self.closures
        return 0.0 if self.events else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def vowel_open_rate(self) -> float | None:
        return self.vowels_open / self.vowels if self.vowels else None

    def as_dict(self) -> dict:
        return {"lip_closure_f1": self.f1, "lip_closure_precision": self.precision, "lip_closure_recall": self.recall,
                "vowel_open_rate": self.vowel_open_rate, "bilabial_events": self.events, "closures": self.closures,
                "vowels": self.vowels}


def bilabial_events(phones: list[Segment]) -> list[Interval]:
    """P, B and M phones as intervals; touching bilabials ("M B" in "number") make one event."""
    events: list[Interval] = []
    for p in phones:
        if p.label not in BILABIALS:
            continue
        if events and p.start - events[-1].end <= 1e-6:
            events[-1] = Interval(events[-1].start, p.end)
        else:
            events.append(Interval(p.start, p.end))
    return events


def closure_intervals(closed: np.ndarray, fps: float, phones: list[Segment]) -> list[Interval]:
    """Runs of closed frames, cut where the frame's phone changes; runs inside silence are left out.

    Frame t stands for [(t - 0.5) / fps, (t + 0.5) / fps]. Cutting at phones
    makes a mouth held shut through many phones count as many closures, all
    but those at bilabials wrong, instead of one long closure that happens to
    cover every bilabial.
    """
    closed = np.asarray(closed, dtype=bool)
    owner = phone_at_frames(phones, len(closed), fps)
    silent = np.array([owner[t] < 0 or phones[owner[t]].label == SILENCE for t in range(len(closed))], dtype=bool)
    out: list[Interval] = []
    t = 0
    while t < len(closed):
        if not closed[t] or silent[t]:
            t += 1
            continue
        end = t
        while end + 1 < len(closed) and closed[end + 1] and owner[end + 1] == owner[t]:
            end += 1
        out.append(Interval((t - 0.5) / fps, (end + 0.5) / fps))
        t = end + 1
    return out


def lip_sync_counts(gap: np.ndarray, fps: float, phones: list[Segment], closed_below: float,
                    tolerance: float = TOLERANCE_S) -> LipSyncCounts:
    """Lip-closure and vowel-opening counts of one clip.

    ``gap`` (T,) is the inner-lip gap per frame (frame t at t / fps seconds),
    ``closed_below`` the threshold in the same units: a gap at or below it is closed.
    """
    gap = np.asarray(gap, dtype=np.float64)
    if gap.ndim != 1 or len(gap) == 0:
        raise ValueError(f"gap must be a non-empty (T,) array, got shape {gap.shape}")
    if not np.all(np.isfinite(gap)):
        raise ValueError("gap contains NaN or infinite values")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    closed = gap <= closed_below
    events = bilabial_events(phones)
    closures = closure_intervals(closed, fps, phones)
    counts = LipSyncCounts(
        events=len(events),
        events_hit=sum(any(e.near(c, tolerance) for c in closures) for e in events),
        closures=len(closures),
        closures_hit=sum(any(c.near(e, tolerance) for e in events) for c in closures),
    )
    for p in phones:
        if p.label in VOWELS:
            k = int(np.clip(round((p.start + p.end) / 2 * fps), 0, len(gap) - 1))
            counts.vowels += 1
            counts.vowels_open += int(not closed[k])
    return counts
