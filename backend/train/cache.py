"""Feature caches: the frozen encoders run once per clip / phrasing, never during training.

- speech: ``<cache>/speech-<kind>-25fps.safetensors``, one float16 (T, D) tensor per clip id,
  saved every minute while it grows, so an interrupted build continues where it stopped.
- text: ``<cache>/text-minilm.safetensors``, one float16 (384,) MiniLM embedding per sentence,
  keyed by the sentence's sha1; holds every phrasing, its augmented copies and the paraphrases.
  ``<cache>/text-<llm>.safetensors`` holds the LLM's readings of the same sentences (SmolLM2: 576,).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from ..corpus.dataset import ClipRecord
from ..corpus.paraphrases import PARAPHRASES, paraphrases
from ..corpus.speech import EMOTIONS
from .data import FPS, Clip, TrainData, augment_text, bilabial_frames, load_packed_motion

log = logging.getLogger(__name__)
SAVE_EVERY_S = 60.0


def speech_cache_path(cache_dir, kind: str) -> Path:
    return Path(cache_dir) / f"speech-{kind}-{int(FPS)}fps.safetensors"


def text_cache_path(cache_dir) -> Path:
    return Path(cache_dir) / "text-minilm.safetensors"


def lm_text_cache_path(cache_dir, llm_name: str) -> Path:
    return Path(cache_dir) / f"text-{llm_name}.safetensors"


def _read(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        return {}
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _write(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    tmp.replace(path)


def build_speech_cache(records: list[ClipRecord], path, encoder=None, load=None, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Speech features at 25 fps for every record, read from ``path`` and completed there.

    ``encoder`` (a ``SpeechEncoder``) or ``load`` (a function returning one) is used only when
    clips are missing, so a complete cache never loads the encoder.
    """
    path = Path(path)
    feats = _read(path)
    todo = [r for r in records if r.id not in feats]
    if not todo:
        return feats
    if encoder is None:
        encoder = load()
    encoder = encoder.to(device)
    meta = {"encoder": encoder.name, "fps": str(FPS), "dim": str(encoder.dim)}
    last_save = time.monotonic()
    for record in tqdm(todo, desc="speech features", file=sys.stderr, dynamic_ncols=True):
        samples = torch.from_numpy(record.audio())  # (N,)
        feats[record.id] = encoder.features_at(samples.to(device), FPS).to("cpu", torch.float16)  # (T, D)
        if time.monotonic() - last_save > SAVE_EVERY_S:
            _write(path, feats, meta)
            last_save = time.monotonic()
    _write(path, feats, meta)
    return feats


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def phrasings(record: ClipRecord, n_augment: int, n_paraphrase: int = 0) -> list[str]:
    """The clip's instruction phrasings, ``n_augment`` augmented copies of each, and ``n_paraphrase``
    free wordings of its emotion unless that is slight (deterministic per clip)."""
    out = list(record.instructions)
    for text in record.instructions:
        for k in range(n_augment):
            seed = int(text_key(f"{k}:{text}")[:8], 16)
            out.append(augment_text(text, np.random.default_rng(seed)))
    if n_paraphrase and record.emotion in PARAPHRASES and (record.emotion == "neutral" or record.intensity != "slight"):
        seed = int(text_key(f"paraphrase:{record.id}")[:8], 16)
        gender = record.meta.get("gender")
        out += paraphrases(record.emotion, gender if gender in ("male", "female") else None, seed, n_paraphrase)
    return list(dict.fromkeys(out))  # drop repeats, keep order


def build_text_cache(sentences: list[str], path, encoder=None, load=None, batch_size: int = 64,
                     name: str = "all-MiniLM-L6-v2") -> dict[str, torch.Tensor]:
    """Sentence embeddings keyed by ``text_key`` (MiniLM's by default; ``name`` is the encoder's),
    read from ``path`` and completed there, saved every minute while it grows."""
    path = Path(path)
    emb = _read(path)
    todo = sorted(dict.fromkeys(s for s in sentences if text_key(s) not in emb), key=len)  # batches of like length pad little
    if not todo:
        return emb
    if encoder is None:
        encoder = load()
    last_save = time.monotonic()
    for start in tqdm(range(0, len(todo), batch_size), desc=f"instruction embeddings ({name})", file=sys.stderr, dynamic_ncols=True):
        chunk = todo[start:start + batch_size]
        vectors = encoder.encode(chunk).to("cpu", torch.float16)  # (n, D)
        for text, vector in zip(chunk, vectors):
            emb[text_key(text)] = vector.clone()
        if time.monotonic() - last_save > SAVE_EVERY_S:
            _write(path, emb, {"encoder": name})
            last_save = time.monotonic()
    _write(path, emb, {"encoder": name})
    return emb


def assemble(records: list[ClipRecord], speech: dict, text: dict, n_augment: int, n_paraphrase: int = 0) -> list[Clip]:
    """Records + caches -> Clips with motion loaded and cut to the speech length."""
    clips = []
    for i, record in enumerate(records):
        motion = torch.from_numpy(load_packed_motion(record))  # (T_m, C)
        feats = speech[record.id]                               # (T_s, D)
        T = min(motion.shape[0], feats.shape[0])
        if abs(motion.shape[0] - feats.shape[0]) > 2:
            log.warning("%s: motion has %d frames, audio %d; using the first %d", record.id, motion.shape[0], feats.shape[0], T)
        if T < 2:
            log.warning("%s: too short (%d frames), skipped", record.id, T)
            continue
        texts = phrasings(record, n_augment, n_paraphrase)
        group = EMOTIONS.index(record.emotion) if record.emotion in EMOTIONS else -(i + 1)
        clips.append(Clip(record, feats[:T], motion[:T], torch.stack([text[text_key(t)] for t in texts]).float(), texts, group,
                          bilabial_frames(record, T)))
    return clips


def split_data(clips: list[Clip], split: str) -> TrainData | None:
    chosen = [c for c in clips if c.record.split == split]
    return TrainData(chosen) if chosen else None
