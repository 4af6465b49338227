"""Takes: each generation or applied motion file is a take (two actions, see bake.py) listed in
``scene.avitalk.takes``. ``make_take`` is the one place a take is made.

A take's data lives on its actions as custom properties, so scripts can read
them: ``avitalk_take``, ``avitalk_instruction``, ``avitalk_seed``,
``avitalk_frame_start``, ``avitalk_intensity``, ``avitalk_retarget`` (how the
motion reached the rig: "fitted map", "per-frame solve", "ARKit table", or
why a FLAME file's expressions were copied unmapped; "" on our own head), ...
(see ``make_take``).
"""

from __future__ import annotations

import bpy
import numpy as np

from . import bake, bake_arkit, character, flame_map
from .core import decimate, naming, take, timing
from .core.errors import InputError


def chosen(settings) -> bool:
    """Whether the Takes list has a take selected."""
    return 0 <= settings.take_index < len(settings.takes)


def take_actions(name: str) -> tuple:
    """The (shapes, pose) actions of a take; either may be None when deleted."""
    return tuple(bpy.data.actions.get(n) for n in naming.action_names(name))


def make_take(scene, obj, motion, frame_start: int, properties: dict, push_to_nla: bool = False,
              source: str = "") -> str:
    """Bake ``motion`` as a new take on the rig of ``obj`` from ``frame_start`` and list it; returns its name.

    The take becomes the rig's active action (or NLA strips with ``push_to_nla``)
    and is named from the motion's instruction, else ``source`` (a file path).
    Everything that can fail on user input fails before the scene is touched.
    """
    target = character.checked(obj)
    bake.check_editable(target.mesh, target.armature)
    fps = timing.scene_fps(scene.render.fps, scene.render.fps_base)
    retarget = ""
    if target.flame:
        motion, retarget = flame_map.motion_for(target.armature, motion, scene.avitalk.per_frame_solve)
        data = bake.prepare(target.armature, motion, fps, int(frame_start))
    else:
        data = take.prepare_take(motion, motion.expression.shape[1], fps, int(frame_start))
    base = naming.take_base_name(motion.instruction, source or motion.source)
    name = naming.unique_take_name(base, bake.existing_action_names())
    if target.flame:
        actions = bake.bake(target.mesh, target.armature, data, name, push_to_nla)
    else:
        per_frame = scene.avitalk.per_frame_solve
        retarget = "per-frame solve" if bake_arkit.uses_solve(target, per_frame) else "ARKit table"
        actions = bake_arkit.bake_character(target, data, name, push_to_nla, per_frame)
    for action in actions:
        action["avitalk_frame_start"] = int(frame_start)
        action["avitalk_retarget"] = retarget
        for key, value in properties.items():
            action[key] = value
    settings = scene.avitalk
    item = settings.takes.add()
    item.name = name
    item.rig = target.name
    _select_quietly(settings, len(settings.takes) - 1)
    return name


def _select_quietly(settings, index: int) -> None:
    """Set the list's active take without re-auditioning (the caller already assigned it)."""
    settings["take_index"] = index


def audition(scene, index: int) -> None:
    """Play take ``index`` on its rig: its actions become the active ones. Missing takes are skipped."""
    settings = scene.avitalk
    if not 0 <= index < len(settings.takes):
        return
    item = settings.takes[index]
    obj = bpy.data.objects.get(item.rig)
    shapes, pose = take_actions(item.name)
    if obj is None or (shapes is None and pose is None):
        return
    found = character.find(obj)
    for id_data, action in _targets(found, shapes, pose):
        _play(id_data, action)


def _targets(found, shapes, pose) -> list:
    """(ID, action) pairs of a take's existing actions on the character ``found``."""
    pairs = [(found.mesh.data.shape_keys, shapes), (found.armature, pose)]
    return [(id_data, action) for id_data, action in pairs if id_data is not None and action is not None]


def _play(id_data, action) -> None:
    anim = id_data.animation_data or id_data.animation_data_create()
    anim.action = action
    if bake.SLOTTED and len(action.slots):
        anim.action_slot = action.slots[0]


def delete(scene, index: int) -> str:
    """Remove take ``index`` from the list and its actions from the file."""
    settings = scene.avitalk
    if not 0 <= index < len(settings.takes):
        raise InputError("no take is selected")
    name = settings.takes[index].name
    for action in take_actions(name):
        if action is not None:
            bpy.data.actions.remove(action)
    settings.takes.remove(index)
    _select_quietly(settings, min(index, len(settings.takes) - 1))
    return name


def bake_take(scene, index: int, push_to_nla: bool, tolerance: float | None) -> str:
    """Bake take ``index``: a copy of its actions becomes the rig's action (or NLA strips at the
    audio's start), with keys reduced to ``tolerance`` when given. Returns the baked take's name."""
    settings = scene.avitalk
    if not 0 <= index < len(settings.takes):
        raise InputError("no take is selected: generate one first")
    item = settings.takes[index]
    shapes, pose = take_actions(item.name)
    gone = InputError(f"the actions of take '{item.name}' are gone; delete it from the list")
    if shapes is None and pose is None:
        raise gone
    obj = bpy.data.objects.get(item.rig)
    if obj is None:
        raise InputError(f"the rig '{item.rig}' of take '{item.name}' is gone")
    found = character.find(obj)
    if found.flame and (shapes is None or pose is None):
        raise gone
    bake.check_editable(found.mesh, found.armature)
    baked = naming.unique_take_name(f"{item.name}_baked", bake.existing_action_names())
    frame_start = int((shapes or pose).get("avitalk_frame_start", scene.frame_start))
    shapes_name, pose_name = naming.action_names(baked)
    for id_data, source in _targets(found, shapes, pose):
        action = source.copy()
        action.name = shapes_name if source is shapes else pose_name
        action["avitalk_take"] = baked
        action["avitalk_baked_from"] = item.name
        action.use_fake_user = False
        if tolerance is not None:
            reduce_keys(action, tolerance)
        slot = action.slots[0] if bake.SLOTTED and len(action.slots) else None
        bake.assign(id_data, action, slot, baked, frame_start, push_to_nla)
    return baked


def reduce_keys(action, tolerance: float) -> int:
    """Drop keys that linear interpolation reproduces within ``tolerance``; returns the keys left."""
    left = 0
    for fcurve in bake.action_fcurves(action):
        points = fcurve.keyframe_points
        n = len(points)
        co = np.empty(2 * n, dtype=np.float32)
        points.foreach_get("co", co)
        co = co.reshape(n, 2)  # (N, 2): frame, value
        keep = decimate.keep_mask(co[:, 0], co[:, 1], tolerance)
        kept = np.ascontiguousarray(co[keep])
        points.clear()
        points.add(len(kept))
        points.foreach_set("co", kept.ravel())
        points.foreach_set("interpolation", np.full(len(kept), bake.LINEAR, dtype=np.int32))
        fcurve.update()
        left += len(kept)
    return left
