"""FLAME file loading: real-file layouts (2020 chumpy, 2023), refusals, clear errors."""

import contextlib
import io
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from backend.flame.pickle_io import FlameFileError, FlameModel, load_flame, model_from_raw, save_flame
from backend.flame.synthetic import make_tiny_model, write_tiny_model

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# Writing pickles that reference the class paths real FLAME files use.
# The fake modules exist only while writing; they are gone when we load.


@contextlib.contextmanager
def fake_modules(**modules):
    """Temporarily put fake modules {dotted name: {class name: class}} into sys.modules."""
    saved = {}
    for mod_name, classes in modules.items():
        mod_name = mod_name.replace("__", ".")
        parts = mod_name.split(".")
        for i in range(1, len(parts)):  # parent packages, e.g. a fake "chumpy"
            parent = ".".join(parts[:i])
            if parent not in sys.modules and parent not in saved:
                saved[parent] = None
                sys.modules[parent] = types.ModuleType(parent)
        saved.setdefault(mod_name, sys.modules.get(mod_name))
        module = types.ModuleType(mod_name)
        for cls_name, cls in classes.items():
            cls.__module__, cls.__qualname__, cls.__name__ = mod_name, cls_name, cls_name
            setattr(module, cls_name, cls)
        sys.modules[mod_name] = module
    try:
        yield
    finally:
        for mod_name, old in saved.items():
            if old is None:
                del sys.modules[mod_name]
            else:
                sys.modules[mod_name] = old


class Ch:
    """Pickles like chumpy.ch.Ch: a __dict__ with 'x' and a set of dirty vars."""

    def __init__(self, x):
        self.x = np.asarray(x, dtype=np.float64)
        self._dirty_vars = {"x"}
        self._itr = None
        self._make_dense = False
        self._make_sparse = False
        self._depends_on_deps = {}

    def __getstate__(self):
        return dict(self.__dict__)


class Select:
    """Pickles like chumpy.reordering.Select (MANO stores shapedirs this way)."""

    def __init__(self, a, idxs, preferred_shape):
        self.a, self.idxs, self.preferred_shape = a, idxs, preferred_shape
        self._dirty_vars = set()

    def __getstate__(self):
        return dict(self.__dict__)


class Add:
    """Pickles like chumpy.ch_ops.add: not evaluable by us; fine for keys we do not need."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __getstate__(self):
        return dict(self.__dict__)


class CscMatrix:
    """Pickles like scipy.sparse.csc_matrix: _shape, data, indices, indptr, maxprint."""

    def __init__(self, dense):
        dense = np.asarray(dense)
        self._shape = dense.shape
        cols = [np.nonzero(dense[:, j])[0] for j in range(dense.shape[1])]
        self.indices = np.concatenate(cols).astype(np.int32)
        self.indptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int32)
        self.data = np.concatenate([dense[c, j] for j, c in enumerate(cols)])
        self.maxprint = 50

    def __getstate__(self):
        return dict(self.__dict__)


class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` opcodes (BINSTRING), like cPickle did for array data."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + n.to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def flame2020_like_bytes(raw, protocol=2, py2_strings=True, shapedirs_as_select=False):
    """A pickle laid out like FLAME 2020's generic_model.pkl (chumpy + scipy.sparse.csc)."""
    with fake_modules(chumpy__ch={"Ch": Ch}, chumpy__reordering={"Select": Select},
                      chumpy__ch_ops={"add": Add}, scipy__sparse__csc={"csc_matrix": CscMatrix}):
        if shapedirs_as_select:
            full = raw["shapedirs"]
            doubled = np.concatenate([full, full], axis=2)  # select the first half back
            idxs = np.arange(doubled.size).reshape(doubled.shape)[:, :, : full.shape[2]].ravel()
            shapedirs = Select(Ch(doubled), idxs, full.shape)
        else:
            shapedirs = Ch(raw["shapedirs"])
        data = {
            "f": raw["f"],
            "v_template": Ch(raw["v_template"]),
            "shapedirs": shapedirs,
            "posedirs": Ch(raw["posedirs"]),
            "J_regressor": CscMatrix(raw["J_regressor"]),
            "weights": Ch(raw["weights"]),
            "kintree_table": raw["kintree_table"],
            "J": Add(Ch(np.zeros((5, 3))), Ch(np.ones((5, 3)))),
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        }
        buf = io.BytesIO()
        pickler = Py2Pickler(buf, protocol=protocol) if py2_strings else pickle.Pickler(buf, protocol=protocol)
        pickler.dump(data)
    return buf.getvalue()


