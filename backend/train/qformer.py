"""Phase stage1-qformer: Q-Former contrastive pre-training (Sec. III-C-2, eq. 6).

A clip's speech features are paired with the MiniLM embedding of a random phrasing
of its instruction (augmented copies included); the other clips of the batch are
the negatives, except those of the same emotion (they would teach the Q-Former to
tell apart wordings the audio cannot carry). With ``{"qformer": {"words_dim": 384}}``
in ``--stage1-config`` the Q-Former also reads the words of the line (an English
clip's transcript, MiniLM-embedded), hidden at ``WORDS_DROP`` so that it still works
from the speech alone when nothing is recognised. Off by default: see the README's
model card for what it gained and lost.
"""

from __future__ import annotations

import numpy as np
import torch

from ..stage1.instructor import Stage1, Stage1Config, save_stage1
from .context import Context, build_config
from .data import pad_speech, words_batch
from .loop import LoopConfig, log_line, run_loop

NAME = "stage1-qformer"
MAX_FRAMES = 250  # 10 s of features per clip is plenty to hear the speaker's state
WORDS_DROP = 0.25  # share of training items whose words are hidden


def stage1_config(ctx: Context, llm_dim: int = 576) -> Stage1Config:
    """The shipped config, sized to the corpus's speech features and the run's LLM, with the run's
    overrides (the projection reads the Q-Former's hidden size unless told otherwise)."""
    train, _ = ctx.data()
    overrides = ctx.options.stage1_config
    hidden = overrides.get("qformer", {}).get("hidden", Stage1Config().qformer.hidden)
    data = {"qformer": {"audio_dim": train.speech_dim}, "instructor": {"hidden": hidden, "llm_dim": llm_dim},
            "speech_encoder": ctx.options.speech_encoder, "llm": ctx.llm_name}
    config = build_config(Stage1Config, data, overrides)
    qformer = config.qformer
    if qformer.words_dim:
        dims = {int(c.words_emb.shape[-1]) for c in train.clips if c.words_emb is not None}
        if dims != {qformer.words_dim}:
            raise ValueError(f"words_dim {qformer.words_dim} needs English transcripts embedded at that width in the corpus"
                             f" (found {sorted(dims) or 'none'})")
    return config


def batch_features(clips, device, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Q-Former inputs: features (B, T, D), valid (B, T) True = real frame, and the words (B, 384) when the
    clips have them (with ``rng``, some hidden; None without words, and no random draws then)."""
    feats, valid = pad_speech(clips, MAX_FRAMES)
    if all(c.words_emb is None for c in clips):
        return feats.to(device), valid.to(device), None
    return feats.to(device), valid.to(device), words_batch(clips, rng, WORDS_DROP).to(device)


@torch.no_grad()
def validate(ctx: Context, model: Stage1) -> dict:
    """Val contrastive loss and emotion retrieval: the instruction (first phrasing) of which
    val clip is nearest to each clip's audio embedding, counted right when the emotions match."""
    _, val = ctx.data()
    if val is None:
        return {}
    qformer = model.qformer.eval()
    query = qformer(*batch_features(val.clips, ctx.device))              # (N, Q, H)
    text = torch.stack([c.text_emb[0] for c in val.clips]).to(ctx.device)  # (N, 384)
    loss = qformer.contrastive_loss(query, text)
    sim = qformer.audio_embedding(query) @ qformer.text_embedding(text).T  # (N, N)
    group = torch.tensor([c.group for c in val.clips], device=ctx.device)
    acc = (group[sim.argmax(dim=1)] == group).float().mean()
    return {"val_contrastive": float(loss), "val_emotion_retrieval_acc": float(acc)}


def train_qformer(ctx: Context) -> dict:
    steps, batch_size, lr, limit = ctx.options.phase(NAME)
    train, _ = ctx.data()
    model = Stage1(stage1_config(ctx)).to(ctx.device)
    model.set_phase("contrastive")

    def step(rng: np.random.Generator) -> dict:
        clips = train.sample(rng, batch_size)
        text = torch.stack([c.text_emb[rng.integers(len(c.text_emb))] for c in clips]).to(ctx.device)  # (B, 384)
        group = torch.tensor([c.group for c in clips], device=ctx.device)                             # (B,)
        query = model.qformer(*batch_features(clips, ctx.device, rng))                                # (B, Q, H)
        return {"total": model.qformer.contrastive_loss(query, text, group)}

    params = [p for p in model.qformer.parameters()]
    rng = np.random.default_rng([ctx.options.seed, 3])
    result = run_loop(NAME, ctx.run, model, params, step, LoopConfig(steps, lr, time_limit_s=limit), rng)
    metrics = validate(ctx, model)
    log_line(ctx.run / "log.jsonl", {"phase": NAME, "step": result["step"], "event": "validation", **metrics})
    save_stage1(ctx.model_path(NAME), model, extra={"phase": NAME, "steps": result["step"], "speech_encoder": ctx.options.speech_encoder, **metrics})
    return {**result, **metrics}
