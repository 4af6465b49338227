"""Q-Former: learnable queries that read speech features (paper, Sec. III-C, Fig. 3).

BLIP-2 style: a fixed set of query tokens passes through blocks of
self-attention (queries among themselves), cross-attention into the audio
features (padded frames masked out) and an MLP. The output, ``(B, Q, hidden)``,
is the audio embedding F_si^a that later becomes the LLM's soft prompt.

With ``words_dim`` set, the queries also start from the MiniLM embedding of the
words heard (the dialogue text, or what Whisper recognised): much of a line's
emotion is in what is said, which a small Q-Former over speech features misses.
A zero row means no words, and a learned vector stands in for them.

Pre-training aligns it with the instruction text (eq. 6): the queries are
averaged, projected and compared by cosine similarity with the projected
MiniLM embedding of the instruction; a symmetric InfoNCE with a learnable
temperature pulls matched pairs together and pushes in-batch negatives apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class QFormerConfig:
    audio_dim: int = 384  # speech feature size (Whisper tiny 384, HuBERT base 768)
    hidden: int = 256
    n_queries: int = 8  # an 8-token soft prompt keeps the LLM phase cheap on a CPU
    n_layers: int = 2
    n_heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.1
    text_dim: int = 384  # MiniLM sentence embedding
    embed_dim: int = 256  # shared space of the contrastive loss
    temperature: float = 0.07  # initial value; learned
    words_dim: int = 0  # MiniLM embedding of the words heard, added to the queries (0: speech only)

    def __post_init__(self):
        if self.hidden % self.n_heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by n_heads ({self.n_heads})")
        if min(self.audio_dim, self.hidden, self.n_queries, self.n_layers, self.text_dim, self.embed_dim) <= 0:
            raise ValueError("Q-Former sizes must be positive")
        if self.words_dim < 0:
            raise ValueError(f"words_dim must be 0 or positive, got {self.words_dim}")


class QFormerBlock(nn.Module):
    """Self-attention over queries, cross-attention into audio, MLP; pre-norm residuals."""

    def __init__(self, config: QFormerConfig):
        super().__init__()
        h, heads, p = config.hidden, config.n_heads, config.dropout
        self.ln_self = nn.LayerNorm(h)
        self.self_attn = nn.MultiheadAttention(h, heads, dropout=p, batch_first=True)
        self.ln_cross = nn.LayerNorm(h)
        self.cross_attn = nn.MultiheadAttention(h, heads, dropout=p, batch_first=True)
        self.ln_mlp = nn.LayerNorm(h)
        self.mlp = nn.Sequential(nn.Linear(h, config.mlp_ratio * h), nn.GELU(), nn.Linear(config.mlp_ratio * h, h), nn.Dropout(p))

    def forward(self, q: torch.Tensor, audio: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        x = self.ln_self(q)
        q = q + self.self_attn(x, x, x, need_weights=False)[0]  # (B, Q, H)
        x = self.ln_cross(q)
        q = q + self.cross_attn(x, audio, audio, key_padding_mask=pad, need_weights=False)[0]  # (B, Q, H)
        return q + self.mlp(self.ln_mlp(q))


class QFormer(nn.Module):
    """(B, T, audio_dim) speech features -> (B, n_queries, hidden) audio embedding."""

    def __init__(self, config: QFormerConfig):
        super().__init__()
        self.config = config
        self.queries = nn.Parameter(torch.randn(1, config.n_queries, config.hidden) * 0.02)
        self.audio_in = nn.Sequential(nn.LayerNorm(config.audio_dim), nn.Linear(config.audio_dim, config.hidden))
        if config.words_dim:
            self.words_in = nn.Sequential(nn.LayerNorm(config.words_dim), nn.Linear(config.words_dim, config.hidden))
            self.no_words = nn.Parameter(torch.zeros(config.hidden))
        self.blocks = nn.ModuleList(QFormerBlock(config) for _ in range(config.n_layers))
        self.ln_out = nn.LayerNorm(config.hidden)
        # contrastive head (eq. 6)
        self.audio_proj = nn.Linear(config.hidden, config.embed_dim)
        self.text_proj = nn.Linear(config.text_dim, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.temperature)))

    def forward(self, audio: torch.Tensor, mask: torch.Tensor | None = None, words: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` (B, T) is True on real frames; padded frames do not affect the output.
        ``words`` (B, words_dim): embeddings of the words heard, zero rows (or None) where there are none;
        a speech-only Q-Former (``words_dim`` 0) ignores them."""
        if audio.ndim != 3 or audio.shape[-1] != self.config.audio_dim:
            raise ValueError(f"expected speech features (B, T, {self.config.audio_dim}), got {tuple(audio.shape)}")
        pad = None
        if mask is not None:
            if mask.shape != audio.shape[:2]:
                raise ValueError(f"mask shape {tuple(mask.shape)} does not match features {tuple(audio.shape[:2])}")
            if not bool(mask.any(dim=1).all()):
                raise ValueError("every item needs at least one unmasked frame")
            pad = ~mask.bool()  # (B, T), True = ignore
        a = self.audio_in(audio)  # (B, T, H)
        q = self.queries.expand(audio.shape[0], -1, -1)  # (B, Q, H)
        if self.config.words_dim:
            q = q + self._words(words, audio.shape[0], a.dtype)[:, None]  # (B, Q, H)
        for block in self.blocks:
            q = block(q, a, pad)
        return self.ln_out(q)  # (B, Q, H)

    def _words(self, words: torch.Tensor | None, batch: int, dtype) -> torch.Tensor:
        """(B, words_dim) or None -> (B, H): projected words, the learned stand-in where a row is zero."""
        none = self.no_words.to(dtype).expand(batch, -1)
        if words is None:
            return none
        if words.shape != (batch, self.config.words_dim):
            raise ValueError(f"expected words of shape ({batch}, {self.config.words_dim}), got {tuple(words.shape)}")
        heard = words.abs().sum(dim=-1, keepdim=True) > 0  # (B, 1)
        return torch.where(heard, self.words_in(words.to(dtype)), none)

    def audio_embedding(self, query_out: torch.Tensor) -> torch.Tensor:
        """Mean over queries, projected, unit length: (B, Q, H) -> (B, E)."""
        return F.normalize(self.audio_proj(query_out.mean(dim=1)), dim=-1)

    def text_embedding(self, text: torch.Tensor) -> torch.Tensor:
        """MiniLM sentence embeddings, projected, unit length: (B, text_dim) -> (B, E)."""
        return F.normalize(self.text_proj(text), dim=-1)

    def contrastive_loss(self, query_out: torch.Tensor, text: torch.Tensor, group: torch.Tensor | None = None) -> torch.Tensor:
        """Symmetric InfoNCE between audio and instruction embeddings (eq. 6, both directions).

        Items whose instructions are identical count as positives of each other,
        so a batch with repeated instructions does not push true matches apart.
        ``group`` (B,) optional labels (e.g. the emotion): other items of the same
        group are left out of the negatives.
        """
        if query_out.shape[0] != text.shape[0]:
            raise ValueError("audio and text batches differ in size")
        a = self.audio_embedding(query_out)  # (B, E)
        t = self.text_embedding(text)  # (B, E)
        scale = self.logit_scale.exp().clamp(max=100.0)
        logits = scale * a @ t.T  # (B, B)
        text32 = text.float()
        same = torch.cdist(text32, text32, compute_mode="donot_use_mm_for_euclid_dist") < 1e-4  # (B, B) identical instructions (the mm path is not exact for B > 25)
        targets = same.float() / same.float().sum(dim=1, keepdim=True)  # (B, B), rows sum to 1
        if group is not None:
            if group.shape != logits.shape[:1]:
                raise ValueError(f"group must have shape ({logits.shape[0]},), got {tuple(group.shape)}")
            shared = (group[:, None] == group[None, :]) & ~same  # (B, B)
            logits = logits.masked_fill(shared, -1e4)  # finite: a zero target times -inf would be nan
        return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))  # same is symmetric
