"""The motion file (.npz): FLAME motion at a frame rate. Read, write, validate, resample (numpy only).

Keys (docs/architecture.md): ``fps`` (scalar), ``expression`` (T, E), ``jaw_pose``,
``neck_pose``, ``global_pose`` (T, 3) and ``eye_pose`` (T, 6, left eye then right eye),
all float32 axis-angle / coefficients; optional ``instruction``, ``seed``, ``source``.
Frame ``t`` is at time ``t / fps`` seconds.
"""

import functools
import math
import os
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from .errors import AviTalkError
from .files import write_atomic

# The channel layout, the one place it is written: the motion file's arrays, and a packed
# (..., T, E + 15) array holds them side by side in this order.
POSE_WIDTHS = {"jaw_pose": 3, "neck_pose": 3, "global_pose": 3, "eye_pose": 6}
ARRAY_KEYS = ("expression",) + tuple(POSE_WIDTHS)
N_POSE_CHANNELS = sum(POSE_WIDTHS.values())
REQUIRED_KEYS = ("fps",) + ARRAY_KEYS
MAX_FPS = 1000.0
# Loading limits, checked on each array's header before its data is read.
MAX_SECONDS = 3600.0  # one hour of motion at the file's fps
MAX_EXPRESSION = 400  # expression coefficients per frame (FLAME has 100)
MAX_ARRAY_MB = 1024  # megabytes of one array's data, whatever its shape
MAX_TEXT = 10_000  # characters of 'instruction' and 'source'
_NPY_MAGIC = b"\x93NUMPY"


class MotionFileError(AviTalkError):
    """A motion file or Motion is missing, unreadable or inconsistent."""


def motion_slices(n_expression: int) -> dict[str, slice]:
    """Channel slice of each motion array in a packed array with ``n_expression`` expression channels."""
    if n_expression < 1:
        raise ValueError(f"n_expression must be positive, got {n_expression}")
    slices, start = {}, 0
    for key in ARRAY_KEYS:
        width = n_expression if key == "expression" else POSE_WIDTHS[key]
        slices[key] = slice(start, start + width)
        start += width
    return slices


def n_expression_of(n_channels: int) -> int:
    """Number of expression channels E of a packed array with C = E + 15 channels."""
    if n_channels <= N_POSE_CHANNELS:
        raise ValueError(f"a packed motion needs more than {N_POSE_CHANNELS} channels, got {n_channels}")
    return n_channels - N_POSE_CHANNELS


def pack_arrays(parts: dict):
    """The motion arrays (..., T, n) by key -> one packed (..., T, E + 15) array; numpy or torch."""
    arrays = [parts[key] for key in ARRAY_KEYS]
    if isinstance(arrays[0], np.ndarray):
        return np.concatenate(arrays, axis=-1)
    import torch  # only training and stage 2 pack tensors

    return torch.cat(arrays, dim=-1)


def unpack_arrays(packed) -> dict:
    """A packed (..., T, E + 15) array -> its motion arrays by key (views); numpy or torch."""
    slices = motion_slices(n_expression_of(packed.shape[-1]))
    return {key: packed[..., slices[key]] for key in ARRAY_KEYS}


