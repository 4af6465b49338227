"""The default head's shape as a signed-distance field (numpy only, millimetres).

The head is a smooth union of simple solids (cranium, face, jaw, neck, nose,
brow ridge, cheekbones, ears) with eye sockets carved out and a lid shell
(the eyeball inflated by the lid thickness) put back in each socket. The skin
mesh samples this field along rays (``backend.head.skin``); lips and brows
are added on the mesh instead, so that they move with the skin.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Anatomy:
    """Landmarks in millimetres (Y up, face along +Z, +X the character's left)."""

    eye_center: tuple = (31.5, 16.0, 72.0)   # left eye; the right one is mirrored
    eye_radius: float = 12.0
    lid_thickness: float = 1.0                # lid surface above the eyeball
    mouth_y: float = -45.0                    # lip contact line
    mouth_half_width: float = 24.0            # mouth corner |x|
    eye_inner_x: float = 17.0                 # inner corner |x|
    eye_outer_x: float = 45.5                 # outer corner |x|
    eye_open_up: float = 5.0                  # upper lid margin above the corner line (centre)
    eye_open_down: float = 4.6                # lower lid margin below it
    lip_gap: float = 1.6                      # inner lip gap at rest, centre
    neck_bottom_y: float = -118.0
    jaw_hinge: tuple = (0.0, -4.0, 6.0)       # where the jaw rotates (on the midline)


def ellipsoid(p, center, radii):
    """Approximate signed distance to an axis-aligned ellipsoid, (N,)."""
    qx = (p[:, 0] - center[0]) / radii[0]
    qy = (p[:, 1] - center[1]) / radii[1]
    qz = (p[:, 2] - center[2]) / radii[2]
    k0 = np.sqrt(qx * qx + qy * qy + qz * qz)
    k1 = np.sqrt((qx / radii[0]) ** 2 + (qy / radii[1]) ** 2 + (qz / radii[2]) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def capsule(p, a, b, ra, rb):
    """Signed distance to a cone-like capsule from a (radius ra) to b (radius rb)."""
    a = np.asarray(a, dtype=float)
    ba = np.asarray(b, dtype=float) - a
    pa = p - a
    t = np.clip(pa @ ba / (ba @ ba), 0.0, 1.0)
    e = pa - t[:, None] * ba
    return np.sqrt(e[:, 0] ** 2 + e[:, 1] ** 2 + e[:, 2] ** 2) - (ra + t * (rb - ra))


def smin(a, b, k):
    """Smooth union (polynomial smooth minimum) with blend width k."""
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


def ssub(a, b, k):
    """Smooth subtraction of b from a."""
    return -smin(-a, b, k)


def head_field(p, anatomy: Anatomy = Anatomy()):
    """Signed distance-like field of the head at points p (N, 3) in mm; negative inside."""
    p = np.asarray(p, dtype=float)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    m = np.stack([np.abs(x), y, z], axis=1)  # mirrored to the left side for paired parts

    d = ellipsoid(p, (0, 36, -14), (76, 80, 97))                       # cranium
    d = smin(d, ellipsoid(p, (0, 2, 24), (62, 50, 58)), 18)            # midface
    d = smin(d, ellipsoid(p, (0, -44, 38), (48, 34, 46)), 16)          # lower face over the teeth
    d = smin(d, ellipsoid(p, (0, -40, 60), (30, 22, 30)), 14)          # muzzle under the lips
    # Mandible: chin boss, body to the jaw angle, ramus up to the ear.
    d = smin(d, ellipsoid(p, (0, -70, 68), (20, 14, 16)), 12)
    d = smin(d, capsule(m, (12, -72, 62), (48, -62, 4), 10, 12), 14)
    d = smin(d, capsule(m, (48, -62, 4), (50, -12, 0), 12, 12), 12)
    # Neck: an elliptic column that ends inside the head.
    neck = np.maximum(np.sqrt((x / 52.0) ** 2 + ((z + 16.0) / 56.0) ** 2) * 52.0 - 52.0, y + 5.0)
    d = smin(d, neck, 26)
    # Cheekbones, soft cheeks, brow ridge.
    d = smin(d, ellipsoid(m, (47, 4, 52), (16, 10, 16)), 12)
    d = smin(d, ellipsoid(m, (36, -26, 58), (16, 18, 16)), 14)
    d = smin(d, ellipsoid(p, (0, 33, 74), (54, 9, 14)), 10)
    # Eye sockets, then the lid shell around each eyeball.
    ec = np.asarray(anatomy.eye_center, dtype=float)
    d = ssub(d, ellipsoid(m, ec + (0.5, 2.5, 6.0), (19, 14, 14)), 7)
    e = m - ec
    d = smin(d, np.sqrt(e[:, 0] ** 2 + e[:, 1] ** 2 + e[:, 2] ** 2) - (anatomy.eye_radius + anatomy.lid_thickness), 3.0)
    # Nose: bridge, tip, wings; nostrils carved from below.
    nose = capsule(p, (0, 26, 82), (0, -10, 106), 5.0, 7.0)
    nose = smin(nose, ellipsoid(p, (0, -13, 104), (8.5, 7.5, 8.5)), 5)
    nose = smin(nose, ellipsoid(m, (12, -17, 94), (7, 6.5, 8)), 5)
    nose = smin(nose, ellipsoid(p, (0, -22, 96), (6, 4, 8)), 4)
    nose = ssub(nose, ellipsoid(m, (6.5, -22.5, 99), (3.2, 2.2, 5.0)), 1.5)
    d = smin(d, nose, 6)
    # Ears: a flattened disc with a hollow.
    ear = ellipsoid(m, (72, 4, -10), (9, 30, 18))
    ear = ssub(ear, ellipsoid(m, (80, 2, -8), (5, 11, 9)), 3)
    d = smin(d, ear, 4)
    return d