def flame2023_like_bytes(raw, protocol):
    """A Python 3 pickle without chumpy, J_regressor a scipy.sparse._csc.csc_matrix."""
    with fake_modules(scipy__sparse___csc={"csc_matrix": CscMatrix}):
        data = dict(raw, J_regressor=CscMatrix(raw["J_regressor"]), bs_style="lbs", bs_type="lrotmin",
                    J=raw["J_regressor"] @ raw["v_template"])
        return pickle.dumps(data, protocol=protocol)


def write(tmp_path, payload: bytes, name="model.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def assert_model_matches(model: FlameModel, raw: dict, n_shape: int) -> None:
    np.testing.assert_array_equal(model.v_template, raw["v_template"])
    np.testing.assert_array_equal(model.faces, raw["f"].astype(np.int64))
    np.testing.assert_array_equal(model.shapedirs, raw["shapedirs"][:, :, :n_shape])
    np.testing.assert_array_equal(model.exprdirs, raw["shapedirs"][:, :, n_shape:])
    np.testing.assert_array_equal(model.posedirs, raw["posedirs"])
    np.testing.assert_allclose(model.J_regressor, raw["J_regressor"], rtol=0, atol=0)
    np.testing.assert_array_equal(model.weights, raw["weights"])
    np.testing.assert_array_equal(model.parents, [-1, 0, 1, 1, 1])


RAW = make_tiny_model(n_verts=12, n_shape=6, n_expr=4, seed=3)


# ---------------------------------------------------------------------------
# Real layouts load


def test_round_trip_of_our_own_file(tmp_path):
    raw = write_tiny_model(tmp_path / "tiny.pkl", n_verts=12, n_shape=6, n_expr=4, seed=3, with_extras=True)
    model = load_flame(tmp_path / "tiny.pkl", n_shape=6)
    assert_model_matches(model, raw, 6)
    assert (model.n_verts, model.n_shape, model.n_expr) == (12, 6, 4)
    assert model.extras == {"avitalk_expression_names": [f"expr{i:03d}" for i in range(4)], "avitalk_version": 1}
    assert model.v_template.dtype == np.float64 and model.faces.dtype == np.int64


def test_model_to_raw_round_trips(tmp_path):
    model = model_from_raw(RAW, n_shape=6)
    save_flame(tmp_path / "again.pkl", model.to_raw())
    assert_model_matches(load_flame(tmp_path / "again.pkl", n_shape=6), RAW, 6)


@pytest.mark.parametrize("protocol, py2_strings", [(2, True), (2, False), (0, False)])
def test_flame2020_layout_with_chumpy_and_scipy_csc(tmp_path, protocol, py2_strings):
    payload = flame2020_like_bytes(RAW, protocol=protocol, py2_strings=py2_strings)
    assert b"chumpy.ch" in payload and b"scipy.sparse.csc" in payload
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules
    model = load_flame(write(tmp_path, payload), n_shape=6)
    assert_model_matches(model, RAW, 6)


def test_chumpy_select_is_evaluated(tmp_path):
    payload = flame2020_like_bytes(RAW, shapedirs_as_select=True)
    assert b"Select" in payload
    assert_model_matches(load_flame(write(tmp_path, payload), n_shape=6), RAW, 6)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_flame2023_layout_python3_pickle(tmp_path, protocol):
    payload = flame2023_like_bytes(RAW, protocol)
    assert b"scipy.sparse._csc" in payload
    assert_model_matches(load_flame(write(tmp_path, payload), n_shape=6), RAW, 6)


def test_real_scipy_sparse_matrices_are_densified_without_scipy(tmp_path):
    sparse = pytest.importorskip("scipy.sparse")
    dense = RAW["J_regressor"] * (RAW["J_regressor"] > 0.05)  # some real zeros
    for make in (sparse.csc_matrix, sparse.csr_matrix, sparse.coo_matrix):
        raw = dict(RAW, J_regressor=make(dense))
        path = write(tmp_path, pickle.dumps(raw, protocol=4), name=f"{make.__name__}.pkl")
        np.testing.assert_array_equal(load_flame(path, n_shape=6).J_regressor, dense)


def test_numpy_only_modules_import_neither_chumpy_scipy_nor_torch(tmp_path):
    path = write(tmp_path, flame2020_like_bytes(RAW))
    code = (
        "import sys; from backend.flame.pickle_io import load_flame; "
        "import backend.flame.lbs_numpy, backend.flame.synthetic, backend.motion; "
        f"m = load_flame({str(path)!r}, n_shape=6); backend.flame.lbs_numpy.flame_forward(m, jaw_pose=[0.1, 0, 0]); "
        "bad = [n for n in ('chumpy', 'scipy', 'torch') if n in sys.modules]; "
        "print(m.n_expr, bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "4 []"


def test_shape_split_takes_fewer_when_the_file_has_fewer(tmp_path):
    path = write(tmp_path, flame2023_like_bytes(RAW, 4))
    model = load_flame(path)  # n_shape=300 > 10 components in the file
    assert (model.n_shape, model.n_expr) == (10, 0)
    model = load_flame(path, n_shape=0)
    assert (model.n_shape, model.n_expr) == (0, 10)


# ---------------------------------------------------------------------------
# Refusals: nothing outside array data runs


class Evil:
    def __init__(self, func, *args):
        self.func, self.args, self.state = func, args, None

    def with_state(self, state):
        self.state = state
        return self

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


@pytest.mark.parametrize("func, args, refused", [
    (os.system, ("touch {marker}",), "posix.system"),
    (eval, ("open({marker!r}, 'w')",), "builtins.eval"),
    (subprocess.Popen, (["touch", "{marker}"],), "subprocess.Popen"),
    (np.save, ("{marker}", np.zeros(1)), "numpy.save"),
])
def test_code_execution_is_refused(tmp_path, func, args, refused):
    marker = tmp_path / "pwned"
    args = tuple(a.format(marker=marker) if isinstance(a, str) else
                 [x.format(marker=marker) for x in a] if isinstance(a, list) else a for a in args)
    raw = dict(RAW, v_template=Evil(func, *args))
    path = write(tmp_path, pickle.dumps(raw, protocol=2))
    with pytest.raises(FlameFileError, match=f"refused global '{refused}'"):
        load_flame(path)
    assert not marker.exists() and not Path(f"{marker}.npy").exists()


def test_functools_partial_inside_chumpy_state_is_refused(tmp_path):
    import functools

    marker = tmp_path / "pwned"
    with fake_modules(chumpy__ch={"Ch": Ch}):
        ch = Ch(RAW["v_template"])
        ch.hook = Evil(functools.partial(os.system, f"touch {marker}"))
        payload = pickle.dumps(dict(RAW, v_template=ch), protocol=2)
    with pytest.raises(FlameFileError, match="refused global 'functools.partial'"):
        load_flame(write(tmp_path, payload))
    assert not marker.exists()


def test_reconstructor_only_builds_stand_ins(tmp_path):
    # copyreg._reconstructor is admitted for protocol-0 chumpy files, but not for other classes.
    payload = b"ccopy_reg\n_reconstructor\n(cnumpy\nndarray\nc__builtin__\nobject\nNtR."
    with pytest.raises(FlameFileError, match="refused object reconstruction"):
        load_flame(write(tmp_path, payload))


def test_codecs_encode_only_latin1(tmp_path):
    payload = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00zlib_\x86R."
    with pytest.raises(FlameFileError, match="_codecs.encode"):
        load_flame(write(tmp_path, payload))


# ---------------------------------------------------------------------------
# Clear errors


def test_missing_file(tmp_path):
    with pytest.raises(FlameFileError, match="does not exist"):
        load_flame(tmp_path / "nope.pkl")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(FlameFileError, match="is a folder"):
        load_flame(tmp_path)


def test_empty_file(tmp_path):
    with pytest.raises(FlameFileError, match="is empty"):
        load_flame(write(tmp_path, b""))


@pytest.mark.parametrize("payload", [b"hello, this is text\n", b"PK\x03\x04" + bytes(40), bytes(range(256))])
def test_not_a_pickle(tmp_path, payload):
    with pytest.raises(FlameFileError, match="not a (valid )?FLAME pickle|refused global"):
        load_flame(write(tmp_path, payload))


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.99])
def test_truncated(tmp_path, cut):
    payload = flame2020_like_bytes(RAW)
    with pytest.raises(FlameFileError, match="truncated"):
        load_flame(write(tmp_path, payload[: int(len(payload) * cut)]))


