"""Our channels in a FLAME file's own basis: fit once per file, apply to every take (numpy only).

A user's FLAME file (2020, 2023) has its own 100 PCA expression components,
which mean nothing to our motion. ``fit_flame_map`` registers our default head
to the file's template (eye joints and the nose tip, then iterative closest
points: a similarity, then a smoothed non-rigid pass), pairs each of the
file's vertices with a point of our skin, samples each of our channels'
displacement fields there (52 expression components and the jaw opening),
and solves ridge least squares for the file's expression coefficients and
jaw angle that reproduce each field. ``FlameMap.apply`` turns a motion into
the file's basis; ``per_frame=True`` solves each frame instead (``solve.py``),
with temporal smoothing and bounded coefficients. ``flame_map_for_file``
caches the map by the file's SHA-256 in AVI-Talk's cache folder.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AviTalkError
from ..files import cache_folder, write_atomic
from ..flame.lbs_numpy import flame_forward
from ..flame.pickle_io import FlameFileError, FlameModel, load_flame
from ..motion import Motion
from .compare import SKIN_PARTS, similarity
from .solve import SolveSettings, solve_weights

MAP_VERSION = 1
JAW_REFERENCE = 0.2      # rad: our jaw and the file's jaw are compared at this opening
REACH = 4e-3             # m: a file vertex farther than this from our registered skin is left out
RIGID_MEDIAN = 1e-2      # m: half of our skin lies this close to a head after the similarity, or it is no head
RIDGE = 1e-3             # relative to the basis' mean squared column norm
NEIGHBOURS = 8           # candidates for the normal-compatible nearest point
MIN_VERTICES = 1000      # a template with fewer vertices is refused before the fit
PER_FRAME = SolveSettings(ridge=RIDGE, smooth=0.005, iterations=100)
COEFF_BOUND = 10.0       # |coefficient| in the per-frame solve, in units of the file's components
JAW_RANGE = (-0.1, 0.8)  # rad: the jaw opening the per-frame solve allows


class FlameFitError(AviTalkError):
    """Our head cannot be registered to a FLAME file's template, or a cached map is of another version."""


