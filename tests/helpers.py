"""Small shared builders for the tests (imported as ``helpers``; pytest puts tests/ on sys.path)."""

import numpy as np


def tiny_checkpoints(folder, trained: bool = True, lm_text_dim: int = 576, words_dim: int = 384):
    """Stage 1 and stage 2 checkpoints of tiny random models in ``folder``, over Whisper tiny.en features;
    stage 1 reads the words heard (``words_dim`` 0: the speech alone, as the shipped weights do) and
    stage 2 reads instructions through SmolLM2 as the shipped weights do (``lm_text_dim`` 0: MiniLM alone).

    ``trained`` only sets the metadata flag: the pipeline refuses untrained files, and the
    plumbing tests need files it accepts. They say nothing about motion quality.
    """
    import torch

    from backend.stage1.instructor import InstructorConfig, Stage1, Stage1Config, save_stage1
    from backend.stage1.qformer import QFormerConfig
    from backend.stage2.model import Stage2, Stage2Config, save_stage2

    torch.manual_seed(0)
    stage1 = Stage1(Stage1Config(
        qformer=QFormerConfig(audio_dim=384, hidden=32, n_queries=4, n_layers=1, n_heads=2, embed_dim=16, words_dim=words_dim),
        instructor=InstructorConfig(hidden=32, llm_dim=576, max_new_tokens=8),
    ))
    torch.manual_seed(0)  # stage 2's weights do not depend on stage 1's size
    stage2 = Stage2(Stage2Config(
        style_dim=16, cond_dim=16, content={"hidden": 32}, generator={"hidden": 32, "layers": 1, "heads": 2},
        style_encoder={"hidden": 32, "layers": 1, "heads": 2}, prior={"hidden": 32, "layers": 1, "heads": 2, "sample_steps": 4},
        instruction={"hidden": 32, "proj_dim": 16, "bank_size": 0, "lm_dim": lm_text_dim, "part_drop": 0.0},
    ))
    extra = {"trained": trained, "speech_encoder": "whisper-tiny.en"}
    save_stage1(folder / "stage1.safetensors", stage1, extra)
    save_stage2(folder / "stage2.safetensors", stage2, extra)
    return folder


def speech_like(seconds=1.0, seed=0, rate=16000):
    """A voiced, syllable-modulated test signal (float32)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


def tiny_llm(text: str, seed: int = 0, chat_template=None, initializer_range: float = 0.02):
    """A tiny random Llama (hidden 16) with a word-level tokenizer over the words of ``text``:
    (model, tokenizer). A larger ``initializer_range`` makes the model sensitive enough to its
    input that a soft prompt can steer it."""
    import re

    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = sorted(set(re.findall(r"\w+|[^\w\s]", text)))
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, **{w: i + 4 for i, w in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    tokenizer.chat_template = chat_template
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                         initializer_range=initializer_range)  # fmt: skip
    torch.manual_seed(seed)
    return LlamaForCausalLM(config), tokenizer


def save_tiny_llm(folder, text: str, seed: int = 0):
    """``tiny_llm`` saved as a local transformers folder; returns the folder."""
    model, tokenizer = tiny_llm(text, seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
