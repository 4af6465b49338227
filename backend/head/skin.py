"""The skin: one connected grid surface sampled from the head field (numpy only, mm).

Each skin vertex has a column angle ``theta`` around the head's vertical axis
(0 looks along +Z, positive toward +X) and a row parameter ``q``: below
``CAP_Y`` a row is a horizontal ray fan at height ``q``; above it the rays
tilt up from one point and close over the crown. A vertex lies where its ray
leaves the head field, plus an offset along the ray (``lift``) that carries
the lips and moves with the vertex.

The mouth and the eyes are slits along one grid row: the slit's vertices are
duplicated, the copies below the slit belong to the lower lip or lid. A warp
of ``q`` opens the slits (lid aperture, the small rest gap of the lips).
"""

from dataclasses import dataclass

import numpy as np

from .field import Anatomy, head_field

AXIS_Z = -10.0      # the vertical axis the ray fans start from
CAP_Y = 72.0        # rows above this height tilt up over the crown
CAP_LEN = 110.0     # q-length of the crown cap (about its arc length)
Q_BOTTOM = -118.0
N_COLS = 104        # columns around the head (even: mirror pairs i <-> N_COLS - i)
FRONT = 0.37        # column density in front is 1 / FRONT of the mean density


def column_angles(n_cols=N_COLS, front=FRONT):
    """Column angles, denser in the front, symmetric: theta[i] = -theta[n - i]."""
    s = -1.0 + 2.0 * np.arange(n_cols) / n_cols
    return np.pi * (front * s + (1.0 - front) * s ** 3)


def rays(theta, q):
    """Ray origins and unit directions (N, 3) for columns theta and rows q."""
    theta = np.asarray(theta, dtype=float)
    q = np.asarray(q, dtype=float)
    beta = np.clip((q - CAP_Y) / CAP_LEN, 0.0, 1.0) * (np.pi / 2)
    origin = np.stack([np.zeros_like(q), np.minimum(q, CAP_Y), np.full_like(q, AXIS_Z)], axis=1)
    direction = np.stack([np.sin(theta) * np.cos(beta), np.sin(beta), np.cos(theta) * np.cos(beta)], axis=1)
    return origin, direction


def cast(theta, q, anatomy: Anatomy, r_max=150.0, step=5.0):
    """Outermost points (N, 3) where the rays leave the head, and the ray directions."""
    origin, direction = rays(theta, q)
    n = len(origin)
    hi = np.full(n, r_max)
    lo = np.zeros(n)
    active = np.arange(n)
    while len(active):
        r = hi[active] - step
        inside = head_field(origin[active] + r[:, None] * direction[active], anatomy) < 0
        lo[active[inside]] = r[inside]
        hi[active[~inside]] = r[~inside]
        active = active[~inside & (r > step)]
    for _ in range(18):
        mid = 0.5 * (lo + hi)
        inside = head_field(origin + mid[:, None] * direction, anatomy) < 0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return origin + (0.5 * (lo + hi))[:, None] * direction, direction


def _row_spacing(q, anatomy: Anatomy):
    """Wanted distance between rows (mm of surface) at row parameter q."""
    ey, my = anatomy.eye_center[1], anatomy.mouth_y
    sp = np.full_like(q, 5.0)
    face = (q > -100) & (q < 55)
    sp[face] = 2.5
    sp[(q > ey - 13) & (q < ey + 14)] = 1.3
    sp[(q > my - 12) & (q < my + 11)] = 1.15
    # Smooth the steps so neighbouring rows change spacing gently.
    kernel = np.hanning(31)
    padded = np.pad(sp, 15, mode="edge")
    return np.convolve(padded, kernel / kernel.sum(), mode="valid")


def row_params(anatomy: Anatomy):
    """Row parameters q (bottom to top, the crown apex excluded) with the slit rows exact."""
    q_top = CAP_Y + CAP_LEN
    q = np.linspace(Q_BOTTOM, q_top, 700)
    probe = np.deg2rad([0, 15, 30, 50, 90, 130, 180])
    weight = np.array([3, 2, 2, 1.5, 1, 1, 1.0])
    ds = np.zeros(len(q) - 1)
    for th, w in zip(probe, weight):
        pts, _ = cast(np.full_like(q, th), q, anatomy)
        ds += w * _length_steps(pts)
    ds /= weight.sum()
    sp = _row_spacing(q, anatomy)
    count = np.concatenate([[0.0], np.cumsum(ds / (0.5 * (sp[1:] + sp[:-1])))])
    eye_q = anatomy.eye_center[1] - 1.0
    anchors = [Q_BOTTOM, anatomy.mouth_y, eye_q, q_top]
    rows = []
    for a, b in zip(anchors[:-1], anchors[1:]):
        ca, cb = np.interp([a, b], q, count)
        n = max(2, int(round(cb - ca)))
        rows.append(np.interp(np.linspace(ca, cb, n + 1)[:-1], count, q))
    rows = np.concatenate(rows)
    return rows, eye_q


