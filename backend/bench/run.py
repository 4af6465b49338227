"""``python -m backend bench``: seconds and peak memory per stage, total, real-time factor.

Stages: speech features (stage-1 encoder, shared with the content path in the
default stack), stage 1 (Q-Former + LLM generation), stage-2 prior sampling,
stage-2 generator, lip timing (speech recognition + forced alignment for the
lip seal); plus Regenerate (stage 2 on cached features), the cold start (a new
process: imports, model loading and the first 5 s line, ``bench.cold``) and,
where ``bpy`` is importable, the keyframe bake (``python -m avitalk_blender.bench``
in its own process: the backend never imports the add-on). Seconds are medians
over the repeats. With ``--paper-scale`` the paper's
backbones are built too: parameter counts everywhere, timings on a CUDA GPU.

With no trained weights the default stack is timed on random weights of the
default size (the report says so): timing depends on shapes, not values.
The speech is the bundled demo line repeated to length, so speech
recognition and alignment see real words.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..audio import load_audio
from ..device import resolve_device
from ..pipeline import Pipeline, PipelineConfig, PipelineError, checkpoint_paths

SECONDS = (2.0, 5.0, 30.0, 600.0)  # the clip lengths a full report covers
STAGES = ("speech_features", "speech_recognition", "stage1", "text_encoder", "stage2_prior", "stage2_generator", "lip_timing")
DEMO_LINE = Path(__file__).resolve().parents[2] / "assets" / "demo" / "line.wav"


class PeakMemory:
    """Peak memory during a block: CUDA allocator peak, or sampled process RSS on the CPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb = 0.0   # above the level at the start of the block
        self.total_mb = 0.0  # the process's peak resident memory during the block (CPU), allocator peak (CUDA)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            import psutil

            self.proc = psutil.Process()
            self.base = self.proc.memory_info().rss
            self.peak = self.base
            self.stop = threading.Event()
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_mb = (torch.cuda.max_memory_allocated() - self.base) / 2**20
            self.total_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self.stop.set()
            self.thread.join()
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self.peak_mb = (self.peak - self.base) / 2**20
            self.total_mb = self.peak / 2**20
        return False


