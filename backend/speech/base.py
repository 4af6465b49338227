"""The one interface every speech encoder follows.

An encoder maps 16 kHz samples to features at its own frame rate
(``native_rate``, e.g. 50 frames/s); ``features_at`` resamples them in time
to the motion frame rate so that frame ``k`` of the features lines up with
frame ``k`` of the motion: ``T = round(n_samples / 16000 * fps)``.

Long audio is encoded in overlapping windows whose outputs are cross-faded
linearly over the overlap, so no encoder sees more than ``window_s`` seconds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..audio import SAMPLE_RATE, windows
from ..errors import ModelError


class SpeechModelError(ModelError):
    """A speech model folder is missing, incomplete or holds another kind of model."""


def n_frames(n_samples: int, fps: float) -> int:
    """Motion frames for ``n_samples`` of 16 kHz audio (the pipeline uses the same rule)."""
    return round(n_samples / SAMPLE_RATE * fps)


class SpeechEncoder(nn.Module):
    """Frozen speech encoder: ``encode(samples (N,)) -> (T_native, dim)``.

    Subclasses set ``name``, ``dim``, ``native_rate`` and implement
    ``_encode_window(samples (N,)) -> (T, dim)`` for one window. Encoders follow
    the device they were moved to with ``.to(device)``.
    """

    name: str = "speech"
    dim: int = 0
    native_rate: float = 50.0  # feature frames per second
    window_s: float = 30.0
    overlap_s: float = 5.0

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _encode_window(self, samples: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, samples: torch.Tensor) -> torch.Tensor:
        """Float32 features at ``native_rate``: (N,) 16 kHz samples -> (ceil(N * rate / 16000), dim)."""
        samples = _as_samples(samples).to(self.device)  # (N,)
        n_out = max(1, math.ceil(len(samples) * self.native_rate / SAMPLE_RATE))
        spans = windows(len(samples), self.window_s, self.overlap_s)
        if len(spans) == 1:
            return _fit(self._encode_window(samples).float(), n_out)
        return self._encode_long(samples, spans, n_out)

    def _encode_long(self, samples: torch.Tensor, spans, n_out: int) -> torch.Tensor:
        step = SAMPLE_RATE / self.native_rate  # samples per feature frame
        fade = self.overlap_s * self.native_rate  # overlap in feature frames
        total = torch.zeros(n_out, self.dim, device=samples.device)  # (T, D)
        weight = torch.zeros(n_out, 1, device=samples.device)  # (T, 1)
        for i, (start, end) in enumerate(spans):
            first = int(round(start / step))
            span = math.ceil((end - start) * self.native_rate / SAMPLE_RATE)  # frames this window covers
            feats = _fit(self._encode_window(samples[start:end]).float(), span)[: n_out - first]  # (t, D)
            j = torch.arange(feats.shape[0], device=samples.device, dtype=torch.float32)[:, None] + 0.5  # (t, 1)
            w = torch.ones_like(j)
            if i > 0:  # ramp up over the overlap with the previous window
                w = torch.minimum(w, (j / fade).clamp(0, 1))
            if i < len(spans) - 1:  # ramp down over the overlap with the next window
                w = torch.minimum(w, (((end - start) / step - j) / fade).clamp(0, 1))
            total[first : first + feats.shape[0]] += feats * w
            weight[first : first + feats.shape[0]] += w
        return total / weight.clamp_min(1e-6)

    @torch.no_grad()
    def features_at(self, samples: torch.Tensor, fps: float = 25.0) -> torch.Tensor:
        """Features resampled in time to ``fps``: (N,) -> (round(N / 16000 * fps), dim)."""
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        samples = _as_samples(samples)
        return resample_frames(self.encode(samples), self.native_rate, fps, n_frames(len(samples), fps))


def resample_frames(feats: torch.Tensor, rate: float, fps: float, n_out: int) -> torch.Tensor:
    """Linear interpolation in time between frame centres: (T, D) at ``rate`` -> (n_out, D) at ``fps``."""
    if n_out <= 0:
        return feats.new_zeros(0, feats.shape[1])
    k = torch.arange(n_out, device=feats.device, dtype=torch.float64)
    pos = ((k + 0.5) * rate / fps - 0.5).clamp(0, feats.shape[0] - 1)  # (n_out,) in source frames
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=feats.shape[0] - 1)
    frac = (pos - lo).to(feats.dtype)[:, None]  # (n_out, 1)
    return feats[lo] * (1 - frac) + feats[hi] * frac  # (n_out, D)


def _as_samples(samples) -> torch.Tensor:
    samples = torch.as_tensor(samples)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples of shape (N,), got {tuple(samples.shape)}")
    if samples.numel() == 0:
        raise ValueError("no samples to encode")
    return samples.float()


def _fit(feats: torch.Tensor, n: int) -> torch.Tensor:
    """Trim or edge-pad (T, D) features to exactly ``n`` frames (encoders differ by a frame)."""
    if feats.shape[0] >= n:
        return feats[:n]
    pad = feats[-1:].expand(n - feats.shape[0], -1)
    return torch.cat([feats, pad], dim=0)
