"""Prosodic cues of one clip that survive an unknown voice (numpy only).

How a line is spoken shows in its effort, pitch movement and tempo more than in
any one voice's timbre. Every cue is measured relative to the clip itself (its
own loudest frames, its own median pitch), so the recording's gain and the
speaker's natural pitch do not decide it; the one absolute cue, the median
pitch, is there for the speaker's sex.

Frames of 40 ms every 10 ms. Speech frames are those within ``SPEECH_DB`` of
the loudest frame. Pitch is the normalised autocorrelation peak between 60 and
500 Hz, kept where it is strong (voiced). The cues, in ``CUE_NAMES`` order:

- effort: ``loud_spread_db`` (90th minus 10th percentile of speech-frame level),
  ``loud_top_share`` (share of speech frames within 6 dB of the loudest),
  ``tilt_db`` (energy above 1 kHz over energy below, dB, on speech frames: a
  raised voice tilts up), ``centroid_log`` (log2 spectral centroid in kHz),
  ``crest_db`` (peak sample over speech RMS);
- pitch: ``f0_log`` (log2 of the median pitch over 100 Hz), ``f0_range_st``
  (90th minus 10th percentile, semitones), ``f0_std_st``, ``f0_move_st``
  (mean absolute change between voiced frames, semitones per 10 ms),
  ``f0_slope_st`` (last voiced third minus first, semitones), ``f0_top_st``
  (95th percentile over the median: how high the voice goes above its own level),
  ``voicing`` (mean autocorrelation peak on voiced frames: tense vs breathy),
  ``voiced_share`` (voiced over speech frames);
- tempo: ``rate_per_s`` (loudness peaks per second of speech, about syllables),
  ``pause_share`` (non-speech frames inside the speech span), ``duration_log``
  (log2 seconds of the speech span).
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
HOP_S = 0.010
WINDOW_S = 0.040
SPEECH_DB = 35.0       # speech frames: within this of the loudest frame
VOICED_PEAK = 0.45     # normalised autocorrelation peak above which a frame is voiced
F0_MIN, F0_MAX = 60.0, 500.0
OCTAVE_COST = 0.05     # per octave down, against picking a multiple of the period

CUE_NAMES = ("loud_spread_db", "loud_top_share", "tilt_db", "centroid_log", "crest_db",
             "f0_log", "f0_range_st", "f0_std_st", "f0_move_st", "f0_slope_st", "f0_top_st", "voicing", "voiced_share",
             "rate_per_s", "pause_share", "duration_log")
N_CUES = len(CUE_NAMES)


def _frames(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """(N,) -> (F, win) overlapping frames (zero-padded at the end)."""
    n = max(1, 1 + (len(x) - win + hop - 1) // hop)
    x = np.pad(x, (0, max(0, (n - 1) * hop + win - len(x))))
    index = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    return x[index]


def _pitch(frames: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(F, W) frames -> (F,) pitch in Hz and (F,) normalised autocorrelation peak.

    Boersma's (1993) method: the windowed frame's autocorrelation divided by the window's own, so
    long lags are not penalised by the window, and a small cost per octave down (``OCTAVE_COST``)
    that settles the tie between a period and its multiples."""
    win = frames.shape[1]
    window = np.hanning(win)
    spec = np.fft.rfft(frames * window, n=2 * win, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :win]  # (F, W)
    ac_w = np.fft.irfft(np.abs(np.fft.rfft(window, n=2 * win)) ** 2)[:win]  # (W,)
    lo, hi = int(sample_rate / F0_MAX), min(int(sample_rate / F0_MIN), win // 2)
    r = ac[:, lo:hi] / (ac[:, :1] + 1e-12) / (ac_w[lo:hi] / ac_w[0])  # (F, L)
    lags = np.arange(lo, hi)
    score = r - OCTAVE_COST * np.log2(F0_MIN * lags / sample_rate)[None, :]
    best = np.argmax(score, axis=1)  # (F,)
    peak = np.clip(r[np.arange(len(r)), best], 0.0, 1.0)
    a = r[np.arange(len(r)), np.maximum(best - 1, 0)]
    c = r[np.arange(len(r)), np.minimum(best + 1, hi - lo - 1)]
    shift = np.clip(0.5 * (a - c) / (a - 2 * r[np.arange(len(r)), best] + c - 1e-12), -0.5, 0.5)  # parabolic refinement
    return sample_rate / (lags[best] + shift), peak


def cues(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(N,) mono samples -> (N_CUES,) float32 cues (see the module docstring); zeros for a silent clip."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"cues take mono (N,) samples, got shape {x.shape}")
    out = np.zeros(N_CUES, dtype=np.float32)
    hop, win = int(HOP_S * sample_rate), int(WINDOW_S * sample_rate)
    if len(x) < win or not np.any(x):
        return out
    x = x - x.mean()
    frames = _frames(x, win, hop)  # (F, W)
    rms = np.sqrt(np.mean(frames ** 2, axis=1) + 1e-12)
    level = 20 * np.log10(rms / rms.max())  # (F,) dB, <= 0
    speech = level > -SPEECH_DB
    idx = np.flatnonzero(speech)
    span = slice(idx[0], idx[-1] + 1)
    lv = level[speech]
    cue = dict.fromkeys(CUE_NAMES, 0.0)
    cue["loud_spread_db"] = float(np.percentile(lv, 90) - np.percentile(lv, 10))
    cue["loud_top_share"] = float(np.mean(lv > -6.0))
    power = np.abs(np.fft.rfft(frames[speech] * np.hanning(win), axis=1)) ** 2  # (S, W/2+1)
    freqs = np.fft.rfftfreq(win, 1.0 / sample_rate)
    low, high = power[:, (freqs > 60) & (freqs < 1000)].sum(), power[:, freqs >= 1000].sum()
    cue["tilt_db"] = float(10 * np.log10((high + 1e-12) / (low + 1e-12)))
    cue["centroid_log"] = float(np.log2((power * freqs).sum() / (power.sum() + 1e-12) / 1000 + 1e-3))
    cue["crest_db"] = float(20 * np.log10(np.abs(x).max() / (np.sqrt(np.mean(rms[speech] ** 2)) + 1e-12)))
    f0, peak = _pitch(frames, sample_rate)
    voiced = speech & (peak > VOICED_PEAK) & (f0 >= F0_MIN) & (f0 <= F0_MAX)
    cue["voiced_share"] = float(voiced.sum() / speech.sum())
    if voiced.sum() >= 3:
        st = 12 * np.log2(f0[voiced] / np.median(f0[voiced]))  # semitones from the clip's own median
        cue["f0_log"] = float(np.log2(np.median(f0[voiced]) / 100.0))
        cue["f0_range_st"] = float(np.percentile(st, 90) - np.percentile(st, 10))
        cue["f0_std_st"] = float(np.std(st))
        steps = np.flatnonzero(voiced[1:] & voiced[:-1])
        if len(steps):
            jump = np.abs(12 * np.log2(f0[steps + 1] / f0[steps]))
            cue["f0_move_st"] = float(np.mean(np.minimum(jump, 3.0)))  # octave errors capped
        third = max(1, len(st) // 3)
        cue["f0_slope_st"] = float(np.median(st[-third:]) - np.median(st[:third]))
        cue["f0_top_st"] = float(np.percentile(st, 95))
        cue["voicing"] = float(np.mean(peak[voiced]))
    envelope = np.convolve(np.maximum(level + SPEECH_DB, 0.0), np.hanning(7) / np.hanning(7).sum(), mode="same")
    e = envelope[span]
    peaks = (e[1:-1] > e[:-2]) & (e[1:-1] >= e[2:]) & (e[1:-1] > SPEECH_DB - 20.0)  # peaks louder than -20 dB
    seconds = len(e) * HOP_S
    cue["rate_per_s"] = float(peaks.sum() / max(speech.sum() * HOP_S, HOP_S))
    cue["pause_share"] = float(1.0 - speech[span].mean())
    cue["duration_log"] = float(np.log2(max(seconds, 0.05)))
    return np.array([cue[n] for n in CUE_NAMES], dtype=np.float32)
