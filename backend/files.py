"""Files AVI-Talk writes for itself: its cache folder, and writes that land whole or not at all.

Standard library only (Blender's Python imports the head and motion modules that use it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def cache_folder() -> Path:
    """The user's own cache folder: ``$AVITALK_CACHE``, else ``~/.cache/avitalk`` (never a shared temp folder)."""
    env = os.environ.get("AVITALK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "avitalk"


def write_atomic(path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` (bytes, text, or a function that writes into an open binary file) to ``path``
    through a temporary file beside it, so a reader never sees half a file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
