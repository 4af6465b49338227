"""Write a motion onto the rig as keyframes, in bulk (``takes.make_take`` is the one caller that makes takes).

Action layout (decided here): a take is TWO new actions, because its channels
live on two data-blocks of different ID types:

- ``<take>_shapes`` animates the mesh's shape-key data-block (a ``KEY`` ID):
  ``key_blocks["Exp000"].value`` ...
- ``<take>_pose`` animates the armature object (an ``OBJECT`` ID):
  ``pose.bones["jaw"].rotation_quaternion`` and ``.location`` for every bone.

On Blender 4.4+ (slotted actions) each action has one slot of the matching ID
type, one layer and one keyframe strip whose channelbag holds the F-curves; on
3.4 to 4.3 the action's own F-curves with ``id_root`` set. One slot per action,
rather than one action with two slots, keeps the same layout on every version
and lets the NLA push each half as an ordinary strip. Both actions carry the
``avitalk_*`` custom properties and the take name, and a fake user so that a
take survives being swapped out.

Keys are written with ``keyframe_points.add(n)`` and ``foreach_set``, never
``keyframe_insert`` in a loop.
"""

import bpy
import numpy as np

from . import compat
from .core import naming, rig_maths, take
from .core.errors import InputError
from .rig import rig_constants, shape_key_name

LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value
SLOTTED = compat.SLOTTED


def prepare(arm_obj, motion, fps: float, frame_start: int) -> take.TakeData:
    """Resample ``motion`` to ``fps`` and check it fits the rig of ``arm_obj`` (InputError if not)."""
    return take.prepare_take(motion, int(arm_obj["avitalk_n_expr"]), fps, frame_start)


def bake(mesh_obj, arm_obj, data: take.TakeData, take_name: str, push_to_nla: bool = False):
    """Write ``data`` as the take ``take_name`` (see ``naming.unique_take_name``); returns the two actions."""
    joints_rest, joint_exprdirs = rig_constants(arm_obj)
    quats, locs = rig_maths.bone_values(data.pose, data.expression, joints_rest, joint_exprdirs)

    key = mesh_obj.data.shape_keys
    shapes_name, pose_name = naming.action_names(take_name)
    shapes_action, shapes_slot, fcurves = new_action(shapes_name, 'KEY', key.name)
    for e in range(data.expression.shape[1]):
        path = f'key_blocks["{shape_key_name("Exp", e)}"].value'
        write_fcurve(fcurves, path, 0, "Expressions", data.frames, data.expression[:, e])

    pose_action, pose_slot, fcurves = new_action(pose_name, 'OBJECT', arm_obj.name)
    for b, bone in enumerate(rig_maths.BONE_NAMES):
        for i in range(4):
            write_fcurve(fcurves, f'pose.bones["{bone}"].rotation_quaternion', i, bone, data.frames, quats[:, b, i])
        for i in range(3):
            write_fcurve(fcurves, f'pose.bones["{bone}"].location', i, bone, data.frames, locs[:, b, i])

    finish(((key, shapes_action, shapes_slot), (arm_obj, pose_action, pose_slot)), data, take_name, push_to_nla)
    return shapes_action, pose_action


def finish(targets, data: take.TakeData, take_name: str, push_to_nla: bool) -> None:
    """Tag each (ID, action, slot) of a take with its data and make the action the ID's animation."""
    motion = data.motion
    for id_data, action, slot in targets:
        action["avitalk_take"] = take_name
        action["avitalk_instruction"] = motion.instruction
        action["avitalk_source"] = motion.source
        if motion.seed is not None:
            action["avitalk_seed"] = int(motion.seed)
        action["avitalk_fps"] = float(data.fps)
        action.use_fake_user = True
        assign(id_data, action, slot, take_name, data.frames[0], push_to_nla)


def new_action(name: str, id_type: str, slot_name: str):
    """A new action for one ID type: (action, slot or None, F-curve collection)."""
    action = bpy.data.actions.new(name)
    if action.name != name:  # Blender renamed it: the caller's name was not unique
        bpy.data.actions.remove(action)
        raise InputError(f"an action named '{name}' already exists")
    if not SLOTTED:
        action.id_root = id_type
        return action, None, action.fcurves
    slot = action.slots.new(id_type=id_type, name=slot_name)
    strip = action.layers.new("Layer").strips.new(type='KEYFRAME')
    return action, slot, strip.channelbag(slot, ensure=True).fcurves


def write_fcurve(fcurves, data_path: str, index: int, group: str, frames, values) -> None:
    fcurve = compat.fcurve_new(fcurves, data_path, index, group)
    n = len(frames)
    points = fcurve.keyframe_points
    points.add(n)
    co = np.empty((n, 2), dtype=np.float32)  # (T, 2): frame, value
    co[:, 0] = frames
    co[:, 1] = values
    points.foreach_set("co", co.ravel())
    points.foreach_set("interpolation", np.full(n, LINEAR, dtype=np.int32))
    fcurve.update()


def assign(id_data, action, slot, take_name: str, frame_start: float, push_to_nla: bool) -> None:
    anim = id_data.animation_data or id_data.animation_data_create()
    current = anim.action
    if current is not None and current.users <= 1 and not current.use_fake_user:
        current.use_fake_user = True  # never let the artist's action vanish on save
    if push_to_nla:
        track = anim.nla_tracks.new()
        track.name = take_name
        strip = track.strips.new(take_name, int(round(frame_start)), action)
        if slot is not None:
            strip.action_slot = slot
        if current is not None and current.get("avitalk_take") is not None:
            anim.action = None  # an earlier take would hide the NLA
        return
    anim.action = action
    if slot is not None:
        anim.action_slot = slot


def action_fcurves(action):
    """Every F-curve of a take action (all slots' channelbags on slotted actions)."""
    if not SLOTTED:
        return list(action.fcurves)
    out = []
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                out.extend(bag.fcurves)
    return out


def check_editable(mesh_obj, arm_obj) -> None:
    """InputError unless the rig's animated data-blocks can get new animation.

    A library override of a linked rig is fine (the new actions are local); a
    linked rig without an override is read-only in this file.
    """
    for id_data, what in ((arm_obj, "armature"), (mesh_obj, "mesh"), (mesh_obj.data.shape_keys, "shape keys")):
        if id_data is not None and id_data.library is not None and id_data.override_library is None:
            raise InputError(f"the rig's {what} '{id_data.name}' is linked from {id_data.library.filepath} and "
                             "cannot be animated here; make a library override first "
                             "(Object > Library Override > Make)")


def existing_action_names():
    return [action.name for action in bpy.data.actions]
