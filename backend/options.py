"""The pipeline's command-line options, written once for generate, analyze, bench, evaluate and serve.

Standard library only at import time, so ``--help`` stays quick.
"""

from __future__ import annotations

import argparse


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    """The pipeline's options, the same for generate, analyze, bench, evaluate and serve."""
    p.add_argument("--checkpoint", help="folder with stage1.safetensors and stage2.safetensors (default: the shipped weights/)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--speech-model", help="local HuBERT / wav2vec 2.0 / Whisper folder (must match the checkpoint)")
    p.add_argument("--content-model", help="local folder of stage 2's content encoder, when it differs from --speech-model")
    p.add_argument("--llm", help="local transformers causal LM folder (must match the checkpoint)")
    p.add_argument("--no-lip-seal", action="store_true", help="keep the generator's own lip closures (stage-1 weights that read words still recognise them)")
    p.add_argument("--describe-samples", type=int,
                   help="sampled sentences that vote on the emotion stage 1 names (default: the pipeline's, 8; 0: the greedy sentence alone, faster)")


def pipeline_config(args: argparse.Namespace):
    """The ``PipelineConfig`` that ``add_pipeline_options``'s arguments ask for (unset ones keep its defaults)."""
    from .pipeline import PipelineConfig

    samples = {} if args.describe_samples is None else {"describe_samples": args.describe_samples}
    return PipelineConfig(checkpoint_dir=args.checkpoint, device=args.device, speech_path=args.speech_model,
                          content_path=args.content_model, llm_path=args.llm, lip_seal=not args.no_lip_seal, **samples)
