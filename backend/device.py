"""Where the models run: chosen once, at the top (pipeline, trainer, benchmark)."""

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when torch sees a GPU, else the CPU; ``cuda`` without a GPU is an error."""
    if name not in DEVICES:
        raise ValueError(f"device must be auto, cpu or cuda, not {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA GPU (is the CUDA build of torch installed?)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def autocast(device: torch.device, cpu_bf16: bool = False):
    """Mixed precision: bf16 on CUDA GPUs that have it, else fp16; on the CPU, bf16 only when
    asked (training's frozen LLM) and the CPU has it (AVX512-BF16/AMX), else off."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    bf16 = cpu_bf16 and getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(bf16))
