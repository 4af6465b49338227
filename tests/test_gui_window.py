"""AVI-Talk as a legacy add-on in a real Blender window (Debian's ``blender`` 3.4 under ``Xvfb``).

``tests/gui/drive.py`` runs inside that Blender and clicks through the work
an animator does: the preferences with the backend checked, the sidebar tab,
the head, a sound strip, Generate (modal, with progress), an edited
instruction and Regenerate, another take, Bake and Undo, Cancel, segments.
It writes a JSON report; this test asserts on it. Skipped (with the reason)
where ``blender`` or ``Xvfb`` is missing: ``python build.py test`` installs
both as root.

    AVITALK_SCREENSHOTS=docs/screenshots pytest tests/test_gui_window.py

also saves a screenshot of the window at each step (``python build.py screenshots``).
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import tiny_checkpoints

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "gui" / "drive.py"
AUDIO = ROOT / "assets" / "demo" / "line.wav"
EDITED = "A cheerful woman speaks warmly, smiling with raised brows."  # as in drive.py
LIMIT_S = 1800  # guards a hung Blender; not a timing assertion


def _bl_info() -> dict:
    tree = ast.parse((ROOT / "avitalk_blender" / "__init__.py").read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "bl_info")
    return ast.literal_eval(node.value)


def test_bl_info_matches_the_manifest():
    info = _bl_info()
    manifest = (ROOT / "blender_manifest.toml").read_text(encoding="utf-8")
    version = re.search(r'^version\s*=\s*"([^"]+)"', manifest, re.MULTILINE).group(1)
    assert ".".join(map(str, info["version"])) == version
    assert info["name"] == re.search(r'^name\s*=\s*"([^"]+)"', manifest, re.MULTILINE).group(1)
    assert info["blender"] <= (3, 4, 0)


def _missing() -> str:
    if not sys.platform.startswith("linux"):
        return "the real-window test runs on Linux (Xvfb)"
    for tool in ("blender", "Xvfb"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (as root: apt-get install blender xvfb python3-numpy)"
    return ""


def _install_addon(addons: Path) -> None:
    """The add-on as Blender 3.4 finds a legacy add-on: a package folder in scripts/addons,
    with the backend inside it as in the extension zip (links to the checkout)."""
    package = addons / "avitalk_blender"
    package.mkdir(parents=True)
    for path in (ROOT / "avitalk_blender").iterdir():
        if path.name != "__pycache__":
            (package / path.name).symlink_to(path)
    (package / "backend").symlink_to(ROOT / "backend")


def _start_xvfb():
    """An Xvfb server on a free display: (process, ":N")."""
    read, write = os.pipe()
    process = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                               pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        display = pipe.readline().strip()
    if not display:
        process.kill()
        raise RuntimeError("Xvfb did not start")
    return process, f":{display}"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("gui_window")
    user = folder / "user"
    _install_addon(user / "scripts" / "addons")
    (folder / "tmp").mkdir()
    # Blender's embedded Python finds its home through the first python3 on PATH: the system's, beside blender
    # (a pyenv or venv python3 first on PATH would hide the system's numpy from it)
    path = os.pathsep.join([os.path.dirname(shutil.which("blender")), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "BLENDER_USER_SCRIPTS": str(user / "scripts"), "BLENDER_USER_CONFIG": str(user / "config"),
           "BLENDER_USER_DATAFILES": str(user / "data"), "BLENDER_USER_RESOURCES": str(user), "TMPDIR": str(folder / "tmp")}
    start = folder / "start.blend"  # opening a file skips the splash screen
    subprocess.run(["blender", "-b", "--factory-startup", "--python-expr",
                    f"import bpy; bpy.ops.wm.save_as_mainfile(filepath={str(start)!r})"],
                   env=env, check=True, capture_output=True, timeout=LIMIT_S)
    weights = (ROOT / "backend" / "weights" / "stage1.safetensors").is_file()
    checkpoint = "" if weights else str(tiny_checkpoints(folder))
    shots = os.environ.get("AVITALK_SCREENSHOTS", "")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
    out = folder / "report.json"
    xvfb, display = _start_xvfb()
    try:
        with open(folder / "blender.log", "w") as log:
            subprocess.run(["blender", "--factory-startup", "--enable-event-simulate", str(start), "--python", str(DRIVER),
                            "--", "--report", str(out), "--shots", str(Path(shots).resolve()) if shots else "",
                            "--backend-python", sys.executable, "--audio", str(AUDIO), "--checkpoint", checkpoint],
                           env={**env, "DISPLAY": display}, stdout=log, stderr=subprocess.STDOUT, timeout=LIMIT_S)
    finally:
        xvfb.kill()
        xvfb.wait()
    log_text = (folder / "blender.log").read_text(errors="replace")
    assert out.is_file(), f"Blender wrote no report; its log ends:\n{log_text[-4000:]}"
    data = json.loads(out.read_text())
    assert "error" not in data, data["error"]
    assert data.get("finished"), f"the driver stopped early; its log ends:\n{log_text[-4000:]}"
    return data


def _step(report, name):
    return next(s for s in report["steps"] if s["step"] == name)


def test_the_addon_loads_in_blender_34_and_the_backend_checks(report):
    assert report["blender"][:2] >= [3, 4]
    assert _step(report, "enable")["enabled"]
    assert _step(report, "check")["models_ok"], _step(report, "check")["error"]
    assert {"flame_head", "flame_head_rig"} <= set(_step(report, "import_head")["objects"])
    assert _step(report, "sidebar_tab")["panel_drawn"]


def test_generate_is_modal_and_the_window_redraws_its_progress(report):
    assert _step(report, "generate_invoked")["result"] == ["RUNNING_MODAL"]
    step = _step(report, "generate")
    fractions = step["fractions"]
    assert step["draws_while_working"] >= 3
    assert fractions == sorted(fractions) and len(set(fractions)) >= 2  # it advanced between redraws
    assert len(step["takes"]) == 1 and step["instruction"].strip()
    take = step["takes"][0]
    assert step["actions"] == {"pose": take + "_pose", "shapes": take + "_shapes"}


def test_an_edited_instruction_regenerates_a_new_take(report):
    step = _step(report, "regenerate")
    assert len(step["takes"]) == 2 and step["take_instruction"] == EDITED
    assert step["actions"]["pose"] == step["takes"][1] + "_pose"
    switched = _step(report, "switch_take")
    assert switched["actions"] == {"pose": switched["chosen"] + "_pose", "shapes": switched["chosen"] + "_shapes"}


def test_undo_after_bake_restores_the_action_assignment(report):
    bake = _step(report, "bake")
    assert bake["result"] == ["FINISHED"] and bake["new_actions"] == 2
    assert bake["after"] != bake["before"] and bake["after"]["pose"].endswith("_baked_pose")
    undo = _step(report, "undo")
    assert undo["result"] == ["FINISHED"]
    assert undo["after"] == bake["before"]
    assert undo["baked_left"] == [] and undo["actions"] == 0


def test_cancel_mid_generation_leaves_the_takes_alone(report):
    step = _step(report, "cancel")
    assert 0 < step["at_fraction"] < 1
    assert not step["working"] and "cancelled" in step["message"].lower()
    assert step["takes"] == step["takes_before"]


def test_segments_follow_the_timeline_markers(report):
    step = _step(report, "segments")
    assert step["result"] == ["FINISHED"]
    assert len(step["segments"]) == 3 and [text for _, text in step["segments"][1:]] == [
        "calm and attentive", "surprised, eyebrows up"]
