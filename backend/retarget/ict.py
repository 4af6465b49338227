"""ICT-FaceKit's ``FaceXModel`` folder as a head: plain arrays for the Blender side (numpy only).

ICT-FaceKit (MIT, USC ICT) is a scanned head with ARKit-named expression
meshes. Users download it themselves; nothing of it ships with AVI-Talk.
The folder holds ``generic_neutral_mesh.obj`` (centimetres, Y up, the face
along +Z, +X the character's left) and one OBJ per expression with the whole
mesh in that expression, in the same vertex order; the blendshape is the
difference. ``load_ict`` returns metres, faces and per-corner UVs, deltas by
ARKit name, the part ranges, and the eye centres and jaw pivot estimated from
the geometry (sphere fits of the eyeballs; the rigid motion of the lower
teeth in ``jawOpen``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AviTalkError
from .arkit import ARKIT_NAMES, split_side

NEUTRAL = "generic_neutral_mesh.obj"
INDICES = "vertex_indices.json"
CM = 0.01  # ICT-FaceKit's unit in metres

# Inclusive vertex ranges of the parts (ICT-FaceKit's documentation; ``vertex_indices.json`` has none).
PARTS = {
    "face": (0, 9408), "head_and_neck": (9409, 11247), "mouth_socket": (11248, 13293),
    "eye_sockets": (13294, 14061), "gums_and_tongue": (14062, 17038), "teeth": (17039, 21450),
    "eyeballs": (21451, 24590), "lacrimal_fluid": (24591, 24998), "eye_blend": (24999, 25046),
    "eye_occlusion": (25047, 25350), "eyelashes": (25351, 26718),
}
N_VERTICES = PARTS["eyelashes"][1] + 1

# ICT file stems of each ARKit name: sides are ``_L``/``_R``; browInnerUp and cheekPuff come split in two halves.
SPLIT = {"browInnerUp": ("browInnerUp_L", "browInnerUp_R"), "cheekPuff": ("cheekPuff_L", "cheekPuff_R")}
# In the folder but not ARKit's: kept as extra shapes under their own names.
EXTRA_STEMS = ("cheekRaiser_L", "cheekRaiser_R", "PupilDilate_L", "PupilDilate_R")


class IctFolderError(AviTalkError):
    """An ICT-FaceKit folder that is missing files or holds meshes that do not fit together."""

    code = "bad_request"


def ict_stems(name: str) -> tuple[str, ...]:
    """File stems (without ``.obj``) that make up the ARKit shape ``name``."""
    if name in SPLIT:
        return SPLIT[name]
    base, side = split_side(name)
    return (base + {"Left": "_L", "Right": "_R"}[side],) if side else (name,)


@dataclass
class ObjMesh:
    vertices: np.ndarray                 # (V, 3) as written in the file
    face_sizes: np.ndarray | None = None  # (F,) corners of each polygon
    face_vertices: np.ndarray | None = None  # (sum sizes,) vertex index of each corner
    face_uvs: np.ndarray | None = None   # (sum sizes,) uv index of each corner, -1 where none
    uvs: np.ndarray | None = None        # (U, 2)


def _floats(lines, width, where):
    try:
        values = np.array(" ".join(lines).split(), dtype=np.float64)
    except ValueError:
        raise IctFolderError(f"{where}: a 'v'/'vt' line holds something that is not a number") from None
    if values.size != width * len(lines):
        # tolerate optional extra columns (vertex colours, w) by reading line by line
        rows = [line.split()[:width] for line in lines]
        if any(len(r) < width for r in rows):
            raise IctFolderError(f"{where}: a 'v'/'vt' line has fewer than {width} numbers")
        values = np.array(rows, dtype=np.float64)
    return values.reshape(-1, width)


def read_obj(path, faces: bool = True) -> ObjMesh:
    """Read an OBJ's ``v`` lines in file order, and with ``faces`` its ``vt`` and ``f`` lines."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise IctFolderError(f"cannot read {path} ({exc.strerror or exc})") from None
    lines = text.splitlines()
    verts = _floats([ln[2:] for ln in lines if ln.startswith("v ")], 3, path.name)
    if not faces:
        return ObjMesh(verts)
    uv_lines = [ln[3:] for ln in lines if ln.startswith("vt ")]
    uvs = _floats(uv_lines, 2, path.name) if uv_lines else np.zeros((0, 2))
    sizes, corners, corner_uvs = [], [], []
    for ln in lines:
        if not ln.startswith("f "):
            continue
        parts = ln.split()[1:]
        sizes.append(len(parts))
        for p in parts:
            fields = p.split("/")
            corners.append(int(fields[0]))
            corner_uvs.append(int(fields[1]) if len(fields) > 1 and fields[1] else 0)
    corners = np.array(corners, dtype=np.int64)
    corner_uvs = np.array(corner_uvs, dtype=np.int64)
    corners = np.where(corners < 0, len(verts) + corners, corners - 1)      # OBJ counts from 1, negatives from the end
    corner_uvs = np.where(corner_uvs < 0, len(uvs) + corner_uvs, corner_uvs - 1)
    if corners.size and (corners.min() < 0 or corners.max() >= len(verts)):
        raise IctFolderError(f"{path.name}: a face names a vertex that is not in the file")
    if corner_uvs.size and corner_uvs.max() >= len(uvs):
        raise IctFolderError(f"{path.name}: a face names a UV that is not in the file")
    return ObjMesh(verts, np.array(sizes, dtype=np.int64), corners, corner_uvs, uvs)


