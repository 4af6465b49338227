"""A scripted procedural animation for the demo: a blink, a smile, jaw open and close, a head turn."""

import numpy as np

from . import backend_ref

# (seconds, what happens); the demo's preview shows one frame of each.
BEATS = {"neutral": 0.2, "blink": 0.75, "smile": 1.6, "jaw_open": 2.6, "head_turn": 3.4}


def _bump(t, start, peak, end):
    """0 before ``start``, eased up to 1 at ``peak``, eased down to 0 at ``end``."""
    up = np.clip((t - start) / (peak - start), 0.0, 1.0)
    down = np.clip((end - t) / (end - peak), 0.0, 1.0)
    ramp = np.where(t < peak, up, down)
    return 0.5 - 0.5 * np.cos(np.pi * ramp)


def procedural_motion(expression_names, n_expr: int, fps: float = 25.0, seconds: float = 4.0):
    """A ``backend.motion.Motion`` for a head whose expression slot i is ``expression_names[i]``."""
    index = {name: i for i, name in enumerate(expression_names)}
    needed = ("blink_L", "blink_R", "smile_L", "smile_R", "cheek_raise_L", "cheek_raise_R", "lips_part")
    missing = [name for name in needed if name not in index]
    if missing:
        raise ValueError(f"the head has no expression components named {missing}; use AVI-Talk's default head")
    t = np.arange(int(round(seconds * fps)) + 1) / fps  # (T,)
    expression = np.zeros((len(t), n_expr))
    blink = _bump(t, 0.6, 0.75, 0.9) + _bump(t, 3.1, 3.25, 3.4)
    smile = _bump(t, 1.0, 1.5, 2.2)
    jaw = _bump(t, 2.2, 2.6, 3.0)
    for side in "LR":
        expression[:, index[f"blink_{side}"]] = blink
        expression[:, index[f"smile_{side}"]] = smile
        expression[:, index[f"cheek_raise_{side}"]] = 0.5 * smile
    expression[:, index["lips_part"]] = jaw
    zeros = np.zeros((len(t), 3))
    jaw_pose = zeros.copy()
    jaw_pose[:, 0] = 0.3 * jaw  # radians about X: the jaw opens
    neck_pose = zeros.copy()
    neck_pose[:, 1] = 0.25 * _bump(t, 3.0, 3.4, 4.0)  # turn toward the character's left
    neck_pose[:, 0] = -0.05 * smile  # a slight lift of the chin with the smile
    Motion = backend_ref.motion().Motion
    return Motion(fps=float(fps), expression=expression.astype(np.float32), jaw_pose=jaw_pose.astype(np.float32),
                  neck_pose=neck_pose.astype(np.float32), global_pose=zeros.astype(np.float32),
                  eye_pose=np.zeros((len(t), 6), dtype=np.float32),
                  instruction="demo: blink, smile, open the jaw, turn the head", seed=0, source="procedural")
