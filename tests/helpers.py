"""Small shared builders for the tests (imported as ``helpers``; pytest puts tests/ on sys.path)."""

import numpy as np


def tiny_checkpoints(folder, trained: bool = True):
    """Stage 1 and stage 2 checkpoints of tiny random models in ``folder``, over Whisper tiny.en features.

    ``trained`` only sets the metadata flag: the pipeline refuses untrained files, and the
    plumbing tests need files it accepts. They say nothing about motion quality.
    """
    import torch

    from backend.models.instructor import InstructorConfig, Stage1, Stage1Config, save_stage1
    from backend.models.qformer import QFormerConfig
    from backend.models.stage2 import Stage2, Stage2Config, save_stage2

    torch.manual_seed(0)
    stage1 = Stage1(Stage1Config(
        qformer=QFormerConfig(audio_dim=384, hidden=32, n_queries=4, n_layers=1, n_heads=2, embed_dim=16),
        instructor=InstructorConfig(hidden=32, llm_dim=576, max_new_tokens=8),
    ))
    stage2 = Stage2(Stage2Config(speech_dim=384, hidden=32, gen_layers=1, gen_heads=2, style_dim=16, style_hidden=32,
                                 style_layers=1, style_heads=2, instr_hidden=32, cond_dim=16, proj_dim=16,
                                 prior_hidden=32, prior_layers=1, prior_heads=2, sample_steps=4))
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