@dataclass
class FlameMap:
    channels: tuple          # our channels, rows: expression names, then "jaw_open"
    matrix: np.ndarray       # (C, K): row c = the file's coefficients (K-1 expression, then jaw angle) per unit
    basis_r: np.ndarray      # (K, K): R of the QR of the file's basis over the paired vertices (per-frame solve)
    fields_q: np.ndarray     # (C, K): our transferred fields projected on Q
    fit_error_mm: dict       # channel -> (RMS, max) error in mm over the paired vertices, channel at 1
    digest: str = ""         # SHA-256 of the FLAME file the map was fitted to, when known

    @property
    def n_expression(self) -> int:
        return self.matrix.shape[1] - 1

    def _inputs(self, motion: Motion) -> np.ndarray:
        n_ours = len(self.channels) - 1
        expr = np.zeros((motion.n_frames, n_ours))
        k = min(n_ours, motion.n_expression)
        expr[:, :k] = motion.expression[:, :k]
        return np.concatenate([expr, motion.jaw_pose[:, :1] / JAW_REFERENCE], axis=1)       # (T, C)

    def apply(self, motion: Motion, per_frame: bool = False, settings: SolveSettings = PER_FRAME) -> Motion:
        """Our motion in the file's basis: its expression coefficients, the jaw's opening rescaled."""
        motion.validate()
        ours = self._inputs(motion).astype(np.float64)                                        # (T, C)
        if per_frame:
            k = self.matrix.shape[1]
            lower, upper = np.full(k, -COEFF_BOUND), np.full(k, COEFF_BOUND)
            lower[-1], upper[-1] = np.array(JAW_RANGE) / JAW_REFERENCE                 # jaw, in its column's unit
            coeffs = solve_weights(self.basis_r, ours @ self.fields_q, lower=lower, upper=upper,
                                   settings=settings, start=ours @ self.matrix)
        else:
            coeffs = ours @ self.matrix                                                       # (T, K)
        ratio = self.matrix[-1, -1]
        jaw = motion.jaw_pose.astype(np.float64).copy()
        jaw[:, 0] = coeffs[:, -1] * JAW_REFERENCE
        jaw[:, 1:] *= ratio
        return Motion(fps=motion.fps, expression=coeffs[:, :-1], jaw_pose=jaw, neck_pose=motion.neck_pose,
                      global_pose=motion.global_pose, eye_pose=motion.eye_pose, instruction=motion.instruction,
                      seed=motion.seed, source=motion.source)

    def as_dict(self) -> dict:
        """Plain lists and numbers (for a Blender object's custom properties); ``from_dict`` reads it back."""
        return {"version": MAP_VERSION, "channels": list(self.channels), "shape": list(self.matrix.shape),
                "matrix": self.matrix.ravel().tolist(), "basis_r": self.basis_r.ravel().tolist(),
                "fields_q": self.fields_q.ravel().tolist(),
                "fit_error_mm": [float(x) for c in self.channels for x in self.fit_error_mm[c]], "digest": self.digest}

    @classmethod
    def from_dict(cls, data) -> "FlameMap":
        """The map ``as_dict`` wrote; ``FlameFitError`` when it is of another version or malformed."""
        try:
            if int(data["version"]) != MAP_VERSION:
                raise FlameFitError(f"a version {int(data['version'])} map, not {MAP_VERSION}: fit it again")
            channels = tuple(str(c) for c in data["channels"])
            c, k = (int(n) for n in data["shape"])
            matrix = np.asarray(data["matrix"], dtype=np.float64).reshape(c, k)
            basis_r = np.asarray(data["basis_r"], dtype=np.float64).reshape(k, k)
            fields_q = np.asarray(data["fields_q"], dtype=np.float64).reshape(c, k)
            errors = np.asarray(data["fit_error_mm"], dtype=np.float64).reshape(c, 2)
        except (KeyError, TypeError, ValueError) as exc:
            raise FlameFitError(f"the stored FLAME map is unreadable ({exc}): fit it again") from None
        if len(channels) != c:
            raise FlameFitError(f"the stored FLAME map names {len(channels)} channels for {c} rows: fit it again")
        return cls(channels, matrix, basis_r, fields_q, {n: tuple(e) for n, e in zip(channels, errors.tolist())},
                   str(data.get("digest", "")))

    def summary(self) -> str:
        """One line: the fit error over the face, per channel, and the worst channel."""
        rms = {c: e[0] for c, e in self.fit_error_mm.items()}
        worst = max(rms, key=rms.get)
        return (f"fit error per channel {min(rms.values()):.2f}-{rms[worst]:.2f} mm RMS over the face "
                f"(worst {worst}: {rms[worst]:.2f} mm RMS, {self.fit_error_mm[worst][1]:.1f} mm max)")

    def save(self, path) -> None:
        """Write the map as a small .npz (atomic replace)."""
        path = Path(path)
        errors = np.array([self.fit_error_mm[c] for c in self.channels])
        write_atomic(path, lambda fh: np.savez(fh, version=MAP_VERSION, channels=np.array(self.channels), matrix=self.matrix,
                                               basis_r=self.basis_r, fields_q=self.fields_q, fit_error_mm=errors,
                                               digest=self.digest))

    @classmethod
    def load(cls, path) -> "FlameMap":
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != MAP_VERSION:
                raise FlameFitError(f"{path} is a version {int(data['version'])} map, not {MAP_VERSION}")
            channels = tuple(str(c) for c in data["channels"])
            errors = {c: tuple(float(x) for x in e) for c, e in zip(channels, data["fit_error_mm"])}
            return cls(channels, data["matrix"], data["basis_r"], data["fields_q"], errors, str(data["digest"]))


