"""A character that is not a FLAME rig: what its shape keys and bones get from a motion (bpy-free).

The channel map says which shape keys play which ARKit name and which bones
play the jaw, eyes, head and neck. Rules (docs/retarget.md, README "Your own
character"): a jaw bone takes the jaw and its ARKit keys (jawOpen, jawLeft,
jawRight) are left alone; eye bones take the gaze and the eyeLook keys are left
alone; ``neck`` takes the motion's global pose and ``head`` its neck pose, or
one of them alone takes both. Weights are clipped to each key's slider range.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from . import backend_ref, rig_maths

BONE_ROLES = ("jaw", "left_eye", "right_eye", "head", "neck")
JAW_KEYS = ("jawOpen", "jawLeft", "jawRight")
EYE_KEYS = tuple(f"eyeLook{d}{s}" for d in ("Up", "Down", "In", "Out") for s in ("Left", "Right"))
# FLAME's frame (Y up, face along +Z) in a Blender world where characters stand on Z and face -Y.
FLAME_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def retarget(name: str):
    """``backend.retarget.<name>`` (numpy only)."""
    return backend_ref.module(f"retarget.{name}")


@dataclass
class ChannelMap:
    shapes: dict                                # ARKit name -> tuple of the rig's shape-key names
    bones: dict                                 # role -> bone name (only roles the rig has)
    unmatched_arkit: tuple = ()
    unmatched_keys: tuple = ()
    found: tuple = field(default=())            # every shape-key name of the rig, for messages

    def driven_keys(self) -> dict:
        """ARKit name -> keys that a take writes (the bones' rules applied)."""
        skip = set()
        if "jaw" in self.bones:
            skip.update(JAW_KEYS)
        if "left_eye" in self.bones or "right_eye" in self.bones:
            skip.update(EYE_KEYS)
        return {name: keys for name, keys in self.shapes.items() if name not in skip and keys}

    def check(self) -> "ChannelMap":
        """A project error naming what the rig has when no channel can be driven."""
        names = retarget("names")
        names.RigMatch(self.driven_keys(), self.bones, self.unmatched_arkit, self.unmatched_keys, self.found).check()
        return self


def automatic(shape_keys, bone_names=()) -> ChannelMap:
    """The map ``backend.retarget.names`` reads from the rig's names."""
    match = retarget("names").match_rig(shape_keys, bone_names)
    return ChannelMap(dict(match.shapes), dict(match.bones), match.unmatched_arkit, match.unmatched_keys,
                      match.found)


def from_entries(entries, bones: dict, shape_keys) -> ChannelMap:
    """A map from stored (ARKit name, key name) pairs; keys the rig no longer has are dropped."""
    present = set(shape_keys)
    shapes: dict = {}
    for arkit, key in entries:
        if key in present:
            shapes[arkit] = shapes.get(arkit, ()) + (key,)
    used = {k for keys in shapes.values() for k in keys}
    arkit_names = retarget("arkit").ARKIT_NAMES
    return ChannelMap(shapes, {r: b for r, b in bones.items() if b},
                      tuple(n for n in arkit_names if n not in shapes),
                      tuple(k for k in shape_keys if k not in used and k.lower() not in ("basis", "reference")),
                      tuple(shape_keys))


def arkit_weights(motion) -> np.ndarray:
    """(T, 52) ARKit weights of a motion (our head's component names; reserved zero columns ignored)."""
    names = backend_ref.module("head.components").EXPRESSION_NAMES
    expression = np.asarray(motion.expression)[:, :len(names)]
    return retarget("arkit").arkit_weights(expression, motion.jaw_pose, motion.eye_pose, names)


def solved(stored: dict, motion) -> tuple:
    """(ARKit weights (T, 52), the motion with the jaw opening its bone should make) by the per-frame solve kept
    on the character (``backend.retarget.transfer.SolveMap``); the keys it does not solve (eyeLook, the jaw's
    sideways turn) keep the table's weights."""
    solve_map = retarget("transfer").SolveMap.from_dict(stored)
    weights = arkit_weights(motion)
    solved_columns = [retarget("arkit").ARKIT_INDEX[k] for k in solve_map.keys]
    expression = np.asarray(motion.expression)[:, :len(solve_map.channels) - 1]
    weights[:, solved_columns] = solve_map.weights(expression, motion.jaw_pose)[:, solved_columns]
    jaw = np.asarray(motion.jaw_pose, dtype=np.float64).copy()
    jaw[:, 0] = solve_map.jaw_opening(weights)
    return weights, dataclasses.replace(motion, jaw_pose=jaw)


def key_values(channel_map: ChannelMap, weights: np.ndarray, ranges: dict) -> dict:
    """Shape-key name -> (T,) values: each key's ARKit weight clipped to its (min, max) slider range."""
    index = retarget("arkit").ARKIT_INDEX
    out = {}
    for name, keys in channel_map.driven_keys().items():
        for key in keys:
            low, high = ranges.get(key, (0.0, 1.0))
            out[key] = np.clip(weights[:, index[name]], low, high)
    return out


def _compose(first, second) -> np.ndarray:
    """Axis-angle (T, 3) of rotating by ``second`` inside ``first`` (first @ second)."""
    r = rig_maths.quaternion_to_matrix(rig_maths.axis_angle_to_quaternion(first)) @ \
        rig_maths.quaternion_to_matrix(rig_maths.axis_angle_to_quaternion(second))   # (T, 3, 3)
    return matrix_to_axis_angle(r)


def matrix_to_axis_angle(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) axis-angle (angles below pi)."""
    angle = np.arccos(np.clip((np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0))
    v = np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
    s = np.sin(angle)
    scale = np.where(s > 1e-9, angle / np.where(s > 1e-9, 2.0 * s, 1.0), 0.5)
    return v * scale[..., None]


def bone_rotations(bones: dict, motion) -> dict:
    """Role -> (T, 3) axis-angle in FLAME's frame, for the roles the rig has a bone for."""
    eye = np.asarray(motion.eye_pose, dtype=np.float64)
    pose = {"jaw": motion.jaw_pose, "left_eye": eye[:, :3], "right_eye": eye[:, 3:]}
    if "neck" in bones and "head" in bones:
        pose.update(neck=motion.global_pose, head=motion.neck_pose)
    else:
        both = _compose(motion.global_pose, motion.neck_pose)
        pose.update(neck=both, head=both)
    return {role: np.asarray(pose[role], dtype=np.float64) for role in bones if role in pose}


def local_quaternions(axis_angle: np.ndarray, world_to_armature: np.ndarray, bone_rest: np.ndarray) -> np.ndarray:
    """FLAME-frame axis-angle (T, 3) -> (T, 4) quaternions in a bone's rest frame.

    ``world_to_armature`` (3, 3): the inverse rotation of the armature object;
    ``bone_rest`` (3, 3): the bone's rest rotation in armature space. The axis is
    carried from FLAME's frame into the bone's: P = rest^T @ world_to_armature @ FLAME_TO_WORLD.
    """
    p = bone_rest.T @ world_to_armature @ FLAME_TO_WORLD
    return rig_maths.axis_angle_to_quaternion(np.asarray(axis_angle) @ p.T)
