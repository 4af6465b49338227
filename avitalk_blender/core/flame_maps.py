"""A user's FLAME file speaks its own expression basis: fitting our channels' map to it off the main thread (bpy-free).

``backend.retarget.flame_fit.flame_map_for_file`` takes 2-4 s with scipy's
k-d tree and 20-30 s without it (Blender's Python), so the Blender layer runs
it in a ``FitTask``: a worker thread that only computes and records its
progress, state and result (worker threads never touch ``bpy``); the main
thread polls the task from a timer and stores the map on the rig. A task can
also run synchronously (background mode, scripts). ``choose`` decides which
motion a FLAME rig gets from its state.
"""

from __future__ import annotations

import threading
import time
import traceback

from . import backend_ref
from .errors import AviTalkError, InputError

RUNNING, DONE, FAILED = "running", "done", "failed"


def flame_fit():
    """``backend.retarget.flame_fit`` (numpy only)."""
    return backend_ref.module("retarget.flame_fit")


def speaks_our_channels(model) -> bool:
    """Whether a FLAME-format model's expression components are ours (our default head's file): no map needed."""
    return bool(model.extras.get("avitalk_expression_names"))


class FitTask:
    """One fit of the map for the FLAME file at ``path``; ``start`` runs it in a thread, ``run`` here."""

    def __init__(self, path: str, fit=None, clock=time.monotonic):
        self.path = str(path)
        self._fit = fit or (lambda p, progress: flame_fit().flame_map_for_file(p, progress=progress))
        self.clock = clock
        self.state = RUNNING
        self.fraction = 0.0
        self.result = None                # a FlameMap when DONE
        self.error = ""                   # what went wrong when FAILED, for the artist
        self.started = clock()
        self.seconds = 0.0                # how long the fit took, once ended
        self.thread = None

    def _progress(self, fraction: float) -> None:
        self.fraction = min(max(float(fraction), 0.0), 1.0)

    def run(self) -> "FitTask":
        """Fit here and now; the outcome is in ``state``, ``result`` and ``error``."""
        try:
            result = self._fit(self.path, self._progress)
        except AviTalkError as exc:
            self.error, self.state = str(exc), FAILED
        except Exception as exc:             # a bug: keep its traceback for the log, say so to the artist
            self.error = f"internal error {type(exc).__name__}: {exc}"
            self.traceback = traceback.format_exc()
            self.state = FAILED
        else:
            self.result, self.fraction, self.state = result, 1.0, DONE
        self.seconds = self.clock() - self.started
        return self

    def start(self) -> "FitTask":
        """Fit in a worker thread (it touches nothing but this task)."""
        self.thread = threading.Thread(target=self.run, name="avitalk-flame-fit", daemon=True)
        self.thread.start()
        return self

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def elapsed(self) -> float:
        return self.seconds if not self.running else self.clock() - self.started


def choose(motion, stored: dict | None, failure: str, task: FitTask | None, per_frame: bool, rig: str, path: str):
    """The motion to bake on a FLAME rig imported from ``path`` and what was done to it: (motion, note).

    ``stored``: the map stored on the rig (``FlameMap.as_dict``), or None; ``failure``: why its fit failed, or "";
    ``task``: the fit still running for it, or None. A fitted map carries the motion's expression coefficients into
    the file's basis (``per_frame``: the per-frame solve); a failed fit copies them unmapped (jaw, eyes and head
    still mean the same), and says so. A fit in progress is an InputError: nothing is baked yet.
    """
    if stored is not None:
        fmap = flame_fit().FlameMap.from_dict(stored)
        return fmap.apply(motion, per_frame=per_frame), "per-frame solve" if per_frame else "fitted map"
    if task is not None and task.running:
        raise InputError(f"the expression map for '{rig}' ({path}) is still being fitted "
                         f"({round(100 * task.fraction)} %, {task.elapsed():.0f} s so far); try again when the "
                         "Character panel says it is ready")
    if failure:
        return motion, f"expressions copied unmapped: {failure}"
    raise InputError(f"the rig '{rig}' has no expression map for {path}; import the file again")
