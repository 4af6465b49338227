"""Where the backend package lives: the one module that knows.

In the packaged extension, ``backend/`` is copied inside the extension folder,
so it is the sibling package ``<extension>.backend``. In a source checkout it
is the top-level ``backend`` package next to ``avitalk_blender/``. Everything
else in the extension imports the backend through the names below.

Only the numpy-only backend modules are imported here: Blender's Python never
imports torch.
"""

import importlib

_EXTENSION = __name__.rsplit(".", 2)[0]  # "avitalk_blender" or "bl_ext.<repo>.avitalk"


def _backend_root() -> str:
    bundled = _EXTENSION + ".backend"
    try:
        importlib.import_module(bundled)
    except ModuleNotFoundError as exc:
        if exc.name != bundled:
            raise
        return "backend"
    return bundled


ROOT = _backend_root()


def module(name: str):
    """Import ``backend.<name>`` from wherever the backend lives (e.g. ``"motion"``)."""
    return importlib.import_module(f"{ROOT}.{name}")


def pickle_io():
    """``backend.flame.pickle_io``: ``load_flame``, ``FlameModel``, ``FlameFileError``."""
    return module("flame.pickle_io")


def lbs_numpy():
    """``backend.flame.lbs_numpy``: FLAME forward maths in numpy."""
    return module("flame.lbs_numpy")


def motion():
    """``backend.motion``: ``Motion``, ``load_motion``, ``save_motion``, ``resample``."""
    return module("motion")


def default_head_path():
    """Path of our generated default head (a FLAME-format pickle)."""
    return module("head").default_head_path()


def errors():
    """``backend.errors``: ``AviTalkError``, the base of every error the artist can fix (stdlib only)."""
    return module("errors")


def protocol():
    """``backend.protocol``: message and request types, the protocol version, stage names, control ranges."""
    return module("protocol")
