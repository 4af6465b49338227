"""Instruction path: MiniLM sentence embedding -> aligned feature c, and the
contrastive instruction-style alignment of the paper (eq. 7).

With a sentence bank (``bank_size`` > 0), an instruction is first read as a
weighted mix of its nearest training sentences (cosine, softmax over the top
``bank_k``). A training sentence stays close to itself; wording the corpus
never used ("she's about to blow her top") lands among the training sentences
MiniLM finds nearest, instead of somewhere the MLP never saw.

With ``lm_dim`` > 0 the input also carries an LM reading of the sentence (the
mean of the LLM's last hidden states, SmolLM2's by default; ``text.LMTextEncoder``)
after the MiniLM part; it skips the bank and goes to the MLP beside the MiniLM reading. In
training each part is dropped now and then (``part_drop``), so that the MLP
learns to read the LM part and not only the bank's near-exact match.

``encode`` gives c, the condition of the diffusion prior. For the contrastive loss,
c and the style embedding are each projected into a shared space (F_ci^i, F_ci^s)
and compared by cosine similarity over the batch, CLIP-style, in both directions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class InstructionConfig:
    text_dim: int = 384
    hidden: int = 256
    proj_dim: int = 128
    temperature: float = 0.07
    learn_temperature: bool = True
    dropout: float = 0.1
    bank_size: int = 8192          # training sentences kept to read instructions by (0: none)
    bank_k: int = 16
    bank_temperature: float = 0.03
    lm_dim: int = 576              # LM reading of the instruction beside MiniLM (0: MiniLM only; SmolLM2-135M: 576)
    part_drop: float = 0.35        # training: chance of dropping each text part (LM reading only)

    @property
    def input_dim(self) -> int:
        return self.text_dim + self.lm_dim


class InstructionEncoder(nn.Module):
    def __init__(self, config: InstructionConfig, *, style_dim: int, cond_dim: int):
        super().__init__()
        if config.temperature <= 0 or config.bank_temperature <= 0:
            raise ValueError(f"temperatures must be positive, got {config.temperature} and {config.bank_temperature}")
        if not 0.0 <= config.part_drop < 0.5:
            raise ValueError(f"part_drop must be in [0, 0.5), got {config.part_drop}")
        self.config = config
        self.mlp = nn.Sequential(
            nn.LayerNorm(config.input_dim),
            nn.Linear(config.input_dim, config.hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, cond_dim),
        )
        self.text_proj = nn.Linear(cond_dim, config.proj_dim)
        self.style_proj = nn.Linear(style_dim, config.proj_dim)
        log_scale = torch.tensor(math.log(1.0 / config.temperature))
        if config.learn_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)
        if config.bank_size:
            self.register_buffer("bank", torch.zeros(config.bank_size, config.text_dim))  # unit rows once filled
        else:
            self.bank = None

    def set_bank(self, sentences: torch.Tensor) -> None:
        """Fill the bank with (bank_size, text_dim) sentence embeddings of the training instructions."""
        if self.bank is None or sentences.shape != self.bank.shape:
            shape = None if self.bank is None else tuple(self.bank.shape)
            raise ValueError(f"bank takes embeddings of shape {shape}, got {tuple(sentences.shape)}")
        with torch.no_grad():
            self.bank.copy_(F.normalize(sentences.float(), dim=-1))

    def read(self, text_emb: torch.Tensor) -> torch.Tensor:
        """(B, text_dim) -> the softmax-weighted mix of the nearest bank sentences (B, text_dim)."""
        if not bool(self.bank[0].any()):
            raise ValueError("the instruction bank was never filled: call set_bank before use")
        sim = F.normalize(text_emb, dim=-1) @ self.bank.t()                   # (B, N)
        top = sim.topk(min(self.config.bank_k, len(self.bank)), dim=-1)        # (B, k)
        weight = torch.softmax(top.values / self.config.bank_temperature, dim=-1)
        return (weight.unsqueeze(-1) * self.bank[top.indices]).sum(dim=1)    # (B, text_dim)

    def forward(self, text_emb: torch.Tensor) -> torch.Tensor:
        """text_emb (B, text_dim [+ lm_dim]) -> aligned instruction feature c (B, cond_dim)."""
        cfg = self.config
        if text_emb.shape[-1] != cfg.input_dim:
            what = f"{cfg.text_dim} (MiniLM) + {cfg.lm_dim} (LM)" if cfg.lm_dim else f"{cfg.text_dim}"
            raise ValueError(f"text embedding has {text_emb.shape[-1]} channels, expected {what}")
        sentence, lm = text_emb[..., :cfg.text_dim], text_emb[..., cfg.text_dim:]
        if self.bank is not None:
            sentence = self.read(sentence)
        if not cfg.lm_dim:
            return self.mlp(sentence)
        lm = F.layer_norm(lm, lm.shape[-1:])
        if self.training and cfg.part_drop > 0:
            u = torch.rand(len(text_emb), 1, device=text_emb.device)
            sentence = sentence * (u >= cfg.part_drop)                     # MiniLM part dropped
            lm = lm * ((u < cfg.part_drop) | (u >= 2 * cfg.part_drop))     # LM part dropped, never both
        return self.mlp(torch.cat([sentence, lm], dim=-1))

    def contrastive_loss(self, c: torch.Tensor, style: torch.Tensor, group: torch.Tensor | None = None) -> torch.Tensor:
        """Symmetric InfoNCE between instructions c (B, cond_dim) and styles (B, style_dim) of the same clips.

        group (B,) optional labels: clips sharing a label (e.g. the same emotion or
        instruction) are left out of each other's negatives; the pair on the diagonal
        stays the only positive.
        """
        text = F.normalize(self.text_proj(c), dim=-1)        # (B, P)
        sty = F.normalize(self.style_proj(style), dim=-1)    # (B, P)
        scale = self.log_scale.clamp(max=math.log(100.0)).exp()
        logits = scale * text @ sty.t()                      # (B, B)
        if group is not None:
            if group.shape != logits.shape[:1]:
                raise ValueError(f"group must have shape ({logits.shape[0]},), got {tuple(group.shape)}")
            same = group[:, None] == group[None, :]          # (B, B)
            eye = torch.eye(len(group), dtype=torch.bool, device=logits.device)
            logits = logits.masked_fill(same & ~eye, float("-inf"))
        target = torch.arange(len(logits), device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
