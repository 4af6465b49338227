"""FLAME model files: restricted loading and saving (numpy only).

FLAME files are pickles, and ``pickle.load`` runs whatever a file asks for.
``load_flame`` reads them with an unpickler that admits only what array data
needs: numpy's array and scalar reconstruction, and stand-ins for chumpy
arrays and scipy sparse matrices (real FLAME 2020 files hold chumpy ``Ch``
objects and a ``scipy.sparse`` CSC ``J_regressor``). chumpy and scipy are never
imported. Every other global is refused with a ``FlameFileError``.

Sizes are checked before numpy allocates: no array may be declared larger
than the file that holds it, object arrays are refused, a head may have at
most ``MAX_VERTICES`` vertices, and nesting deeper than ``MAX_DEPTH`` (or a
cycle) is refused. Every failure inside the loader is a ``FlameFileError``.
"""

import _compat_pickle
import io
import math
import os
import pickle
from dataclasses import dataclass, field

import numpy as np

from ..errors import AviTalkError
from ..files import write_atomic

N_JOINTS = 5
N_POSE_FEATURES = 36  # 4 non-root joints x 9 entries of (R - I)
FLAME_PARENTS = (-1, 0, 1, 1, 1)  # root, neck<-root, jaw<-neck, eyes<-neck
REQUIRED_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
EXTRA_PREFIX = "avitalk_"
# FLAME has 5,023 vertices, ICT-FaceKit about 27,000; 200,000 leaves room for any real head.
MAX_VERTICES = 200_000
MAX_DEPTH = 32  # nesting of chumpy objects and of containers in the extras
# A sparse matrix densifies to at most this many cells: the (5, V) J_regressor of the largest head.
_MAX_SPARSE_CELLS = N_JOINTS * MAX_VERTICES
# What numpy and pickle raise on malformed data; inside the loader each becomes a FlameFileError.
_DATA_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, UnicodeError,
                MemoryError, RecursionError)


class FlameFileError(AviTalkError):
    """A FLAME model file is missing, unreadable, unsafe or malformed."""


@dataclass
class FlameModel:
    v_template: np.ndarray   # (V, 3) float64
    faces: np.ndarray        # (F, 3) int64
    shapedirs: np.ndarray    # (V, 3, n_shape) float64
    exprdirs: np.ndarray     # (V, 3, n_expr) float64
    posedirs: np.ndarray     # (V, 3, 36) float64
    J_regressor: np.ndarray  # (5, V) float64 dense
    weights: np.ndarray      # (V, 5) float64
    parents: np.ndarray      # (5,) int64, parents[0] = -1
    extras: dict = field(default_factory=dict)  # the avitalk_* keys, when present

    @property
    def n_verts(self) -> int:
        return self.v_template.shape[0]

    @property
    def n_shape(self) -> int:
        return self.shapedirs.shape[2]

    @property
    def n_expr(self) -> int:
        return self.exprdirs.shape[2]

    def to_raw(self) -> dict:
        """The FLAME-format dict of this model (what ``save_flame`` writes)."""
        raw = {
            "v_template": self.v_template,
            "f": self.faces.astype(np.uint32),
            "shapedirs": np.concatenate([self.shapedirs, self.exprdirs], axis=2),
            "posedirs": self.posedirs,
            "J_regressor": self.J_regressor,
            "weights": self.weights,
            "kintree_table": np.stack([self.parents, np.arange(N_JOINTS)]).astype(np.int64),
        }
        raw.update(self.extras)
        return raw


# ---------------------------------------------------------------------------
# Stand-ins for chumpy and scipy sparse objects


class _StandIn:
    """Base of the classes the unpickler hands out instead of foreign classes."""

    kind = ""

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        # (dict, slot dict) pairs come from classes with __slots__.
        if isinstance(state, tuple) and len(state) == 2 and all(s is None or isinstance(s, dict) for s in state):
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            state = merged
        self.state = state

    def _entry(self, key):
        if not isinstance(self.state, dict) or key not in self.state:
            raise FlameFileError(f"{self.kind} object has no '{key}' entry")
        return self.state[key]


