"""``python -m backend.bench.cold``: one cold Generate in a fresh process, as the add-on's first click.

Imports the pipeline, loads every model and generates for the bundled 5 s demo
line (repeated to 5 s); prints one JSON line with the seconds of each step since
the process started. ``bench.run.cold_start`` times the whole process from outside.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.bench.cold")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--allow-untrained", action="store_true")
    args = parser.parse_args(argv)
    from ..audio import load_audio
    from ..memory import return_freed_memory
    from ..pipeline import Pipeline, PipelineConfig
    from .run import bench_speech

    return_freed_memory()  # as ``python -m backend`` does
    imported = time.perf_counter()
    pipe = Pipeline(PipelineConfig(checkpoint_dir=args.checkpoint, device=args.device, describe_samples=args.samples,
                                   allow_untrained=args.allow_untrained))
    loaded = time.perf_counter()
    result = pipe.generate(load_audio((bench_speech(args.seconds), 16000)), seed=0)
    done = time.perf_counter()
    print(json.dumps({"import_s": round(imported - START, 3), "load_s": round(loaded - imported, 3),
                      "first_generate_s": round(done - loaded, 3), "in_process_s": round(done - START, 3),
                      "stages": {k: round(v, 3) for k, v in result.timings.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
