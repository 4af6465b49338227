"""The resumable optimisation loop shared by every phase.

A phase keeps ``<run>/<phase>/state.pt``: model weights, optimizer state, step and
the random states (torch + the data sampler's numpy generator). Running the phase
again loads it and continues from that step. Losses go to ``<run>/log.jsonl``, one
JSON object per line, and a tqdm bar runs on stderr.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

STATE_FILE = "state.pt"


@dataclass
class LoopConfig:
    steps: int
    lr: float
    weight_decay: float = 0.01
    warmup: float = 0.05          # share of the steps with a linear warm-up
    min_lr_ratio: float = 0.1     # cosine decay ends at lr * min_lr_ratio
    clip_grad: float = 1.0
    log_every: int = 10
    save_every_s: float = 120.0
    time_limit_s: float | None = None  # stop early (state saved) when a phase runs past this

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


def lr_at(step: int, config: LoopConfig) -> float:
    warm = max(1, int(config.warmup * config.steps))
    if step < warm:
        return config.lr * (step + 1) / warm
    progress = (step - warm) / max(1, config.steps - warm)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def log_line(log_path: Path, record: dict) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_state(phase_dir: Path) -> dict | None:
    path = Path(phase_dir) / STATE_FILE
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None


def _save_state(phase_dir: Path, model, optimizer, step: int, rng: np.random.Generator, done: bool) -> None:
    phase_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "step": step,
        "done": done,
        "torch_rng": torch.get_rng_state(),
        "np_rng": json.dumps(rng.bit_generator.state),
    }
    tmp = phase_dir / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(phase_dir / STATE_FILE)


def run_loop(
    name: str,
    run_dir: Path,
    model: torch.nn.Module,
    params: list[torch.nn.Parameter],
    step_fn: Callable[[np.random.Generator], dict[str, torch.Tensor]],
    config: LoopConfig,
    rng: np.random.Generator,
) -> dict:
    """Minimise ``step_fn(rng)['total']`` over ``params`` for ``config.steps`` steps, resuming
    from ``<run_dir>/<name>/state.pt``. ``model`` must already be in its training mode and on
    its device. Returns {'step', 'resumed_from', 'done', 'seconds', 'last': averaged losses of the last log window}."""
    phase_dir = Path(run_dir) / name
    log_path = Path(run_dir) / "log.jsonl"
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    step = 0
    state = read_state(phase_dir)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = json.loads(state["np_rng"])
    resumed_from = step
    start, last_save = time.monotonic(), time.monotonic()
    sums: dict[str, float] = {}
    count, last = 0, {}
    bar = tqdm(total=config.steps, initial=step, desc=name, file=sys.stderr, dynamic_ncols=True)
    stopped = False
    while step < config.steps:
        if config.time_limit_s is not None and time.monotonic() - start > config.time_limit_s:
            stopped = True
            break
        lr = lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        losses = step_fn(rng)
        total = losses["total"]
        if not torch.isfinite(total):
            raise FloatingPointError(f"{name}: loss is {total.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if config.clip_grad:
            torch.nn.utils.clip_grad_norm_(params, config.clip_grad)
        optimizer.step()
        step += 1
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        count += 1
        bar.update(1)
        if count == config.log_every or step == config.steps:
            last = {k: v / count for k, v in sums.items()}
            bar.set_postfix(loss=f"{last['total']:.4f}")
            log_line(log_path, {"phase": name, "step": step, "lr": lr, **last, "elapsed_s": round(time.monotonic() - start, 2)})
            sums, count = {}, 0
        if time.monotonic() - last_save > config.save_every_s:
            _save_state(phase_dir, model, optimizer, step, rng, done=False)
            last_save = time.monotonic()
    bar.close()
    seconds = time.monotonic() - start
    _save_state(phase_dir, model, optimizer, step, rng, done=step >= config.steps)
    if stopped:
        log_line(log_path, {"phase": name, "step": step, "event": "time limit", "elapsed_s": round(seconds, 2)})
    return {"step": step, "resumed_from": resumed_from, "done": step >= config.steps, "seconds": seconds, "last": last}