class _ChumpyStandIn(_StandIn):
    """A chumpy object: ``Ch`` yields its ``x``; a few reorderings are evaluated."""

    def to_array(self, depth: int = 0) -> np.ndarray:
        name = self.kind.rsplit(".", 1)[-1]
        if isinstance(self.state, dict) and "x" in self.state:
            return _to_array(self.state["x"], depth + 1)
        if name == "Select":
            a = _to_array(self._entry("a"), depth + 1)
            idxs = np.asarray(self._entry("idxs"), dtype=np.int64)
            return a.ravel()[idxs].reshape(self._entry("preferred_shape"))
        if name == "transpose":
            axes = self.state.get("axes") if isinstance(self.state, dict) else None
            return np.transpose(_to_array(self._entry("a"), depth + 1), axes)
        if name == "reshape":
            return _to_array(self._entry("a"), depth + 1).reshape(self._entry("newshape"))
        raise FlameFileError(f"cannot evaluate the chumpy object {self.kind} (only Ch and simple reorderings)")


class _SparseStandIn(_StandIn):
    """A scipy sparse matrix (CSC, CSR or COO), densified with numpy."""

    def to_array(self, depth: int = 0) -> np.ndarray:
        state = self.state if isinstance(self.state, dict) else {}
        shape = state.get("_shape", state.get("shape"))
        if shape is None or len(shape) != 2:
            raise FlameFileError(f"{self.kind} has no valid shape")
        n_rows, n_cols = int(shape[0]), int(shape[1])
        if n_rows < 0 or n_cols < 0 or n_rows * n_cols > _MAX_SPARSE_CELLS:
            raise FlameFileError(f"{self.kind} has an implausible shape {tuple(shape)}: at most {_MAX_SPARSE_CELLS} "
                                 f"cells ({N_JOINTS} joints x {MAX_VERTICES} vertices) are accepted")
        data = np.asarray(self._entry("data"), dtype=np.float64).ravel()
        fmt = self.kind.rsplit(".", 1)[-1][:3]
        if fmt == "coo":
            coords = state.get("coords")
            rows, cols = (coords if coords is not None else (self._entry("row"), self._entry("col")))
            rows, cols = np.asarray(rows, dtype=np.int64).ravel(), np.asarray(cols, dtype=np.int64).ravel()
        else:
            indices = np.asarray(self._entry("indices"), dtype=np.int64).ravel()
            indptr = np.asarray(self._entry("indptr"), dtype=np.int64).ravel()
            n_major = n_cols if fmt == "csc" else n_rows
            if indptr.shape != (n_major + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != indices.size:
                raise FlameFileError(f"{self.kind} has an inconsistent indptr")
            major = np.repeat(np.arange(n_major), np.diff(indptr))
            rows, cols = (indices, major) if fmt == "csc" else (major, indices)
        if not (rows.size == cols.size == data.size):
            raise FlameFileError(f"{self.kind} has index and data arrays of different lengths")
        if rows.size and (rows.min() < 0 or rows.max() >= n_rows or cols.min() < 0 or cols.max() >= n_cols):
            raise FlameFileError(f"{self.kind} has indices outside its shape {(n_rows, n_cols)}")
        dense = np.zeros((n_rows, n_cols))
        np.add.at(dense, (rows, cols), data)  # duplicates add up, as in scipy
        return dense


_SPARSE_NAMES = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FlameFileError(f"objects nested more than {MAX_DEPTH} levels deep (or referring to themselves)")


def _to_array(value, depth: int = 0) -> np.ndarray:
    _check_depth(depth)
    if isinstance(value, (_ChumpyStandIn, _SparseStandIn)):
        return value.to_array(depth)
    if hasattr(value, "toarray") and not isinstance(value, np.ndarray):  # a real scipy matrix handed to save_flame
        return np.asarray(value.toarray())
    return np.asarray(value)


def _plain(value, depth: int = 0):
    """Replace stand-ins inside plain containers by arrays (for the extras)."""
    _check_depth(depth)
    if isinstance(value, _StandIn):
        return value.to_array(depth)
    if isinstance(value, np.ndarray):
        return np.asarray(value)  # a plain ndarray, not the loader's checked subclass
    if isinstance(value, dict):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, depth + 1) for v in value)
    return value


