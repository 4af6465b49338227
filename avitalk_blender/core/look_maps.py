"""Per-vertex maps that the default head's shaders read (bpy-free).

The head's mesh carries its parts (``avitalk_part_names``, one per face); the
materials need smooth per-vertex quantities instead of face-by-face steps, so
they are computed once at import from the rest mesh and stored as point
attributes (``look.py`` names them):

- ``skin``: (brow hair density, lash line, flush) on the skin, lips and brows;
- ``eye``: the point's place on its eyeball in iris radii, (x, y, 0) seen from
  straight ahead (the iris edge is the unit circle; the back half is far away);
- ``hair``: (scalp hair, 0, 0): a short crop above a hairline that runs over the forehead, the temples,
  above the ears and down to the nape;
- ``mouth``: (gum, tongue, lip red): gums on the teeth, the tongue on the mouth bag, the lips' red
  softened across the faces' steps.

Everything is in the FLAME file's frame (metres, Y up, face along +Z, +X the
character's left), so the maps follow the mesh through shape keys and bones.
"""

from dataclasses import dataclass

import numpy as np

IRIS_ANGLE = 0.52           # polar angle (rad) of the iris edge from the eye's axis (backend.head.mesh)
LASH_REACH = 0.0004         # m from the eyeball's surface within which rim points carry the lash line
# The hairline's height (mm) by the angle around the vertical axis from straight ahead (rad): forehead, temples,
# in front of the ear, above it, behind it, the nape.
HAIRLINE = ((0.0, 72.0), (0.35, 70.0), (0.6, 62.0), (1.0, 48.0), (1.25, 18.0), (1.45, 30.0), (1.75, 30.0),
            (2.3, -15.0), (np.pi, -30.0))
HAIRLINE_SOFT = 9.0         # mm over which the hair thins out at the line
FLUSH_SPOTS = (             # (centre in mm (x, y, z), sigma mm, strength): warmer, redder skin
    ((40.0, -18.0, 70.0), 16.0, 0.8),     # cheeks (mirrored)
    ((0.0, -10.0, 108.0), 9.0, 0.9),      # nose tip
    ((0.0, -70.0, 85.0), 12.0, 0.35),     # chin
    ((68.0, 5.0, 10.0), 14.0, 0.7),       # ears (mirrored)
)


@dataclass
class LookMaps:
    skin: np.ndarray    # (V, 3) brow, lash, flush in [0, 1]
    eye: np.ndarray     # (V, 3) iris-plane coordinates, in iris radii
    mouth: np.ndarray   # (V, 3) gum, tongue, lip red in [0, 1]
    hair: np.ndarray    # (V, 3) scalp hair, 0, 0 in [0, 1]


def _neighbour_mean(values: np.ndarray, faces: np.ndarray, n: int) -> np.ndarray:
    """Mean of each vertex's value over the vertices of its faces (itself included), (V,)."""
    total = np.zeros(n)
    count = np.zeros(n)
    face_sum = values[faces].sum(axis=1)  # (F,)
    for k in range(3):
        np.add.at(total, faces[:, k], face_sum)
        np.add.at(count, faces[:, k], 3)
    return np.where(count > 0, total / np.maximum(count, 1), values)


def _vertex_share(mask_faces: np.ndarray, faces: np.ndarray, n: int) -> np.ndarray:
    """Share of each vertex's faces that are in ``mask_faces``, (V,)."""
    hits = np.zeros(n)
    count = np.zeros(n)
    for k in range(3):
        np.add.at(hits, faces[:, k], mask_faces.astype(float))
        np.add.at(count, faces[:, k], 1.0)
    return hits / np.maximum(count, 1.0)


def _part_vertices(faces, face_parts, part_names, wanted) -> np.ndarray:
    ids = [part_names.index(p) for p in wanted if p in part_names]
    return np.unique(faces[np.isin(face_parts, ids)])