@dataclass(repr=False)
class Motion:
    fps: float
    expression: np.ndarray   # (T, E) float32
    jaw_pose: np.ndarray     # (T, 3) float32 axis-angle
    neck_pose: np.ndarray    # (T, 3)
    global_pose: np.ndarray  # (T, 3)
    eye_pose: np.ndarray     # (T, 6) left eye, then right eye
    instruction: str = ""
    seed: int | None = None
    source: str = ""

    def __post_init__(self):
        for key in ARRAY_KEYS:
            try:
                setattr(self, key, np.asarray(getattr(self, key), dtype=np.float32))
            except (TypeError, ValueError) as exc:
                raise MotionFileError(f"'{key}' is not a numeric array: {exc}") from None

    def __repr__(self) -> str:
        return (f"Motion(fps={self.fps!r}, expression shape {tuple(self.expression.shape)}, "
                f"instruction={self.instruction!r}, seed={self.seed!r}, source={self.source!r})")

    @property
    def n_frames(self) -> int:
        return self.expression.shape[0]

    @property
    def n_expression(self) -> int:
        return self.expression.shape[1]

    def pack(self) -> np.ndarray:
        """The arrays side by side, (T, E + 15) float32, in the layout of ``motion_slices``."""
        return pack_arrays({key: getattr(self, key) for key in ARRAY_KEYS}).astype(np.float32, copy=False)

    @classmethod
    def from_packed(cls, packed: np.ndarray, fps: float, **meta) -> "Motion":
        """A Motion from a packed (T, E + 15) array (copied, float32)."""
        parts = unpack_arrays(np.asarray(packed))
        return cls(fps=float(fps), **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in parts.items()}, **meta)

    @classmethod
    def zeros(cls, n_frames: int, n_expression: int, fps: float, **meta) -> "Motion":
        """A neutral motion (all zeros) of ``n_frames`` frames."""
        z = lambda width: np.zeros((n_frames, width), dtype=np.float32)  # noqa: E731
        return cls(fps=fps, expression=z(n_expression), jaw_pose=z(3), neck_pose=z(3), global_pose=z(3),
                   eye_pose=z(6), **meta)

    def validate(self, n_expression: int | None = None) -> None:
        """Raise ``MotionFileError`` unless shapes, frame counts, values and fps are sane.

        With ``n_expression``, the expression width must equal it (the FLAME model's E).
        """
        _check_fps(self.fps)
        for key in ARRAY_KEYS:
            arr = getattr(self, key)
            if arr.ndim != 2:
                raise MotionFileError(f"'{key}' must be 2-D (T, ...), got shape {arr.shape}")
        for key, width in POSE_WIDTHS.items():
            arr = getattr(self, key)
            if arr.shape[1] != width:
                raise MotionFileError(f"'{key}' must be (T, {width}), got shape {arr.shape}")
        counts = {key: getattr(self, key).shape[0] for key in ARRAY_KEYS}
        if len(set(counts.values())) != 1:
            raise MotionFileError("arrays have different frame counts: "
                                  + ", ".join(f"{k} {n}" for k, n in counts.items()))
        if self.n_frames == 0:
            raise MotionFileError("the motion has no frames")
        if self.n_expression == 0:
            raise MotionFileError("'expression' has no components")
        for key in ARRAY_KEYS:
            if not np.all(np.isfinite(getattr(self, key))):
                raise MotionFileError(f"'{key}' contains NaN or infinite values")
        if n_expression is not None and self.n_expression != n_expression:
            raise MotionFileError(f"the motion has {self.n_expression} expression coefficients, "
                                  f"the FLAME model has {n_expression}")
        if not isinstance(self.instruction, str) or not isinstance(self.source, str):
            raise MotionFileError("'instruction' and 'source' must be strings")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer))):
            raise MotionFileError(f"'seed' must be an int or None, got {self.seed!r}")


def _check_fps(fps) -> None:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise MotionFileError(f"fps must be a number, got {fps!r}")
    if not np.isfinite(fps) or fps <= 0 or fps > MAX_FPS:
        raise MotionFileError(f"fps must be in (0, {MAX_FPS:g}], got {fps}")


# ---------------------------------------------------------------------------
# Files


def load_motion(path) -> Motion:
    """Read and validate a motion .npz (never unpickles anything).

    Each array's .npy header is checked against the limits (``MAX_SECONDS`` at the
    file's fps, ``MAX_EXPRESSION`` coefficients) before its data is read, so a small
    file cannot declare millions of frames. Every failure is a ``MotionFileError``.
    """
    path = os.fspath(path)
    where = f"motion file {path!r}"
    if not os.path.exists(path):
        raise MotionFileError(f"{where} does not exist")
    if os.path.isdir(path):
        raise MotionFileError(f"{where} is a folder, not a file")
    try:
        data = _read_npz(path, where)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise MotionFileError(f"{where} is truncated or a corrupt zip archive ({exc})") from None
    except (OSError, ValueError, TypeError, KeyError, OverflowError, UnicodeError, NotImplementedError,
            RuntimeError, MemoryError) as exc:  # e.g. an unknown compression method, an encrypted member
        raise MotionFileError(f"{where} cannot be read ({type(exc).__name__}: {exc})") from None

    try:
        motion = Motion(
            fps=_scalar(data["fps"], "fps", float),
            **{k: _numeric(data[k], k) for k in ARRAY_KEYS},
            instruction=_text(data.get("instruction"), "instruction"),
            seed=_scalar(data["seed"], "seed", int) if "seed" in data else None,
            source=_text(data.get("source"), "source"),
        )
        motion.validate()
    except MotionFileError as exc:
        raise MotionFileError(f"{where}: {exc}") from None
    return motion


