"""What times the lip seal: the phones of the line's words, aligned to the audio.

1. the words are the dialogue text when the user gives it, else what Whisper
   tiny.en heard (``speech.asr``), kept per chunk only where Whisper was
   confident (mean token log-probability >= ``MIN_SCORE``; tiny.en knows
   English only, so other languages mostly fall below it and keep the
   generator's own closures);
2. pocketsphinx aligns them to the audio (``speech.align``), as the corpus
   teacher's phones were aligned.

``refine.lipseal`` then closes the mouth on the bilabials among them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..audio import SAMPLE_RATE
from ..phones import BILABIALS, SILENCE, Segment
from .align import AlignmentError, align_full

MIN_SCORE = -0.7  # chosen on dev recordings (docs/experiments.md)
MAX_NO_SPEECH = 0.6  # Whisper invents words ("Thank you.") in noise and silence


@dataclass
class LipTiming:
    """Phones that time the seal, over the whole clip (gaps are ``SIL``)."""

    phones: list[Segment]
    source: str                      # "transcript", "recognized" or "none"
    text: str = ""                   # the words that were aligned
    notes: list[str] = field(default_factory=list)  # what was skipped and why

    def as_dict(self) -> dict:
        bilabials = sum(p.label in BILABIALS for p in self.phones)
        return {"source": self.source, "text": self.text, "bilabials": bilabials, "notes": list(self.notes)}


def time_lips(samples: np.ndarray, transcript: str | None = None, heard: list | None = None, language: str = "en",
              min_score: float = MIN_SCORE) -> LipTiming:
    """Phone timings for the seal: from ``transcript`` (in ``language``) when given, else from what Whisper
    ``heard`` in the samples (``speech.asr.Heard`` chunks, English whatever ``language`` says)."""
    samples = np.asarray(samples, dtype=np.float32)
    total = len(samples) / SAMPLE_RATE
    if transcript is not None and transcript.strip():
        try:
            phones = align_full(samples, transcript, language).phones
        except (AlignmentError, ValueError) as exc:
            return LipTiming([], "none", transcript, [f"the dialogue text could not be aligned to the audio: {exc}"])
        return LipTiming(phones, "transcript", transcript)
    if heard is None:
        return LipTiming([], "none", "", ["no dialogue text and nothing recognised"])
    phones: list[Segment] = []
    words, notes = [], []
    for chunk in heard:
        span = f"{chunk.start:.1f}-{chunk.end:.1f} s"
        if not chunk.text:
            continue
        if chunk.no_speech > MAX_NO_SPEECH:
            notes.append(f"{span}: probably no speech (heard {chunk.text!r}); nothing sealed there")
            continue
        if chunk.score < min_score:
            notes.append(f"{span}: not sure what was said (score {chunk.score:.2f}); the generator's closures are kept")
            continue
        start, end = int(round(chunk.start * SAMPLE_RATE)), int(round(chunk.end * SAMPLE_RATE))
        try:
            aligned = align_full(samples[start:end], chunk.text, "en").phones
        except (AlignmentError, ValueError) as exc:
            notes.append(f"{span}: heard {chunk.text!r} but could not align it ({exc})")
            continue
        phones += [Segment(p.label, p.start + chunk.start, p.end + chunk.start) for p in aligned]
        words.append(chunk.text)
    if not phones:
        return LipTiming([], "none", "", notes)
    return LipTiming(_fill_silence(phones, total), "recognized", " ".join(words), notes)


def _fill_silence(phones: list[Segment], total: float) -> list[Segment]:
    """Cover [0, total] with the phones and ``SIL`` in the gaps, so untimed stretches hold no closure."""
    out: list[Segment] = []
    t = 0.0
    for p in sorted(phones, key=lambda s: s.start):
        if p.start > t + 1e-6:
            out.append(Segment(SILENCE, t, p.start))
        out.append(p)
        t = max(t, p.end)
    if t < total - 1e-6:
        out.append(Segment(SILENCE, t, total))
    return out
