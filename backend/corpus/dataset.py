"""Read training data: a built corpus, or real captures in the documented layout (README.md here).

Both give ``ClipRecord``s: paths plus metadata, loaded lazily (``.audio()``,
``.motion()``), so a data loader can index thousands of clips cheaply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import load_audio
from ..motion import Motion, load_motion
from ..errors import AviTalkError


class DatasetError(AviTalkError):
    """A dataset folder is missing, empty or laid out wrongly."""


@dataclass
class ClipRecord:
    id: str
    wav: Path
    motion_path: Path
    instructions: list[str]
    split: str = "train"
    speaker: str = ""
    emotion: str | None = None
    intensity: str | None = None
    transcript: str | None = None
    phones: list[tuple[str, float, float]] | None = None
    meta: dict = field(default_factory=dict)

    def audio(self) -> np.ndarray:
        """(N,) float32 16 kHz mono."""
        return load_audio(self.wav).samples

    def motion(self) -> Motion:
        return load_motion(self.motion_path)


def load_corpus(root, split: str | None = None) -> list[ClipRecord]:
    """Clips of a corpus built by ``backend.corpus.build`` (reads ``manifest.jsonl``, else ``clips/*.json``)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"corpus folder not found: {root}")
    manifest = root / "manifest.jsonl"
    if manifest.exists():
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    else:
        rows = [json.loads(p.read_text()) for p in sorted((root / "clips").glob("*.json")) if not p.name.endswith(".skip.json")]
    if not rows:
        raise DatasetError(f"no clips in {root} (expected manifest.jsonl or clips/*.json)")
    out = []
    for row in rows:
        if split is not None and row.get("split") != split:
            continue
        out.append(ClipRecord(
            id=row["id"], wav=root / row["wav"], motion_path=root / row["motion"], instructions=list(row["instructions"]),
            split=row.get("split", "train"), speaker=row.get("speaker") or "", emotion=row.get("emotion"),
            intensity=row.get("intensity"), transcript=row.get("transcript"),
            phones=[(p[0], float(p[1]), float(p[2])) for p in row.get("phones", [])], meta=row,
        ))
    return out


def load_real_layout(root, default_split: str = "train") -> list[ClipRecord]:
    """Clips laid out as ``<root>/<speaker>/<clip>.wav|.npz|.txt[|.json]`` (see README.md)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    out, problems = [], []
    for wav in sorted(root.glob("*/*.wav")):
        stem = wav.with_suffix("")
        npz, txt, meta_path = stem.with_suffix(".npz"), stem.with_suffix(".txt"), stem.with_suffix(".json")
        if not npz.exists():
            problems.append(f"{wav.relative_to(root)}: no motion file {npz.name}")
            continue
        if not txt.exists():
            problems.append(f"{wav.relative_to(root)}: no instruction file {txt.name}")
            continue
        texts = [line.strip() for line in txt.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not texts:
            problems.append(f"{txt.relative_to(root)}: no instruction lines")
            continue
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        if not isinstance(meta, dict):
            problems.append(f"{meta_path.relative_to(root)}: must hold a json object")
            continue
        phones = meta.get("phones")
        out.append(ClipRecord(
            id=f"{wav.parent.name}/{wav.stem}", wav=wav, motion_path=npz, instructions=texts,
            split=meta.get("split", default_split), speaker=wav.parent.name, emotion=meta.get("emotion"),
            intensity=meta.get("intensity"), transcript=meta.get("transcript"),
            phones=[(p[0], float(p[1]), float(p[2])) for p in phones] if phones else None, meta=meta,
        ))
    if not out:
        detail = "; ".join(problems[:5]) if problems else "no <speaker>/<clip>.wav files"
        raise DatasetError(f"no usable clips in {root}: {detail}")
    return out