def _read_npz(path: str, where: str) -> dict:
    """The known arrays of an .npz, each header checked before its data is read."""
    with open(path, "rb") as fh:
        magic = fh.read(len(_NPY_MAGIC))
    if magic == _NPY_MAGIC:
        raise MotionFileError(f"{where} is a single .npy array, not an .npz archive")
    if not magic.startswith(b"PK"):
        raise MotionFileError(f"{where} is not an .npz archive")
    with zipfile.ZipFile(path) as archive:
        members = {name[: -len(".npy")]: name for name in archive.namelist() if name.endswith(".npy")}
        missing = [k for k in REQUIRED_KEYS if k not in members]
        if missing:
            raise MotionFileError(f"{where} is missing keys: {', '.join(missing)}")
        data = {"fps": _read_member(archive, members["fps"], "fps", where, _check_small)}
        try:
            fps = _scalar(data["fps"], "fps", float)
            _check_fps(fps)
        except MotionFileError as exc:
            raise MotionFileError(f"{where}: {exc}") from None
        max_frames = int(MAX_SECONDS * fps) + 1
        for key in ARRAY_KEYS:
            width = MAX_EXPRESSION if key == "expression" else POSE_WIDTHS[key]
            check = functools.partial(_check_array, max_frames=max_frames, max_width=width, fps=fps)
            data[key] = _read_member(archive, members[key], key, where, check)
        for key in ("instruction", "seed", "source"):
            if key in members:
                data[key] = _read_member(archive, members[key], key, where, _check_small)
    return data


def _read_member(archive: zipfile.ZipFile, name: str, key: str, where: str, check) -> np.ndarray:
    """One .npy member: header, ``check(key, dtype, shape)``, then exactly the bytes it declares."""
    with archive.open(name) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise MotionFileError(f"{where}: '{key}' has an unsupported .npy version {version}")
        if dtype.hasobject:
            raise MotionFileError(f"{where} has an unreadable array '{key}' (it holds Python objects, never loaded)")
        n_bytes = math.prod(shape) * dtype.itemsize
        try:
            if any(n < 0 for n in shape):
                raise MotionFileError(f"'{key}' declares a negative shape {shape}")
            check(key, dtype, shape)
            if n_bytes > MAX_ARRAY_MB << 20:
                raise MotionFileError(f"'{key}' declares {n_bytes >> 20} MB of data; "
                                      f"at most {MAX_ARRAY_MB} MB are accepted")
        except MotionFileError as exc:
            raise MotionFileError(f"{where}: {exc}") from None
        raw = fh.read(n_bytes)
        if len(raw) != n_bytes:
            raise MotionFileError(f"{where} is truncated or a corrupt zip archive ('{key}' ends early)")
        fh.read(1)  # reaching the end checks the member's CRC
    return np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _check_small(key: str, dtype: np.dtype, shape: tuple) -> None:
    if math.prod(shape) > 16 or dtype.itemsize > 4 * MAX_TEXT:
        raise MotionFileError(f"'{key}' declares shape {shape} of {dtype}; it must be one short value")


def _check_array(key: str, dtype: np.dtype, shape: tuple, *, max_frames: int, max_width: int, fps: float) -> None:
    if dtype.kind not in "fiub":
        raise MotionFileError(f"'{key}' must hold real numbers, got dtype {dtype}")
    if shape and shape[0] > max_frames:
        raise MotionFileError(f"'{key}' declares {shape[0]} frames; at most {max_frames} are accepted "
                              f"({MAX_SECONDS / 60:g} minutes at {fps:g} fps)")
    if math.prod(shape[1:]) > max_width:
        raise MotionFileError(f"'{key}' declares {math.prod(shape[1:])} values per frame; "
                              f"at most {max_width} are accepted")


def _numeric(arr: np.ndarray, key: str) -> np.ndarray:
    if arr.dtype.kind not in "fiub":
        raise MotionFileError(f"'{key}' must hold real numbers, got dtype {arr.dtype}")
    return arr