def test_not_a_dict(tmp_path):
    with pytest.raises(FlameFileError, match="holds a list"):
        load_flame(write(tmp_path, pickle.dumps([1, 2], protocol=2)))


def test_missing_keys(tmp_path):
    raw = {k: v for k, v in RAW.items() if k not in ("posedirs", "weights")}
    with pytest.raises(FlameFileError, match="missing FLAME keys: posedirs, weights"):
        load_flame(write(tmp_path, pickle.dumps(raw, protocol=2)))


@pytest.mark.parametrize("key, value, message", [
    ("v_template", np.zeros((12, 2)), r"'v_template' has shape \(12, 2\), expected \(\*, 3\)"),
    ("posedirs", np.zeros((12, 3, 35)), r"'posedirs' has shape \(12, 3, 35\), expected \(12, 3, 36\)"),
    ("shapedirs", np.zeros((11, 3, 10)), r"'shapedirs' has shape \(11, 3, 10\), expected \(12, 3, \*\)"),
    ("J_regressor", np.zeros((4, 12)), r"'J_regressor' has shape \(4, 12\), expected \(5, 12\)"),
    ("weights", np.zeros((12, 6)), r"'weights' has shape \(12, 6\), expected \(12, 5\)"),
    ("kintree_table", np.zeros((2, 4), dtype=np.int64), r"'kintree_table' has shape"),
    ("kintree_table", np.array([[7, 0, 0, 1, 1], [0, 1, 2, 3, 4]]), r"parents are \[0, 0, 1, 1\]"),
    ("f", np.array([[0, 1, 12]]), r"'f' has vertex indices outside 0..11"),
    ("f", np.array([[0.0, 1.0, 2.0]]), r"'f' must hold integer"),
    ("v_template", np.full((12, 3), np.nan), r"'v_template' contains NaN"),
    ("weights", np.full((12, 5), np.inf), r"'weights' contains NaN or infinite"),
    ("v_template", np.array(["a"] * 36).reshape(12, 3), r"'v_template' is not a numeric array"),
])
def test_malformed_arrays(tmp_path, key, value, message):
    path = write(tmp_path, pickle.dumps(dict(RAW, **{key: value}), protocol=2))
    with pytest.raises(FlameFileError, match=message):
        load_flame(path)


