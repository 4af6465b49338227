"""Command line: a thin shell over ``backend.pipeline`` and friends.

    python -m backend generate AUDIO -o motion.npz [--instruction TEXT] [--seed N]
    python -m backend analyze AUDIO
    python -m backend bench [--seconds 2 5 30 600] [--device cpu] [--paper-scale]
    python -m backend corpus build --out DIR ...
    python -m backend train {stage1-qformer,stage1-projection,stage2-talking,stage2-instruction,all}
    python -m backend evaluate ...
    python -m backend serve
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import AviTalkError
from .options import add_pipeline_options, pipeline_config


def _pipeline(args):
    from .pipeline import Pipeline

    return Pipeline(pipeline_config(args))


def _checked_audio(args):
    """The audio (and dialogue text) loaded and checked before any model loads: a typo fails in a blink."""
    from .audio import load_audio
    from .pipeline import check_transcript

    audio = load_audio(args.audio)
    check_transcript(args.transcript, audio)
    return audio


def cmd_generate(args) -> int:
    from .motion import save_motion
    from .pipeline import check_instruction, check_output, check_seed

    output = check_output(args.output, args.audio)
    check_seed(args.seed)
    if args.instruction is not None:
        check_instruction(args.instruction)
    audio = _checked_audio(args)
    pipe = _pipeline(args)
    result = pipe.generate(audio, instruction=args.instruction, seed=args.seed, transcript=args.transcript, language=args.language)
    save_motion(output, result.motion)
    summary = {
        "instruction": result.instruction,
        "inferred": result.inferred,
        "seed": args.seed,
        "lip_seal": result.lips.as_dict() if result.lips else None,
        "frames": result.motion.n_frames,
        "fps": result.motion.fps,
        "audio_seconds": round(audio.duration, 3),
        "seconds": {k: round(v, 4) for k, v in result.timings.items()},
        "device": str(pipe.device),
        "warnings": result.warnings,
        "output": str(output),
    }
    print(json.dumps(summary, indent=2))
    return 0


def cmd_analyze(args) -> int:
    audio = _checked_audio(args)
    result = _pipeline(args).analyze(audio, transcript=args.transcript, language=args.language)
    print(json.dumps({"instruction": result.instruction, "words": result.words, "warnings": result.warnings,
                      "seconds": {k: round(v, 4) for k, v in result.timings.items()}}, indent=2))
    return 0


def cmd_bench(args) -> int:
    from .bench.run import run_bench

    report = run_bench(pipeline_config(args), seconds=args.seconds, paper_scale=args.paper_scale, repeats=args.repeats,
                       cold=not args.no_cold)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


def cmd_corpus(args, rest: list[str]) -> int:
    from .corpus.build import main as corpus_main

    return corpus_main(rest)


def cmd_train(args, rest: list[str]) -> int:
    from .train import main as train_main

    return train_main(rest)


def cmd_evaluate(args, rest: list[str]) -> int:
    from .evaluate import main as evaluate_main

    return evaluate_main(rest)


def cmd_serve(args, rest: list[str]) -> int:
    from .serve import main as serve_main

    return serve_main(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend", description="AVI-Talk backend")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="audio -> instruction -> motion file")
    p.add_argument("audio")
    p.add_argument("-o", "--output", required=True, help="motion file to write (.npz)")
    p.add_argument("--instruction", help="use this instruction instead of inferring one")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--transcript", help="the dialogue text: times the lip seal (and is read by stage-1 weights that read words) instead of speech recognition")
    p.add_argument("--language", default="en", help="language of --transcript for the aligner (en, or e.g. it via espeak-ng)")
    add_pipeline_options(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("analyze", help="audio -> instruction text")
    p.add_argument("audio")
    p.add_argument("--transcript", help="the dialogue text, for stage-1 weights that read words (instead of what speech recognition heard)")
    p.add_argument("--language", default="en", help="language of the line (stage 1 reads English words only)")
    add_pipeline_options(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("bench", help="time and peak memory per stage")
    p.add_argument("--seconds", type=float, nargs="+", default=[2.0, 5.0, 30.0, 600.0], help="clip lengths (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-cold", action="store_true", help="skip the cold start (a new process to the first result)")
    p.add_argument("--paper-scale", action="store_true", help="also instantiate HuBERT-large, wav2vec2-base and a 7B LLM shape")
    p.add_argument("--json", help="also write the report as JSON")
    add_pipeline_options(p)
    p.set_defaults(func=cmd_bench)

    for name, func, helptext in (
        ("corpus", cmd_corpus, "build the training corpus"),
        ("train", cmd_train, "train the model stages"),
        ("evaluate", cmd_evaluate, "evaluate a checkpoint"),
        ("serve", cmd_serve, "JSON-lines backend process for Blender"),
    ):
        p = sub.add_parser(name, help=helptext, add_help=False)
        p.set_defaults(func=func, passthrough=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .memory import return_freed_memory

    return_freed_memory()
    try:
        if getattr(args, "passthrough", False):
            return args.func(args, rest)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return args.func(args)
    except AviTalkError as exc:  # the user can fix it: one line; anything else is a bug and keeps its traceback
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
