"""Safetensors checkpoints that carry their dataclass config and a format version."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .errors import AviTalkError

FORMAT_VERSION = 1


class CheckpointError(AviTalkError):
    """A checkpoint file is missing, unreadable or of the wrong kind."""
    code = "no_weights"


def save_checkpoint(path, module: torch.nn.Module, config, kind: str, extra: dict | None = None) -> None:
    """Write ``module``'s weights with ``config`` (a dataclass) and ``kind`` in the metadata."""
    meta = {
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "config": json.dumps(dataclasses.asdict(config)),
        "extra": json.dumps(extra or {}),
    }
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)


def read_checkpoint(path, kind: str | None = None):
    """Return ``(config_dict, state_dict, extra)``; check the kind and format version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for a bad header
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    version = int(meta.get("format_version", "0"))
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version}, this AVI-Talk reads {FORMAT_VERSION}")
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{path}: holds a '{meta.get('kind')}' model, expected '{kind}'")
    return json.loads(meta["config"]), state, json.loads(meta.get("extra", "{}"))


def load_checkpoint(path, model_cls, config_cls, kind: str, map_location="cpu"):
    """Rebuild ``model_cls(config_cls(**config))`` and load its weights."""
    config_dict, state, extra = read_checkpoint(path, kind)
    names = {f.name for f in dataclasses.fields(config_cls)}
    config = config_cls(**{k: v for k, v in config_dict.items() if k in names})
    model = model_cls(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match {model_cls.__name__} (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(map_location), extra