def _length_steps(pts):
    return np.sqrt(np.sum(np.diff(pts, axis=0) ** 2, axis=1))


def smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass
class Slit:
    """A slit along grid row ``row`` between corner columns ``c0 < c1`` (inclusive)."""

    row: int
    c0: int
    c1: int

    def interior(self):
        return np.arange(self.c0 + 1, self.c1)


@dataclass
class Skin:
    theta: np.ndarray      # (S,) column angle of each skin vertex
    q_grid: np.ndarray     # (S,) row parameter before the slit warp
    q: np.ndarray          # (S,) row parameter at rest
    lift: np.ndarray       # (S,) offset along the ray (lips)
    col: np.ndarray        # (S,) column index, -1 for the apex
    row: np.ndarray        # (S,) row index
    lower: np.ndarray      # (S,) bool, the lower copy of a slit vertex
    faces: np.ndarray      # (F, 3)
    rows: np.ndarray       # (R,) row parameters
    thetas: np.ndarray     # (C,) column angles
    mouth: Slit
    eyes: tuple            # (left Slit, right Slit)
    grid: np.ndarray       # (R, C) vertex index of the upper/original copy
    grid_lower: np.ndarray  # (R, C) vertex index of the copy used below a slit row
    apex: int

    def loop(self, slit: Slit):
        """Closed vertex loop around a slit: upper edge c0..c1, then lower copies back."""
        upper = [self.grid[slit.row, c] for c in range(slit.c0, slit.c1 + 1)]
        lower = [self.grid_lower[slit.row, c] for c in range(slit.c1 - 1, slit.c0, -1)]
        return np.array(upper + lower)


def _corner_columns(rows_q, thetas, q_row, x_target, anatomy):
    """Column whose skin point at row q_row has |x| closest to x_target (left side)."""
    left = np.nonzero((thetas > 0) & (thetas < np.pi / 2))[0]
    pts, _ = cast(thetas[left], np.full(len(left), q_row), anatomy)
    return int(left[np.argmin(np.abs(pts[:, 0] - x_target))])


def mouth_coords(skin: Skin, anatomy: Anatomy):
    """Per skin vertex: mu (-1..1 between the corners), d (mm from the slit row, + up)."""
    theta_c = skin.thetas[skin.mouth.c1]
    mu = skin.theta / theta_c
    d = skin.q_grid - skin.rows[skin.mouth.row]
    return mu, d


def lip_lift(mu, d, upper):
    """Lip volume along the ray: upper and lower lip rolls that meet at the slit."""
    taper = np.clip(1.0 - mu * mu, 0.0, 1.0) ** 0.6
    up = 3.4 * np.exp(-((d - 3.0) / 4.0) ** 2)
    # The lower lip is scaled so both lips meet at the same depth on the slit.
    lo_scale = 3.4 * np.exp(-(3.0 / 4.0) ** 2) / np.exp(-(4.0 / 4.6) ** 2)
    lo = lo_scale * np.exp(-((d + 4.0) / 4.6) ** 2) - 1.4 * np.exp(-((d + 14.5) / 4.0) ** 2)
    return taper * np.where(upper, up, lo)


def eye_aperture(t, anatomy: Anatomy):
    """Upper and lower lid margin distance (mm) from the corner line, t in 0..1 inner->outer."""
    t = np.clip(t, 0.0, 1.0)
    s = np.sin(np.pi * t)
    up = anatomy.eye_open_up * s ** 0.75 * (1.0 + 0.18 * np.cos(np.pi * t))
    down = anatomy.eye_open_down * s ** 0.9 * (1.0 - 0.12 * np.cos(np.pi * t))
    return up, down


def eye_t(theta, slit: Slit, thetas):
    """Position 0 (inner corner) .. 1 (outer corner) along a left or right eye slit."""
    a, b = thetas[slit.c0], thetas[slit.c1]
    t = (theta - a) / (b - a)
    return t if abs(a) < abs(b) else 1.0 - t


