"""Visemes: the mouth shape of each phone on the default head, and their coarticulation.

Each phone has a target over the articulation channels ("jaw", radians about
+X, and lip components of the head) and a Cohen-Massaro dominance that is flat
inside the phone and falls off exponentially outside. Bilabials (P B M)
dominate everything, so their closure is never blended away; each bilabial
and each vowel owns at least one frame. The procedural teacher draws training
mouths with it and the lip seal closes generated mouths with it.
"""

from __future__ import annotations

import numpy as np

from ..phones import BILABIALS, SILENCE, VOWELS, Segment, phone_at_frames
from .components import EXPRESSION_INDEX

# Articulation channels: "jaw" (radians about +X) and lip components of the head.
CLOSED = {"jaw": 0.02, "lip_press_L": 0.55, "lip_press_R": 0.55, "jaw_open_lips_closed": 0.3}
_VISEMES: dict[str, dict[str, float]] = {
    "P": CLOSED, "B": CLOSED, "M": {**CLOSED, "lip_press_L": 0.45, "lip_press_R": 0.45},
    "F": {"jaw": 0.05, "lower_lip_tuck": 0.85}, "V": {"jaw": 0.05, "lower_lip_tuck": 0.8},
    "UW": {"jaw": 0.10, "pucker": 0.8, "lips_part": 0.35}, "UH": {"jaw": 0.13, "pucker": 0.5, "lips_part": 0.4},
    "OW": {"jaw": 0.17, "funnel": 0.4, "pucker": 0.4, "lips_part": 0.3}, "AO": {"jaw": 0.22, "funnel": 0.45, "lips_part": 0.3},
    "W": {"jaw": 0.06, "pucker": 0.85, "lips_part": 0.2}, "OY": {"jaw": 0.16, "funnel": 0.35, "lips_part": 0.35},
    "AA": {"jaw": 0.32, "jaw_open_lips_stretch": 0.25}, "AE": {"jaw": 0.27, "jaw_open_lips_stretch": 0.2, "dimple_L": 0.2, "dimple_R": 0.2},
    "AH": {"jaw": 0.22, "jaw_open_lips_stretch": 0.2, "lips_part": 0.2}, "AW": {"jaw": 0.28, "jaw_open_lips_stretch": 0.2, "funnel": 0.2},
    "AY": {"jaw": 0.27, "jaw_open_lips_stretch": 0.2},
    "EH": {"jaw": 0.17, "lips_part": 0.4, "dimple_L": 0.15, "dimple_R": 0.15}, "EY": {"jaw": 0.15, "lips_part": 0.4, "dimple_L": 0.2, "dimple_R": 0.2},
    "IH": {"jaw": 0.12, "lips_part": 0.45, "dimple_L": 0.2, "dimple_R": 0.2}, "IY": {"jaw": 0.10, "lips_part": 0.5, "dimple_L": 0.35, "dimple_R": 0.35},
    "ER": {"jaw": 0.13, "lips_part": 0.4, "funnel": 0.25},
    "SH": {"jaw": 0.06, "funnel": 0.65, "lips_part": 0.35}, "ZH": {"jaw": 0.06, "funnel": 0.6, "lips_part": 0.35},
    "CH": {"jaw": 0.07, "funnel": 0.6, "lips_part": 0.3}, "JH": {"jaw": 0.07, "funnel": 0.55, "lips_part": 0.3},
    "TH": {"jaw": 0.08, "lips_part": 0.45}, "DH": {"jaw": 0.07, "lips_part": 0.4},
    "R": {"jaw": 0.08, "pucker": 0.3, "lips_part": 0.3}, "Y": {"jaw": 0.07, "lips_part": 0.35, "dimple_L": 0.2, "dimple_R": 0.2},
    "HH": {"jaw": 0.12, "lips_part": 0.35},
    SILENCE: {"jaw": 0.015, "lips_part": 0.12},
}
_DEFAULT_CONSONANT = {"jaw": 0.08, "lips_part": 0.35}  # T D N L S Z K G NG
ARTICULATION = sorted({k for v in list(_VISEMES.values()) + [_DEFAULT_CONSONANT] for k in v} - {"jaw"})

