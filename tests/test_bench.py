"""The benchmark's bookkeeping (medians, memory, the Blender bake left to its own process), on a stand-in pipeline."""

import subprocess
import sys

from types import SimpleNamespace

import torch

from backend.bench import run


class FakePipeline:
    """Reports fixed stage timings, one slow outlier run among them."""

    def __init__(self):
        self.device = torch.device("cpu")
        self.calls = 0

    def generate(self, audio, seed=0):
        return None

    def clear_cache(self):
        self.calls += 1

    def features(self, audio, timings):
        timings["speech_features"] = 0.5 if self.calls != 2 else 50.0

    def analyze(self, audio):
        return SimpleNamespace(timings={"speech_recognition": 0.25, "stage1": 1.0})

    def synthesize(self, audio, instruction, seed=0):
        return SimpleNamespace(timings={"text_encoder": 0.125, "stage2_prior": 0.0625, "stage2_generator": 0.0625, "lip_timing": 0.25})


def test_time_clip_reports_medians_per_stage():
    row = run.time_clip(FakePipeline(), 2.0, repeats=3)
    assert row["seconds"]["speech_features"] == 0.5  # the outlier run does not count
    assert row["seconds"]["total"] == 0.5 + 0.25 + 1.0 + 0.125 + 0.0625 + 0.0625 + 0.25
    assert row["real_time_factor"] == round(row["seconds"]["total"] / 2.0, 4)
    assert {"speech_features", "stage1", "stage2", "generate", "process"} <= set(row["peak_mb"])
    assert row["peak_mb"]["process"] > 0


def test_the_backend_bench_never_imports_the_addon(monkeypatch):
    code = "import sys, backend.bench.run, backend.bench.cold; print(any(m.startswith('avitalk_blender') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    monkeypatch.setattr(run.importlib.util, "find_spec", lambda name: None)
    assert run.bake_benchmark() is None  # no bpy: no bake
