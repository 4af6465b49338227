"""Phase stage1-projection: the projection into the frozen LLM (Sec. III-C-3).

Q-Former and LLM frozen; only the linear projection and the learned prefix learn the
next-token loss on a random, lightly augmented phrasing of the clip's instruction,
after one of the 10 templates picked at random (labels -100 over the prompt and the
soft prompt). Each emotion is drawn equally often. Stage 1's sentence is there to say
the speaker's state, so targets are the phrasings that name the clip's emotion, and
the emotion word's tokens weigh ``EMOTION_WEIGHT`` in the loss (one token among ~20
otherwise, and the LLM learned to leave it out). The LLM forward + backward is the
cost here (bf16 where the hardware has it), so prompts stay short (8 queries).
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import torch

from ..emotions import EMOTION_WORDS
from ..device import autocast
from ..checkpoint import load_checkpoint
from ..stage1.instructor import Stage1, Stage1Config, save_stage1
from ..stage1.templates import TEMPLATES
from .context import Context
from .data import augment_text, emotion_of
from .loop import LoopConfig, log_line, run_loop
from .qformer import NAME as QFORMER
from .qformer import batch_features, stage1_config

NAME = "stage1-projection"
VAL_GENERATE = 8  # val clips described by the LLM after training
EMOTION_WEIGHT = 3.0  # loss weight of the emotion word's tokens


def load_qformer_stage(ctx: Context, llm_dim: int) -> Stage1:
    """A Stage1 for this LLM's embedding size, with the pre-trained Q-Former's weights."""
    path = ctx.model_path(QFORMER)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m backend train {QFORMER}` first (same --run)")
    pretrained, _ = load_checkpoint(path, Stage1, Stage1Config, "stage1")
    model = Stage1(replace(stage1_config(ctx, llm_dim), qformer=pretrained.config.qformer))  # the Q-Former as it was trained
    model.qformer.load_state_dict(pretrained.qformer.state_dict())
    return model


def emotion_spans(text: str, emotion: str | None) -> list[tuple[int, int]]:
    """Character spans in ``text`` of the words for ``emotion`` (none when it is unknown)."""
    spans = []
    for word in EMOTION_WORDS.get(emotion, ()) if emotion else ():
        spans += [m.span() for m in re.finditer(rf"(?<![\w'-]){re.escape(word)}(?![\w'-])", text, flags=re.IGNORECASE)]
    return sorted(spans)


def emotion_named(text: str, emotion: str) -> bool:
    """Whether ``text`` uses a word of ``emotion`` and of no other emotion."""
    return {e for e in EMOTION_WORDS if emotion_spans(text, e)} == {emotion}


def naming_phrasings(record) -> list[str]:
    """The phrasings of a clip's instruction that name its emotion; all of them when none does."""
    named = [t for t in record.instructions if emotion_spans(t, record.emotion)]
    return named or list(record.instructions)


@torch.no_grad()
def validate(ctx: Context, model: Stage1) -> dict:
    """Val LM loss, and emotion word accuracy of generated instructions on a few val clips."""
    _, val = ctx.data()
    if val is None:
        return {}
    llm, tokenizer = ctx.llm()
    model.eval()
    clips = val.clips[:VAL_GENERATE]
    query = model.qformer(*batch_features(clips, ctx.device))  # (N, Q, H)
    loss = model.instructor.loss(query, 0, [c.record.instructions[0] for c in clips], tokenizer, llm)
    texts = model.instructor.generate(query, tokenizer, llm, 0, max_new_tokens=40)
    known = [(t, c.record.emotion) for t, c in zip(texts, clips) if c.record.emotion in EMOTION_WORDS]
    metrics = {"val_lm_loss": float(loss), "val_examples": texts[:3]}
    if known:
        metrics["val_emotion_word_acc"] = sum(emotion_named(t, e) for t, e in known) / len(known)
    model.set_phase("projection")
    return metrics


def train_projection(ctx: Context) -> dict:
    steps, batch_size, lr, limit = ctx.options.phase(NAME)
    train, _ = ctx.data()
    llm, tokenizer = ctx.llm()
    model = load_qformer_stage(ctx, llm.get_input_embeddings().embedding_dim).to(ctx.device)
    model.set_phase("projection")

    def step(rng: np.random.Generator) -> dict:
        clips = train.sample(rng, batch_size, balance_by=emotion_of)  # else 'neutral' (every recording) dominates
        with torch.no_grad():
            query = model.qformer(*batch_features(clips, ctx.device, rng))  # (B, Q, H), frozen
        targets = [augment_text(str(rng.choice(naming_phrasings(c.record))), rng).strip() for c in clips]
        spans = [emotion_spans(t, c.record.emotion) for t, c in zip(targets, clips)]
        templates = [int(t) for t in rng.integers(0, len(TEMPLATES), len(clips))]
        with autocast(ctx.device, cpu_bf16=True):  # the frozen LLM's forward and backward are the whole cost
            loss = model.instructor.loss(query, templates, targets, tokenizer, llm, spans, EMOTION_WEIGHT)
            return {"total": loss.float()}

    params = list(model.instructor.parameters())
    rng = np.random.default_rng([ctx.options.seed, 4])
    result = run_loop(NAME, ctx.run, model, params, step, LoopConfig(steps, lr, time_limit_s=limit), rng)
    metrics = validate(ctx, model)
    log_line(ctx.run / "log.jsonl", {"phase": NAME, "step": result["step"], "event": "validation", **metrics})
    scalars = {k: v for k, v in metrics.items() if not isinstance(v, list)}
    save_stage1(ctx.model_path(NAME), model, extra={"phase": NAME, "steps": result["step"], "speech_encoder": ctx.options.speech_encoder, "llm": ctx.llm_name, **scalars})
    return {**result, **metrics}