def _scalar(arr: np.ndarray, key: str, kind):
    if arr.size != 1 or arr.ndim > 1:
        raise MotionFileError(f"'{key}' must be a scalar, got shape {arr.shape}")
    if kind is int and arr.dtype.kind not in "iu":
        raise MotionFileError(f"'{key}' must be an integer, got dtype {arr.dtype}")
    if kind is float and arr.dtype.kind not in "fiu":
        raise MotionFileError(f"'{key}' must be a number, got dtype {arr.dtype}")
    return kind(arr.reshape(()).item())


def _text(arr, key: str) -> str:
    if arr is None:
        return ""
    if arr.dtype.kind != "U" or arr.size != 1:
        raise MotionFileError(f"'{key}' must be a string")
    return str(arr.reshape(()).item())


def save_motion(path, motion: Motion) -> None:
    """Validate and write ``motion`` to ``path`` (exactly that name) atomically."""
    motion.validate()
    arrays = {"fps": np.float64(motion.fps)}
    arrays.update({k: np.ascontiguousarray(getattr(motion, k), dtype=np.float32) for k in ARRAY_KEYS})
    arrays["instruction"] = np.array(motion.instruction)
    arrays["source"] = np.array(motion.source)
    if motion.seed is not None:
        arrays["seed"] = np.int64(motion.seed)

    write_atomic(path, lambda fh: np.savez(fh, **arrays))


# ---------------------------------------------------------------------------
# Resampling


def axis_angle_to_quat(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 4) unit quaternions (w, x, y, z)."""
    aa = np.asarray(aa, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)  # (..., 1)
    small = theta < 1e-6
    safe = np.where(small, 1.0, theta)
    k = np.where(small, 0.5 - theta * theta / 48.0, np.sin(safe / 2.0) / safe)  # sin(t/2)/t
    return np.concatenate([np.cos(theta / 2.0), aa * k], axis=-1)


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3) axis-angle with angle in [0, pi]."""
    q = np.asarray(q, dtype=np.float64)
    q = np.where(q[..., :1] < 0, -q, q)  # same rotation, w >= 0 gives the short angle
    w, v = q[..., :1], q[..., 1:]
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    small = n < 1e-8
    # angle = 2 atan2(|v|, w); aa = v * angle / |v|, which tends to 2 v / w.
    scale = np.where(small, 2.0 / np.maximum(w, 1e-12), 2.0 * np.arctan2(n, w) / np.where(small, 1.0, n))
    return v * scale


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of unit quaternions (..., 4) along the shorter arc; t (..., 1)."""
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # q and -q are the same rotation: take the short way
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    omega = np.arccos(dot)
    near = omega < 1e-6
    sin_omega = np.where(near, 1.0, np.sin(omega))
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * omega) / sin_omega)
    w1 = np.where(near, t, np.sin(t * omega) / sin_omega)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def resample(motion: Motion, fps: float) -> Motion:
    """The same motion at another frame rate.

    New frame k is at time k / fps; the new frame count keeps the duration
    (T - 1) / fps_old to within half a new frame. Expression coefficients are
    interpolated linearly; poses are converted to quaternions and slerped per
    joint, so rotations stay on the rotation group.
    """
    motion.validate()
    _check_fps(fps)
    fps = float(fps)
    if fps == motion.fps:
        return Motion(fps=fps, **{k: getattr(motion, k).copy() for k in ARRAY_KEYS},
                      instruction=motion.instruction, seed=motion.seed, source=motion.source)
    n_old = motion.n_frames
    duration = (n_old - 1) / motion.fps
    n_new = int(round(duration * fps)) + 1
    pos = np.clip(np.arange(n_new) * (motion.fps / fps), 0.0, n_old - 1)  # in old frames, (T',)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_old - 1)
    frac = (pos - i0)[:, None]  # (T', 1)

    expr = motion.expression.astype(np.float64)
    arrays = {"expression": expr[i0] * (1.0 - frac) + expr[i1] * frac}
    for key, width in POSE_WIDTHS.items():
        q = axis_angle_to_quat(getattr(motion, key).astype(np.float64).reshape(n_old, width // 3, 3))  # (T, J, 4)
        q_new = slerp(q[i0], q[i1], frac[:, :, None])  # (T', J, 4)
        arrays[key] = quat_to_axis_angle(q_new).reshape(n_new, width)
    return Motion(fps=fps, **arrays, instruction=motion.instruction, seed=motion.seed, source=motion.source)