def bench_speech(seconds: float) -> np.ndarray:
    """``seconds`` of 16 kHz speech: the demo line again and again with 0.3 s pauses (a test signal without it)."""
    if not DEMO_LINE.is_file():
        return speech_like(seconds)
    line = np.concatenate([load_audio(DEMO_LINE).samples, np.zeros(4800, dtype=np.float32)])
    n = int(seconds * 16000)
    return np.tile(line, n // len(line) + 1)[:n]


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A 16 kHz test signal with a gliding pitch, harmonics and syllable-rate amplitude."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.2 * voice * envelope + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def untrained_checkpoints(folder: Path) -> Path:
    """Default-size random weights, marked untrained, for timing only."""
    from ..stage1.instructor import Stage1, Stage1Config, save_stage1
    from ..stage2.model import Stage2, Stage2Config, save_stage2

    torch.manual_seed(0)
    save_stage1(folder / "stage1.safetensors", Stage1(Stage1Config()), {"trained": False})
    no_bank = {"bank_size": 0, "lm_dim": 0, "part_drop": 0.0}  # an untrained bank would have nothing to read
    save_stage2(folder / "stage2.safetensors", Stage2(Stage2Config(instruction=no_bank)), {"trained": False})
    return folder


def open_pipeline(config: PipelineConfig) -> tuple[Pipeline, bool]:
    """The trained pipeline when weights exist, else the default architecture on random weights."""
    try:
        checkpoint_paths(config.checkpoint_dir)
        return Pipeline(config), True
    except PipelineError as exc:
        if config.checkpoint_dir or exc.code != "no_weights":
            raise
    folder = untrained_checkpoints(Path(tempfile.mkdtemp(prefix="avitalk_bench_")))
    return Pipeline(replace(config, checkpoint_dir=folder, allow_untrained=True)), False


def time_clip(pipe: Pipeline, seconds: float, repeats: int) -> dict:
    """Warm seconds per stage (medians), peak memory per step and for a whole Generate, Regenerate."""
    audio = load_audio((bench_speech(seconds), 16000))
    pipe.generate(audio, seed=0)  # warm-up: lazy loads, allocator, kernels
    runs: list[dict[str, float]] = []
    memory: dict[str, float] = {}
    for _ in range(repeats):
        pipe.clear_cache()
        timings: dict[str, float] = {}
        with PeakMemory(pipe.device) as whole:
            with PeakMemory(pipe.device) as mem:
                pipe.features(audio, timings)
            memory["speech_features"] = max(memory.get("speech_features", 0.0), mem.peak_mb)
            with PeakMemory(pipe.device) as mem:
                analysis = pipe.analyze(audio)
            memory["stage1"] = max(memory.get("stage1", 0.0), mem.peak_mb)
            for name in ("speech_recognition", "stage1"):  # Whisper's words, when stage 1 reads them
                timings[name] = analysis.timings.get(name, 0.0)
            with PeakMemory(pipe.device) as mem:
                synthesis = pipe.synthesize(audio, "A man is furious and speaks with brows pulled down hard and lips pressed.", seed=1)
            memory["stage2"] = max(memory.get("stage2", 0.0), mem.peak_mb)
        memory["generate"] = max(memory.get("generate", 0.0), whole.peak_mb)
        memory["process"] = max(memory.get("process", 0.0), whole.total_mb)
        for name in ("text_encoder", "stage2_prior", "stage2_generator", "lip_timing", "speech_recognition"):
            timings[name] = timings.get(name, 0.0) + synthesis.timings.get(name, 0.0)  # recognition runs once, for whichever asks first
        timings["total"] = sum(timings.get(s, 0.0) for s in STAGES)
        runs.append(timings)
    median = {name: statistics.median(run.get(name, 0.0) for run in runs) for name in (*STAGES, "total")}
    # Regenerate: a new instruction on cached features (stage 2 only).
    regen = []
    for i in range(repeats):
        start = time.perf_counter()
        pipe.synthesize(audio, "A woman is delighted, smiling broadly with raised cheeks.", seed=10 + i)
        regen.append(time.perf_counter() - start)
    return {
        "audio_seconds": seconds,
        "seconds": {k: round(v, 4) for k, v in median.items()},
        "peak_mb": {k: round(v, 1) for k, v in memory.items()},
        "regenerate_seconds": round(statistics.median(regen), 4),
        "real_time_factor": round(median["total"] / seconds, 4),
    }


def cold_start(pipe: Pipeline) -> dict:
    """A new Python process from start to the first result for a 5 s line (``python -m backend.bench.cold``),
    with ``pipe``'s weights, device and vote."""
    config = pipe.config
    command = [sys.executable, "-m", "backend.bench.cold", "--device", str(pipe.device), "--samples", str(config.describe_samples)]
    if config.checkpoint_dir:
        command += ["--checkpoint", str(config.checkpoint_dir)]
    if config.allow_untrained:
        command.append("--allow-untrained")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return {"seconds": round(seconds, 3), **json.loads(done.stdout.strip().splitlines()[-1])}


def bake_benchmark() -> dict | None:
    """The keyframe bake, timed by ``python -m avitalk_blender.bench`` in its own process; None without ``bpy``."""
    if importlib.util.find_spec("bpy") is None:
        return None
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "BLENDER_USER_RESOURCES": tempfile.mkdtemp(prefix="avitalk_bres_")}
    done = subprocess.run([sys.executable, "-m", "avitalk_blender.bench", "--json"], cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_bench(config: PipelineConfig | None = None, seconds=SECONDS, paper_scale=False, repeats=3, bake=True,
              cold=True) -> dict:
    config = config or PipelineConfig()
    dev = resolve_device(config.device)
    torch.set_grad_enabled(False)
    report: dict = {
        "machine": {"platform": platform.platform(), "cpu_threads": torch.get_num_threads(), "device": str(dev),
                    "torch": torch.__version__},
    }
    if dev.type == "cuda":
        report["machine"]["gpu"] = torch.cuda.get_device_name(0)
    pipe, trained = open_pipeline(config)
    report["weights"] = "trained" if trained else "random (default architecture, timing only)"
    report["describe_samples"] = config.describe_samples
    print(f"AVI-Talk bench on {dev} ({report['weights']})")
    report["default_stack"] = []
    for s in seconds:
        row = time_clip(pipe, float(s), repeats)
        report["default_stack"].append(row)
        print_row(row)
    if cold:
        report["cold_start"] = cold_start(pipe)
        print(f"cold start (new process to the first 5 s result): {report['cold_start']}")
    if bake:
        result = bake_benchmark()
        if result is not None:
            report["bake"] = result
            print(f"bake: {result}")
    if paper_scale:
        report["paper_scale"] = paper_scale_report(seconds, dev)
    return report


def print_row(row: dict) -> None:
    s, m = row["seconds"], row["peak_mb"]
    print(f"\n{row['audio_seconds']:.0f} s of speech")
    print(f"  {'stage':<18}{'seconds':>10}{'peak MB':>10}")
    print(f"  {'speech features':<18}{s['speech_features']:>10.3f}{m['speech_features']:>10.1f}")
    print(f"  {'stage 1 (Q-Former + LLM)':<18}{s['stage1']:>10.3f}{m['stage1']:>10.1f}")
    print(f"  {'text encoder':<18}{s['text_encoder']:>10.3f}")
    print(f"  {'stage 2 prior':<18}{s['stage2_prior']:>10.3f}{m['stage2']:>10.1f}")
    print(f"  {'stage 2 generator':<18}{s['stage2_generator']:>10.3f}")
    print(f"  {'speech recognition':<18}{s['speech_recognition']:>10.3f}")
    print(f"  {'lip timing (alignment)':<18}{s['lip_timing']:>10.3f}")
    print(f"  {'total':<18}{s['total']:>10.3f}   real-time factor {row['real_time_factor']:.3f}")
    print(f"  regenerate (stage 2 on cached features): {row['regenerate_seconds']:.3f} s")
    print(f"  peak memory: {m['generate']:.1f} MB above the loaded models, {m['process']:.1f} MB for the process")


def paper_scale_report(seconds, dev: torch.device) -> dict:
    from . import paper_scale

    parts = paper_scale.build("meta")
    out: dict = {"parameters": paper_scale.parameter_counts(parts)}
    print("\npaper scale parameters:", {k: f"{v / 1e6:.1f} M" for k, v in out["parameters"].items()})
    if dev.type != "cuda":
        out["timings"] = "skipped: paper-scale timing needs a CUDA GPU"
        print(out["timings"])
        return out
    del parts
    gpu_parts = paper_scale.build(dev, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    out["timings"] = []
    for s in seconds:
        paper_scale.time_paper_scale(float(s), dev, parts=gpu_parts)  # warm-up
        row = {"audio_seconds": s, "seconds": paper_scale.time_paper_scale(float(s), dev, parts=gpu_parts)}
        out["timings"].append(row)
        print(f"paper scale, {s:.0f} s: {row['seconds']}")
    return out
