"""The whole default head mesh: skin, lid rims, mouth, eyeballs, teeth (numpy only, mm)."""

from dataclasses import dataclass

import numpy as np

from .field import Anatomy
from .parts import (MOUTH_RINGS, MOUTH_BACK, Rings, eye_rim_points, eyeball, mouth_ring_points, ring_faces,
                    teeth_row)
from .skin import Skin, build_skin, mouth_coords, skin_points

PART_NAMES = ["skin", "eye_white", "iris", "pupil", "mouth", "teeth", "lips", "brows"]
PART = {name: i for i, name in enumerate(PART_NAMES)}
IRIS_ANGLE = 0.52    # polar angle (rad) of the iris edge on the eyeball
PUPIL_ANGLE = 0.2


@dataclass
class HeadMesh:
    anatomy: Anatomy
    skin: Skin
    verts: np.ndarray          # (V, 3) mm
    faces: np.ndarray          # (F, 3)
    face_part: np.ndarray      # (F,) index into PART_NAMES
    eye_rims: tuple            # (left Rings, right Rings)
    mouth: Rings
    mouth_side: np.ndarray     # (L,) +1 upper lip, -1 lower lip, 0 corner, per mouth loop vertex
    mouth_mu: np.ndarray       # (L,)
    mouth_center_z: float
    eyeballs: tuple            # (left indices, right indices)
    teeth_upper: np.ndarray
    teeth_lower: np.ndarray

    @property
    def n_skin(self) -> int:
        return len(self.skin.theta)

    def eye_centers(self):
        c = np.asarray(self.anatomy.eye_center, dtype=float)
        return c, c * (-1, 1, 1)

    def attach(self, skin_pts):
        """All vertices (V, 3) for new skin positions: rims and lip rolls rebuilt, the bag follows."""
        verts = self.verts.copy()
        verts[: self.n_skin] = skin_pts
        for rim, center in zip(self.eye_rims, self.eye_centers()):
            verts[rim.rings] = eye_rim_points(skin_pts[rim.loop], center)
        loop_new = skin_pts[self.mouth.loop]
        rebuilt = mouth_ring_points(loop_new, self.mouth_side, self.mouth_mu, self.anatomy.mouth_y,
                                    self.mouth_center_z)
        moved = loop_new - self.verts[self.mouth.loop]
        for k, (_, _, _, follow) in enumerate(MOUTH_RINGS):
            ring = self.mouth.rings[k]
            verts[ring] = rebuilt[k] if k < 2 else self.verts[ring] + follow * moved
        return verts


def _directed_edges(faces):
    return set(zip(faces[:, 0], faces[:, 1])) | set(zip(faces[:, 1], faces[:, 2])) | set(zip(faces[:, 2], faces[:, 0]))


def _orient_like(new_faces, ref_faces):
    """Flip new_faces if they share an edge with ref_faces in the same direction."""
    ref = _directed_edges(ref_faces)
    if _directed_edges(new_faces[:2]) & ref:
        return new_faces[:, ::-1].copy()
    return new_faces


def _vermilion(skin: Skin, anatomy: Anatomy):
    """Skin vertices on the red of the lips."""
    mu, d = mouth_coords(skin, anatomy)
    amu = np.abs(mu)
    env = np.sqrt(np.clip(1.0 - mu * mu, 0.0, 1.0))
    bow = 1.3 * np.exp(-((amu - 0.22) / 0.13) ** 2) - 0.9 * np.exp(-(mu / 0.09) ** 2)
    h_up = 6.8 * env ** 0.7 + bow
    h_down = 9.0 * env ** 0.8
    upper = (d > 0) | ((d == 0) & ~skin.lower)
    return (amu < 1.0) & np.where(upper, d < h_up, d > -h_down)


def _brows(pts):
    """Skin points in the eyebrows."""
    ax, y, z = np.abs(pts[:, 0]), pts[:, 1], pts[:, 2]
    s = (ax - 12.0) / 41.0
    center = 28.5 + 5.5 * np.sin(np.pi * np.clip(s, 0, 1) ** 0.75) - 2.5 * np.clip(s, 0, 1) ** 2
    half = 4.4 * (1.0 - 0.55 * np.clip(s, 0, 1)) * np.clip(s * 6.0, 0.4, 1.0)
    return (s > 0) & (s < 1) & (np.abs(y - center) < half) & (z > 30)