# ---------------------------------------------------------------------------
# The restricted unpickler


def _numpy_internals():
    if int(np.__version__.split(".")[0]) >= 2:
        from numpy._core import multiarray, numeric
    else:
        from numpy.core import multiarray, numeric
    return multiarray._reconstruct, multiarray.scalar, numeric._frombuffer


def _dtype(*args):
    """numpy.dtype, refusing object dtypes (numpy trusts an object array's pickled state blindly)."""
    return _no_objects(np.dtype(*args))


def _no_objects(dtype):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise FlameFileError(f"refused array dtype {dtype!r}: FLAME files hold numbers, not Python objects")
    return dtype


def _n_bytes(shape, dtype) -> int:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise FlameFileError(f"refused array shape {shape!r}")
    return math.prod(shape) * _no_objects(np.dtype(dtype)).itemsize


class _CheckedArray(np.ndarray):
    """What the unpickler builds arrays as: their pickled state is checked before numpy takes it."""

    def __new__(cls, *args, **kwargs):  # numpy.ndarray(shape) would allocate any size from a few bytes
        raise FlameFileError("refused a direct numpy.ndarray call")

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise FlameFileError("refused a malformed array state")
        shape, dtype, _, data = state[-4:]
        _n_bytes(shape, dtype)
        if not isinstance(data, (bytes, bytearray, str)):  # str: Python 2 bytes read as latin-1
            raise FlameFileError("refused an array state without raw bytes")
        super().__setstate__(state)


def _latin1_encode(text, encoding="utf-8"):
    # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise FlameFileError("refused _codecs.encode call other than encode(str, 'latin1')")
    return text.encode("latin1")


def _bytes(*args):
    # Protocol-2 pickles store b"" as bytes().
    if args:
        raise FlameFileError("refused builtins.bytes call with arguments")
    return b""


def _check_stand_in(cls):
    if not (isinstance(cls, type) and issubclass(cls, _StandIn)):
        raise FlameFileError(f"refused object reconstruction of {cls!r}")


def _reconstructor(cls, base, state):
    # copyreg._reconstructor, used by protocol 0/1 pickles of plain classes.
    _check_stand_in(cls)
    if base is not object or state is not None:
        raise FlameFileError("refused copyreg._reconstructor with a non-object base")
    return cls.__new__(cls)


def _newobj(cls, *args):
    _check_stand_in(cls)
    return cls.__new__(cls, *args)


def _scalar(dtype, *args):
    _no_objects(dtype)
    return _numpy_internals()[1](dtype, *args)


def _frombuffer(buf, dtype, shape, order):
    _no_objects(dtype)
    return _numpy_internals()[2](buf, dtype, shape, order)


def _allowed_globals() -> dict:
    allowed = {
        ("numpy", "ndarray"): _CheckedArray,
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("builtins", "bytes"): _bytes,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "object"): object,
        ("collections", "OrderedDict"): dict,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("copyreg", "__newobj__"): _newobj,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "scalar")] = _scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = _frombuffer
    return allowed


