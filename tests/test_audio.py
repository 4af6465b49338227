"""Audio loading: formats, resampling, the clear errors and warnings."""

import numpy as np
import pytest
import soundfile as sf

from backend.audio import SAMPLE_RATE, Audio, AudioError, load_audio, resample, windows


def sine(rate, seconds=1.0, freq=440.0, amp=0.5, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    x = amp * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def dominant_freq(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * rate / len(x)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 37800, 44100, 48000])
def test_resampling_keeps_frequency_and_peak(rate):
    audio = load_audio((sine(rate, 1.0, 1000.0, 0.5), rate))
    assert audio.sample_rate == SAMPLE_RATE
    assert len(audio.samples) == SAMPLE_RATE
    assert audio.samples.dtype == np.float32
    assert abs(dominant_freq(audio.samples, SAMPLE_RATE) - 1000.0) < 2.0
    middle = audio.samples[1000:-1000]  # away from the filter's edge transients
    assert abs(np.max(np.abs(middle)) - 0.5) < 0.01
    assert audio.warnings == []


def test_resampling_removes_content_above_nyquist():
    # 12 kHz at 48 kHz cannot exist at 16 kHz; the anti-alias filter must remove it, not fold it to 4 kHz
    out = resample(sine(48000, 1.0, 12000.0, 0.5).astype(np.float32), 48000)
    assert np.sqrt(np.mean(out[2000:-2000] ** 2)) < 0.01


@pytest.mark.parametrize("suffix", ["wav", "flac", "ogg", "mp3"])
def test_reads_formats_and_downmixes(tmp_path, suffix):
    path = tmp_path / f"a.{suffix}"
    sf.write(path, sine(44100, 1.0, 440.0, 0.4, channels=2), 44100)
    audio = load_audio(path)
    assert abs(audio.duration - 1.0) < 0.06  # mp3/ogg add encoder padding
    assert abs(dominant_freq(audio.samples, SAMPLE_RATE) - 440.0) < 3.0
    assert len(audio.sha1) == 40


def test_sha1_depends_on_samples():
    a = load_audio((sine(16000, 1.0, 440.0), 16000))
    b = load_audio((sine(16000, 1.0, 441.0), 16000))
    assert a.sha1 == load_audio((sine(16000, 1.0, 440.0), 16000)).sha1
    assert a.sha1 != b.sha1


def test_int16_arrays_are_scaled():
    x = (sine(16000, 1.0) * 32767).astype(np.int16)
    audio = load_audio((x, 16000))
    assert abs(np.max(np.abs(audio.samples)) - 0.5) < 0.01


