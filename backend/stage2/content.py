"""Speech content path: speech features -> compressed per-frame content features.

As in EMOTE: a linear map of the ASR features, then temporal 1-D convolutions.
The output keeps the input length (25 fps, the motion frame rate).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class ContentConfig:
    speech_dim: int = 384  # speech feature size (Whisper tiny.en)
    hidden: int = 192
    layers: int = 2
    kernel: int = 5
    dropout: float = 0.1


class ConvBlock(nn.Module):
    """Residual: LayerNorm -> Conv1d over time -> GELU -> dropout."""

    def __init__(self, hidden: int, kernel: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = self.norm(x) * keep                          # (B, T, H), padded frames zeroed
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)  # (B, T, H)
        return x + self.dropout(F.gelu(h))


class ContentEncoder(nn.Module):
    def __init__(self, config: ContentConfig):
        super().__init__()
        if config.kernel < 1 or config.kernel % 2 == 0:
            raise ValueError(f"content kernel must be odd and positive, got {config.kernel}")
        self.config = config
        self.proj = nn.Linear(config.speech_dim, config.hidden)
        self.blocks = nn.ModuleList(ConvBlock(config.hidden, config.kernel, config.dropout) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.hidden)

    def forward(self, speech: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """speech (B, T, D_speech), mask (B, T) True = padded -> content (B, T, H).

        Padded frames are zeroed before every convolution, so they never reach valid frames.
        """
        if speech.shape[-1] != self.config.speech_dim:
            raise ValueError(f"speech features have {speech.shape[-1]} channels, the content path expects {self.config.speech_dim}")
        keep = torch.ones_like(speech[..., :1]) if mask is None else (~mask).unsqueeze(-1).to(speech.dtype)  # (B, T, 1)
        x = self.proj(speech) * keep  # (B, T, H)
        for block in self.blocks:
            x = block(x, keep)
        return self.norm(x) * keep  # (B, T, H)
