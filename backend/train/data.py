"""Training data in memory: clip records + cached features + motion, and the batch makers.

Every phase reads the same ``TrainData``: the records of a corpus (a built one or a
real capture folder, both as ``backend.corpus.dataset.ClipRecord``), their speech
features from the feature cache, their packed motion (T, E + 15) at 25 fps and
the MiniLM embeddings of their instruction phrasings. No raw audio is touched.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..phones import BILABIALS, Segment
from ..corpus.dataset import ClipRecord, DatasetError, load_corpus, load_real_layout
from ..head.visemes import frame_owners
from ..motion import resample

FPS = 25.0

# light text augmentation (paper IV-A: synonym replacement), on top of the corpus's phrasings
SYNONYMS = {
    "face": ("face", "expression"),
    "speaks": ("speaks", "talks"),
    "speaking": ("speaking", "talking"),
    "man": ("man", "guy"),
    "woman": ("woman", "lady"),
    "slightly": ("slightly", "a little", "faintly"),
    "very": ("very", "extremely", "really"),
    "eyebrows": ("eyebrows", "brows"),
    "brows": ("brows", "eyebrows"),
    "lips": ("lips", "mouth"),
    "raised": ("raised", "lifted"),
    "wide": ("wide", "widened"),
}
DROPPABLE = {"a", "the", "very", "slightly", "and", "with", "clearly", "noticeably", "visibly", "really"}


def augment_text(text: str, rng: np.random.Generator, p_swap: float = 0.3, p_drop: float = 0.1) -> str:
    """Swap some words for synonyms and drop a few filler words; never returns an empty string."""
    out = []
    for word in text.split():
        core = word.strip(".,!?").lower()
        tail = word[len(word.rstrip(".,!?")):]
        if core in DROPPABLE and rng.random() < p_drop:
            continue
        if core in SYNONYMS and rng.random() < p_swap:
            choice = str(rng.choice(SYNONYMS[core]))
            word = (choice[0].upper() + choice[1:] if word[0].isupper() else choice) + tail
        out.append(word)
    return " ".join(out) or text


def load_records(corpus) -> list[ClipRecord]:
    """A built corpus (``manifest.jsonl`` or ``clips/``) or a real capture folder (``<speaker>/<clip>.wav``)."""
    root = Path(corpus)
    if not root.is_dir():
        raise DatasetError(f"corpus folder not found: {root}")
    if (root / "manifest.jsonl").is_file() or (root / "clips").is_dir():
        return load_corpus(root)
    return load_real_layout(root)


def load_packed_motion(record: ClipRecord) -> np.ndarray:
    """The clip's motion at 25 fps, packed (T, E + 15) float32."""
    motion = record.motion()
    if abs(motion.fps - FPS) > 1e-6:
        motion = resample(motion, FPS)
    packed = motion.pack()
    return packed.astype(np.float32)


@dataclass
class Clip:
    record: ClipRecord
    speech: torch.Tensor        # (T, D_speech) float16
    motion: torch.Tensor        # (T, C) float32, same T
    text_emb: torch.Tensor      # (P, 384) one row per instruction phrasing (augmented copies included)
    texts: list[str]            # the phrasings behind text_emb rows
    group: int                  # emotion index (-1 unknown): same-group clips are not negatives
    bilabial: torch.Tensor | None = None  # (T,) bool, frames of P/B/M phones (None: no alignment)
    lm_emb: torch.Tensor | None = None    # (P, H) the LLM's readings of the same phrasings, once the instruction phase asks
    words_emb: torch.Tensor | None = None  # (384,) MiniLM embedding of the clip's English transcript (None: no words)


class TrainData:
    """Clips of one split, ready for batching."""

    def __init__(self, clips: list[Clip]):
        if not clips:
            raise DatasetError("no clips for training in this split")
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def speech_dim(self) -> int:
        return int(self.clips[0].speech.shape[-1])

    @property
    def motion_dim(self) -> int:
        return int(self.clips[0].motion.shape[-1])

    def motion_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        frames = torch.cat([c.motion for c in self.clips])  # (N, C)
        return frames.mean(dim=0), frames.std(dim=0)

    def sample(self, rng: np.random.Generator, batch_size: int, balance_by: Callable[[Clip], object] | None = None) -> list[Clip]:
        """``batch_size`` distinct clips when there are enough, else with repeats. With ``balance_by``
        (e.g. ``source_of``), every value it gives is drawn equally often."""
        n = len(self.clips)
        p = None
        if balance_by is not None:
            keys = [balance_by(c) for c in self.clips]
            counts = Counter(keys)
            p = np.array([1.0 / (counts[k] * len(counts)) for k in keys])
        idx = rng.choice(n, size=batch_size, replace=batch_size > n, p=p)
        return [self.clips[i] for i in idx]


def source_of(clip: Clip) -> str:
    """Where a clip's speech comes from ('espeak', 'recording', ... ; '' when unknown)."""
    return clip.record.meta.get("source", "") if clip.record is not None else ""