def build_mesh(anatomy: Anatomy = Anatomy()) -> HeadMesh:
    skin = build_skin(anatomy)
    skin_pts = skin_points(skin, anatomy)
    verts = [skin_pts]
    n = len(skin_pts)
    faces = [skin.faces]
    verm = _vermilion(skin, anatomy)
    brow = _brows(skin_pts)
    face_verm = verm[skin.faces].all(axis=1)
    face_brow = brow[skin.faces].sum(axis=1) >= 2
    parts = [np.where(face_verm, PART["lips"], np.where(face_brow, PART["brows"], PART["skin"]))]

    # Lid rims.
    centers = (np.asarray(anatomy.eye_center, float), np.asarray(anatomy.eye_center, float) * (-1, 1, 1))
    rims = []
    for slit, center in zip(skin.eyes, centers):
        loop = skin.loop(slit)
        pts = eye_rim_points(skin_pts[loop], center)
        idx = n + np.arange(pts.shape[0] * pts.shape[1]).reshape(pts.shape[:2])
        n += idx.size
        verts.append(pts.reshape(-1, 3))
        f = _orient_like(ring_faces(loop, idx), skin.faces)
        faces.append(f)
        parts.append(np.full(len(f), PART["skin"]))
        rims.append(Rings(loop, idx, -1))

    # Mouth: lip rolls and bag.
    loop = skin.loop(skin.mouth)
    mu_all, _ = mouth_coords(skin, anatomy)
    mu = mu_all[loop]
    corner = np.isin(loop, [skin.grid[skin.mouth.row, skin.mouth.c0], skin.grid[skin.mouth.row, skin.mouth.c1]])
    side = np.where(corner, 0.0, np.where(skin.lower[loop], -1.0, 1.0))
    center_z = float(skin_pts[loop][np.argmin(np.abs(mu)), 2])
    pts = mouth_ring_points(skin_pts[loop], side, mu, anatomy.mouth_y, center_z)
    idx = n + np.arange(pts.shape[0] * pts.shape[1]).reshape(pts.shape[:2])
    n += idx.size
    cap = n
    n += 1
    verts += [pts.reshape(-1, 3), [[0.0, anatomy.mouth_y, center_z - MOUTH_BACK]]]
    f = _orient_like(ring_faces(loop, idx, cap), skin.faces)
    faces.append(f)
    n_loop = len(loop)
    ring_of_face = np.concatenate([np.repeat(np.arange(len(MOUTH_RINGS)), 2 * n_loop), [len(MOUTH_RINGS)] * n_loop])
    parts.append(np.where(ring_of_face < 1, PART["lips"], PART["mouth"]))
    mouth = Rings(loop, idx, cap)

    # Eyeballs.
    eyeballs = []
    for center in centers:
        pts, f, polar = eyeball(center, anatomy.eye_radius)
        eyeballs.append(n + np.arange(len(pts)))
        verts.append(pts)
        faces.append(f + n)
        parts.append(np.where(polar < PUPIL_ANGLE, PART["pupil"], np.where(polar < IRIS_ANGLE, PART["iris"],
                                                                           PART["eye_white"])))
        n += len(pts)

    # Teeth: upper incisal edge just above the contact line, lower row behind it.
    front = center_z - 4.6
    rows = []
    for args in ((front, anatomy.mouth_y + 0.6, 10.0, 23.0, 30.0, 7.0),
                 (front - 1.6, anatomy.mouth_y + 1.8, -9.5, 21.5, 28.0, 6.5)):
        pts, f = teeth_row(*args)
        rows.append(n + np.arange(len(pts)))
        verts.append(pts)
        faces.append(f + n)
        parts.append(np.full(len(f), PART["teeth"]))
        n += len(pts)

    return HeadMesh(anatomy=anatomy, skin=skin, verts=np.concatenate(verts).astype(float),
                    faces=np.concatenate(faces), face_part=np.concatenate(parts).astype(np.int8),
                    eye_rims=tuple(rims), mouth=mouth, mouth_side=side, mouth_mu=mu, mouth_center_z=center_z,
                    eyeballs=tuple(eyeballs), teeth_upper=rows[0], teeth_lower=rows[1])
