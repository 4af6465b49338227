"""Shared test setup.

Blender tests run inside the ``bpy`` module. Its user resources (preferences,
extensions) go to a temporary folder, set before anything imports bpy. The
Blender fixtures import bpy lazily, so plain tests never load it.
"""

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="avitalk-blender-user-"))


@pytest.fixture
def blender():
    """A factory-fresh empty Blender session with the add-on (source checkout) registered."""
    import bpy

    import avitalk_blender

    bpy.ops.wm.read_factory_settings(use_empty=True)
    avitalk_blender.register()
    try:
        yield bpy
    finally:
        avitalk_blender.unregister()
        bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture
def tiny_flame(tmp_path):
    """A small synthetic FLAME file with 12 expressions: (path, raw dict)."""
    from backend.flame.synthetic import write_tiny_model

    path = tmp_path / "tiny_flame.pkl"
    raw = write_tiny_model(path, n_verts=80, n_expr=12, seed=1)
    return path, raw
