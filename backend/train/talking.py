"""Phase stage2-talking: the talking prior (content path + style encoder + generator), Sec. III-D-1.

Random 2-4 s windows of a clip are reconstructed from their speech and the style of
reference frames drawn from the rest of the same clip. The motion normalisation is
set from the training data first and travels in the checkpoint.
"""

from __future__ import annotations

import numpy as np
import torch

from ..motion import N_POSE_CHANNELS
from ..stage2.model import Stage2, Stage2Config, save_stage2
from .context import Context, build_config
from .data import source_of, window_batch
from .loop import LoopConfig, log_line, run_loop

NAME = "stage2-talking"
MIN_FRAMES, MAX_FRAMES = 50, 100  # 2-4 s at 25 fps


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def stage2_config(ctx: Context) -> Stage2Config:
    """The shipped config, sized to the corpus's motion and speech features, with the run's overrides."""
    train, _ = ctx.data()
    data = {"n_expression": train.motion_dim - N_POSE_CHANNELS, "content": {"speech_dim": train.speech_dim}}
    return build_config(Stage2Config, data, ctx.options.stage2_config)


def build_model(ctx: Context) -> Stage2:
    train, _ = ctx.data()
    model = Stage2(stage2_config(ctx))
    model.set_motion_stats(*train.motion_stats())
    return model


@torch.no_grad()
def validate(ctx: Context, model: Stage2) -> dict:
    """Reconstruction loss on windows of the val clips (fixed draw), model in eval mode."""
    _, val = ctx.data()
    if val is None:
        return {}
    model.eval()
    rng = np.random.default_rng(1234)
    batch = window_batch(val.clips, rng, MAX_FRAMES, MAX_FRAMES, model.config.n_ref_frames)
    losses = model.losses(to_device(batch, ctx.device), phase="talking")
    model.train()
    return {f"val_{k}": float(v) for k, v in losses.items()}


def train_talking(ctx: Context) -> dict:
    steps, batch_size, lr, limit = ctx.options.phase(NAME)
    train, _ = ctx.data()
    model = build_model(ctx).to(ctx.device)
    model.set_phase("talking")
    model.train()
    n_ref = model.config.n_ref_frames

    def step(rng: np.random.Generator) -> dict:
        batch = window_batch(train.sample(rng, batch_size, balance_by=source_of), rng, MIN_FRAMES, MAX_FRAMES, n_ref)
        return model.losses(to_device(batch, ctx.device))

    rng = np.random.default_rng([ctx.options.seed, 1])
    result = run_loop(NAME, ctx.run, model, model.phase_parameters(), step, LoopConfig(steps, lr, time_limit_s=limit), rng)
    metrics = validate(ctx, model)
    log_line(ctx.run / "log.jsonl", {"phase": NAME, "step": result["step"], "event": "validation", **metrics})
    save_stage2(ctx.model_path(NAME), model, extra={"phase": NAME, "steps": result["step"], "speech_encoder": ctx.options.speech_encoder, **metrics})
    return {**result, **metrics}