def test_unevaluable_chumpy_required_key_is_named(tmp_path):
    with fake_modules(chumpy__ch={"Ch": Ch}, chumpy__ch_ops={"add": Add}):
        payload = pickle.dumps(dict(RAW, v_template=Add(Ch(RAW["v_template"]), Ch(RAW["v_template"]))), protocol=2)
    with pytest.raises(FlameFileError, match="'v_template': cannot evaluate the chumpy object chumpy.ch_ops.add"):
        load_flame(write(tmp_path, payload))


def test_save_flame_refuses_a_broken_dict_and_writes_nothing(tmp_path):
    with pytest.raises(FlameFileError, match="missing FLAME keys: f"):
        save_flame(tmp_path / "bad.pkl", {k: v for k, v in RAW.items() if k != "f"})
    assert not (tmp_path / "bad.pkl").exists()
    assert list(tmp_path.iterdir()) == []


def test_bad_n_shape():
    with pytest.raises(ValueError, match="n_shape"):
        model_from_raw(RAW, n_shape=-1)


# ---------------------------------------------------------------------------
# Sizes and nesting: refused before numpy allocates, never a RecursionError


def _reconstruct():
    from backend.flame.pickle_io import _numpy_internals

    return _numpy_internals()[0]


class Declared:
    """Pickles as numpy's ``_reconstruct(ndarray, shape, dtype)`` with no data after it."""

    def __init__(self, *shape):
        self.shape = shape

    def __reduce__(self):
        return _reconstruct(), (np.ndarray, self.shape, b"d")


