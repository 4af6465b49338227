"""Take names: derived from the instruction or the file name, unique, never reused."""

import os
import re

MAX_BASE_LENGTH = 40
# A take is two actions: one on the mesh's shape keys, one on the armature (see bake.py).
ACTION_SUFFIXES = ("_shapes", "_pose")


def take_base_name(instruction: str = "", source_path: str = "") -> str:
    """A short readable name: the instruction's first words, else the file's stem, else "take"."""
    text = instruction.strip()
    if not text and source_path:
        text = os.path.splitext(os.path.basename(source_path))[0]
    words = re.findall(r"[A-Za-z0-9]+", text)
    name = ""
    for word in words:
        candidate = f"{name}_{word.lower()}" if name else word.lower()
        if len(candidate) > MAX_BASE_LENGTH:
            break
        name = candidate
    if not name and words:
        name = words[0].lower()[:MAX_BASE_LENGTH]
    return name or "take"


def action_names(take: str) -> tuple:
    """The action names of a take, in ``ACTION_SUFFIXES`` order."""
    return tuple(take + suffix for suffix in ACTION_SUFFIXES)


def unique_take_name(base: str, existing_names) -> str:
    """``base``, or ``base_002``, ``base_003``, ... : the first take whose actions do not exist yet."""
    existing = set(existing_names)
    take, n = base, 1
    while any(name in existing for name in action_names(take)):
        n += 1
        take = f"{base}_{n:03d}"
    return take
