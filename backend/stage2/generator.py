"""Talking generator: content features + style embedding -> per-frame motion.

A transformer over time. Self-attention is local: each frame sees frames within
``radius`` of itself, with an ALiBi distance penalty per head, so the model has
no absolute positions and works on clips of any length; attention is computed
block by block, so time and memory grow linearly with the clip length. The style
embedding enters every block through adaptive layer norm (scale and shift from
the style).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class GeneratorConfig:
    hidden: int = 192
    layers: int = 4
    heads: int = 4
    radius: int = 32       # attention reach in frames, each side
    dropout: float = 0.1


def alibi_slopes(heads: int) -> torch.Tensor:
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)])  # (heads,)


class LocalAttentionBias:
    """The additive bias of banded attention, computed once per forward and shared by the blocks.

    Queries are cut into blocks of ``block`` frames; each block attends to the keys
    from ``radius`` frames before it to ``radius`` frames after it (a span of
    block + 2 * radius). Cost and memory grow linearly with T.
    """

    def __init__(self, mask: torch.Tensor, radius: int, slopes: torch.Tensor):
        T = mask.shape[1]
        self.radius, self.block = radius, 2 * radius
        self.n_blocks = -(-T // self.block)
        self.pad = self.n_blocks * self.block - T
        span = self.block + 2 * radius
        keys = F.pad(mask, (radius, radius + self.pad), value=True).unfold(1, span, self.block)  # (B, n_blocks, span)
        rel = torch.arange(span, device=mask.device)[None, :] - radius - torch.arange(self.block, device=mask.device)[:, None]
        dist = rel.abs()                                                              # (block, span)
        bias = -slopes.to(mask.device)[:, None, None] * dist.to(slopes.dtype)         # (heads, block, span)
        blocked = ((dist > radius)[None, None] | keys[:, :, None, :]) & (dist != 0)   # (B, n_blocks, block, span)
        self.bias = bias[None, :, None].masked_fill(blocked[:, None], float("-inf"))  # (B, heads, n_blocks, block, span)

    def blocks(self, x: torch.Tensor, as_keys: bool) -> torch.Tensor:
        """(B, heads, T, d) -> query blocks (B, heads, n, block, d) or key spans (B, heads, n, span, d)."""
        if not as_keys:
            return F.pad(x, (0, 0, 0, self.pad)).unflatten(2, (self.n_blocks, self.block))
        span = self.block + 2 * self.radius
        return F.pad(x, (0, 0, self.radius, self.radius + self.pad)).unfold(2, span, self.block).transpose(-1, -2)


class AdaLayerNorm(nn.Module):
    """LayerNorm whose scale and shift come from the style embedding (identity at init)."""

    def __init__(self, hidden: int, style_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.mod = nn.Linear(style_dim, 2 * hidden)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        scale, shift = self.mod(style).unsqueeze(1).chunk(2, dim=-1)  # (B, 1, H) each
        return self.norm(x) * (1 + scale) + shift


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden {hidden} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, local: LocalAttentionBias) -> torch.Tensor:
        B, T, H = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, H // self.heads).permute(2, 0, 3, 1, 4)  # (B, heads, T, d) each
        q, k, v = local.blocks(q, False), local.blocks(k, True), local.blocks(v, True)          # (B, heads, n, block|span, d)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=local.bias.to(q.dtype), dropout_p=p)  # (B, heads, n, block, d)
        y = y.flatten(2, 3)[:, :, :T]                                                           # (B, heads, T, d)
        return self.out(y.transpose(1, 2).reshape(B, T, H))


class Block(nn.Module):
    def __init__(self, config: GeneratorConfig, style_dim: int):
        super().__init__()
        self.norm1 = AdaLayerNorm(config.hidden, style_dim)
        self.attn = SelfAttention(config.hidden, config.heads, config.dropout)
        self.norm2 = AdaLayerNorm(config.hidden, style_dim)
        self.mlp = nn.Sequential(nn.Linear(config.hidden, 4 * config.hidden), nn.GELU(), nn.Linear(4 * config.hidden, config.hidden))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, style: torch.Tensor, local: LocalAttentionBias) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm1(x, style), local))
        return x + self.dropout(self.mlp(self.norm2(x, style)))


class TalkingGenerator(nn.Module):
    def __init__(self, config: GeneratorConfig, *, content_dim: int, style_dim: int, motion_dim: int):
        super().__init__()
        if config.radius < 1:
            raise ValueError(f"radius must be at least 1 frame, got {config.radius}")
        self.config = config
        self.proj = nn.Linear(content_dim, config.hidden)
        self.blocks = nn.ModuleList(Block(config, style_dim) for _ in range(config.layers))
        self.norm = AdaLayerNorm(config.hidden, style_dim)
        self.out = nn.Linear(config.hidden, motion_dim)
        self.register_buffer("slopes", alibi_slopes(config.heads), persistent=False)

    def forward(self, content: torch.Tensor, style: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """content (B, T, H_c), style (B, D_style), mask (B, T) True = padded -> motion (B, T, C), normalised."""
        if mask is None:
            mask = torch.zeros(content.shape[:2], dtype=torch.bool, device=content.device)
        local = LocalAttentionBias(mask, self.config.radius, self.slopes)
        x = self.proj(content)  # (B, T, H)
        for block in self.blocks:
            x = block(x, style, local)
        return self.out(self.norm(x, style))  # (B, T, C)
