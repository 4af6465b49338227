"""A FLAME rig imported from a user's file keeps the map from our channels to that file's basis.

On import (``ops_head``) ``begin`` fits the map (``core.flame_maps.FitTask``):
in a worker thread in the UI, polled by a timer that stores the result on the
armature; here and now in background mode. The armature carries:

- ``avitalk_flame_file``: the file's path (only rigs whose file needs a map: not our own head's);
- ``avitalk_flame_map``: the fitted map (``FlameMap.as_dict``), so it travels with the .blend;
- ``avitalk_flame_fit_error``: why the fit failed, when it did (its takes copy expressions unmapped).

``motion_for`` is what ``takes.make_take`` bakes on such a rig.
"""

from __future__ import annotations

import os
import sys

import bpy

from .core import flame_maps
from .ops_common import redraw_all

TASKS: dict = {}          # file path -> the FitTask running for it
POLL_SECONDS = 0.25


def needs_map(model) -> bool:
    return not flame_maps.speaks_our_channels(model)


def begin(arm_obj, path: str, wait: bool | None = None):
    """Fit the map for ``path`` for the rig ``arm_obj``: here and now when ``wait`` (default: in background
    mode), else in a worker thread that a timer collects."""
    path = os.path.abspath(path)
    arm_obj["avitalk_flame_file"] = path
    for key in ("avitalk_flame_map", "avitalk_flame_fit_error"):
        if key in arm_obj:
            del arm_obj[key]
    running = TASKS.get(path)
    if running is not None and running.running:
        return running
    task = flame_maps.FitTask(path)
    if bpy.app.background if wait is None else wait:
        store(arm_obj, task.run())
        return task
    TASKS[path] = task.start()
    if not bpy.app.timers.is_registered(_poll):
        bpy.app.timers.register(_poll, first_interval=POLL_SECONDS)
    return task


def store(arm_obj, task) -> None:
    """Keep an ended fit's outcome on the rig: the map, or why there is none."""
    if task.state == flame_maps.DONE:
        arm_obj["avitalk_flame_map"] = task.result.as_dict()
        if "avitalk_flame_fit_error" in arm_obj:
            del arm_obj["avitalk_flame_fit_error"]
    else:
        arm_obj["avitalk_flame_fit_error"] = task.error
        if getattr(task, "traceback", ""):
            print(task.traceback, file=sys.stderr)


def _waiting(path: str) -> list:
    """FLAME rigs imported from ``path`` that have neither a map nor a failure yet."""
    return [o for o in bpy.data.objects if o.get("avitalk_flame_file") == path
            and "avitalk_flame_map" not in o and "avitalk_flame_fit_error" not in o]


def collect() -> None:
    """Main thread: store each ended fit on the rigs waiting for it."""
    for path, task in list(TASKS.items()):
        if not task.running:
            for obj in _waiting(path):
                store(obj, task)
            del TASKS[path]


def _poll():
    """Timer: collect ended fits; redraw while fits run."""
    collect()
    redraw_all()
    return POLL_SECONDS if TASKS else None


def wait(arm_obj) -> None:
    """Block until the rig's fit (if one runs) has ended, and store it (scripts that wait anyway)."""
    task = task_for(arm_obj)
    if task is not None and task.thread is not None:
        task.thread.join()
    collect()


def stop() -> None:
    """Forget running fits (their threads end on their own) and the timer: the add-on is going away."""
    TASKS.clear()
    if bpy.app.timers.is_registered(_poll):
        bpy.app.timers.unregister(_poll)


def task_for(arm_obj):
    return TASKS.get(arm_obj.get("avitalk_flame_file", ""))


def stored_map(arm_obj):
    """The rig's stored map as a FlameMap, or None."""
    data = arm_obj.get("avitalk_flame_map")
    return None if data is None else flame_maps.flame_fit().FlameMap.from_dict(data.to_dict())


def motion_for(arm_obj, motion, per_frame: bool) -> tuple:
    """(motion in the rig's own basis, a note on how) for a FLAME rig; the motion as is for our own head's rig."""
    path = arm_obj.get("avitalk_flame_file")
    if not path:
        return motion, ""
    collect()
    data = arm_obj.get("avitalk_flame_map")
    failure = str(arm_obj.get("avitalk_flame_fit_error", ""))
    task = task_for(arm_obj)
    if data is None and not failure and task is None and os.path.isfile(path):
        task = begin(arm_obj, path)            # a rig saved while its fit ran: fit again
        data = arm_obj.get("avitalk_flame_map")
        failure = str(arm_obj.get("avitalk_flame_fit_error", ""))
    return flame_maps.choose(motion, None if data is None else data.to_dict(), failure, task, per_frame,
                             arm_obj.name, path)


def status(arm_obj) -> tuple:
    """(state, one line, fraction) for the panel: "ours", "fitting", "fitted" or "failed"."""
    path = arm_obj.get("avitalk_flame_file")
    if not path:
        return "ours", "Our head's own channels: no map needed", 1.0
    task = task_for(arm_obj)
    if task is not None and task.running:
        return "fitting", f"Fitting the expression map to {os.path.basename(path)}", task.fraction
    if "avitalk_flame_map" in arm_obj:
        return "fitted", f"Expression map fitted to {os.path.basename(path)}", 1.0
    failure = arm_obj.get("avitalk_flame_fit_error")
    if failure:
        return "failed", f"No expression map (expressions are copied unmapped): {failure}", 0.0
    return "failed", f"No expression map yet for {os.path.basename(path)}: it is fitted on the next take", 0.0
