"""Audio loading and checks: any file or array -> float32 mono 16 kHz.

Every stage of AVI-Talk works on 16 kHz mono audio (paper, Sec. IV-A).
``load_audio`` reads a file with libsndfile (wav, flac, ogg, mp3, ...), or
takes ``(samples, sample_rate)``, downmixes, resamples with an anti-aliased
polyphase filter and checks the result. Problems the user can fix raise
``AudioError`` with a plain message; doubtful but usable audio (clipping,
near silence) loads with a warning in ``Audio.warnings``. A file's header is
checked against the limits below before anything is decoded, so a small file
cannot declare hours of audio at a rate of 1 Hz.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from .errors import AviTalkError

SAMPLE_RATE = 16000
MIN_SECONDS = 0.2
SILENCE_DBFS = -60.0
CLIP_LEVEL = 0.999  # |x| at or above this counts as a full-scale sample
CLIP_FRACTION = 0.001  # warn when more than 0.1 % of the samples sit at full scale
MIN_RATE, MAX_RATE = 8000, 384000  # Hz: telephone audio to high-resolution studio files
MAX_SECONDS = 3600.0  # one hour: long dialogue (30 min and more) loads, a day of audio does not
MAX_VALUES = int(MAX_SECONDS * 48000 * 2)  # samples x channels decoded at most: one hour of 48 kHz stereo


class AudioError(AviTalkError):
    """The audio cannot be used: missing, unreadable, empty, too short or invalid."""
    code = "bad_audio"


@dataclass
class Audio:
    samples: np.ndarray  # (N,) float32, mono, 16 kHz
    sample_rate: int = SAMPLE_RATE
    warnings: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def level_dbfs(self) -> float:
        """RMS level in dBFS (-inf for digital silence)."""
        return level_dbfs(self.samples)

    @property
    def silent(self) -> bool:
        """Digital silence, or a level under ``SILENCE_DBFS``: nobody speaks."""
        return self.level_dbfs < SILENCE_DBFS

    @property
    def sha1(self) -> str:
        """Hash of the 16 kHz samples: the key for feature caches."""
        return hashlib.sha1(np.ascontiguousarray(self.samples, dtype=np.float32).tobytes()).hexdigest()


def load_audio(source, *, max_seconds: float | None = None) -> Audio:
    """Load a path or ``(samples, sample_rate)`` as checked float32 mono 16 kHz ``Audio``.

    ``max_seconds`` cuts longer audio (with a warning). Raises ``AudioError``.
    """
    if isinstance(source, (str, Path)):
        samples, rate = _read_file(Path(source), max_seconds)
        name = str(source)
    elif isinstance(source, tuple) and len(source) == 2:
        samples, rate = source
        samples = np.asarray(samples)
        name = "array"
    else:
        raise AudioError("audio source must be a file path or a (samples, sample_rate) tuple")
    return _prepare(samples, rate, name, max_seconds)


def _read_file(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {path}")
    try:
        info = sf.info(str(path))
        # with a cut requested, decode only a little more than is kept
        frames = info.frames if max_seconds is None else min(info.frames, int((max_seconds + 1.0) * info.samplerate))
        _check_header(path, info, frames)
        _check_not_truncated(path, info.extra_info)
        samples, rate = sf.read(str(path), frames=-1 if max_seconds is None else frames, dtype="float32",
                                always_2d=True)  # (N, C)
    except sf.LibsndfileError as exc:
        raise AudioError(f"cannot read {path} as audio ({exc}); is it a wav/flac/ogg/mp3 file, complete and not corrupt?") from exc
    except (RuntimeError, ValueError, EOFError, OSError, MemoryError) as exc:
        raise AudioError(f"cannot read {path} as audio: {exc}") from exc
    return samples, rate


def _check_header(path: Path, info, frames: int) -> None:
    """Refuse what the header declares (rate, length, size) before any sample is decoded."""
    _check_rate(info.samplerate, str(path))
    if frames / info.samplerate > MAX_SECONDS:
        raise AudioError(f"{path} declares {frames / info.samplerate / 60:.1f} minutes of audio; "
                         f"at most {MAX_SECONDS / 60:g} minutes are accepted")
    if frames * info.channels > MAX_VALUES:
        raise AudioError(f"{path} declares {frames} frames of {info.channels} channels; at most {MAX_VALUES} "
                         f"samples are decoded (one hour of 48 kHz stereo)")


def _check_rate(rate: int, name: str) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{name}: sample rate {rate} Hz is outside the accepted {MIN_RATE} to {MAX_RATE} Hz")


def _check_not_truncated(path: Path, report: str) -> None:
    """libsndfile reads a cut WAV/AIFF without error; its header report shows the cut."""
    match = re.search(r"data\s*:\s*(\d+)\s*\(should be (\d+)\)", report)
    if match is None:
        return
    declared, present = int(match.group(1)), int(match.group(2))
    streamed = declared == 0 or declared >= 0xFFFFFF00  # placeholder size of a streamed WAV
    if declared > present and not streamed:
        raise AudioError(f"{path} is truncated: its header announces {declared} bytes of audio, the file holds {present}")


def _prepare(samples: np.ndarray, rate, name: str, max_seconds: float | None) -> Audio:
    warnings: list[str] = []
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or rate <= 0:
        raise AudioError(f"{name}: sample rate must be a positive integer, got {rate!r}")
    rate = int(rate)
    _check_rate(rate, name)
    if not np.issubdtype(samples.dtype, np.number) or np.iscomplexobj(samples):
        raise AudioError(f"{name}: samples must be real numbers, got dtype {samples.dtype}")
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max)
    samples = samples.astype(np.float32, copy=False)
    if samples.ndim == 2:
        # (N, C) as soundfile returns it; a (C, N) array with few rows is transposed
        if samples.shape[0] <= 8 < samples.shape[1]:
            samples = samples.T
        samples = samples.mean(axis=1)  # (N,)
    elif samples.ndim != 1:
        raise AudioError(f"{name}: samples must be (N,) or (N, channels), got shape {samples.shape}")
    if samples.size == 0:
        raise AudioError(f"{name}: the audio holds zero samples")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{name}: the audio holds NaN or infinite samples")
    if len(samples) / rate > MAX_SECONDS and (max_seconds is None or max_seconds > MAX_SECONDS):
        raise AudioError(f"{name}: the audio lasts {len(samples) / rate / 60:.1f} minutes; "
                         f"at most {MAX_SECONDS / 60:g} minutes are accepted")
    if len(samples) / rate < MIN_SECONDS:
        raise AudioError(f"{name}: the audio lasts {len(samples) / rate:.3f} s, at least {MIN_SECONDS} s is needed")

    clipped = np.mean(np.abs(samples) >= CLIP_LEVEL)
    if clipped > CLIP_FRACTION:
        warnings.append(f"clipping: {100 * clipped:.1f}% of the samples are at full scale")
    samples = resample(samples, rate, SAMPLE_RATE)
    peak = float(np.max(np.abs(samples)))
    if peak > 1.0:
        samples = samples / peak
        warnings.append(f"the peak reached {peak:.3f} after resampling; scaled down to 1.0")
    if max_seconds is not None and len(samples) > max_seconds * SAMPLE_RATE:
        samples = samples[: int(max_seconds * SAMPLE_RATE)]
        warnings.append(f"cut to the first {max_seconds:g} s")
    audio = Audio(np.ascontiguousarray(samples, dtype=np.float32), SAMPLE_RATE, warnings, name)
    if audio.silent:
        warnings.append(f"the audio is (nearly) silent: RMS {audio.level_dbfs:.0f} dBFS")
    return audio


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of samples in [-1, 1], in dBFS (-inf for digital silence or no samples)."""
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0.0 else float("-inf")


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Anti-aliased polyphase resampling by the exact rational ratio ``target / rate``."""
    if rate == target:
        return samples
    ratio = Fraction(target, rate)  # e.g. 44100 -> 16000 is 160/441
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


def windows(n_samples: int, window_s: float = 30.0, overlap_s: float = 5.0, rate: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """``(start, end)`` sample ranges of windows that cover ``n_samples`` with overlap.

    Consecutive windows overlap by ``overlap_s``; the last one ends at ``n_samples``
    and may be shorter. Audio no longer than one window gives one window.
    """
    if n_samples <= 0:
        raise ValueError("n_samples must be positive")
    if window_s <= 0 or not 0 <= overlap_s < window_s:
        raise ValueError("need window_s > 0 and 0 <= overlap_s < window_s")
    size = int(round(window_s * rate))
    hop = size - int(round(overlap_s * rate))
    spans = []
    start = 0
    while True:
        end = min(start + size, n_samples)
        spans.append((start, end))
        if end >= n_samples:
            return spans
        start += hop