def build_skin(anatomy: Anatomy) -> Skin:
    thetas = column_angles()
    rows, eye_q = row_params(anatomy)
    n_rows, n_cols = len(rows), len(thetas)
    mid = n_cols // 2  # theta = 0
    mouth_row = int(np.argmin(np.abs(rows - anatomy.mouth_y)))
    eye_row = int(np.argmin(np.abs(rows - eye_q)))

    k = _corner_columns(rows, thetas, rows[mouth_row], anatomy.mouth_half_width, anatomy) - mid
    mouth = Slit(mouth_row, mid - k, mid + k)
    ci = _corner_columns(rows, thetas, rows[eye_row], anatomy.eye_inner_x, anatomy)
    co = _corner_columns(rows, thetas, rows[eye_row], anatomy.eye_outer_x, anatomy)
    left_eye = Slit(eye_row, ci, co)
    right_eye = Slit(eye_row, n_cols - co, n_cols - ci)

    grid = np.arange(n_rows * n_cols).reshape(n_rows, n_cols)
    grid_lower = grid.copy()
    theta = list(np.tile(thetas, n_rows))
    q_grid = list(np.repeat(rows, n_cols))
    col = list(np.tile(np.arange(n_cols), n_rows))
    row = list(np.repeat(np.arange(n_rows), n_cols))
    lower = [False] * (n_rows * n_cols)
    for slit in (mouth, left_eye, right_eye):
        for c in slit.interior():
            grid_lower[slit.row, c] = len(theta)
            theta.append(thetas[c])
            q_grid.append(rows[slit.row])
            col.append(c)
            row.append(slit.row)
            lower.append(True)
    apex = len(theta)
    theta.append(0.0)
    q_grid.append(CAP_Y + CAP_LEN)
    col.append(-1)
    row.append(n_rows)
    lower.append(False)

    theta, q_grid = np.array(theta), np.array(q_grid)
    col, row, lower = np.array(col), np.array(row), np.array(lower)

    faces = []
    for j in range(n_rows - 1):
        top = grid_lower[j + 1] if (j + 1) in (mouth_row, eye_row) else grid[j + 1]
        for i in range(n_cols):
            i2 = (i + 1) % n_cols
            a, b, c, d = grid[j, i], grid[j, i2], top[i2], top[i]
            if i >= mid:
                faces += [(a, b, c), (a, c, d)]
            else:
                faces += [(a, b, d), (b, c, d)]
    for i in range(n_cols):
        faces.append((grid[n_rows - 1, i], grid[n_rows - 1, (i + 1) % n_cols], apex))
    faces = np.array(faces, dtype=np.int64)

    skin = Skin(theta=theta, q_grid=q_grid, q=q_grid.copy(), lift=np.zeros(len(theta)), col=col, row=row,
                lower=lower, faces=faces, rows=rows, thetas=thetas, mouth=mouth, eyes=(left_eye, right_eye),
                grid=grid, grid_lower=grid_lower, apex=apex)
    _open_slits(skin, anatomy)
    mu, d = mouth_coords(skin, anatomy)
    upper = (d > 0) | ((d == 0) & ~lower)
    skin.lift = lip_lift(mu, d, upper)
    return skin


def _side(skin: Skin, slit: Slit):
    """+1 for skin vertices on or above the slit row (upper copies), -1 below (lower copies)."""
    above = (skin.q_grid > skin.rows[slit.row]) | ((skin.row == slit.row) & ~skin.lower)
    return np.where(above, 1.0, -1.0)


def _open_slits(skin: Skin, anatomy: Anatomy):
    """Warp q: the eyes open to their rest aperture, the lips part by the rest gap."""
    q0 = skin.q_grid
    for slit in skin.eyes:
        t = eye_t(skin.theta, slit, skin.thetas)
        inside = (t > 0) & (t < 1)
        up, down = eye_aperture(t, anatomy)
        side = _side(skin, slit)
        dist = np.abs(q0 - skin.rows[slit.row])
        amount = np.where(side > 0, up * np.exp(-dist / 7.5), -down * np.exp(-dist / 6.5))
        skin.q = skin.q + np.where(inside, amount, 0.0)
    mu, d = mouth_coords(skin, anatomy)
    side = _side(skin, skin.mouth)
    half_gap = 0.5 * anatomy.lip_gap * np.clip(1.0 - mu * mu, 0.0, 1.0) * np.exp(-np.abs(d) / 3.0)
    skin.q = skin.q + side * half_gap


def skin_points(skin: Skin, anatomy: Anatomy, theta=None, q=None, lift=None, base=None):
    """Skin vertex positions (S, 3) mm for (possibly changed) parameters.

    With ``base`` (positions for the rest parameters), only vertices whose
    theta or q changed are cast again.
    """
    theta = skin.theta if theta is None else theta
    q = skin.q if q is None else q
    lift = skin.lift if lift is None else lift
    if base is None:
        pts, direction = cast(theta, q, anatomy)
    else:
        moved = (np.abs(theta - skin.theta) > 1e-12) | (np.abs(q - skin.q) > 1e-12)
        _, direction = rays(theta, q)
        pts = base - skin.lift[:, None] * rays(skin.theta, skin.q)[1]
        if moved.any():
            pts = pts.copy()
            pts[moved], _ = cast(theta[moved], q[moved], anatomy)
    return pts + lift[:, None] * direction
