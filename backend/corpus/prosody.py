"""Pitch and energy contours of speech at the motion frame rate (numpy only).

Pitch is the autocorrelation peak between 60 and 450 Hz in a 50 ms window,
kept where the normalised peak is strong and the frame is loud enough
(voiced), else 0. Energy is RMS in dB relative to the clip's loudest frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Contours:
    f0: np.ndarray  # (T,) Hz, 0 where unvoiced
    energy_db: np.ndarray  # (T,) dB relative to the loudest frame (<= 0)

    @property
    def voiced(self) -> np.ndarray:
        return self.f0 > 0


def contours(samples: np.ndarray, n_frames: int, fps: float, sample_rate: int = 16000) -> Contours:
    """Pitch and energy at frame centres ``k / fps`` for ``k < n_frames``."""
    x = np.asarray(samples, dtype=np.float64)
    win = int(0.05 * sample_rate)
    lo, hi = int(sample_rate / 450), int(sample_rate / 60)
    padded = np.pad(x, (win, win))
    centres = (np.arange(n_frames) / fps * sample_rate).astype(int) + win
    frames = np.stack([padded[c - win // 2: c - win // 2 + win] for c in centres]) if n_frames else np.zeros((0, win))  # (T, W)
    frames = frames - frames.mean(axis=1, keepdims=True)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)  # (T,)
    energy_db = 20 * np.log10(rms / (rms.max() if n_frames else 1.0))
    spec = np.fft.rfft(frames * np.hanning(win), n=2 * win, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :win]  # (T, W) autocorrelation
    ac /= ac[:, :1] + 1e-12
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)  # (T,)
    strength = ac[np.arange(n_frames), lag]
    f0 = np.where((strength > 0.45) & (energy_db > -30), sample_rate / lag, 0.0)
    return Contours(f0=f0.astype(np.float32), energy_db=energy_db.astype(np.float32))