def _python3_name(module: str, name: str):
    """Python 2 names as pickle's own fix_imports maps them (that lives in find_class, which we replace)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only numpy arrays and chumpy/scipy stand-ins."""

    _allowed = None

    def __init__(self, file, max_bytes: int):
        super().__init__(file, encoding="latin1")
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed_globals()
        self._stand_ins = {}
        self._max_bytes = max_bytes

    def _reconstruct(self, subtype, shape, dtype):
        """numpy's array reconstruction, at most as many bytes as the file holds (its data follows in the file)."""
        if subtype is not _CheckedArray:
            raise FlameFileError(f"refused array reconstruction of {subtype!r}")
        n_bytes = _n_bytes(shape, dtype)
        if n_bytes > self._max_bytes:
            raise FlameFileError(f"refused an array declaring {n_bytes} bytes, more than the file's {self._max_bytes}")
        return _numpy_internals()[0](_CheckedArray, shape, dtype)

    def find_class(self, module, name):
        module, name = _python3_name(module, name)
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return self._reconstruct
        if module == "chumpy" or module.startswith("chumpy."):
            return self._stand_in(_ChumpyStandIn, module, name)
        if (module == "scipy.sparse" or module.startswith("scipy.sparse.")) and name in _SPARSE_NAMES:
            return self._stand_in(_SparseStandIn, module, name)
        found = self._allowed.get((module, name))
        if found is None:
            raise FlameFileError(f"refused global '{module}.{name}': FLAME files may only hold array data")
        return found

    def _stand_in(self, base, module, name):
        kind = f"{module}.{name}"
        if kind not in self._stand_ins:
            self._stand_ins[kind] = type(name, (base,), {"kind": kind})
        return self._stand_ins[kind]


def restricted_load(data: bytes):
    """Unpickle ``data`` with ``RestrictedUnpickler``."""
    return RestrictedUnpickler(io.BytesIO(data), max_bytes=len(data)).load()


# ---------------------------------------------------------------------------
# Validation


def _array(raw: dict, key: str) -> np.ndarray:
    try:
        arr = _to_array(raw[key])
    except FlameFileError as exc:
        raise FlameFileError(f"'{key}': {exc}") from None
    except _DATA_ERRORS as exc:
        raise FlameFileError(f"'{key}' is not a valid array ({type(exc).__name__}: {exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise FlameFileError(f"'{key}' is not a numeric array (dtype {arr.dtype})")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise FlameFileError(f"'{key}' holds complex numbers")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise FlameFileError(f"'{key}' contains NaN or infinite values")
    return arr


def _expect_shape(key: str, arr: np.ndarray, expected: tuple) -> None:
    """``expected`` may hold None for a free dimension."""
    ok = arr.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, arr.shape))
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise FlameFileError(f"'{key}' has shape {arr.shape}, expected {want}")


def _check_n_shape(n_shape) -> None:
    if isinstance(n_shape, bool) or not isinstance(n_shape, (int, np.integer)) or n_shape < 0:
        raise ValueError(f"n_shape must be a non-negative int, got {n_shape!r}")


