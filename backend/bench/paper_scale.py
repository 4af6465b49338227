"""The paper's scale: HuBERT-large (stage 1 speech), wav2vec 2.0 base (stage 2
content), a 7B Llama-architecture LLM (Vicuna-7B's shape), a BLIP-2-sized
Q-Former and a wider stage 2.

Weights are random: this checks that the architecture builds at that size and
measures its cost. On the meta device nothing is allocated (parameter counts
only); on a CUDA GPU the models are real and can be timed.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch


@dataclass
class PaperScale:
    hubert: object
    wav2vec2: object
    llm: object
    stage1: object   # Q-Former + projection into the LLM's 4096-d input embeddings
    stage2: object


def hf_configs():
    from transformers import HubertConfig, LlamaConfig, Wav2Vec2Config

    hubert = HubertConfig(  # hubert-large-ll60k
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
    )
    wav2vec2 = Wav2Vec2Config()  # wav2vec2-base
    llm = LlamaConfig(  # LLaMA-7B / Vicuna-7B
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048, rms_norm_eps=1e-6,
    )
    return hubert, wav2vec2, llm


def model_configs():
    from ..stage1.instructor import InstructorConfig, Stage1Config
    from ..stage1.qformer import QFormerConfig
    from ..stage2.content import ContentConfig
    from ..stage2.generator import GeneratorConfig
    from ..stage2.instruction import InstructionConfig
    from ..stage2.model import Stage2Config
    from ..stage2.prior import PriorConfig
    from ..stage2.style_encoder import StyleEncoderConfig

    stage1 = Stage1Config(
        qformer=QFormerConfig(audio_dim=1024, hidden=768, n_queries=32, n_layers=12, n_heads=12),
        instructor=InstructorConfig(hidden=768, llm_dim=4096, use_chat_template=True, n_prefix=0),
        speech_encoder="hubert", llm="llama-7b",
    )
    stage2 = Stage2Config(
        style_dim=256, cond_dim=512,
        content=ContentConfig(speech_dim=768, hidden=512),
        style_encoder=StyleEncoderConfig(hidden=256, layers=4),
        generator=GeneratorConfig(hidden=512, layers=8, heads=8),
        instruction=InstructionConfig(proj_dim=256, bank_size=0, lm_dim=0, part_drop=0.0),  # the paper reads MiniLM alone
        prior=PriorConfig(hidden=768, layers=8, heads=12),
    )
    return stage1, stage2


def build(device: str | torch.device = "meta", dtype: torch.dtype = torch.float32) -> PaperScale:
    """Instantiate every part at paper scale on ``device`` (``meta`` allocates nothing)."""
    from transformers import HubertModel, LlamaForCausalLM, Wav2Vec2Model

    from ..stage1.instructor import Stage1
    from ..stage2.model import Stage2

    hubert_cfg, w2v_cfg, llm_cfg = hf_configs()
    stage1_cfg, stage2_cfg = model_configs()
    with torch.device(device), _default_dtype(dtype):
        parts = PaperScale(
            hubert=HubertModel(hubert_cfg),
            wav2vec2=Wav2Vec2Model(w2v_cfg),
            llm=LlamaForCausalLM(llm_cfg),
            stage1=Stage1(stage1_cfg),
            stage2=Stage2(stage2_cfg),
        )
    for module in (parts.hubert, parts.wav2vec2, parts.llm, parts.stage1, parts.stage2):
        module.eval().requires_grad_(False)
    return parts


def parameter_counts(parts: PaperScale) -> dict[str, int]:
    return {name: sum(p.numel() for p in getattr(parts, name).parameters()) for name in ("hubert", "wav2vec2", "llm", "stage1", "stage2")}


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def time_paper_scale(seconds: float, device: torch.device, new_tokens: int = 40, parts: PaperScale | None = None) -> dict[str, float]:
    """Seconds per stage for ``seconds`` of audio at paper scale on a CUDA ``device``."""
    if device.type != "cuda":
        raise ValueError("paper-scale timing needs a CUDA GPU: a 7B LLM does not fit this CPU's time or memory budget")
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    parts = parts or build(device, dtype)
    wave = torch.randn(1, int(seconds * 16000), device=device, dtype=dtype) * 0.1
    frames = int(round(seconds * 25))
    timings: dict[str, float] = {}

    def timed(name, fn):
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        timings[name] = time.perf_counter() - start
        return out

    with torch.no_grad():
        hub = timed("stage1_encoder", lambda: parts.hubert(wave).last_hidden_state)                    # (1, T50, 1024)
        queries = timed("qformer", lambda: parts.stage1.qformer(hub))                                 # (1, Q, 768)
        soft = parts.stage1.instructor.proj(queries)                                                  # (1, Q, 4096)
        template = torch.randn(1, 24, soft.shape[-1], device=device, dtype=dtype)
        embeds = torch.cat([soft, template], dim=1)                                                   # soft prompt + template
        timed("llm_generation", lambda: parts.llm.generate(
            inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], device=device, dtype=torch.long),
            max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
        ))
        content = timed("stage2_encoder", lambda: parts.wav2vec2(wave).last_hidden_state)             # (1, T50, 768)
        content = torch.nn.functional.interpolate(content.transpose(1, 2), size=frames, mode="linear").transpose(1, 2)
        text = torch.randn(1, parts.stage2.instruction.config.input_dim, device=device, dtype=dtype)
        style = timed("stage2_prior", lambda: parts.stage2.sample_style(text, seed=0))
        timed("stage2_generator", lambda: parts.stage2.synthesize(content, None, style))
    timings["total"] = sum(timings.values())
    return timings
