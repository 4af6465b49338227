"""Parts attached to the skin or separate from it (numpy only, mm).

- lid rims: two rings from each eye's lid margin in toward the eyeball centre
- mouth: rings from the inner lip contour rolling into the mouth, then a bag
- eyeballs: UV spheres facing +Z with an iris and pupil disc
- teeth: an upper and a lower row swept along a dental arch

Rings hang off a loop of skin vertices; ``ring_points`` rebuilds them from the
loop's current positions so expressions keep them attached.
"""

from dataclasses import dataclass

import numpy as np

# Lid rim rings: depth (mm) of each ring toward the eyeball centre from the margin.
LID_RIM_DEPTHS = (1.6, 3.6)
# Mouth rings: (vertical spread, depth behind the lip, x scale, follow) per ring.
# The first two roll the lips inward and are rebuilt from the lip contour; the
# deeper ones form the mouth bag and follow the contour's motion by `follow`.
MOUTH_RINGS = (
    (1.4, 2.2, 1.0, 1.0),
    (4.8, 4.6, 1.0, 1.0),
    (11.0, 8.5, 1.05, 0.7),
    (16.0, 22.0, 1.18, 0.35),
    (15.0, 38.0, 1.12, 0.12),
    (8.0, 50.0, 0.75, 0.0),
)
MOUTH_BACK = 54.0


@dataclass
class Rings:
    loop: np.ndarray       # (L,) skin vertex indices of the loop
    rings: np.ndarray      # (K, L) vertex indices of each ring
    cap: int               # vertex index closing the last ring, or -1


def eye_rim_points(loop_pts, eye_center):
    """Rim rings (K, L, 3) from the lid margin points toward the eyeball centre."""
    to_c = np.asarray(eye_center) - loop_pts
    to_c /= np.linalg.norm(to_c, axis=1, keepdims=True)
    return np.stack([loop_pts + depth * to_c for depth in LID_RIM_DEPTHS])


def mouth_ring_points(loop_pts, side, mu, mouth_y, center_z):
    """Mouth rings (K, L, 3) for lip contour points; side +1 upper lip, -1 lower, 0 corner."""
    env = np.sqrt(np.clip(1.0 - mu * mu, 0.0, 1.0))
    out = []
    for k, (spread, depth, sx, _) in enumerate(MOUTH_RINGS):
        p = loop_pts.copy()
        if k < 2:
            p[:, 1] += side * spread * env
            p[:, 2] -= depth
        else:
            p[:, 0] *= sx
            p[:, 1] = mouth_y + side * spread * env ** 0.8
            p[:, 2] = np.minimum(loop_pts[:, 2], center_z) - depth + 3.0 * (1.0 - env)
        out.append(p)
    return np.stack(out)


def ring_faces(loop, rings, cap=-1):
    """Quads (as triangles) between a closed loop and its rings, plus a fan to the cap."""
    chain = [loop] + list(rings)
    faces = []
    n = len(loop)
    for a_ring, b_ring in zip(chain[:-1], chain[1:]):
        for i in range(n):
            i2 = (i + 1) % n
            faces += [(a_ring[i], b_ring[i], b_ring[i2]), (a_ring[i], b_ring[i2], a_ring[i2])]
    if cap >= 0:
        last = chain[-1]
        faces += [(last[i], cap, last[(i + 1) % n]) for i in range(n)]
    return np.array(faces, dtype=np.int64)


def eyeball(center, radius, n_lat=22, n_lon=32):
    """UV sphere facing +Z. Returns points (N, 3), faces (F, 3), and the polar angle of each face."""
    lat = np.linspace(0.0, np.pi, n_lat + 1)[1:-1]   # from the front pole
    lon = np.linspace(0.0, 2 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    # A slight cornea bulge over the iris.
    r = radius + 0.7 * np.clip(1.0 - la / 0.6, 0.0, 1.0) ** 2
    pts = np.stack([r * np.sin(la) * np.cos(lo), r * np.sin(la) * np.sin(lo), r * np.cos(la)], axis=-1).reshape(-1, 3)
    front = len(pts)
    back = front + 1
    pts = np.concatenate([pts, [[0, 0, radius + 0.7], [0, 0, -radius]]]) + np.asarray(center)
    idx = np.arange(n_lat - 1)[:, None] * n_lon + np.arange(n_lon)[None, :]
    faces, polar = [], []
    for i in range(n_lon):
        i2 = (i + 1) % n_lon
        faces.append((front, idx[0, i2], idx[0, i]))
        polar.append(lat[0] / 2)
        for j in range(n_lat - 2):
            a, b, c, d = idx[j, i], idx[j, i2], idx[j + 1, i2], idx[j + 1, i]
            faces += [(a, b, c), (a, c, d)]
            polar += [0.5 * (lat[j] + lat[j + 1])] * 2
        faces.append((back, idx[-1, i], idx[-1, i2]))
        polar.append(np.pi)
    return pts, np.array(faces, dtype=np.int64), np.array(polar)


def teeth_row(front_z, edge_y, height, half_width, depth, thickness, n=36, scallop=0.6):
    """A row of teeth swept along an elliptic arch; height > 0 grows up (upper row), < 0 down."""
    t = np.linspace(-1.3, 1.3, n)
    ax = half_width * np.sin(t) / np.sin(1.3)
    az = front_z - depth * (1.0 - np.cos(t)) / (1.0 - np.cos(1.3))
    # Outward normal of the arch in the xz plane.
    tx, tz = np.gradient(ax), np.gradient(az)
    nx, nz = tz, -tx
    norm = np.hypot(nx, nz)
    nx, nz = nx / norm, nz / norm
    nz = np.abs(nz) * np.sign(np.cos(t))
    # Incisal edge: a bump per tooth, shorter toward the back.
    teeth = np.abs(np.sin(t * 9.0 / 1.3 * np.pi / 2))
    edge = edge_y + np.sign(height) * (scallop * (1.0 - teeth) + 1.2 * (t / 1.3) ** 2)
    root = edge_y + height
    th = thickness * (0.7 + 0.3 * (t / 1.3) ** 2)
    sec = []
    for (ox, oz), yy in (((0, 0), edge), ((0, 0), np.full(n, root)), ((-1, -1), np.full(n, root)), ((-1, -1), edge)):
        sec.append(np.stack([ax + ox * th * nx, yy, az + oz * th * nz], axis=1))
    sec = np.stack(sec, axis=1)  # (n, 4, 3)
    pts = sec.reshape(-1, 3)
    faces = []
    for i in range(n - 1):
        for k in range(4):
            a, b = i * 4 + k, i * 4 + (k + 1) % 4
            c, d = a + 4, b + 4
            faces += [(a, b, d), (a, d, c)]
    faces += [(0, 2, 1), (0, 3, 2)]
    e = (n - 1) * 4
    faces += [(e, e + 1, e + 2), (e, e + 2, e + 3)]
    faces = np.array(faces, dtype=np.int64)
    if height < 0:
        faces = faces[:, ::-1]
    return pts, faces