# ---------------------------------------------------------------------------
# Geometry


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals, area weighted; vertices on no face get (0, 0, 0)."""
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(verts)
    for k in range(3):
        np.add.at(out, faces[:, k], n)
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, length, out=np.zeros_like(out), where=length > 0)


def _knn(points: np.ndarray, targets: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) indices of each point's k nearest targets and their squared distances.

    scipy's k-d tree when scipy is there (the backend's interpreter), else Blender's own
    (``mathutils.kdtree``, in Blender's Python), else chunked brute force.
    """
    for search in (_knn_scipy, _knn_blender):
        found = search(points, targets, k)
        if found is not None:
            return found
    return _knn_brute(points, targets, k)


def neighbour_search() -> str:
    """Which nearest-neighbour search ``_knn`` uses here: "scipy", "blender" or "brute force"."""
    probe = np.zeros((1, 3))
    if _knn_scipy(probe, probe, 1) is not None:
        return "scipy"
    return "blender" if _knn_blender(probe, probe, 1) is not None else "brute force"


def _knn_scipy(points, targets, k):
    try:
        from scipy.spatial import cKDTree
    except ImportError:
        return None
    dist, idx = cKDTree(targets).query(points, k=k)
    return idx.reshape(len(points), k), (dist * dist).reshape(len(points), k)


def _knn_blender(points, targets, k):
    try:
        from mathutils.kdtree import KDTree
    except ImportError:
        return None
    tree = KDTree(len(targets))
    for i, co in enumerate(targets.tolist()):
        tree.insert(co, i)
    tree.balance()
    idx = np.empty((len(points), k), dtype=np.int64)
    dist = np.empty((len(points), k))
    for i, co in enumerate(points.tolist()):
        found = tree.find_n(co, k)                                # [(co, index, distance)], nearest first
        idx[i] = [f[1] for f in found]
        dist[i] = [f[2] for f in found]
    return idx, dist * dist


def _knn_brute(points, targets, k, chunk: int = 512):
    idx = np.empty((len(points), k), dtype=np.int64)
    d2_out = np.empty((len(points), k))
    t2 = np.sum(targets * targets, axis=1)
    for i in range(0, len(points), chunk):
        p = points[i: i + chunk]
        d2 = t2[None, :] - 2.0 * p @ targets.T + np.sum(p * p, axis=1)[:, None]           # (chunk, N)
        cand = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(targets) else np.tile(np.arange(k), (len(p), 1))
        idx[i: i + chunk] = cand
        d2_out[i: i + chunk] = np.maximum(np.take_along_axis(d2, cand, axis=1), 0.0)
    return idx, d2_out


def nearest_compatible(points, normals, targets, target_normals, jaw=None, target_jaw=None):
    """Index of each point's nearest compatible target (else the nearest), and the distance.

    Compatible: the normals face the same way and, when given, the jaw skinning
    weights agree within a half. Both keep the upper lip from pairing with the
    lower lip across a closed mouth.
    """
    cand, d2 = _knn(points, targets, min(NEIGHBOURS, len(targets)))                         # (n, k)
    ok = np.einsum("pc,pkc->pk", normals, target_normals[cand]) > 0.3
    if jaw is not None:
        ok &= np.abs(jaw[:, None] - target_jaw[cand]) < 0.5
    best = np.argmin(np.where(ok, d2, d2 + 1e6), axis=1)
    rows = np.arange(len(points))
    return cand[rows, best], np.sqrt(d2[rows, best])


