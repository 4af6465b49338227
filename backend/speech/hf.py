"""HuBERT and wav2vec 2.0 encoders from a local transformers folder.

The paper encodes stage-1 audio with HuBERT and stage-2 speech content with
wav2vec 2.0. Both are read from a folder on disk only (``local_files_only``),
never from the hub. Features come from the last hidden state by default, or
from any hidden layer (``layer=6`` is a middle layer of a 12-layer base model;
middle layers carry more prosody and emotion than the last one).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .base import SpeechEncoder, SpeechModelError

MODEL_TYPES = {"hubert": "HubertModel", "wav2vec2": "Wav2Vec2Model"}


class HFSpeechEncoder(SpeechEncoder):
    """A transformers HuBERT / wav2vec 2.0 model as a frozen ``SpeechEncoder`` (50 frames/s)."""

    native_rate = 50.0  # the conv front end strides 320 samples at 16 kHz

    def __init__(self, model, name: str, layer: int | None = None, normalize: bool = False):
        super().__init__()
        n_layers = model.config.num_hidden_layers
        if layer is not None and not -n_layers - 1 <= layer <= n_layers:
            raise ValueError(f"layer must be in [-{n_layers + 1}, {n_layers}] for this model, got {layer}")
        self.model = model
        self.name = name
        self.dim = model.config.hidden_size
        self.layer = layer
        self.normalize = normalize  # zero-mean unit-variance input, as the feature extractor's do_normalize
        self.requires_grad_(False)
        self.eval()

    def _encode_window(self, samples: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            samples = (samples - samples.mean()) / (samples.std() + 1e-7)
        out = self.model(samples[None], output_hidden_states=self.layer is not None)
        if self.layer is None:
            return out.last_hidden_state[0]  # (T, D)
        return out.hidden_states[self.layer][0]  # (T, D); 0 is the input to the first layer


def load_hf_encoder(folder, kind: str, layer: int | None = None) -> HFSpeechEncoder:
    """Load ``kind`` ("hubert" or "wav2vec2") from the local ``folder``."""
    import transformers

    if kind not in MODEL_TYPES:
        raise ValueError(f"kind must be one of {sorted(MODEL_TYPES)}, got {kind!r}")
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise SpeechModelError(f"no {kind} model folder at {folder} (config.json missing)")
    model_type = json.loads(config_path.read_text()).get("model_type")
    if model_type != kind:
        raise SpeechModelError(f"{folder} holds a '{model_type}' model, expected '{kind}'")
    model_cls = getattr(transformers, MODEL_TYPES[kind])
    try:
        model = model_cls.from_pretrained(str(folder), local_files_only=True)
    except OSError as exc:
        raise SpeechModelError(f"cannot load {kind} weights from {folder}: {exc}") from exc
    normalize = _do_normalize(folder)
    return HFSpeechEncoder(model, kind, layer=layer, normalize=normalize)


def _do_normalize(folder: Path) -> bool:
    """The folder's feature extractor says whether the model expects normalised input."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return False
    return bool(json.loads(path.read_text()).get("do_normalize", False))
