"""Diffusion prior (DALL-E 2 style): aligned instruction feature c -> style embedding.

A decoder-only transformer reads the tokens [c, timestep, z_t, query] under a
causal mask and predicts the clean embedding z_0 at the query token (eq. 8: MSE
on z_0, not on the noise). Cosine noise schedule; deterministic DDIM sampling in
a few steps from seeded noise; optional classifier-free guidance, trained by
replacing c with a learned null token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class PriorConfig:
    hidden: int = 192
    layers: int = 3
    heads: int = 4
    timesteps: int = 1000
    cond_drop: float = 0.1      # probability of training without c (for guidance)
    sample_steps: int = 16
    guidance: float = 1.0       # 1.0 = no classifier-free guidance
    dropout: float = 0.0


def cosine_alphas_cumprod(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """alpha-bar(t) of the cosine schedule (Nichol & Dhariwal), t = 0 .. timesteps-1."""
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    f = torch.cos((x / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = f / f[0]
    betas = (1 - alphas_cumprod[1:] / alphas_cumprod[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0).float()  # (timesteps,)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps t (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([args.cos(), args.sin()], dim=-1)
    return F.pad(emb, (0, dim - 2 * half))


class DiffusionPrior(nn.Module):
    N_TOKENS = 4  # c, timestep, z_t, query

    def __init__(self, config: PriorConfig, *, style_dim: int, cond_dim: int):
        super().__init__()
        if config.timesteps < 2:
            raise ValueError(f"timesteps must be at least 2, got {config.timesteps}")
        self.config = config
        H = config.hidden
        self.style_dim = style_dim
        self.cond_in = nn.Linear(cond_dim, H)
        self.time_in = nn.Sequential(nn.Linear(H, H), nn.SiLU(), nn.Linear(H, H))
        self.z_in = nn.Linear(style_dim, H)
        self.null_cond = nn.Parameter(torch.zeros(cond_dim))
        self.query = nn.Parameter(torch.randn(H) * 0.02)
        self.pos = nn.Parameter(torch.randn(self.N_TOKENS, H) * 0.02)
        layer = nn.TransformerEncoderLayer(H, config.heads, 4 * H, config.dropout, activation="gelu", batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(H)
        self.out = nn.Linear(H, style_dim)
        self.register_buffer("alphas_cumprod", cosine_alphas_cumprod(config.timesteps), persistent=False)
        causal = torch.triu(torch.ones(self.N_TOKENS, self.N_TOKENS, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal_mask", causal, persistent=False)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """z_t (B, D_style) noised embedding, t (B,) int timesteps, c (B, D_c) -> predicted z_0 (B, D_style)."""
        B = z_t.shape[0]
        tokens = torch.stack(
            [
                self.cond_in(c),                                                   # (B, H)
                self.time_in(timestep_embedding(t, self.config.hidden).to(z_t.dtype)),
                self.z_in(z_t),
                self.query.to(z_t.dtype).expand(B, -1),
            ],
            dim=1,
        ) + self.pos                                                               # (B, 4, H)
        x = self.transformer(tokens, mask=self.causal_mask, is_causal=True)        # (B, 4, H)
        return self.out(self.norm(x[:, -1]))                                       # (B, D_style)

    def q_sample(self, z0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        ab = self.alphas_cumprod[t].to(z0.dtype)[:, None]  # (B, 1)
        return ab.sqrt() * z0 + (1 - ab).sqrt() * noise

    def loss(self, z0: torch.Tensor, c: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Eq. 8: MSE between z0 (B, D_style) and its prediction from z_t at a random t, given c (B, D_c).
        ``generator`` (CPU) makes the draws of t, noise and condition dropout reproducible."""
        B = z0.shape[0]
        t = torch.randint(0, self.config.timesteps, (B,), generator=generator).to(z0.device)        # (B,)
        noise = torch.randn(z0.shape, generator=generator).to(z0)                                    # (B, D_style)
        drop = (torch.rand(B, generator=generator) < self.config.cond_drop).to(z0.device)            # (B,)
        c = torch.where(drop[:, None], self.null_cond.to(c.dtype).expand_as(c), c)
        return F.mse_loss(self(self.q_sample(z0, t, noise), t, c), z0)

    def _predict(self, z_t: torch.Tensor, t: torch.Tensor, c: torch.Tensor, guidance: float) -> torch.Tensor:
        if guidance == 1.0:
            return self(z_t, t, c)
        null = self.null_cond.to(c.dtype).expand_as(c)
        cond, uncond = self(torch.cat([z_t, z_t]), torch.cat([t, t]), torch.cat([c, null])).chunk(2)
        return uncond + guidance * (cond - uncond)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, seed: int = 0, steps: int | None = None, guidance: float | None = None) -> torch.Tensor:
        """Deterministic DDIM sampling: c (B, D_c) -> style embeddings (B, D_style).

        The initial noise is drawn on the CPU from ``torch.Generator().manual_seed(seed)``,
        so one seed gives one sample on any device; the B rows get different noise.
        """
        steps = self.config.sample_steps if steps is None else int(steps)
        guidance = self.config.guidance if guidance is None else float(guidance)
        if not 1 <= steps <= self.config.timesteps:
            raise ValueError(f"steps must be in [1, {self.config.timesteps}], got {steps}")
        if guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {guidance}")
        B = c.shape[0]
        generator = torch.Generator().manual_seed(int(seed))
        z = torch.randn(B, self.style_dim, generator=generator).to(c)  # (B, D_style)
        times = torch.linspace(self.config.timesteps - 1, 0, steps).round().long().tolist()
        z0 = z
        for i, t in enumerate(times):
            t_batch = torch.full((B,), t, dtype=torch.long, device=c.device)
            z0 = self._predict(z, t_batch, c, guidance)                       # (B, D_style)
            ab = self.alphas_cumprod[t].to(c.dtype)
            ab_prev = self.alphas_cumprod[times[i + 1]].to(c.dtype) if i + 1 < steps else torch.ones((), dtype=c.dtype, device=c.device)
            eps = (z - ab.sqrt() * z0) / (1 - ab).sqrt()
            z = ab_prev.sqrt() * z0 + (1 - ab_prev).sqrt() * eps
        return z0
