"""FLAME model files: restricted loading and saving (numpy only)."""

import os
import pickle
import tempfile

import numpy as np


def save_flame(path, raw_dict: dict) -> None:
    """Write a FLAME-format dict as a protocol-2 pickle (atomic replace)."""
    if not isinstance(raw_dict, dict):
        raise TypeError(f"save_flame expects a dict, got {type(raw_dict).__name__}")
    data = {k: (np.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in raw_dict.items()}
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".flame-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
