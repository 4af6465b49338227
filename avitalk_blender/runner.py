"""The one backend session of this Blender, and the work in flight on it.

``RUNNER`` holds the ``Session`` (core/session.py), the running ``Batch`` and
the job ids that belong to it, the last message for the panel and the last
``check`` result. Nothing here keeps a ``bpy`` ID: the batch names its scene
and rig, and they are looked up again when a result arrives.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from . import preferences
from .core import backend_ref
from .core.client import BackendConfig
from .core.session import Session

# Scripts using the ``bpy`` module (no add-on preferences) set the backend here: ``runner.configure(...)``.
_script_config: dict = {}


def backend_root() -> str:
    """The folder holding the ``backend`` package (bundled in the extension, or the source checkout)."""
    package = importlib.import_module(backend_ref.ROOT)
    return str(Path(package.__file__).resolve().parents[1])


def configure(**values) -> None:
    """Set backend options for scripts without add-on preferences (``python``, ``checkpoint``, ``device``, ...)."""
    known = {f.name for f in fields(BackendConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown backend options {sorted(unknown)}; known: {sorted(known)}")
    _script_config.clear()
    _script_config.update(values)


def config_from(context) -> BackendConfig:
    """The backend settings: the add-on preferences, else ``configure(...)``, else this interpreter."""
    config = BackendConfig(backend_root=backend_root(), log=os.path.join(tempfile.gettempdir(), "avitalk_backend.log"))
    prefs = preferences.get(context)
    if prefs is not None:
        config.python = _abspath(prefs.backend_python)
        config.checkpoint = _abspath(prefs.checkpoint_dir)
        config.device = prefs.device.lower()
        config.speech_model = _abspath(prefs.speech_model_dir)
        config.content_model = _abspath(prefs.content_model_dir)
        config.llm = _abspath(prefs.llm_dir)
        config.stall_timeout = float(prefs.stall_timeout)
    else:
        config.python = sys.executable  # the bpy module: this interpreter has the backend's packages
    for name, value in _script_config.items():
        setattr(config, name, value)
    return config


def _abspath(path: str) -> str:
    import bpy

    return bpy.path.abspath(path) if path else ""


class Runner:
    def __init__(self):
        self.session = Session()
        self.batch = None          # core.batch.Batch in flight, or None
        self.message = ""          # the last outcome, for the panel
        self.check = None          # the last check result (dict) or None

    @property
    def busy(self) -> bool:
        return self.batch is not None or self.session.busy

    def progress(self) -> tuple:
        """(0..1, label) of the work in flight."""
        jobs = list(self.session.jobs.values())
        if not jobs:
            return 0.0, "Working"
        if self.batch is None or len(self.batch.segment_instructions) == 1:
            return jobs[0].progress, jobs[0].label
        done = len(self.batch.motions)
        total = max(len(set(self.batch.effective_instructions())), done + len(jobs))
        return (done + jobs[0].progress) / total, f"{jobs[0].label} ({done + 1}/{total})"

    def drop(self, reason: str = "") -> None:
        """Forget the work in flight (cancel it on the backend); its results are never applied."""
        self.session.cancel()
        self.batch = None
        if reason:
            self.message = reason

    def shutdown(self) -> None:
        self.batch = None
        self.session.stop()


RUNNER = Runner()
