"""Sound strips mixed down to one mono clip: where each strip's samples land, and a WAV writer.

Timeline maths (Blender's sound strips): a strip's sound starts playing at
``frame_start`` (the uncut sound's first sample, shifted by ``sound_offset``
seconds into the file); it is heard from ``frame_final_start`` to
``frame_final_end`` (exclusive), after trimming. A mix over the frames
``[range_start, range_end)`` puts timeline frame f at
``(f - range_start) / fps`` seconds into the clip.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass

import numpy as np

from .errors import InputError

RATE = 16000  # the backend's speech encoders work at 16 kHz


@dataclass
class StripAudio:
    samples: np.ndarray        # (N,) mono float32 at ``rate``, the whole sound file
    rate: int
    frame_start: float         # timeline frame where the sound file's start (plus sound_offset) plays
    frame_final_start: float   # first audible frame (after trimming)
    frame_final_end: float     # one past the last audible frame
    volume: float = 1.0
    sound_offset: float = 0.0  # seconds into the file at frame_start


def strips_extent(strips) -> tuple[int, int]:
    """The frames the strips cover: (first audible frame, one past the last). InputError without strips."""
    strips = list(strips)
    if not strips:
        raise InputError("the scene has no sound strips: add one in the Video Sequencer, or choose an audio file")
    return int(np.floor(min(s.frame_final_start for s in strips))), int(np.ceil(max(s.frame_final_end for s in strips)))


def resample_linear(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Linear resampling (enough for speech features; the backend band-limits again)."""
    if rate == new_rate or len(samples) == 0:
        return np.asarray(samples, dtype=np.float32)
    n_out = int(round(len(samples) * new_rate / rate))
    t = np.arange(n_out) * (rate / new_rate)  # (N_out,) positions in input samples
    return np.interp(t, np.arange(len(samples)), samples).astype(np.float32)


def mix(strips, range_start: float, range_end: float, fps: float, rate: int = RATE) -> np.ndarray:
    """Mono mix of ``strips`` over timeline frames ``[range_start, range_end)`` at ``rate`` Hz, float32."""
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    if range_end <= range_start:
        raise InputError(f"the audio range is empty: frames {range_start} to {range_end}")
    n_out = int(round((range_end - range_start) / fps * rate))
    out = np.zeros(n_out, dtype=np.float64)
    for strip in strips:
        samples = resample_linear(np.asarray(strip.samples, dtype=np.float32), strip.rate, rate)
        # Audible part, clipped to the range, in output samples.
        lo = max(strip.frame_final_start, range_start)
        hi = min(strip.frame_final_end, range_end)
        if hi <= lo:
            continue
        out_lo = int(round((lo - range_start) / fps * rate))
        out_hi = min(n_out, int(round((hi - range_start) / fps * rate)))
        # Output sample i plays file second (timeline time - strip start) + sound_offset.
        src_lo = int(round(((lo - strip.frame_start) / fps + strip.sound_offset) * rate))
        count = out_hi - out_lo
        src = np.arange(src_lo, src_lo + count)  # (count,)
        valid = (src >= 0) & (src < len(samples))
        out[out_lo:out_hi][valid] += strip.volume * samples[src[valid]]
    return out.astype(np.float32)


def write_wav(path, samples: np.ndarray, rate: int = RATE) -> None:
    """16-bit PCM mono WAV (standard library only); values are clipped to [-1, 1]."""
    pcm = (np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(pcm.tobytes())
