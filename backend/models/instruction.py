"""Instruction path: MiniLM sentence embedding -> aligned feature c, and the
contrastive instruction-style alignment of the paper (eq. 7).

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
    cond_dim: int = 128
    style_dim: int = 128
    proj_dim: int = 128
    temperature: float = 0.07
    learn_temperature: bool = True
    dropout: float = 0.1


class InstructionEncoder(nn.Module):
    def __init__(self, config: InstructionConfig):
        super().__init__()
        if config.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {config.temperature}")
        self.config = config
        self.mlp = nn.Sequential(
            nn.LayerNorm(config.text_dim),
            nn.Linear(config.text_dim, config.hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.cond_dim),
        )
        self.text_proj = nn.Linear(config.cond_dim, config.proj_dim)
        self.style_proj = nn.Linear(config.style_dim, config.proj_dim)
        log_scale = torch.tensor(math.log(1.0 / config.temperature))
        if config.learn_temperature:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def forward(self, text_emb: torch.Tensor) -> torch.Tensor:
        """text_emb (B, text_dim) -> aligned instruction feature c (B, cond_dim)."""
        if text_emb.shape[-1] != self.config.text_dim:
            raise ValueError(f"text embedding has {text_emb.shape[-1]} channels, expected {self.config.text_dim}")
        return self.mlp(text_emb)

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