def model_from_raw(raw, n_shape: int = 300) -> FlameModel:
    """Validate a FLAME-format dict and build a ``FlameModel`` from it."""
    _check_n_shape(n_shape)
    if not isinstance(raw, dict):
        raise FlameFileError(f"a FLAME file holds a dict, this one holds a {type(raw).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise FlameFileError(f"missing FLAME keys: {', '.join(missing)}")

    v_template = _array(raw, "v_template")
    _expect_shape("v_template", v_template, (None, 3))
    n_verts = v_template.shape[0]
    if n_verts == 0:
        raise FlameFileError("'v_template' has no vertices")
    if n_verts > MAX_VERTICES:
        raise FlameFileError(f"'v_template' has {n_verts} vertices; at most {MAX_VERTICES} are accepted "
                             f"(FLAME has 5,023, ICT-FaceKit about 27,000)")

    faces = _array(raw, "f")
    _expect_shape("f", faces, (None, 3))
    if not np.issubdtype(faces.dtype, np.integer):
        raise FlameFileError(f"'f' must hold integer vertex indices, got dtype {faces.dtype}")
    faces = faces.astype(np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= n_verts):
        raise FlameFileError(f"'f' has vertex indices outside 0..{n_verts - 1}")

    shapedirs = _array(raw, "shapedirs")
    _expect_shape("shapedirs", shapedirs, (n_verts, 3, None))
    posedirs = _array(raw, "posedirs")
    _expect_shape("posedirs", posedirs, (n_verts, 3, N_POSE_FEATURES))
    J_regressor = _array(raw, "J_regressor")
    _expect_shape("J_regressor", J_regressor, (N_JOINTS, n_verts))
    weights = _array(raw, "weights")
    _expect_shape("weights", weights, (n_verts, N_JOINTS))

    kintree = _array(raw, "kintree_table")
    _expect_shape("kintree_table", kintree, (2, N_JOINTS))
    if not np.array_equal(kintree[1], np.arange(N_JOINTS)):
        raise FlameFileError(f"'kintree_table' joint ids are {kintree[1].tolist()}, expected [0, 1, 2, 3, 4]")
    parents = np.array(kintree[0], dtype=np.int64)
    parents[0] = -1  # FLAME stores uint32(-1) or any value for the root
    if tuple(parents.tolist()) != FLAME_PARENTS:
        raise FlameFileError(f"'kintree_table' parents are {parents[1:].tolist()} for joints 1..4, "
                             f"expected FLAME's {list(FLAME_PARENTS[1:])} (neck<-root, jaw<-neck, eyes<-neck)")

    n_split = min(int(n_shape), shapedirs.shape[2])
    extras = {k: _plain(v) for k, v in raw.items() if isinstance(k, str) and k.startswith(EXTRA_PREFIX)}
    return FlameModel(
        v_template=v_template.astype(np.float64),
        faces=faces,
        shapedirs=np.ascontiguousarray(shapedirs[:, :, :n_split], dtype=np.float64),
        exprdirs=np.ascontiguousarray(shapedirs[:, :, n_split:], dtype=np.float64),
        posedirs=posedirs.astype(np.float64),
        J_regressor=J_regressor.astype(np.float64),
        weights=weights.astype(np.float64),
        parents=parents,
        extras=extras,
    )


# ---------------------------------------------------------------------------
# Files


def _read_raw(data: bytes, where: str):
    if not data:
        raise FlameFileError(f"{where} is empty")
    try:
        return restricted_load(data)
    except FlameFileError as exc:
        raise FlameFileError(f"{where}: {exc}") from None
    except EOFError:
        raise FlameFileError(f"{where} is truncated (the pickle ends early)") from None
    except pickle.UnpicklingError as exc:
        if "truncated" in str(exc):
            raise FlameFileError(f"{where} is truncated (the pickle ends early)") from None
        raise FlameFileError(f"{where} is not a FLAME pickle ({exc})") from None
    except _DATA_ERRORS as exc:
        raise FlameFileError(f"{where} is not a valid FLAME pickle ({type(exc).__name__}: {exc})") from None


def load_flame(path, n_shape: int = 300) -> FlameModel:
    """Load a FLAME model pickle (2020 with chumpy, 2023, or ours) safely.

    ``shapedirs`` is split into the first ``n_shape`` shape components (fewer if
    the file has fewer) and the expression components after them.
    """
    _check_n_shape(n_shape)
    path = os.fspath(path)
    where = f"FLAME model file {path!r}"
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise FlameFileError(f"{where} does not exist") from None
    except IsADirectoryError:
        raise FlameFileError(f"{where} is a folder, not a file") from None
    except OSError as exc:
        raise FlameFileError(f"{where} cannot be read: {exc}") from None
    raw = _read_raw(data, where)
    try:
        return model_from_raw(raw, n_shape=n_shape)
    except FlameFileError as exc:
        raise FlameFileError(f"{where}: {exc}") from None
    except _DATA_ERRORS as exc:
        raise FlameFileError(f"{where} holds invalid FLAME data ({type(exc).__name__}: {exc})") from None


def save_flame(path, raw_dict: dict) -> None:
    """Write a FLAME-format dict as a protocol-2 pickle (atomic replace).

    The bytes are read back with the restricted unpickler and validated before
    the file is written, so whatever ``save_flame`` writes, ``load_flame`` reads.
    """
    if not isinstance(raw_dict, dict):
        raise TypeError(f"save_flame expects a dict, got {type(raw_dict).__name__}")
    data = {k: (_to_array(v) if k in REQUIRED_KEYS else v) for k, v in raw_dict.items()}
    payload = pickle.dumps(data, protocol=2)
    model_from_raw(_read_raw(payload, "the dict to save"), n_shape=0)

    write_atomic(path, payload)