@dataclass
class IctHead:
    vertices: np.ndarray          # (V, 3) metres, Y up, face along +Z, +X the character's left
    face_sizes: np.ndarray        # (F,) corners of each polygon (quads and triangles)
    face_vertices: np.ndarray     # (sum sizes,) vertex of each corner
    corner_uvs: np.ndarray        # (sum sizes, 2) UV of each corner
    deltas: dict                  # ARKit name -> (V, 3) float32 metres
    extra_deltas: dict            # ICT-only shapes (cheekRaiser_L, PupilDilate_L, ...) -> (V, 3)
    parts: dict                   # part name -> (first, last) vertex index, inclusive
    landmarks: np.ndarray         # (68,) Multi-PIE landmark vertex indices
    eye_centers: np.ndarray       # (2, 3) left eye, right eye, metres
    jaw_pivot: np.ndarray         # (3,) a point on the jaw's hinge axis, metres
    jaw_axis: np.ndarray          # (3,) unit hinge axis; jawOpen turns about it by ``jaw_open_angle``
    jaw_open_angle: float         # radians of ICT's full jawOpen
    missing: tuple = field(default=())  # ARKit names the folder has no shape for (tongueOut)

    def part(self, name: str) -> np.ndarray:
        first, last = self.parts[name]
        return np.arange(first, last + 1)


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise IctFolderError(f"{folder} is not a folder; choose ICT-FaceKit's FaceXModel folder")
    wanted = [NEUTRAL] + [s + ".obj" for n in ARKIT_NAMES if n != "tongueOut" for s in ict_stems(n)]
    missing = sorted(w for w in wanted if not (folder / w).is_file())
    if missing:
        found = sorted(p.name for p in folder.glob("*.obj"))
        listed = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise IctFolderError(
            f"{folder} is not a complete ICT-FaceKit FaceXModel folder: missing {', '.join(missing[:8])}"
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
            + f"; found {len(found)} OBJ files" + (f" ({listed})" if found else ""))


def fit_sphere(points: np.ndarray) -> np.ndarray:
    """Centre (3,) of the least-squares sphere through ``points`` (N, 3)."""
    a = np.hstack([2.0 * points, np.ones((len(points), 1))])
    b = np.sum(points * points, axis=1)
    return np.linalg.lstsq(a, b, rcond=None)[0][:3]


def rigid_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t with dst ~ src @ R.T + t (Kabsch)."""
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    u, _, vt = np.linalg.svd((src - cs).T @ (dst - cd))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, cd - r @ cs


def hinge(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Pivot (3,), unit axis (3,) and angle of the rotation that best takes ``src`` to ``dst``."""
    r, t = rigid_fit(src, dst)
    angle = float(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)))
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    axis /= max(np.linalg.norm(axis), 1e-12)
    pivot = np.linalg.lstsq(np.eye(3) - r, t, rcond=None)[0]                 # min-norm point the motion keeps
    centre = src.mean(axis=0)
    pivot = pivot + axis * np.dot(centre - pivot, axis)                      # the axis point beside the part
    return pivot, axis, angle


def _json_landmarks(folder: Path) -> np.ndarray:
    path = folder / INDICES
    if not path.is_file():
        return np.zeros(0, dtype=np.int64)
    try:
        marks = json.loads(path.read_text()).get("idx_to_landmark_verts", [])
        return np.asarray(marks, dtype=np.int64)
    except (ValueError, TypeError, AttributeError):
        raise IctFolderError(f"{path} is not ICT-FaceKit's vertex index file") from None


def load_ict(folder) -> IctHead:
    """Read a user's ICT-FaceKit ``FaceXModel`` folder; a clear error names what is missing."""
    folder = Path(folder)
    _check_folder(folder)
    neutral = read_obj(folder / NEUTRAL)
    if len(neutral.vertices) != N_VERTICES:
        raise IctFolderError(f"{folder / NEUTRAL} has {len(neutral.vertices)} vertices; "
                             f"ICT-FaceKit's generic head has {N_VERTICES}")
    rest = neutral.vertices

    def delta(stem):
        verts = read_obj(folder / f"{stem}.obj", faces=False).vertices
        if verts.shape != rest.shape:
            raise IctFolderError(f"{stem}.obj has {len(verts)} vertices, the neutral mesh {len(rest)}")
        return ((verts - rest) * CM).astype(np.float32)

    deltas = {}
    for name in ARKIT_NAMES:
        stems = ict_stems(name)
        if all((folder / f"{s}.obj").is_file() for s in stems):
            deltas[name] = sum(delta(s) for s in stems)
    extra = {s: delta(s) for s in EXTRA_STEMS if (folder / f"{s}.obj").is_file()}
    verts = rest * CM
    first, last = PARTS["eyeballs"]
    eyeballs = verts[first: last + 1]
    eyes = np.array([fit_sphere(eyeballs[eyeballs[:, 0] > 0]), fit_sphere(eyeballs[eyeballs[:, 0] < 0])])
    first, last = PARTS["teeth"]
    teeth = np.arange(first, last + 1)
    moved = np.linalg.norm(deltas["jawOpen"][teeth], axis=1)
    lower = teeth[moved > 0.5 * moved.max()]
    pivot, axis, angle = hinge(verts[lower], verts[lower] + deltas["jawOpen"][lower])
    if axis[0] < 0:           # opening turns about +X in FLAME's convention
        axis = -axis
    uv = neutral.uvs[neutral.face_uvs] if len(neutral.uvs) else np.zeros((len(neutral.face_vertices), 2))
    return IctHead(
        vertices=verts, face_sizes=neutral.face_sizes, face_vertices=neutral.face_vertices, corner_uvs=uv,
        deltas=deltas, extra_deltas=extra, parts=dict(PARTS), landmarks=_json_landmarks(folder),
        eye_centers=eyes, jaw_pivot=pivot, jaw_axis=axis, jaw_open_angle=angle,
        missing=tuple(n for n in ARKIT_NAMES if n not in deltas))
