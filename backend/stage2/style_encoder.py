"""Style encoder (StyleTalk-like): S reference motion frames -> one style embedding.

The reference frames are an unordered set of normalised FLAME coefficients drawn
from the same clip (no positional encoding). A transformer mixes them, attention
pooling with a learned score turns them into one vector, and a LayerNorm without
affine parameters keeps every embedding at zero mean and unit variance over its
channels, the scale the diffusion prior expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class StyleEncoderConfig:
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    dropout: float = 0.1


class AttentionPool(nn.Module):
    """Softmax-weighted mean over a set, with a learned per-element score."""

    def __init__(self, hidden: int):
        super().__init__()
        self.score = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        score = self.score(x).squeeze(-1).masked_fill(mask, float("-inf"))  # (B, S)
        weight = score.softmax(dim=-1)                                       # (B, S)
        return torch.einsum("bs,bsh->bh", weight, x)                         # (B, H)


class StyleEncoder(nn.Module):
    def __init__(self, config: StyleEncoderConfig, *, motion_dim: int, style_dim: int):
        super().__init__()
        self.config = config
        self.motion_dim, self.style_dim = motion_dim, style_dim
        self.proj = nn.Linear(motion_dim, config.hidden)
        layer = nn.TransformerEncoderLayer(
            config.hidden, config.heads, 4 * config.hidden, config.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.pool = AttentionPool(config.hidden)
        self.out = nn.Linear(config.hidden, style_dim)
        self.out_norm = nn.LayerNorm(style_dim, elementwise_affine=False)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """frames (B, S, C) normalised motion, mask (B, S) True = padded -> style (B, D_style)."""
        if frames.shape[-1] != self.motion_dim:
            raise ValueError(f"reference frames have {frames.shape[-1]} channels, the style encoder expects {self.motion_dim}")
        if mask is None:
            mask = torch.zeros(frames.shape[:2], dtype=torch.bool, device=frames.device)
        if bool(mask.all(dim=1).any()):
            raise ValueError("every sample needs at least one unmasked reference frame")
        frames = frames.masked_fill(mask.unsqueeze(-1), 0.0)    # (B, S, C)
        x = self.proj(frames)                                    # (B, S, H)
        x = self.transformer(x, src_key_padding_mask=mask)       # (B, S, H)
        return self.out_norm(self.out(self.pool(x, mask)))       # (B, D_style)


def sample_reference_frames(
    motion: torch.Tensor,
    n_frames: int,
    mask: torch.Tensor | None = None,
    exclude: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n_frames`` random frames per clip, without replacement, for the style encoder.

    motion (B, T, C); mask (B, T) True = padded; exclude (B, T) True = frames not to pick
    (the paper leaves out the frames being predicted). A clip with no frame left after
    ``exclude`` falls back to all its valid frames. Returns frames (B, S, C) and a mask
    (B, S), True where a clip had fewer than S frames to give. ``generator`` is a CPU
    torch.Generator (the draw is made on the CPU, then moved to motion's device).
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    B, T, _ = motion.shape
    valid = torch.ones(B, T, dtype=torch.bool, device=motion.device) if mask is None else ~mask
    if bool((~valid.any(dim=1)).any()):
        raise ValueError("a clip has no valid frame to take reference frames from")
    allowed = valid if exclude is None else valid & ~exclude              # (B, T)
    allowed = torch.where(allowed.any(dim=1, keepdim=True), allowed, valid)
    noise = torch.rand(B, T, generator=generator).to(motion.device)       # (B, T)
    score = noise.masked_fill(~allowed, -1.0)
    k = min(n_frames, T)
    top, index = score.topk(k, dim=1)                                      # (B, k)
    frames = torch.gather(motion, 1, index.unsqueeze(-1).expand(-1, -1, motion.shape[-1]))  # (B, k, C)
    ref_mask = top < 0                                                     # (B, k)
    if k < n_frames:
        pad = n_frames - k
        frames = torch.cat([frames, frames.new_zeros(B, pad, frames.shape[-1])], dim=1)
        ref_mask = torch.cat([ref_mask, ref_mask.new_ones(B, pad)], dim=1)
    return frames, ref_mask