def test_missing_empty_and_not_audio_files(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 50)
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(tmp_path / "text.wav")
    (tmp_path / "image.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(tmp_path / "image.wav")


def test_truncated_files(tmp_path):
    sf.write(tmp_path / "full.wav", sine(16000, 1.0), 16000)
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated"):
        load_audio(tmp_path / "cut.wav")
    (tmp_path / "header.wav").write_bytes(data[:30])
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(tmp_path / "header.wav")
    sf.write(tmp_path / "full.flac", sine(16000, 1.0), 16000)
    data = (tmp_path / "full.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(tmp_path / "cut.flac")


def test_bad_arrays():
    with pytest.raises(AudioError, match="zero samples"):
        load_audio((np.zeros(0, np.float32), 16000))
    with pytest.raises(AudioError, match="at least 0.2 s"):
        load_audio((np.zeros(1000, np.float32), 16000))
    x = sine(16000, 1.0)
    x[100] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        load_audio((x, 16000))
    x[100] = np.inf
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio((x, 16000))
    with pytest.raises(AudioError, match="sample rate"):
        load_audio((sine(16000, 1.0), 0))
    with pytest.raises(AudioError, match="shape"):
        load_audio((np.zeros((2, 2, 16000)), 16000))
    with pytest.raises(AudioError, match="path"):
        load_audio(12345)


def test_silence_and_clipping_warn_but_load():
    silent = load_audio((np.zeros(16000, np.float32), 16000))
    assert any("silent" in w for w in silent.warnings)
    quiet = load_audio((sine(16000, 1.0, amp=1e-4), 16000))
    assert any("silent" in w for w in quiet.warnings)
    clipped = load_audio((np.clip(sine(16000, 1.0, amp=3.0), -1, 1), 16000))
    assert any("clipping" in w for w in clipped.warnings)
    assert isinstance(clipped, Audio)


def test_peaks_over_full_scale_after_resampling_are_scaled():
    x = np.sign(sine(44100, 1.0, 3000.0, 1.0)).astype(np.float32)  # square wave: Gibbs overshoot
    audio = load_audio((x, 44100))
    assert np.max(np.abs(audio.samples)) <= 1.0
    assert any("scaled down" in w for w in audio.warnings)


def test_max_seconds_cuts():
    audio = load_audio((sine(16000, 3.0), 16000), max_seconds=1.5)
    assert audio.duration == 1.5
    assert any("cut" in w for w in audio.warnings)


@pytest.mark.parametrize("n", [1, 16000 * 10, 16000 * 30, 16000 * 30 + 1, 16000 * 61, 16000 * 200 + 7])
def test_windows_cover_the_signal(n):
    spans = windows(n, window_s=30, overlap_s=5)
    assert spans[0][0] == 0 and spans[-1][1] == n
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert e0 - s1 == 5 * 16000  # the overlap
        assert s1 > s0
    assert all(e - s <= 30 * 16000 for s, e in spans)


def test_windows_reject_bad_options():
    with pytest.raises(ValueError):
        windows(100, window_s=10, overlap_s=10)
    with pytest.raises(ValueError):
        windows(0)


# ---------------------------------------------------------------------------
# Limits from the header, checked before decoding


def _wav_declaring_rate(path, rate, seconds=1.0):
    """A 16-bit mono WAV whose header is rewritten to declare ``rate`` (byte rate to match)."""
    import struct

    sf.write(path, sine(8000, seconds), 8000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    struct.pack_into("<II", data, 24, rate, 2 * rate)
    path.write_bytes(bytes(data))
    return path


def test_absurd_sample_rates_are_refused(tmp_path):
    # 7 KB of samples at 1 Hz would be an hour of audio (hundreds of MB at 16 kHz)
    with pytest.raises(AudioError, match="sample rate 1 Hz is outside the accepted 8000 to 384000 Hz"):
        load_audio(_wav_declaring_rate(tmp_path / "slow.wav", 1, seconds=0.45))
    with pytest.raises(AudioError, match="sample rate 1000000 Hz"):
        load_audio(_wav_declaring_rate(tmp_path / "fast.wav", 1_000_000, seconds=2.0))
    with pytest.raises(AudioError, match="sample rate 4000 Hz"):
        load_audio((sine(4000, 1.0), 4000))
    assert load_audio(_wav_declaring_rate(tmp_path / "ok.wav", 8000)).duration == pytest.approx(1.0)


def test_duration_limit_from_the_header(tmp_path, monkeypatch):
    import backend.audio as audio_mod

    path = tmp_path / "long.wav"
    sf.write(path, sine(8000, 3.0), 8000)
    monkeypatch.setattr(audio_mod, "MAX_SECONDS", 2.0)
    read = []
    monkeypatch.setattr(audio_mod.sf, "read", lambda *a, **k: read.append(a) or pytest.fail("decoded"))
    with pytest.raises(AudioError, match=r"declares 0.1 minutes of audio; at most 0.0333333 minutes"):
        load_audio(path)
    assert read == []


def test_duration_limit_on_arrays_and_cut_files(tmp_path, monkeypatch):
    import backend.audio as audio_mod

    monkeypatch.setattr(audio_mod, "MAX_SECONDS", 2.0)
    with pytest.raises(AudioError, match="at most 0.0333333 minutes"):
        load_audio((sine(16000, 3.0), 16000))
    path = tmp_path / "long.wav"
    sf.write(path, sine(8000, 3.0), 8000)
    audio = load_audio(path, max_seconds=1.0)  # only the kept part is decoded
    assert audio.duration == 1.0 and any("cut" in w for w in audio.warnings)


def test_half_an_hour_of_dialogue_passes_the_header_check(tmp_path):
    from types import SimpleNamespace

    from backend.audio import _check_header

    minutes = lambda m: SimpleNamespace(samplerate=48000, channels=2, frames=int(m * 60 * 48000))  # noqa: E731
    _check_header(tmp_path / "talk.wav", minutes(30), minutes(30).frames)
    with pytest.raises(AudioError, match="declares 61.0 minutes of audio; at most 60 minutes"):
        _check_header(tmp_path / "talk.wav", minutes(61), minutes(61).frames)
    many = SimpleNamespace(samplerate=48000, channels=16, frames=30 * 60 * 48000)
    with pytest.raises(AudioError, match="of 16 channels; at most 345600000 samples"):
        _check_header(tmp_path / "talk.wav", many, many.frames)