def _neighbours(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both ends of every mesh edge, each edge listed both ways."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    return np.concatenate([edges[:, 0], edges[:, 1]]), np.concatenate([edges[:, 1], edges[:, 0]])


def _smooth(field: np.ndarray, weight: np.ndarray, src: np.ndarray, dst: np.ndarray, rounds: int) -> np.ndarray:
    """Weighted neighbour averaging of a per-vertex field (normalised convolution): the non-rigid pass' smoothness."""
    num = field * weight[:, None]
    den = weight.copy()
    for _ in range(rounds):
        acc_num, acc_den = num.copy(), den.copy()
        np.add.at(acc_num, src, num[dst])
        np.add.at(acc_den, src, den[dst])
        top = max(float(acc_den.max()), 1e-12)
        num, den = acc_num / top, acc_den / top
    return num / np.maximum(den, 1e-12)[:, None]


def landmarks(model: FlameModel) -> np.ndarray:
    """(3, 3): left and right eye joints, and the nose tip (most forward point between eyes and mouth)."""
    joints = model.J_regressor @ model.v_template                                           # (5, 3)
    eyes = joints[[3, 4]]
    span = float(np.linalg.norm(eyes[0] - eyes[1]))
    if span < 1e-6:
        raise FlameFitError("the file's eye joints coincide: it has no usable J_regressor for the eyes")
    mid = eyes.mean(axis=0)
    v = model.v_template
    band = v[(np.abs(v[:, 0] - mid[0]) < 0.25 * span) & (v[:, 1] < mid[1]) & (v[:, 1] > mid[1] - span)]
    if len(band) == 0:
        raise FlameFitError("found no vertices between the eyes and the mouth to place the nose tip")
    return np.vstack([eyes, band[np.argmax(band[:, 2])]])


# ---------------------------------------------------------------------------
# The fit


def _skin(source: FlameModel) -> np.ndarray:
    parts = list(source.extras.get("avitalk_part_names", ()))
    face_parts = source.extras.get("avitalk_face_parts")
    if face_parts is None or not parts:
        return np.unique(source.faces)
    keep = np.isin(face_parts, [parts.index(p) for p in SKIN_PARTS if p in parts])
    return np.unique(source.faces[keep])


def _our_fields(source: FlameModel) -> tuple[tuple, np.ndarray]:
    """Our channel names and displacement fields (C, V, 3): expression components, then the jaw opened by
    ``JAW_REFERENCE``."""
    names = [n for n in source.extras.get("avitalk_expression_names", ()) if not str(n).startswith("reserved")]
    names = names or [f"expr{i:03d}" for i in range(source.n_expr)]
    rest = flame_forward(source)[0][0]
    jaw = (flame_forward(source, jaw_pose=np.array([JAW_REFERENCE, 0.0, 0.0]))[0][0] - rest)
    fields = np.concatenate([np.moveaxis(source.exprdirs[:, :, : len(names)], 2, 0), jaw[None]])
    return tuple(names) + ("jaw_open",), fields


@dataclass
class Registration:
    skin: np.ndarray         # (S,) our skin vertices
    faces: np.ndarray        # (F, 3) our skin triangles, indices into ``skin``
    placed: np.ndarray       # (S, 3) where our skin vertices lie on the target
    scale: float             # the similarity from our frame to the target's: scale and rotation
    rotation: np.ndarray     # (3, 3)


def register(source: FlameModel, target: FlameModel, rounds: int = 3, progress=None) -> Registration:
    """Our skin placed on the target's template.

    A similarity from eye joints and nose tip, refined by closest points, then a
    non-rigid pass: each skin vertex moves toward its closest target point, the
    moves smoothed over our mesh so the skin slides as a sheet.
    """
    skin = _skin(source)
    faces = np.searchsorted(skin, source.faces[np.isin(source.faces, skin).all(axis=1)])
    s, r, t = similarity(landmarks(source), landmarks(target))
    normals_src = vertex_normals(source.v_template, source.faces)[skin]
    tgt_v = target.v_template
    tgt_n = vertex_normals(tgt_v, target.faces)
    placed = s * source.v_template[skin] @ r.T + t
    jaw, tgt_jaw = source.weights[skin, 2], target.weights[:, 2]
    for i in range(rounds):                                                                  # similarity ICP
        idx, dist = nearest_compatible(placed, normals_src @ r.T, tgt_v, tgt_n, jaw, tgt_jaw)
        use = dist < np.quantile(dist, 0.8)
        ds, dr, dt = similarity(placed[use], tgt_v[idx[use]])
        placed = ds * placed @ dr.T + dt
        s, r = s * ds, dr @ r
        if progress is not None:
            progress(0.1 + 0.4 * (i + 1) / rounds)
    dist = nearest_compatible(placed, normals_src @ r.T, tgt_v, tgt_n, jaw, tgt_jaw)[1]
    if np.median(dist) > RIGID_MEDIAN:
        raise FlameFitError(f"the file's template does not match a head: after the best similarity, half of our "
                            f"skin lies over {np.median(dist) * 1000:.0f} mm from it (a FLAME head lies within "
                            f"{RIGID_MEDIAN * 1000:.0f} mm)")
    src, dst = _neighbours(faces)
    for reach in (3 * REACH, REACH):                                                         # non-rigid
        idx, dist = nearest_compatible(placed, normals_src @ r.T, tgt_v, tgt_n, jaw, tgt_jaw)
        weight = (dist < reach).astype(np.float64) + 1e-3
        placed = placed + _smooth(tgt_v[idx] - placed, weight, src, dst, rounds=4)
        if progress is not None:
            progress(0.55 if reach > REACH else 0.7)
    return Registration(skin, faces, placed, float(s), r)


def check_target(target: FlameModel) -> None:
    """The file's own refusals, before any of the fit's work: no expression basis, too few vertices for a face."""
    if not isinstance(target, FlameModel):
        raise FlameFileError(f"expected a FLAME model, got {type(target).__name__}")
    if target.n_expr == 0:
        raise FlameFileError(f"the FLAME file has no expression basis: 'shapedirs' has {target.n_shape} columns, "
                             f"all of them shape components (a FLAME file has 300 shape + 100 expression)")
    if target.n_verts < MIN_VERTICES:
        raise FlameFitError(f"the file's template has {target.n_verts} vertices, too few to carry a face's "
                            f"expressions (FLAME's has 5,023; the fit needs {MIN_VERTICES:,} or more)")


def fit_flame_map(target: FlameModel, source: FlameModel | None = None, digest: str = "", progress=None) -> FlameMap:
    """The map from our channels to ``target``'s expression coefficients and jaw angle.

    ``progress(fraction)``, when given, is called as the fit goes (0..1); it may raise to stop the fit.
    """
    check_target(target)
    if source is None:
        from ..head import default_head_path

        source = load_flame(default_head_path())
    channels, fields = _our_fields(source)
    if progress is not None:
        progress(0.1)
    reg = register(source, target, progress=progress)
    # Each target vertex takes the field of its closest registered skin vertex, turned and scaled into its frame.
    pair, dist = nearest_compatible(target.v_template, vertex_normals(target.v_template, target.faces), reg.placed,
                                    vertex_normals(reg.placed, reg.faces), target.weights[:, 2],
                                    source.weights[reg.skin, 2])
    use = np.flatnonzero(dist < REACH)
    if len(use) < 0.2 * target.n_verts:
        raise FlameFitError(f"only {len(use)} of the file's {target.n_verts} vertices lie within {REACH * 1000:.0f} "
                            f"mm of our registered head: is it a human head in FLAME's frame (metres, Y up, face +Z)?")
    if progress is not None:
        progress(0.85)
    ours = reg.scale * fields[:, reg.skin[pair[use]]] @ reg.rotation.T                       # (C, P, 3)
    ours = ours.reshape(len(channels), -1)                                                   # (C, 3P)
    rest = flame_forward(target)[0][0]
    jaw = (flame_forward(target, jaw_pose=np.array([JAW_REFERENCE, 0.0, 0.0]))[0][0] - rest)
    basis = np.concatenate([target.exprdirs[use], jaw[use][:, :, None]], axis=2).reshape(3 * len(use), -1)
    q, r = np.linalg.qr(basis)                                                               # (3P, K), (K, K)
    fields_q = ours @ q                                                                      # (C, K)
    norm = float(np.mean(np.sum(basis * basis, axis=0)))
    matrix = np.linalg.solve(r.T @ r + RIDGE * norm * np.eye(r.shape[0]), (fields_q @ r).T).T
    residual = (ours - matrix @ basis.T).reshape(len(channels), len(use), 3)
    err = np.linalg.norm(residual, axis=2) * 1000.0
    errors = {c: (float(np.sqrt(np.mean(e * e))), float(e.max())) for c, e in zip(channels, err)}
    if progress is not None:
        progress(1.0)
    return FlameMap(channels, matrix, r, fields_q, errors, digest)


# ---------------------------------------------------------------------------
# Cache


def file_digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def flame_map_for_file(path, cache_dir=None, progress=None) -> FlameMap:
    """The map for a FLAME file, fitted on first use and cached by the file's SHA-256 (and our head's version).

    ``progress(fraction)`` as for ``fit_flame_map``.
    """
    from ..head import default_head_path

    path = Path(path)
    if not path.is_file():
        raise FlameFileError(f"FLAME model file {str(path)!r} does not exist")
    digest = file_digest(path)
    head = default_head_path()
    folder = Path(cache_dir) if cache_dir is not None else cache_folder() / "flame_maps"
    cached = folder / f"{digest[:32]}_{head.stem.removeprefix('avitalk_head_')}_m{MAP_VERSION}.npz"
    if cached.is_file():
        try:
            return FlameMap.load(cached)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, FlameFitError):
            pass                                                                             # refit below
    target = load_flame(path)
    check_target(target)
    fitted = fit_flame_map(target, load_flame(head), digest, progress)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fitted.save(cached)
    except OSError:
        pass                                                                                 # works, uncached
    return fitted


