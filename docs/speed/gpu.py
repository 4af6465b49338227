"""The benchmark on a CUDA GPU where the pretrained packages cannot be installed.

``python -m backend bench`` needs the shipped pretrained parts (Whisper tiny.en, MiniLM, SmolLM2-135M),
which come from pip packages (~260 MB). On a machine where they cannot be installed, this script
stands in random weights of exactly their shapes (configs and tokenizers read from ``--models``) and
runs the real pipeline code on CUDA with the shipped stage-1/stage-2 weights: every tensor has the
shipped shape, so the timings are the shipped stack's, except that a random LLM never writes an
end-of-sentence token and so always generates ``max_new_tokens`` (48) tokens, where the shipped model
stops after about 20-30. Speech recognition (CTranslate2) is not measured: the lip seal is off.
The paper-scale timings (``bench --paper-scale``) need no pretrained files.

    PYTHONPATH=. python docs/speed/gpu.py --models MODELS --json gpu.json

MODELS holds ``llm/`` (SmolLM2's config.json and tokenizer files) and ``minilm/`` (MiniLM's config.json
and tokenizer files), copied from the installed packages.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch


def install_stand_ins(models: Path) -> None:
    """Route the pipeline's three pretrained loaders to random weights of the shipped shapes."""
    import backend.language.llm as llm
    import backend.language.text as text
    import backend.speech as speech
    from backend.speech.whisper import WhisperAudioEncoder, WhisperEncoderConfig, WhisperSpeechEncoder
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    def load_encoder(kind="whisper-tiny.en", path=None, layer=None):
        if kind != "whisper-tiny.en":
            raise ValueError(f"stand-in only for whisper-tiny.en, not {kind}")
        torch.manual_seed(0)
        return WhisperSpeechEncoder(WhisperAudioEncoder(WhisperEncoderConfig()), name=kind)

    def load_text_encoder(path=None):
        folder = models / "minilm"
        torch.manual_seed(0)
        model = AutoModel.from_config(AutoConfig.from_pretrained(folder)).eval().requires_grad_(False)
        return text.TextEncoder(model, AutoTokenizer.from_pretrained(folder))

    def load_llm(path=None, cache_dir=None):
        folder = models / "llm"
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder), dtype=torch.float32)
        return llm.freeze(model), AutoTokenizer.from_pretrained(folder)

    speech.load_encoder = load_encoder
    text.load_text_encoder = load_text_encoder
    llm.load_llm = load_llm


def cold(models: Path, samples: int) -> dict:
    """One cold Generate (5 s) in this process, after the stand-ins are built: seconds per step."""
    start = time.perf_counter()
    install_stand_ins(models)
    from backend.audio import load_audio
    from backend.bench.run import bench_speech
    from backend.pipeline import Pipeline, PipelineConfig

    imported = time.perf_counter()
    pipe = Pipeline(PipelineConfig(device="cuda", lip_seal=False, describe_samples=samples))
    loaded = time.perf_counter()
    pipe.generate(load_audio((bench_speech(5.0), 16000)), seed=0)
    torch.cuda.synchronize()
    done = time.perf_counter()
    return {"import_s": round(imported - start, 3), "load_s": round(loaded - imported, 3), "first_generate_s": round(done - loaded, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 5.0, 30.0, 600.0])
    parser.add_argument("--samples", type=int, nargs="*", default=[8, 0], help="describe_samples settings to time (none: paper scale only)")
    parser.add_argument("--no-paper-scale", action="store_true")
    parser.add_argument("--cold", action="store_true", help="(internal) one cold Generate, printed as JSON")
    args = parser.parse_args(argv)
    if args.cold:
        print(json.dumps(cold(args.models, args.samples[0] if args.samples else 0)))
        return 0
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU: this script times the CUDA path")
    install_stand_ins(args.models)
    from backend.bench.run import paper_scale_report, run_bench
    from backend.pipeline import PipelineConfig

    report: dict = {"stand_ins": "random weights of the shipped shapes for Whisper tiny.en, MiniLM, SmolLM2-135M; "
                                 "shipped stage-1/2 weights; 48 generated tokens per sentence; lip seal off"}
    for samples in args.samples:
        config = PipelineConfig(device="cuda", lip_seal=False, describe_samples=samples)
        report[f"describe_samples_{samples}"] = run_bench(config, seconds=args.seconds, repeats=3, bake=False, cold=False)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--models", str(args.models), "--cold", "--samples", str(samples)],
                              capture_output=True, text=True)
        outside = time.perf_counter() - start
        report[f"describe_samples_{samples}"]["cold_start"] = (
            {"seconds": round(outside, 3), **json.loads(done.stdout.strip().splitlines()[-1])} if done.returncode == 0
            else {"error": done.stderr.strip()[-2000:]})
        print("cold start:", report[f"describe_samples_{samples}"]["cold_start"], flush=True)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    if not args.no_paper_scale:
        report["paper_scale"] = paper_scale_report(args.seconds, torch.device("cuda"))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
