"""Safetensors checkpoints that carry their dataclass config and a format version.

Format 2 stores each model's config as its nested dataclass. Format 1 (the first shipped
files) stored stage 2's config flat; ``upgrade_format1`` is the one place that reads it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .errors import AviTalkError

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

# Format 1 wrote every field, but older files may miss the ones added later: those
# take the defaults format 1 had, not today's.
FORMAT1_DEFAULTS = {
    "stage1": {"qformer": {"n_queries": 32, "n_layers": 4, "words_dim": 0}, "instructor": {"use_chat_template": True, "n_prefix": 0}},
    "stage2": {"speech_dim": 768, "bank_size": 0, "lm_text_dim": 0, "text_part_drop": 0.0, "closure_weight": 0.0},
}
# Format 1's flat stage-2 fields: new location (section, name); section None = top level.
FORMAT1_STAGE2 = {
    "n_expression": (None, "n_expression"), "style_dim": (None, "style_dim"), "cond_dim": (None, "cond_dim"),
    "n_ref_frames": (None, "n_ref_frames"), "text_dim": ("instruction", "text_dim"),
    "speech_dim": ("content", "speech_dim"), "content_layers": ("content", "layers"), "content_kernel": ("content", "kernel"),
    "gen_layers": ("generator", "layers"), "gen_heads": ("generator", "heads"), "gen_radius": ("generator", "radius"),
    "style_hidden": ("style_encoder", "hidden"), "style_layers": ("style_encoder", "layers"), "style_heads": ("style_encoder", "heads"),
    "instr_hidden": ("instruction", "hidden"), "bank_size": ("instruction", "bank_size"), "bank_k": ("instruction", "bank_k"),
    "bank_temperature": ("instruction", "bank_temperature"), "lm_text_dim": ("instruction", "lm_dim"),
    "text_part_drop": ("instruction", "part_drop"), "proj_dim": ("instruction", "proj_dim"),
    "temperature": ("instruction", "temperature"), "learn_temperature": ("instruction", "learn_temperature"),
    "prior_hidden": ("prior", "hidden"), "prior_layers": ("prior", "layers"), "prior_heads": ("prior", "heads"),
    "timesteps": ("prior", "timesteps"), "cond_drop": ("prior", "cond_drop"), "sample_steps": ("prior", "sample_steps"),
    "guidance": ("prior", "guidance"),
    "velocity_weight": ("losses", "velocity_weight"), "lip_weight": ("losses", "lip_weight"),
    "closure_weight": ("losses", "closure_weight"), "diffusion_weight": ("losses", "diffusion_weight"),
}
# Format-1 fields that several sub-configs took: the generator's hidden size was also the
# content path's; one dropout served all but the prior, which had none.
FORMAT1_SHARED = {"hidden": ("content", "generator"), "dropout": ("content", "style_encoder", "generator", "instruction")}


class CheckpointError(AviTalkError):
    """A checkpoint file is missing, unreadable or of the wrong kind."""
    code = "no_weights"


def save_checkpoint(path, module: torch.nn.Module, config, kind: str, extra: dict | None = None) -> None:
    """Write ``module``'s weights with ``config`` (a dataclass) and ``kind`` in the metadata."""
    meta = {
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "config": json.dumps(dataclasses.asdict(config)),
        "extra": json.dumps(extra or {}),
    }
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)


def read_checkpoint(path, kind: str | None = None):
    """Return ``(config_dict, state_dict, extra)``; check the kind and format version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for a bad header
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    version = int(meta.get("format_version", "0"))
    if version not in READABLE_VERSIONS:
        raise CheckpointError(f"{path}: checkpoint format {version}, this AVI-Talk reads {READABLE_VERSIONS}")
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{path}: holds a '{meta.get('kind')}' model, expected '{kind}'")
    config = json.loads(meta["config"])
    if version == 1:
        config = upgrade_format1(meta.get("kind"), config)
    return config, state, json.loads(meta.get("extra", "{}"))


def upgrade_format1(kind: str | None, config: dict) -> dict:
    """A format-1 config as format 2 has it: stage 1 as it was (missing fields at format 1's
    defaults), stage 2's flat fields moved into their sub-configs."""
    if kind == "stage1":
        old = FORMAT1_DEFAULTS["stage1"]
        return {**config, **{part: {**old[part], **config.get(part, {})} for part in old}}
    if kind != "stage2":
        return config
    flat = {**FORMAT1_DEFAULTS["stage2"], **config}
    unknown = sorted(set(flat) - set(FORMAT1_STAGE2) - set(FORMAT1_SHARED))
    if unknown:
        raise CheckpointError(f"format-1 stage 2 config has fields this AVI-Talk does not know: {unknown}")
    nested: dict = {section: {} for section in ("content", "style_encoder", "generator", "instruction", "prior", "losses")}
    for name, value in flat.items():
        if name in FORMAT1_SHARED:
            for section in FORMAT1_SHARED[name]:
                nested[section][name] = value
            continue
        section, new = FORMAT1_STAGE2[name]
        (nested if section is None else nested[section])[new] = value
    nested["prior"]["dropout"] = 0.0
    return nested


def load_checkpoint(path, model_cls, config_cls, kind: str, map_location="cpu"):
    """Rebuild ``model_cls(config_cls(**config))`` and load its weights."""
    config_dict, state, extra = read_checkpoint(path, kind)
    try:
        config = config_cls(**config_dict)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: config does not fit {config_cls.__name__}: {exc}") from exc
    model = model_cls(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match {model_cls.__name__} (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(map_location), extra
