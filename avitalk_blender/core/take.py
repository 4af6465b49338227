"""A motion made ready for baking: resampled to the scene, checked against the rig, padded."""

from dataclasses import dataclass

import numpy as np

from . import backend_ref, rig_maths, timing
from .errors import InputError

# Blender clamps shape key values to their slider range, at most +-10.
SHAPE_KEY_LIMIT = 10.0


@dataclass
class TakeData:
    motion: object          # backend.motion.Motion at the scene's frame rate
    frames: np.ndarray      # (T,) timeline frame of each sample
    expression: np.ndarray  # (T, E_rig) float64, channels the motion lacks are 0
    pose: np.ndarray        # (T, 5, 3) axis-angle in bone order
    fps: float


def prepare_take(motion, n_expr_rig: int, fps: float, frame_start: int) -> TakeData:
    """Resample ``motion`` to ``fps`` and check it fits a rig with ``n_expr_rig`` expressions.

    Raises InputError when the motion has more expression channels than the rig,
    or values shape keys cannot hold.
    """
    n_expr = motion.expression.shape[1]
    if n_expr > n_expr_rig:
        raise InputError(f"the motion has {n_expr} expression channels, the rig only {n_expr_rig}; "
                         "import a head with at least as many expressions")
    if not timing.same_fps(motion.fps, fps):
        motion = backend_ref.motion().resample(motion, fps)
    if np.any(np.abs(motion.expression) > SHAPE_KEY_LIMIT):
        raise InputError(f"expression coefficients beyond +-{SHAPE_KEY_LIMIT} cannot be shown by shape keys")
    expression = np.zeros((motion.n_frames, n_expr_rig))  # (T, E_rig)
    expression[:, :n_expr] = motion.expression
    pose = rig_maths.full_pose(motion.global_pose, motion.neck_pose, motion.jaw_pose, motion.eye_pose)
    return TakeData(motion, timing.key_frames(motion.n_frames, frame_start), expression, pose, float(fps))
