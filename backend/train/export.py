"""Write the finished phases' models as the pipeline's checkpoints, marked trained."""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import load_checkpoint
from ..stage1.instructor import Stage1, Stage1Config, save_stage1
from ..stage2.model import load_stage2, save_stage2
from ..pipeline import STAGE1_FILE, STAGE2_FILE
from .context import Context
from .instruction import NAME as INSTRUCTION
from .projection import NAME as PROJECTION


def export(ctx: Context, results: dict) -> tuple[Path, Path]:
    """``<out>/stage1.safetensors`` and ``<out>/stage2.safetensors`` from the run's last phases."""
    out = Path(ctx.options.out)
    for name in (PROJECTION, INSTRUCTION):
        if not ctx.model_path(name).is_file():
            raise FileNotFoundError(f"{ctx.model_path(name)} not found: phase {name} has not run")
    stage1, extra1 = load_checkpoint(ctx.model_path(PROJECTION), Stage1, Stage1Config, "stage1")
    stage2, extra2 = load_stage2(ctx.model_path(INSTRUCTION))
    steps = {name: r.get("step") for name, r in results.items()}
    common = {"trained": True, "speech_encoder": ctx.options.speech_encoder, "corpus": str(ctx.options.corpus), "steps": steps}
    path1, path2 = out / STAGE1_FILE, out / STAGE2_FILE
    save_stage1(path1, stage1, extra={**extra1, **common, "llm": ctx.llm_name})
    save_stage2(path2, stage2, extra={**extra2, **common})
    return path1, path2