def look_maps(verts, faces, face_parts, part_names, eye_centres, smooth: int = 3) -> LookMaps:
    """The maps for a head: ``verts`` (V, 3) m at rest, ``faces`` (F, 3), ``face_parts`` (F,) into
    ``part_names``, ``eye_centres`` ((3,) left, (3,) right) m."""
    verts = np.asarray(verts, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    face_parts = np.asarray(face_parts)
    part_names = list(part_names)
    n = len(verts)
    skin = np.zeros((n, 3))
    eye = np.full((n, 3), 4.0)
    eye[:, 2] = 0.0
    mouth = np.zeros((n, 3))
    mm = verts * 1000.0

    # Brows: the brow faces, softened over the neighbouring rings so the edge is a fading of hairs, not a step.
    if "brows" in part_names:
        brow = _vertex_share(face_parts == part_names.index("brows"), faces, n)
        for _ in range(smooth):
            brow = _neighbour_mean(brow, faces, n)
        skin[:, 0] = np.clip(brow * 1.4, 0.0, 1.0)

    # Eyes: each eyeball point seen from straight ahead, in iris radii.
    eye_ids = _part_vertices(faces, face_parts, part_names, ("eye_white", "iris", "pupil"))
    centres = np.asarray(eye_centres, dtype=np.float64).reshape(2, 3)
    if len(eye_ids):
        side = np.where(verts[eye_ids, 0] > 0, 0, 1)  # left eye at +X
        d = verts[eye_ids] - centres[side]
        radius = np.median(np.linalg.norm(d, axis=1))
        unit = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        plane = unit[:, :2] / np.sin(IRIS_ANGLE)
        eye[eye_ids, :2] = np.where(unit[:, 2:3] > 0, plane, 4.0)

        # Lash line: rim points that reach down to the ball, and the lid margin next to them.
        skin_ids = _part_vertices(faces, face_parts, part_names, ("skin", "brows"))
        near = np.zeros(n)
        for c in centres:
            gap = np.linalg.norm(verts[skin_ids] - c, axis=1) - radius
            front = verts[skin_ids, 2] > c[2]
            near[skin_ids] = np.maximum(near[skin_ids], ((gap < LASH_REACH) & front).astype(float))
        lash = np.maximum(near, _neighbour_mean(near, faces, n) > 0.05)
        lash = _neighbour_mean(lash.astype(float), faces, n)
        upper = verts[:, 1] > np.where(verts[:, 0] > 0, centres[0, 1], centres[1, 1]) - 0.001
        skin[:, 1] = np.clip(lash * np.where(upper, 1.6, 0.7), 0.0, 1.0)

    # Flush: warm spots on cheeks, nose, chin and ears.
    flush = np.zeros(n)
    for (cx, cy, cz), sigma, strength in FLUSH_SPOTS:
        for x in {cx, -cx}:
            r2 = ((mm - (x, cy, cz)) ** 2).sum(axis=1)
            flush = np.maximum(flush, strength * np.exp(-0.5 * r2 / sigma ** 2))
    skin[:, 2] = flush

    # Lips: the share of lip faces, softened once, so the vermilion border is a line, not a staircase.
    if "lips" in part_names:
        lips = _vertex_share(face_parts == part_names.index("lips"), faces, n)
        mouth[:, 2] = np.clip(_neighbour_mean(lips, faces, n), 0.0, 1.0)

    # Mouth: gums near the roots of the teeth, the tongue on the floor of the mouth bag.
    teeth = _part_vertices(faces, face_parts, part_names, ("teeth",))
    if len(teeth):
        mid = np.median(mm[teeth, 1])
        upper_row = mm[teeth, 1] > mid
        y = mm[teeth, 1]
        for row in (upper_row, ~upper_row):
            lo, hi = y[row].min(), y[row].max()
            frac = (y[row] - lo) / max(hi - lo, 1e-9)
            mouth[teeth[row], 0] = frac if row is upper_row else 1.0 - frac  # 1 at the root
    bag = _part_vertices(faces, face_parts, part_names, ("mouth",))
    if len(bag):
        y = mm[bag, 1]
        floor = np.percentile(y, 15)
        centre_y = np.median(y)
        mouth[bag, 1] = np.clip((centre_y - y) / max(centre_y - floor, 1e-9), 0.0, 1.0)
    return LookMaps(skin=skin, eye=eye, mouth=mouth, hair=hair_map(mm, faces, face_parts, part_names))


def hair_map(mm, faces, face_parts, part_names) -> np.ndarray:
    """(V, 3): the scalp hair's density on skin points (millimetres in), in the first column."""
    hair = np.zeros((len(mm), 3))
    skin = _part_vertices(faces, face_parts, part_names, ("skin",))
    angle = np.arctan2(np.abs(mm[skin, 0]), mm[skin, 2])  # 0 ahead, pi behind
    line = np.interp(angle, *np.array(HAIRLINE).T)
    hair[skin, 0] = np.clip((mm[skin, 1] - line) / HAIRLINE_SOFT + 0.5, 0.0, 1.0)
    return hair
