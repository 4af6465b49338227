"""Channel augmentation of training audio, so speech features do not learn TTS timbre.

Band-limiting (telephone, radio, wide), synthetic room reverb (an exponentially
decaying noise impulse response), additive noise at a random SNR, and gain.
Timing is kept exact: no time stretch or pitch shift, and the output has the
input's length, so alignment and motion made on the clean audio stay valid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import butter, fftconvolve, sosfiltfilt

from ..audio import SAMPLE_RATE

BANDS = {"wide": (50.0, 7800.0), "telephone": (300.0, 3400.0), "radio": (150.0, 5000.0), "muffled": (80.0, 2500.0)}
NOISES = ("white", "pink", "brown", "babble")


@dataclass
class AugmentParams:
    band: str = "wide"
    reverb_rt60: float = 0.0  # seconds; 0 = dry
    reverb_mix: float = 0.0  # wet share, 0..1
    noise: str = "white"
    snr_db: float | None = None  # None = no noise
    gain_db: float = 0.0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def random_params(rng: np.random.Generator, clean_share: float = 0.2) -> AugmentParams:
    """Random augmentation; ``clean_share`` of clips stay untouched except for gain."""
    seed = int(rng.integers(0, 2**31 - 1))
    if rng.random() < clean_share:
        return AugmentParams(gain_db=float(rng.uniform(-6, 3)), seed=seed)
    band = str(rng.choice(list(BANDS), p=[0.4, 0.3, 0.2, 0.1]))
    rt60 = float(rng.uniform(0.15, 0.7)) if rng.random() < 0.5 else 0.0
    return AugmentParams(
        band=band,
        reverb_rt60=rt60,
        reverb_mix=float(rng.uniform(0.1, 0.4)) if rt60 else 0.0,
        noise=str(rng.choice(NOISES)),
        snr_db=float(rng.uniform(5, 35)) if rng.random() < 0.7 else None,
        gain_db=float(rng.uniform(-9, 3)),
        seed=seed,
    )


def apply(samples: np.ndarray, params: AugmentParams, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Augmented copy of (N,) float32 ``samples``; same length, peak at most 0.99."""
    if params.band not in BANDS:
        raise ValueError(f"unknown band {params.band!r}; expected one of {', '.join(BANDS)}")
    if params.noise not in NOISES:
        raise ValueError(f"unknown noise {params.noise!r}; expected one of {', '.join(NOISES)}")
    rng = np.random.default_rng(params.seed)
    x = np.asarray(samples, dtype=np.float64)
    if params.reverb_rt60 > 0 and params.reverb_mix > 0:
        x = (1 - params.reverb_mix) * x + params.reverb_mix * _reverb(x, params.reverb_rt60, rng, sample_rate)
    x = _band(x, *BANDS[params.band], sample_rate)
    if params.snr_db is not None:
        noise = _noise(params.noise, len(x), rng, x)
        power = np.mean(x**2) + 1e-12
        x = x + noise * np.sqrt(power / (np.mean(noise**2) + 1e-12) / 10 ** (params.snr_db / 10))
    x = x * 10 ** (params.gain_db / 20)
    peak = np.abs(x).max()
    if peak > 0.99:
        x *= 0.99 / peak
    return x.astype(np.float32)


def _band(x: np.ndarray, low: float, high: float, sample_rate: int) -> np.ndarray:
    high = min(high, 0.45 * sample_rate)
    sos = butter(4, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    return sosfiltfilt(sos, x)  # zero phase: no delay


def _reverb(x: np.ndarray, rt60: float, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    ir[0] = 0.0  # the dry path is mixed separately
    wet = fftconvolve(x, ir)[: len(x)]  # causal, aligned with the dry signal
    return wet * np.sqrt(np.mean(x**2) / (np.mean(wet**2) + 1e-12))


def _noise(kind: str, n: int, rng: np.random.Generator, speech: np.ndarray) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    if kind == "babble":  # the speech itself, shuffled in 200 ms chunks and summed a few times
        chunk = SAMPLE_RATE // 5
        out = np.zeros(n)
        for _ in range(4):
            pieces = [speech[i:i + chunk] for i in range(0, n, chunk)]
            order = rng.permutation(len(pieces))
            out += np.concatenate([pieces[i] for i in order])[:n]
        return out + 0.01 * white
    spectrum = np.fft.rfft(white)
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    spectrum /= np.sqrt(f) if kind == "pink" else f  # 1/f or 1/f^2 power
    return np.fft.irfft(spectrum, n)