def emotion_of(clip: Clip) -> int:
    """The clip's emotion index, -1 for every clip whose emotion is unknown."""
    return max(clip.group, -1)


def words_of(record: ClipRecord) -> str | None:
    """The words stage 1 reads beside the speech: the transcript of an English clip (MiniLM and
    Whisper tiny.en know English only), else None."""
    language = str(record.meta.get("language") or "en").lower()
    text = " ".join((record.transcript or "").split())
    return text if text and language.startswith("en") else None


def words_batch(clips: list[Clip], rng: np.random.Generator | None = None, p_drop: float = 0.0) -> torch.Tensor:
    """(B, 384) words embeddings, zero rows where a clip has none or (with ``rng``) drops them at ``p_drop``:
    at inference the words may be missing (silence, another language, nothing recognised)."""
    dim = next((c.words_emb.shape[-1] for c in clips if c.words_emb is not None), 384)
    out = torch.zeros(len(clips), dim)
    for b, clip in enumerate(clips):
        if clip.words_emb is not None and not (rng is not None and rng.random() < p_drop):
            out[b] = clip.words_emb
    return out


def pad_speech(clips: list[Clip], max_frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole clips (cut to ``max_frames``) -> features (B, T, D) float32 and valid (B, T) True on real frames."""
    lengths = [min(c.speech.shape[0], max_frames or c.speech.shape[0]) for c in clips]
    T, D = max(lengths), clips[0].speech.shape[-1]
    feats = torch.zeros(len(clips), T, D)
    valid = torch.zeros(len(clips), T, dtype=torch.bool)
    for b, (clip, n) in enumerate(zip(clips, lengths)):
        feats[b, :n] = clip.speech[:n].float()
        valid[b, :n] = True
    return feats, valid


def window_batch(clips: list[Clip], rng: np.random.Generator, min_frames: int, max_frames: int, n_ref: int) -> dict:
    """Random windows of ``min_frames..max_frames`` frames (one length per batch) for the talking prior.

    Returns the Stage2 'talking' batch: speech (B, T, D), motion (B, T, C), mask (B, T) True = padded,
    bilabial (B, T) True on P/B/M frames, and ref_motion (B, S, C) + ref_mask (B, S): frames drawn from
    the whole clip outside the window when the clip is long enough (the paper leaves the predicted
    frames out), else from the whole clip.
    """
    length = int(rng.integers(min_frames, max_frames + 1))
    B, D, C = len(clips), clips[0].speech.shape[-1], clips[0].motion.shape[-1]
    speech, motion = torch.zeros(B, length, D), torch.zeros(B, length, C)
    mask = torch.ones(B, length, dtype=torch.bool)
    bilabial = torch.zeros(B, length, dtype=torch.bool)
    ref, ref_mask = torch.zeros(B, n_ref, C), torch.ones(B, n_ref, dtype=torch.bool)
    for b, clip in enumerate(clips):
        T = clip.motion.shape[0]
        n = min(length, T)
        start = int(rng.integers(0, T - n + 1))
        speech[b, :n] = clip.speech[start:start + n].float()
        motion[b, :n] = clip.motion[start:start + n]
        mask[b, :n] = False
        if clip.bilabial is not None:
            bilabial[b, :n] = clip.bilabial[start:start + n]
        outside = np.r_[0:start, start + n:T]
        pool = outside if len(outside) >= n_ref // 2 else np.arange(T)
        pick = rng.choice(pool, size=min(n_ref, len(pool)), replace=False)
        ref[b, :len(pick)] = clip.motion[torch.from_numpy(np.sort(pick))]
        ref_mask[b, :len(pick)] = False
    return {"speech": speech, "motion": motion, "mask": mask, "bilabial": bilabial, "ref_motion": ref, "ref_mask": ref_mask}


def bilabial_frames(record: ClipRecord, n_frames: int) -> torch.Tensor | None:
    """(T,) True on the frames the teacher gives to a P, B or M phone; None without an alignment."""
    if not record.phones:
        return None
    phones = [Segment(label, start, end) for label, start, end in record.phones]
    owner = frame_owners(phones, n_frames, FPS)  # (T,)
    labels = np.array([p.label in BILABIALS for p in phones] + [False])  # index -1: no phone
    return torch.from_numpy(labels[owner])


def reference_frames(clip: Clip, rng: np.random.Generator, n_ref: int) -> tuple[torch.Tensor, torch.Tensor]:
    """S random frames of a whole clip: (S, C) and mask (S,) True = missing."""
    T = clip.motion.shape[0]
    pick = np.sort(rng.choice(T, size=min(n_ref, T), replace=False))
    frames = torch.zeros(n_ref, clip.motion.shape[-1])
    mask = torch.ones(n_ref, dtype=torch.bool)
    frames[:len(pick)] = clip.motion[torch.from_numpy(pick)]
    mask[:len(pick)] = False
    return frames, mask