# ---------------------------------------------------------------------------
# Command line: fit a file and print what the map reproduces


def report(path, frames: int = 750) -> str:
    """Fit the map for a FLAME file into a fresh cache folder, load it back, apply it; say how long and how well."""
    import time

    from ..head import default_head_path

    n_ours = load_flame(default_head_path()).n_expr
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        for step in ("fit", "cached"):
            start = time.perf_counter()
            fitted = flame_map_for_file(path, cache_dir=folder)
            times[step] = time.perf_counter() - start
    rng = np.random.default_rng(0)
    motion = Motion.zeros(frames, n_ours, 25.0)
    motion.expression[:, : len(fitted.channels) - 1] = rng.uniform(0, 1, (frames, len(fitted.channels) - 1))
    motion.jaw_pose[:, 0] = rng.uniform(0, 0.3, frames)
    for per_frame in (False, True):
        start = time.perf_counter()
        fitted.apply(motion, per_frame=per_frame)
        times[per_frame] = time.perf_counter() - start
    target = load_flame(path)
    lines = [f"{target.n_verts} vertices, {target.n_expr} expression components, neighbours by "
             f"{neighbour_search()}: fit {times['fit']:.2f} s "
             f"(with hashing the file and loading our head), cached {times['cached'] * 1000:.0f} ms; "
             f"{frames} frames: map {times[False] * 1000:.1f} ms, per-frame solve {times[True] * 1000:.0f} ms",
             "", "| our channel | RMS error (mm) | max error (mm) |", "|---|---|---|"]
    lines += [f"| {c} | {rms:.3f} | {worst:.2f} |" for c, (rms, worst) in fitted.fit_error_mm.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m backend.retarget.flame_fit FLAME_FILE")
    try:
        print(report(sys.argv[1]))
    except AviTalkError as exc:
        sys.exit(str(exc))
