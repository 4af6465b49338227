"""The one backend session of this Blender (``SESSION``) and where its files go.

``SESSION`` (core/session.py) holds the backend process, the job in flight,
the last outcome and check result, and the environment set-up. Nothing here
keeps a ``bpy`` ID: a job names its scene and rig, and they are looked up
again when a result arrives. Motion files and mixed clips go to a private
folder of this Blender instance, never a shared one.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path

import bpy

from .core import backend_ref
from .core.client import BackendConfig
from .core.errors import InputError
from .core.session import Session

SESSION = Session()

# Scripts using the ``bpy`` module (no add-on preferences) set the backend here: ``session.configure(...)``.
script_config: dict = {}
_private_dir = ""


def backend_root() -> str:
    """The folder holding the ``backend`` package (bundled in the extension, or the source checkout)."""
    package = importlib.import_module(backend_ref.ROOT)
    return str(Path(package.__file__).resolve().parents[1])


def private_dir() -> str:
    """This Blender instance's own temporary folder (made once, removed at exit): motion files and mixed clips."""
    global _private_dir
    if not _private_dir or not os.path.isdir(_private_dir):
        _private_dir = tempfile.mkdtemp(prefix="avitalk_")
        atexit.register(shutil.rmtree, _private_dir, ignore_errors=True)
    return _private_dir


def log_path() -> str:
    return os.path.join(tempfile.gettempdir(), "avitalk_backend.log")


def configure(**values) -> None:
    """Set backend options for scripts without add-on preferences (``python``, ``checkpoint``, ``device``, ...)."""
    known = {f.name for f in fields(BackendConfig)}
    unknown = set(values) - known
    if unknown:
        raise InputError(f"unknown backend options {sorted(unknown)}; known: {sorted(known)}")
    script_config.clear()
    script_config.update(values)


@bpy.app.handlers.persistent
def on_load_pre(*_args):
    """A file is being loaded or reverted: drop the work in flight; its results are never applied."""
    if SESSION.working:
        SESSION.drop("The file changed; the generation in flight was dropped")
