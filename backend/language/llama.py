"""A Llama causal LM in plain torch, for the shipped SmolLM2 and any local Llama folder.

transformers' modeling stack costs seconds of a cold start (``modeling_utils``
pulls in its hub kernels, loaders, ``torch.distributed`` and ``torch._dynamo``);
this file runs the same weights with nothing but torch. Module names match
transformers' (``model.embed_tokens``, ``model.layers.N.self_attn.q_proj``,
``mlp.gate_proj``, ``input_layernorm``, ``model.norm``, ``lm_head``), so
``model.safetensors`` loads as it is.

It serves the calls the project makes on the LLM: ``forward(input_ids= |
inputs_embeds=, attention_mask=, cache=, use_cache=, logits_to_keep=)`` with
``.logits`` and ``.cache``, a key/value cache with ``batch_repeat_interleave``
and ``batch_select_indices``, ``base_model(...).last_hidden_state``,
``get_input_embeddings()`` and ``config.hidden_size``. As in transformers, the
positions are ``0..L-1`` after the cached ones whatever the attention mask says.
``llama_config`` refuses what this file does not implement (rope scaling,
other architectures); those folders stay with transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class LlamaConfig:
    """Defaults: SmolLM2-135M-Instruct."""

    vocab_size: int = 49152
    hidden_size: int = 576
    intermediate_size: int = 1536
    num_hidden_layers: int = 30
    num_attention_heads: int = 9
    num_key_value_heads: int = 3
    head_dim: int = 64
    rms_norm_eps: float = 1e-5
    rope_theta: float = 100000.0
    tie_word_embeddings: bool = True
    attention_bias: bool = False
    mlp_bias: bool = False


def llama_config(folder) -> LlamaConfig | None:
    """The config of a transformers Llama folder, or None when it holds a model this file does not run."""
    raw = json.loads((Path(folder) / "config.json").read_text())
    rope = raw.get("rope_parameters") or {}
    if (raw.get("model_type") != "llama" or raw.get("architectures", ["LlamaForCausalLM"]) != ["LlamaForCausalLM"]
            or raw.get("hidden_act", "silu") != "silu" or raw.get("rope_scaling") is not None
            or rope.get("rope_type", "default") != "default" or raw.get("pretraining_tp", 1) != 1):
        return None
    values = {f.name: raw[f.name] for f in fields(LlamaConfig) if raw.get(f.name) is not None}
    values.setdefault("num_key_value_heads", raw.get("num_attention_heads", LlamaConfig.num_attention_heads))
    values.setdefault("head_dim", values.get("hidden_size", LlamaConfig.hidden_size) //
                      values.get("num_attention_heads", LlamaConfig.num_attention_heads))
    if "rope_theta" in rope:
        values["rope_theta"] = rope["rope_theta"]
    if "tie_word_embeddings" not in raw:
        values["tie_word_embeddings"] = False  # transformers' LlamaConfig default
    return LlamaConfig(**values)


@dataclass
class Output:
    """What a forward returns: ``logits`` (causal LM) or ``last_hidden_state`` (base model), and the cache."""

    logits: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    cache: "KVCache | None" = None

    @property
    def past_key_values(self):
        return self.cache


class KVCache:
    """Per layer, the keys and values read so far: (B, H_kv, T, d) each."""

    def __init__(self):
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []

    def get_seq_length(self) -> int:
        return self.layers[0][0].shape[2] if self.layers else 0

    def update(self, index: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if index == len(self.layers):
            self.layers.append((k, v))
        else:
            past_k, past_v = self.layers[index]
            self.layers[index] = (torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2))
        return self.layers[index]

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Each row ``repeats`` times, in place (a prompt read once, decoded by several rows)."""
        self.layers = [(k.repeat_interleave(repeats, dim=0), v.repeat_interleave(repeats, dim=0)) for k, v in self.layers]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the rows ``indices``, in place."""
        self.layers = [(k[indices], v[indices]) for k, v in self.layers]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)  # in float32, as transformers
        return self.weight * h.to(x.dtype)


def rotary(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (1, L, d) for the positions (L,), computed in float32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float, device=positions.device) / head_dim))
    freqs = positions[None, :, None].float() * inv_freq  # (1, L, d/2)
    angles = torch.cat([freqs, freqs], dim=-1)  # (1, L, d)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + turned * sin


class Attention(nn.Module):
    def __init__(self, config: LlamaConfig, index: int):
        super().__init__()
        self.index = index
        self.heads, self.kv_heads, self.head_dim = config.num_attention_heads, config.num_key_value_heads, config.head_dim
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, self.heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, config.hidden_size, bias=bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask, cache: KVCache | None) -> torch.Tensor:
        B, L, _ = x.shape
        q = self.q_proj(x).view(B, L, self.heads, self.head_dim).transpose(1, 2)        # (B, H, L, d)
        k = self.k_proj(x).view(B, L, self.kv_heads, self.head_dim).transpose(1, 2)     # (B, H_kv, L, d)
        v = self.v_proj(x).view(B, L, self.kv_heads, self.head_dim).transpose(1, 2)     # (B, H_kv, L, d)
        cos, sin = cos[:, None], sin[:, None]                                           # (1, 1, L, d)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.index, k, v)                                       # (B, H_kv, T, d)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)                # (B, H, T, d)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        causal = mask is None and L > 1 and k.shape[2] == L
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)  # (B, H, L, d)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, self.heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, config: LlamaConfig):
        super().__init__()
        bias = config.mlp_bias
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: LlamaConfig, index: int):
        super().__init__()
        self.self_attn = Attention(config, index)
        self.mlp = MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, cache):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


def causal_padding_mask(padding: torch.Tensor | None, length: int, past: int, device) -> torch.Tensor | None:
    """Boolean (B, 1, L, past + L): causal, and only the keys ``padding`` marks (1 = token, 0 = padding).

    None where plain causal attention does (no padding mask). A query that may read no key at all
    (left padding before the first token) reads every key instead: its output is never used, and an
    all-masked row would be NaN, which would reach the gradients."""
    if padding is None:
        return None
    total = past + length
    query = torch.arange(past, total, device=device)[:, None]  # (L, 1)
    allowed = torch.arange(total, device=device)[None, :] <= query  # (L, T)
    mask = allowed[None, None] & padding[:, None, None, -total:].bool()  # (B, 1, L, T)
    return mask | ~mask.any(dim=-1, keepdim=True)


class LlamaModel(nn.Module):
    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                cache: KVCache | None = None, inputs_embeds: torch.Tensor | None = None,
                use_cache: bool | None = None) -> Output:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids or inputs_embeds")
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (B, L, D)
        if use_cache and cache is None:
            cache = KVCache()
        past = cache.get_seq_length() if cache is not None else 0
        positions = torch.arange(past, past + x.shape[1], device=x.device)  # (L,)
        cos, sin = rotary(positions, self.config.head_dim, self.config.rope_theta, x.dtype)  # (1, L, d)
        mask = causal_padding_mask(attention_mask, x.shape[1], past, x.device)
        for layer in self.layers:
            x = layer(x, cos, sin, mask, cache)
        return Output(last_hidden_state=self.norm(x), cache=cache if use_cache else None)


class LlamaForCausalLM(nn.Module):
    def __init__(self, config: LlamaConfig | None = None):
        super().__init__()
        self.config = config or LlamaConfig()
        self.model = LlamaModel(self.config)
        self.lm_head = nn.Linear(self.config.hidden_size, self.config.vocab_size, bias=False)
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @property
    def base_model(self) -> LlamaModel:
        return self.model

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                cache: KVCache | None = None, inputs_embeds: torch.Tensor | None = None,
                use_cache: bool | None = None, logits_to_keep: int = 0) -> Output:
        """``logits_to_keep``: run the head on the last n positions only (0: all)."""
        out = self.model(input_ids, attention_mask, cache, inputs_embeds, use_cache)
        hidden = out.last_hidden_state[:, -logits_to_keep:]  # (B, n, D); -0 keeps all
        return Output(logits=self.lm_head(hidden), cache=out.cache)

    @classmethod
    def from_folder(cls, folder, config: LlamaConfig) -> "LlamaForCausalLM":
        """Read a transformers folder's ``model.safetensors`` (one file) with its own names."""
        from safetensors.torch import load_file

        state = load_file(str(Path(folder) / "model.safetensors"))
        state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
        if config.tie_word_embeddings:
            state.setdefault("lm_head.weight", state.get("model.embed_tokens.weight"))
        model = cls(config)
        model.load_state_dict(state)
        return model
