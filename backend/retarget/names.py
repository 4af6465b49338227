"""Forgiving name matching: a rig's shape keys and bones -> ARKit names and our joints (stdlib only).

Names are cut into lower-case words (at separators and camelCase humps), a
side word (``L``, ``Left``, ``l``, ``left``) is taken out wherever it sits, and
what is left must end in the ARKit name's words: so ``mouthSmileLeft``,
``mouthSmile_L``, ``MouthSmileLeft``, ``mouthSmile.L``, ``ARKit_mouthSmileLeft``,
``blendShape1.mouthSmileLeft`` and ``CC_Base_Mouth_Smile_L`` all read as
``mouthSmileLeft``. Left is the character's left, as ARKit and Blender's ``.L``
name it. Where two keys read as the same ARKit name, the one with fewer extra
letters wins and the other is reported as unmatched. An ARKit name split in two
halves on the rig (ICT-FaceKit's ``browInnerUp_L``/``_R``) maps to both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import AviTalkError
from .arkit import ARKIT_NAMES, DIRECTIONS, split_side

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SIDES = {"l": "left", "left": "left", "r": "right", "right": "right"}
BASIS_NAMES = ("basis", "reference", "neutral")
# Bone-name words that mark helpers, not the bone that moves the part.
_HELPER_WORDS = {"mch", "org", "def", "tweak", "ik", "fk", "target", "tgt", "end", "tip", "nub", "top", "lid", "lash",
                 "brow", "socket", "upper", "teeth", "tongue", "lip", "lips", "ctrl", "control"}
BONE_ROLES = ("jaw", "left_eye", "right_eye", "head", "neck")


class RigMatchError(AviTalkError):
    """A rig with no shape key or bone that AVI-Talk's channels can drive."""

    code = "bad_request"


def words(name: str) -> list[str]:
    """``blendShape1.mouthSmile_L`` -> ['blend', 'shape', '1', 'mouth', 'smile', 'l']."""
    return [w.lower() for part in re.split(r"[^A-Za-z0-9]+", name) for w in _WORD.findall(part)]


def _read(name: str) -> tuple[tuple[str, ...], str | None]:
    """Words without the side word, and the side ('left'/'right'/None)."""
    ws = words(name)
    side = None
    for i in [len(ws) - 1, 0] + list(range(1, len(ws) - 1)):   # a side word at the end, the start, else inside
        if ws and _SIDES.get(ws[i]):
            side = _SIDES[ws[i]]
            ws = ws[:i] + ws[i + 1:]
            break
    return tuple(ws), side


def _arkit_keys():
    """ARKit name -> (words, side)."""
    out = {}
    for name in ARKIT_NAMES:
        if name in DIRECTIONS:                       # jawLeft reads like a side too: jaw_L, Jaw.L
            out[name] = _read(name)
            continue
        base, side = split_side(name)
        out[name] = (tuple(words(base)), side.lower() if side else None)
    return out


_ARKIT = _arkit_keys()


def arkit_name(key: str) -> tuple[str | None, str | None, int]:
    """The ARKit name a key reads as, the half it is for an ARKit name split in two, and its extra letters.

    The words left after the side word, run together, must end in the ARKit name's words run together,
    so an all-lower-case ``mouthsmile_l`` reads too.
    """
    ws, side = _read(key)
    text = "".join(ws)
    best = (None, None, 0)
    for name, (base, want) in _ARKIT.items():
        tail = "".join(base)
        if not text.endswith(tail):
            continue
        extra = len(text) - len(tail)
        if want == side:
            if best[0] is None or best[1] is not None or extra < best[2]:
                best = (name, None, extra)
        elif want is None and side is not None and best[0] is None:
            best = (name, side, extra)               # e.g. browInnerUp_L: one half of browInnerUp
    return best


@dataclass
class RigMatch:
    shapes: dict                       # ARKit name -> tuple of the rig's key names that drive it
    bones: dict                        # role ('jaw', 'left_eye', ...) -> bone name
    unmatched_arkit: tuple             # ARKit names the rig has no key for
    unmatched_keys: tuple              # the rig's keys that read as no ARKit name (or lost to a better one)
    found: tuple = field(default=())   # every key name given, for messages

    def check(self) -> "RigMatch":
        """Raise ``RigMatchError`` naming what was found when nothing can be driven."""
        if not self.shapes and not self.bones:
            shown = ", ".join(self.found[:8]) + (f" and {len(self.found) - 8} more" if len(self.found) > 8 else "")
            raise RigMatchError(
                "the character has no shape key with an ARKit name (such as mouthSmileLeft, eyeBlink_L, jawOpen) "
                "and no jaw, eye, head or neck bone; " + (f"its shape keys are {shown}" if self.found else
                                                          "it has no shape keys"))
        return self


def match_shapes(keys) -> tuple[dict, tuple, tuple]:
    """ARKit name -> keys, the ARKit names left over and the keys left over."""
    chosen: dict[str, list] = {}
    leftover = []
    for key in keys:
        if key.lower() in BASIS_NAMES:
            continue
        name, half, extra = arkit_name(key)
        if name is None:
            leftover.append(key)
            continue
        chosen.setdefault(name, []).append((half, extra, key))
    shapes = {}
    for name, cands in chosen.items():
        whole = sorted((e, k) for h, e, k in cands if h is None)
        halves = {h: sorted((e, k) for hh, e, k in cands if hh == h) for h in ("left", "right")}
        if whole:
            shapes[name] = (whole[0][1],)
            leftover += [k for _, k in whole[1:]] + [k for h in halves.values() for _, k in h]
        elif halves["left"] and halves["right"]:
            shapes[name] = (halves["left"][0][1], halves["right"][0][1])
            leftover += [k for h in halves.values() for _, k in h[1:]]
        else:
            leftover += [k for h in halves.values() for _, k in h]
    unmatched = tuple(n for n in ARKIT_NAMES if n not in shapes)
    return {n: shapes[n] for n in ARKIT_NAMES if n in shapes}, unmatched, tuple(leftover)


def _bone_score(ws: tuple, side: str | None, role: str):
    """Lower is better; None when the bone cannot play the role."""
    if set(ws) & _HELPER_WORDS:
        return None
    if role in ("left_eye", "right_eye"):
        if side != role.split("_")[0] or ("eye" not in ws and "eyeball" not in ws):
            return None
    elif role not in ws or side is not None:
        return None
    return len(ws)


def guess_bones(bone_names) -> dict:
    """Role -> bone name by words: ``jaw``, ``Jaw``, ``CC_Base_JawRoot``, ``LeftEye``, ``eye.L``, ``head``, ``neck``."""
    out = {}
    read = [(b, *_read(b)) for b in bone_names]
    for role in BONE_ROLES:
        scored = [(s, b) for b, ws, side in read if (s := _bone_score(ws, side, role)) is not None]
        if scored:
            out[role] = min(scored)[1]
    return out


def match_rig(shape_keys, bone_names=()) -> RigMatch:
    """Match a rig's shape-key names (and bone names) to ARKit names and our joints."""
    keys = list(shape_keys)
    shapes, unmatched, leftover = match_shapes(keys)
    return RigMatch(shapes, guess_bones(bone_names), unmatched, leftover, tuple(keys))