def test_a_tiny_pickle_declaring_a_huge_head_is_refused(tmp_path):
    n = 300_000
    with fake_modules(scipy__sparse__csc={"csc_matrix": CscMatrix}):
        empty = CscMatrix(np.zeros((5, 1)))
        empty._shape, empty.indptr = (5, n), np.zeros(n + 1, np.int32)
        raw = dict(RAW, v_template=Declared(n, 3), shapedirs=Declared(n, 3, 10), posedirs=Declared(n, 3, 36),
                   weights=Declared(n, 5))
        payload = pickle.dumps(dict(raw, J_regressor=Declared(5, n)), protocol=2)
    assert len(payload) < 2000
    with pytest.raises(FlameFileError, match=r"refused an array declaring 7200000 bytes, more than the file's \d+"):
        load_flame(write(tmp_path, payload))


def test_direct_ndarray_calls_and_object_arrays_are_refused(tmp_path):
    payload = pickle.dumps(dict(RAW, v_template=Evil(np.ndarray, (10**6, 3))), protocol=2)
    with pytest.raises(FlameFileError, match="refused a direct numpy.ndarray call"):
        load_flame(write(tmp_path, payload))
    # numpy trusts an object array's pickled state: a short list for a big shape would crash the process
    state = (1, (10**6, 3), np.dtype("O"), False, [0.0])
    payload = pickle.dumps(dict(RAW, v_template=Evil(_reconstruct(), np.ndarray, (0,), b"b").with_state(state)),
                           protocol=2)
    with pytest.raises(FlameFileError, match="refused array dtype dtype\\('O'\\)"):
        load_flame(write(tmp_path, payload))


def test_vertex_limit_is_checked_first():
    with pytest.raises(FlameFileError, match="'v_template' has 200001 vertices; at most 200000 are accepted"):
        model_from_raw(dict(RAW, v_template=np.zeros((200_001, 3))))


def test_sparse_matrices_densify_within_the_vertex_limit(tmp_path):
    with fake_modules(scipy__sparse__csc={"csc_matrix": CscMatrix}):
        big = CscMatrix(np.zeros((5, 1)))
        big._shape, big.indptr = (5, 10**7), np.zeros(10**7 + 1, np.int32)
        payload = pickle.dumps(dict(RAW, J_regressor=big), protocol=2)
    with pytest.raises(FlameFileError, match=r"implausible shape \(5, 10000000\)"):
        load_flame(write(tmp_path, payload))


def test_cycles_and_deep_nesting_are_flame_file_errors(tmp_path):
    with fake_modules(chumpy__ch={"Ch": Ch}):
        ch = Ch(RAW["v_template"])
        ch.x = ch
        payload = pickle.dumps(dict(RAW, v_template=ch), protocol=2)
    with pytest.raises(FlameFileError, match="nested more than 32 levels deep"):
        load_flame(write(tmp_path, payload))

    loop = []
    loop.append(loop)
    with pytest.raises(FlameFileError, match="nested more than 32 levels deep"):
        load_flame(write(tmp_path, pickle.dumps(dict(RAW, avitalk_loop=loop), protocol=2)))

    n = 100_000  # a list nested 100,000 deep, written opcode by opcode (pickle.dumps would recurse)
    payload = pickle.dumps(dict(RAW, v_template="PLACEHOLDER"), protocol=2)
    placeholder = b"X" + len("PLACEHOLDER").to_bytes(4, "little") + b"PLACEHOLDER"
    assert placeholder in payload
    payload = payload.replace(placeholder, b"]" * n + b"a" * (n - 1))
    with pytest.raises(FlameFileError, match="v_template"):
        load_flame(write(tmp_path, payload))
