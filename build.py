#!/usr/bin/env python3
"""Build, test and demo AVI-Talk (standard library only).

    python build.py          build the installable extension zip into dist/
    python build.py test     create/update .venv, run pytest over tests/ (exit code passed through;
                             extra arguments go to pytest, paths replace tests/)
    python build.py demo     create/update .venv, run the models on the bundled line, bake it: out/demo.blend,
                             out/demo.mp4 (with its sound and the instruction as caption), demo.gif, demo_preview.png
    python build.py screenshots
                             run the real-window test (tests/test_gui_window.py) and save its screenshots
                             into docs/screenshots/
"""

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _requirements():
    """``avitalk_blender/core/requirements.py``, loaded by path: the package itself needs bpy."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("avitalk_requirements", ROOT / "avitalk_blender/core/requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The project's Python packages: backend/requirements*.txt (read by avitalk_blender/core/requirements.py) and the dev list.
_REQ = _requirements()
PACKAGES = _REQ.BACKEND_PACKAGES + _REQ.DEV_PACKAGES
# Installed afterwards with --no-deps (their pinned dependencies clash with the list above).
PACKAGES_NO_DEPS = list(_REQ.BACKEND_PACKAGES_NO_DEPS)

# Debian packages: espeak-ng (test speech, corpus), the Asterisk prompts (real recorded speech for the corpus).
SYSTEM_PACKAGES = ["espeak-ng", "asterisk-core-sounds-en-wav", "asterisk-core-sounds-en", "asterisk-core-sounds-it-wav"]
# The real-window test (tests/test_gui_window.py): Debian's Blender 3.4 with numpy, a virtual X server, Mesa's software OpenGL.
GUI_PACKAGES = ["blender", "python3-numpy", "xvfb", "libgl1-mesa-dri"]

VENV = ROOT / ".venv"
STAMP = VENV / "avitalk-packages.stamp"
EXCLUDE_DIRS = {"__pycache__", ".pytest_cache", ".cache", ".mypy_cache"}
EXCLUDE_SUFFIXES = (".pyc", ".pyo")


def manifest_version() -> str:
    text = (ROOT / "blender_manifest.toml").read_text(encoding="utf-8")
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise SystemExit("blender_manifest.toml has no version")
    return match.group(1)


def _files(folder: Path):
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if path.is_file() and not EXCLUDE_DIRS.intersection(parts) and not path.name.endswith(EXCLUDE_SUFFIXES):
            yield path


def build_zip(out_dir: Path = ROOT / "dist") -> Path:
    """Blender's extension layout: the manifest and the package's modules at the zip root,
    with a copy of ``backend/`` beside them (found by ``core/backend_ref.py``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"avitalk-{manifest_version()}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(ROOT / "blender_manifest.toml", "blender_manifest.toml")
        for path in _files(ROOT / "avitalk_blender"):
            zf.write(path, path.relative_to(ROOT / "avitalk_blender").as_posix())
        for path in _files(ROOT / "backend"):
            zf.write(path, path.relative_to(ROOT).as_posix())
    return target


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv() -> Path:
    """Create .venv if needed and install PACKAGES, unless the stamp says the list is unchanged."""
    if not venv_python().exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256("\n".join(PACKAGES + ["--no-deps"] + PACKAGES_NO_DEPS).encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return venv_python()
    pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run(pip + PACKAGES, check=True)
    subprocess.run(pip + ["--no-deps"] + PACKAGES_NO_DEPS, check=True)
    STAMP.write_text(wanted + "\n")
    return venv_python()


def ensure_system_packages(packages=SYSTEM_PACKAGES) -> None:
    """Install the Debian packages when they are missing and apt-get can (root); else say what is missing."""
    import shutil

    missing = [p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0] if shutil.which("dpkg") else []
    if not missing:
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        if subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}).returncode == 0:
            return
    print(f"note: system packages missing: {' '.join(missing)} (apt-get install {' '.join(missing)}); tests that need them are skipped", file=sys.stderr)


def _blender_env() -> dict:
    env = dict(os.environ)
    env.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="avitalk-blender-user-"))
    return env


def run_tests(args) -> int:
    """pytest over tests/, or over the paths given (pytest options pass through)."""
    ensure_system_packages(SYSTEM_PACKAGES + GUI_PACKAGES)
    python = ensure_venv()
    paths = [] if any((ROOT / a.split("::")[0]).exists() for a in args) else ["tests/"]
    command = [str(python), "-m", "pytest"] + paths + list(args)
    return subprocess.run(command, cwd=ROOT, env=_blender_env()).returncode


def run_demo(args) -> int:
    ensure_system_packages()
    python = ensure_venv()
    command = [str(python), "-m", "avitalk_blender.demo", "--out", str(ROOT / "out")] + list(args)
    return subprocess.run(command, cwd=ROOT, env=_blender_env()).returncode


def run_screenshots(args) -> int:
    """The real-window test, saving a screenshot of each step into docs/screenshots/."""
    os.environ["AVITALK_SCREENSHOTS"] = str(ROOT / "docs" / "screenshots")
    return run_tests(["tests/test_gui_window.py", *args])


def main(argv) -> int:
    if not argv:
        print(build_zip())
        return 0
    commands = {"test": run_tests, "demo": run_demo, "screenshots": run_screenshots}
    if argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
