"""Phase stage2-instruction: instruction MLP + diffusion prior, L_cont + 30 L_diff (eq. 7-9).

The talking prior is frozen. Each clip's style embedding is computed once, from a few
independent draws of reference frames, so a step touches no motion at all. The
instruction path gets a bank of training phrasings to read instructions by
(``InstructionEncoder.read``), kept in the checkpoint, and reads each phrasing
through the run's LLM as well (``instruction.lm_dim``; ``--stage2-config
'{"instruction": {"lm_dim": 0}}'`` trains on MiniLM alone). The model is built with
its final instruction config and takes the talking prior's weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import numpy as np
import torch

from ..checkpoint import CheckpointError
from ..stage2.model import Stage2, Stage2Config, load_stage2, save_stage2
from .context import Context, build_config
from .data import TrainData, reference_frames
from .loop import LoopConfig, log_line, run_loop
from .talking import NAME as PRIOR

NAME = "stage2-instruction"
STYLE_DRAWS = 4  # reference-frame draws per clip


@torch.no_grad()
def clip_styles(model: Stage2, data: TrainData, draws: int, seed: int, device) -> torch.Tensor:
    """(N, draws, D_style) style embeddings of every clip from the frozen style encoder."""
    rng = np.random.default_rng(seed)
    n_ref = model.config.n_ref_frames
    out = []
    for _ in range(draws):
        frames, masks = zip(*(reference_frames(c, rng, n_ref) for c in data.clips))
        out.append(model.encode_style(torch.stack(frames).to(device), torch.stack(masks).to(device)).cpu())  # (N, D)
    return torch.stack(out, dim=1)


def load_prior(ctx: Context) -> Stage2:
    path = ctx.model_path(PRIOR)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m backend train {PRIOR}` first (same --run)")
    model, _ = load_stage2(path)
    return model


def bank_sentences(data: TrainData, bank_size: int, seed: int) -> torch.Tensor:
    """(P, 384) up to ``bank_size`` distinct training phrasings, drawn at random, in corpus order."""
    unique: dict[str, torch.Tensor] = {}  # a phrasing many clips share takes one row
    for clip in data.clips:
        for text, emb in zip(clip.texts, clip.text_emb):
            unique.setdefault(text, emb)
    sentences = torch.stack(list(unique.values()))  # (P, 384)
    pick = np.random.default_rng(seed).choice(len(sentences), size=min(bank_size, len(sentences)), replace=False)
    return sentences[torch.from_numpy(np.sort(pick))]


def instruction_config(ctx: Context, prior: Stage2) -> Stage2Config:
    """The talking prior's config with the run's overrides (the instruction path, the diffusion
    prior and their loss weights are this phase's to choose)."""
    return build_config(Stage2Config, dataclasses.asdict(prior.config), ctx.options.stage2_config)


def build_model(config: Stage2Config, prior: Stage2, bank: torch.Tensor, lm_dim: int) -> Stage2:
    """A Stage2 of ``config`` whose instruction path reads MiniLM (and the LM when ``lm_dim``) with
    ``bank``, fresh and untrained, holding the talking prior's trained weights and motion statistics."""
    part_drop = config.instruction.part_drop if lm_dim else 0.0
    instruction = replace(config.instruction, bank_size=len(bank), lm_dim=lm_dim, part_drop=part_drop)
    model = Stage2(replace(config, instruction=instruction))
    talking = {k: v for k, v in prior.state_dict().items() if not k.startswith(("instruction.", "prior."))}
    try:
        missing, unexpected = model.load_state_dict(talking, strict=False)
    except RuntimeError as exc:  # a size override that touches the talking prior
        raise CheckpointError(f"the talking prior's weights do not fit this stage 2 config: {exc}") from exc
    if unexpected or any(not k.startswith(("instruction.", "prior.")) for k in missing):
        raise CheckpointError(f"the talking prior's weights do not fit stage 2 (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if len(bank):
        model.instruction.set_bank(bank)
    return model


def text_input(clip, j: int, lm: bool) -> torch.Tensor:
    """(384 [+ 576]) instruction input of a clip's phrasing ``j``."""
    return torch.cat([clip.text_emb[j], clip.lm_emb[j]]) if lm else clip.text_emb[j]


@torch.no_grad()
def validate(ctx: Context, model: Stage2, train_styles: torch.Tensor) -> dict:
    """Val losses, and how often a style sampled from the clip's instruction lies nearest
    to the mean training style of the clip's own emotion (cosine)."""
    train, val = ctx.data()
    if val is None:
        return {}
    model.eval()
    styles = clip_styles(model, val, 1, 99, ctx.device)[:, 0]                            # (N, D)
    text = torch.stack([text_input(c, 0, model.config.instruction.lm_dim > 0) for c in val.clips])  # (N, 384 [+ 576])
    group = torch.tensor([c.group for c in val.clips])
    batch = {"text_emb": text.to(ctx.device), "style": styles.to(ctx.device), "group": group.to(ctx.device)}
    gen = torch.Generator().manual_seed(7)
    metrics = {f"val_{k}": float(v) for k, v in model.losses(batch, phase="instruction", generator=gen).items()}
    groups = sorted({c.group for c in train.clips if c.group >= 0})
    if groups:
        train_group = torch.tensor([c.group for c in train.clips])
        means = torch.stack([train_styles[train_group == g].mean(dim=(0, 1)) for g in groups])  # (G, D)
        sampled = model.sample_style(text.to(ctx.device), seed=0).cpu()                          # (N, D)
        sim = torch.nn.functional.normalize(sampled, dim=-1) @ torch.nn.functional.normalize(means, dim=-1).T
        nearest = torch.tensor(groups)[sim.argmax(dim=1)]
        metrics["val_style_emotion_acc"] = float((nearest == group).float().mean())
    model.train()
    return metrics


def train_instruction(ctx: Context) -> dict:
    steps, batch_size, lr, limit = ctx.options.phase(NAME)
    train, _ = ctx.data()
    prior = load_prior(ctx)
    config = instruction_config(ctx, prior)
    lm = config.instruction.lm_dim > 0  # the config asks for an LM reading; its width is the run's LLM's
    lm_dim = ctx.lm_text() if lm else 0
    bank = bank_sentences(train, config.instruction.bank_size, ctx.options.seed)
    model = build_model(config, prior, bank, lm_dim).to(ctx.device)
    model.set_phase("instruction")
    model.train()
    styles = clip_styles(model, train, STYLE_DRAWS, ctx.options.seed, ctx.device)  # (N, K, D)
    groups = torch.tensor([c.group for c in train.clips])

    def step(rng: np.random.Generator) -> dict:
        idx = rng.choice(len(train), size=batch_size, replace=batch_size > len(train))
        clips = [train.clips[i] for i in idx]
        text = torch.stack([text_input(c, rng.integers(len(c.text_emb)), lm) for c in clips])  # (B, 384 [+ 576])
        style = styles[torch.from_numpy(idx), torch.from_numpy(rng.integers(0, STYLE_DRAWS, len(idx)))]          # (B, D)
        batch = {"text_emb": text, "style": style, "group": groups[torch.from_numpy(idx)]}
        return model.losses({k: v.to(ctx.device) for k, v in batch.items()})

    rng = np.random.default_rng([ctx.options.seed, 2])
    result = run_loop(NAME, ctx.run, model, model.phase_parameters(), step, LoopConfig(steps, lr, time_limit_s=limit), rng)
    metrics = validate(ctx, model, styles)
    log_line(ctx.run / "log.jsonl", {"phase": NAME, "step": result["step"], "event": "validation", **metrics})
    extra = {"phase": NAME, "steps": result["step"], "speech_encoder": ctx.options.speech_encoder, **metrics}
    if lm_dim:
        extra["llm"] = ctx.llm_name  # the LLM that reads the instructions
    save_stage2(ctx.model_path(NAME), model, extra=extra)
    return {**result, **metrics}
