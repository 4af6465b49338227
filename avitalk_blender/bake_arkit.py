"""Write a motion onto an ARKit-named character as a take (``takes.make_take`` is the one caller).

Same layout as bake.py: ``<take>_shapes`` animates the mesh's shape keys
(``key_blocks["mouthSmileLeft"].value``, ARKit weights in each key's slider
range) and ``<take>_pose`` the armature's mapped bones (rotation only, in the
bone's own rotation mode). Nothing else of the character is touched. The
channel rules are in ``core.character``.
"""

import mathutils
import numpy as np

from . import bake
from .core import character as core
from .core import naming


def bake_character(character, data, take_name: str, push_to_nla: bool, per_frame: bool = False) -> tuple:
    """Bake ``data`` (a ``TakeData``) onto ``character``; returns the actions made (shapes and/or pose).

    ``per_frame``: where the character keeps a solve map (ICT's head), its weights come from the per-frame
    solve, not the table (``uses_solve``).
    """
    channel_map = character.channel_map().check()
    key = character.mesh.data.shape_keys
    ranges = {kb.name: (kb.slider_min, kb.slider_max) for kb in key.key_blocks}
    motion = data.motion
    if uses_solve(character, per_frame):
        weights, motion = core.solved(character.mesh["avitalk_solve_map"].to_dict(), motion)
    else:
        weights = core.arkit_weights(motion)
    values = core.key_values(channel_map, weights, ranges)
    arm_obj = character.armature
    rotations = core.bone_rotations(channel_map.bones, motion) if arm_obj is not None else {}

    shapes_name, pose_name = naming.action_names(take_name)
    targets = []
    if values:
        action, slot, fcurves = bake.new_action(shapes_name, 'KEY', key.name)
        for name, column in values.items():
            bake.write_fcurve(fcurves, f'key_blocks["{name}"].value', 0, "ARKit", data.frames, column)
        targets.append((key, action, slot))
    if rotations:
        action, slot, fcurves = bake.new_action(pose_name, 'OBJECT', arm_obj.name)
        to_armature = np.array(arm_obj.matrix_world.to_3x3().normalized().inverted())
        for role, axis_angle in rotations.items():
            bone = arm_obj.pose.bones[channel_map.bones[role]]
            rest = np.array(bone.bone.matrix_local.to_3x3().normalized())
            _write_rotation(fcurves, bone, data.frames, core.local_quaternions(axis_angle, to_armature, rest))
        targets.append((arm_obj, action, slot))
    bake.finish(targets, data, take_name, push_to_nla)
    return tuple(action for _, action, _ in targets)


def uses_solve(character, per_frame: bool) -> bool:
    """Whether a take on ``character`` is solved per frame: asked for, and a solve map kept on its mesh."""
    return per_frame and "avitalk_solve_map" in character.mesh


def _write_rotation(fcurves, pose_bone, frames, quats) -> None:
    """Key (T, 4) quaternions on a bone in whatever rotation mode it uses."""
    mode = pose_bone.rotation_mode
    path = f'pose.bones["{pose_bone.name}"]'
    if mode == 'QUATERNION':
        channels, prop = quats, "rotation_quaternion"
    elif mode == 'AXIS_ANGLE':
        channels = np.array([_axis_angle(q) for q in quats])
        prop = "rotation_axis_angle"
    else:
        channels, previous = [], None
        for q in quats:
            quaternion = mathutils.Quaternion(q)
            euler = quaternion.to_euler(mode) if previous is None else quaternion.to_euler(mode, previous)
            channels.append(tuple(euler))
            previous = euler            # compatible Eulers: no 360-degree jumps between frames
        channels, prop = np.array(channels), "rotation_euler"
    for i in range(channels.shape[1]):
        bake.write_fcurve(fcurves, f"{path}.{prop}", i, pose_bone.name, frames, channels[:, i])


def _axis_angle(q):
    axis, angle = mathutils.Quaternion(q).to_axis_angle()
    return (angle, *axis)
