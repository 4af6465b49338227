"""Training: ``python -m backend train {stage1-qformer,stage1-projection,stage2-talking,stage2-instruction,all}``.

(``stage2-prior`` is accepted for ``stage2-talking``, the talking prior's phase.)

    python -m backend train all --corpus data/train3k             # the shipped stack (timings: docs/model_card.md)
    python -m backend train stage2-talking --corpus data/corpus --steps 500
    python -m backend train all --corpus data/corpus --budget-minutes 25   # a quicker, weaker stack

Each phase resumes from ``<run>/<phase>/state.pt``; losses go to ``<run>/log.jsonl``.
The first run builds the feature cache (``<corpus>/cache``): speech features of every
clip and MiniLM embeddings of every instruction phrasing (and of every English transcript
when stage 1 is to read the words, ``words_dim`` in ``--stage1-config``); the instruction phase adds
the LLM's reading of every phrasing. ``all`` runs the four phases and writes
``stage1.safetensors`` and ``stage2.safetensors`` into ``--out``.

Training runs each phase's default steps (``context.DEFAULTS``, or ``--steps``) whatever the
machine's load. ``--budget-minutes`` is opt-in: it scales the steps, and each phase stops early
at its share of the budget (x1.2), keeping its state so that running the command again continues it.

The models' configs default to the shipped models; ``--stage1-config`` and
``--stage2-config`` take nested JSON overrides of ``Stage1Config`` and ``Stage2Config``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

COMMANDS = ("stage2-talking", "stage2-instruction", "stage1-qformer", "stage1-projection", "all")
ALIASES = {"stage2-prior": "stage2-talking"}  # the talking prior's phase, by its earlier name


def build_parser() -> argparse.ArgumentParser:
    from .context import DEFAULTS, TrainOptions

    defaults = TrainOptions(corpus=Path("."))
    phases = "; ".join(f"{k}: {d.steps} steps, batch {d.batch_size}, lr {d.lr}" for k, d in DEFAULTS.items())
    p = argparse.ArgumentParser(prog="python -m backend train", description=f"Train AVI-Talk. Defaults: {phases}.")
    p.add_argument("phase", choices=COMMANDS + tuple(ALIASES))
    p.add_argument("--corpus", required=True, help="built corpus folder, or a <speaker>/<clip>.wav|.npz|.txt folder")
    p.add_argument("--run", default=str(defaults.run), help="run folder: phase states, models, log.jsonl (default %(default)s)")
    p.add_argument("--out", default=str(defaults.out), help="where `all` writes the checkpoints (default: backend/weights)")
    p.add_argument("--cache-dir", help="feature cache folder (default: <corpus>/cache)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--steps", type=int, help="steps of the phase (with `all`: of every phase); default per phase")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--budget-minutes", type=float,
                   help="opt-in training time to plan for (feature cache not included): scales every phase's default steps, and a phase that runs past its share of it stops early, its state kept")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speech-encoder", default=defaults.speech_encoder, help="speech encoder kind (default %(default)s)")
    p.add_argument("--speech-path", help="local folder of the speech encoder when it is not the shipped one")
    p.add_argument("--llm", help="local causal LM folder or .gguf (default: the shipped SmolLM2-135M-Instruct)")
    p.add_argument("--stage1-config", default="{}", help='nested JSON overrides of Stage1Config, e.g. \'{"qformer": {"n_layers": 1}}\'')
    p.add_argument("--stage2-config", default="{}", help='nested JSON overrides of Stage2Config, e.g. \'{"generator": {"layers": 2}}\'')
    p.add_argument("--n-augment", type=int, default=defaults.n_augment, help="augmented copies of each instruction phrasing")
    p.add_argument("--n-paraphrase", type=int, default=defaults.n_paraphrase,
                   help="free wordings of the emotion added per clip whose emotion is not slight (backend/corpus/paraphrases.py)")
    p.add_argument("--val-clips", type=int, default=defaults.val_clips)
    return p


def options_from_args(args):
    from .context import TrainOptions

    def as_json(text: str, flag: str) -> dict:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{flag} is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError(f"{flag} must be a JSON object")
        return value

    for flag, value in (("--steps", args.steps), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be a positive integer, got {value}")
    for flag, value in (("--lr", args.lr), ("--budget-minutes", args.budget_minutes)):
        if value is not None and not value > 0:
            raise ValueError(f"{flag} must be positive, got {value}")
    if args.n_augment < 0:
        raise ValueError(f"--n-augment must be >= 0, got {args.n_augment}")
    if args.n_paraphrase < 0:
        raise ValueError(f"--n-paraphrase must be >= 0, got {args.n_paraphrase}")
    return TrainOptions(
        corpus=Path(args.corpus), run=Path(args.run), out=Path(args.out), cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        device=args.device, steps=args.steps, batch_size=args.batch_size, lr=args.lr, budget_minutes=args.budget_minutes,
        seed=args.seed, speech_encoder=args.speech_encoder, speech_path=Path(args.speech_path) if args.speech_path else None,
        llm=Path(args.llm) if args.llm else None, stage1_config=as_json(args.stage1_config, "--stage1-config"),
        stage2_config=as_json(args.stage2_config, "--stage2-config"), n_augment=args.n_augment, n_paraphrase=args.n_paraphrase, val_clips=args.val_clips,
    )


def run(options, phase: str) -> dict:
    """Run one phase or `all`; returns {phase: result} (and the written paths for `all`)."""
    import torch

    from .context import Context
    from .export import export
    from .instruction import train_instruction
    from .talking import train_talking
    from .projection import train_projection
    from .qformer import train_qformer

    torch.manual_seed(options.seed)
    ctx = Context(options)
    phases = {
        "stage2-talking": train_talking,
        "stage2-instruction": train_instruction,
        "stage1-qformer": train_qformer,
        "stage1-projection": train_projection,
    }
    names = list(phases) if phase == "all" else [phase]
    results = {name: phases[name](ctx) for name in names}
    if phase == "all":
        results["written"] = [str(p) for p in export(ctx, results)]
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    results = run(options_from_args(args), ALIASES.get(args.phase, args.phase))
    summary = {k: ({m: v for m, v in r.items() if m != "last"} if isinstance(r, dict) else r) for k, r in results.items()}
    print(json.dumps(summary, indent=2, default=str))
    return 0
