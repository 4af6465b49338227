"""The phone vocabulary: ARPAbet phone classes and timed phone segments (numpy only).

Shared by the aligner (``speech.align``), the visemes of the head, the lip seal,
the corpus teacher and the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BILABIALS = frozenset({"P", "B", "M"})
LABIODENTALS = frozenset({"F", "V"})
VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"})
SILENCE = "SIL"


@dataclass(frozen=True)
class Segment:
    label: str
    start: float  # seconds
    end: float  # seconds

    @property
    def duration(self) -> float:
        return self.end - self.start


def phone_at_frames(phones: list[Segment], n_frames: int, fps: float) -> np.ndarray:
    """(T,) index of the phone holding each frame time t / fps, -1 outside every phone."""
    times = np.arange(n_frames) / fps
    owner = np.full(n_frames, -1, dtype=np.int64)
    for i, p in enumerate(phones):
        owner[(times >= p.start) & (times < p.end)] = i
    return owner