# dominance: (weight inside the phone, weight at its edge, falloff rate per second outside).
# A bilabial rules its own frames but does not swamp the neighbouring vowels.
_DOMINANCE_BILABIAL = (60.0, 1.5, 30.0)
_DOMINANCE_LABIODENTAL = (4.0, 1.2, 30.0)
_DOMINANCE_VOWEL = (2.0, 1.0, 18.0)
_DOMINANCE_CONSONANT = (0.5, 0.5, 25.0)
_DOMINANCE_SILENCE = (0.6, 0.6, 30.0)


def viseme(label: str) -> dict[str, float]:
    return _VISEMES.get(label, _DEFAULT_CONSONANT)


def _dominance(label: str) -> tuple[float, float, float]:
    if label in BILABIALS:
        return _DOMINANCE_BILABIAL
    if label in ("F", "V"):
        return _DOMINANCE_LABIODENTAL
    if label in VOWELS:
        return _DOMINANCE_VOWEL
    if label == SILENCE:
        return _DOMINANCE_SILENCE
    return _DOMINANCE_CONSONANT


def frame_owners(phones: list[Segment], n_frames: int, fps: float) -> np.ndarray:
    """(T,) index of the phone each frame belongs to; every bilabial and vowel gets at least one frame."""
    owner = phone_at_frames(phones, n_frames, fps)
    counts = np.bincount(owner[owner >= 0], minlength=len(phones))
    # bilabials first, then vowels: a bilabial never loses its only frame
    for group in (BILABIALS, VOWELS):
        for i, p in enumerate(phones):
            if p.label not in group or counts[i] > 0 or n_frames == 0:
                continue
            k = int(np.clip(round((p.start + p.end) / 2 * fps), 0, n_frames - 1))
            for cand in sorted({k, max(k - 1, 0), min(k + 1, n_frames - 1)}, key=lambda c: abs(c / fps - (p.start + p.end) / 2)):
                j = owner[cand]
                if j < 0 or (counts[j] > 1 and phones[j].label not in BILABIALS) or phones[j].label not in BILABIALS | VOWELS:
                    if j >= 0:
                        counts[j] -= 1
                    owner[cand] = i
                    counts[i] += 1
                    break
    return owner


def articulation(phones: list[Segment], n_frames: int, fps: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Blended articulation channels (name -> (T,)) and the bilabial closure weight (T,)."""
    times = np.arange(n_frames) / fps
    owner = frame_owners(phones, n_frames, fps)
    channels = ["jaw"] + ARTICULATION
    num = np.zeros((len(channels), n_frames))
    den = np.full(n_frames, 1e-9)
    closure = np.zeros(n_frames)
    for i, p in enumerate(phones):
        inside, edge, rate = _dominance(p.label)
        dist = np.maximum(np.maximum(p.start - times, times - p.end), 0.0)  # (T,) seconds outside the phone
        dom = np.where(dist > 0, edge * np.exp(-rate * dist), inside)
        dom[owner == i] = inside
        target = viseme(p.label)
        num += dom * np.array([target.get(c, 0.0) for c in channels])[:, None]
        den += dom
        if p.label in BILABIALS:
            closure += dom
    blended = num / den
    closure_weight = np.clip(closure / den, 0.0, 1.0)
    return {c: blended[j] for j, c in enumerate(channels)}, closure_weight


# mouth components that part the lips: fully suppressed at bilabials; other mouth shapes are only reduced
LIP_OPENING = {"upper_lip_raise_L", "upper_lip_raise_R", "lower_lip_depress_L", "lower_lip_depress_R", "lip_stretch_L",
                "lip_stretch_R", "jaw_open_lips_stretch", "lips_part"}
MOUTH = {name for name in EXPRESSION_INDEX if any(k in name for k in ("lip", "smile", "dimple", "mouth", "pucker", "funnel", "chin"))}
