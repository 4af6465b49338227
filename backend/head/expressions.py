"""The default head's expression components as motions of the skin (numpy only, mm).

A component moves skin vertices in the skin's own parameters, so the skin
slides over the head field instead of leaving it:

- ``dq``: along the row parameter (mm up at the face, over the crown below it),
- ``dt``: sideways along the row circle (mm, + toward +X across the front),
- ``dlift``: out along the ray (mm, bulges and lip rolls).

The vertices are then cast again (``skin.skin_points``) and the lid rims and
lip rolls rebuilt (``HeadMesh.attach``); the displacement is the difference to
the rest mesh. Sided components are written for the left side (``s = +1``)
and mirrored by ``s = -1``.
"""

from dataclasses import dataclass

import numpy as np

from .components import EXPRESSION_NAMES
from .mesh import HeadMesh
from .skin import AXIS_Z, Slit, _side, eye_aperture, eye_t, mouth_coords, skin_points, smoothstep as sm


@dataclass
class Motion:
    dq: np.ndarray     # (S,)
    dt: np.ndarray     # (S,)
    dlift: np.ndarray  # (S,)


class Context:
    """Rest skin quantities the components are written in."""

    def __init__(self, mesh: HeadMesh, jaw_weight: np.ndarray):
        skin, anatomy = mesh.skin, mesh.anatomy
        self.mesh, self.skin, self.anatomy = mesh, skin, anatomy
        self.p = mesh.verts[: mesh.n_skin]                      # (S, 3) rest skin points
        self.n = len(self.p)
        self.mu, self.d = mouth_coords(skin, anatomy)
        self.upper = (self.d > 0) | ((self.d == 0) & ~skin.lower)
        self.inner = sm((1.0 - np.abs(self.mu)) / 0.3)          # 1 inside the mouth, 0 at the corners and out
        self.env = np.clip(1.0 - self.mu ** 2, 0.0, 1.0)        # lip envelope along the mouth
        self.corner = self.p[skin.grid[skin.mouth.row, skin.mouth.c1]]   # left mouth corner
        self.jaw = jaw_weight                                    # (S,) skin weight of the jaw joint
        self.zero = np.zeros(self.n)

    def blob(self, s, center, sigma, cutoff=2e-3):
        """Gaussian weight (S,) around a left-side centre, mirrored for s = -1."""
        q = (self.p * (s, 1, 1) - center) / np.asarray(sigma, dtype=float)
        w = np.exp(-0.5 * np.sum(q * q, axis=1))
        return np.where(w < cutoff, 0.0, w)

    def both(self, center, sigma):
        return self.blob(1, center, sigma) + self.blob(-1, center, sigma)

    def half(self, s):
        """Left (s=1) or right share of a lip motion; the two shares sum to 1 everywhere."""
        return sm((s * self.p[:, 0] + 8.0) / 16.0)

    def upper_lip(self, band=3.0):
        """Weight (S,) of the upper lip side of the mouth, continuous past the corners."""
        return np.maximum(sm(self.d / band), self.inner * self.upper)

    def lower_lip(self, band=3.0):
        return np.maximum(sm(-self.d / band), self.inner * ~self.upper)

    def lip_body(self, depth=8.0):
        """Weight (S,) of the lips (both), falling off away from the contact line."""
        return self.env ** 0.5 * np.exp(-(self.d / depth) ** 2)

    def motion(self, dq=None, dt=None, dlift=None):
        z = self.zero
        return Motion(z if dq is None else dq, z if dt is None else dt, z if dlift is None else dlift)


def _lid(ctx: Context, slit: Slit, upper_amount, lower_amount):
    """dq (S,) moving one eye's upper and lower lids by amounts (functions of t, mm at the margin)."""
    skin = ctx.skin
    t = eye_t(skin.theta, slit, skin.thetas)
    inside = (t > 0) & (t < 1)
    side = _side(skin, slit)
    dist = np.abs(skin.q_grid - skin.rows[slit.row])
    taper = sm((40.0 - dist) / 15.0)
    up, down = eye_aperture(t, ctx.anatomy)
    dq = np.where(side > 0, upper_amount(up, down) * np.exp(-dist / 7.5), lower_amount(up, down) * np.exp(-dist / 6.5))
    return np.where(inside, dq * taper, 0.0)


def _eye(ctx, s):
    return ctx.skin.eyes[0 if s > 0 else 1]


def blink(ctx, s):
    # Both margins meet a quarter of the lower aperture below the corner line: exactly closed.
    return ctx.motion(dq=_lid(ctx, _eye(ctx, s), lambda up, down: -(up + 0.25 * down), lambda up, down: 0.75 * down))


def squint(ctx, s):
    dq = _lid(ctx, _eye(ctx, s), lambda up, down: -0.22 * up, lambda up, down: 0.45 * down)
    cheek = ctx.blob(s, (33, -4, 66), (12, 7, 20))
    return ctx.motion(dq=dq + 1.5 * cheek, dlift=0.8 * cheek)


def eye_wide(ctx, s):
    return ctx.motion(dq=_lid(ctx, _eye(ctx, s), lambda up, down: 0.55 * up + 0.4, lambda up, down: -0.12 * down))


def _above_lid(ctx):
    return sm((ctx.p[:, 1] - ctx.anatomy.eye_center[1] - 4.0) / 9.0)


def brow_inner_raise(ctx, s):
    w = ctx.blob(s, (17, 31, 80), (9, 13, 30)) * (0.25 + 0.75 * _above_lid(ctx))
    return ctx.motion(dq=6.5 * w)


def brow_outer_raise(ctx, s):
    w = ctx.blob(s, (40, 30, 66), (11, 13, 30)) * (0.25 + 0.75 * _above_lid(ctx))
    return ctx.motion(dq=5.5 * w)


def brow_lower(ctx, s):
    w = ctx.blob(s, (22, 29, 78), (15, 10, 30)) * (0.3 + 0.7 * _above_lid(ctx))
    inner = ctx.blob(s, (14, 27, 82), (7, 8, 20))
    return ctx.motion(dq=-4.5 * w, dt=-s * 3.0 * w, dlift=1.2 * inner)


def cheek_raise(ctx, s):
    w = ctx.blob(s, (37, -16, 62), (14, 11, 30))
    lid = _lid(ctx, _eye(ctx, s), lambda up, down: 0.0 * up, lambda up, down: 0.25 * down)
    return ctx.motion(dq=4.5 * w + lid, dlift=1.8 * w)


def cheek_puff(ctx, s):
    w = ctx.both((34, -38, 55), (15, 15, 30)) * (1.0 - 0.8 * ctx.lip_body(6.0))
    return ctx.motion(dlift=7.0 * w)


def cheek_suck(ctx, s):
    w = ctx.both((38, -34, 50), (12, 13, 25))
    return ctx.motion(dlift=-4.0 * w)


def nose_wrinkle(ctx, s):
    w = ctx.blob(s, (12, -6, 92), (7, 9, 20))
    brow = ctx.blob(s, (14, 26, 82), (8, 7, 20))
    return ctx.motion(dq=3.0 * w - 1.5 * brow, dlift=0.8 * w)


def nostril_flare(ctx, s):
    w = ctx.blob(1, (12, -17, 94), (6, 6, 10)) + ctx.blob(-1, (12, -17, 94), (6, 6, 10))
    return ctx.motion(dt=np.sign(ctx.p[:, 0]) * 2.0 * w)


def _corner(ctx, s, sigma=(13, 11, 25)):
    return ctx.blob(s, ctx.corner, sigma)


def smile(ctx, s):
    w = _corner(ctx, s)
    cheek = ctx.blob(s, (38, -22, 58), (12, 12, 30))
    return ctx.motion(dq=9.0 * w + 2.5 * cheek, dt=s * 5.0 * w, dlift=-1.0 * w + 2.5 * cheek)


def lip_corner_depress(ctx, s):
    w = _corner(ctx, s, (12, 12, 25))
    return ctx.motion(dq=-6.5 * w, dt=s * 1.0 * w)


def dimple(ctx, s):
    w = _corner(ctx, s, (11, 10, 25))
    return ctx.motion(dt=s * 6.0 * w, dlift=-1.5 * w)


def lip_stretch(ctx, s):
    w = _corner(ctx, s, (13, 12, 25))
    return ctx.motion(dq=-3.0 * w, dt=s * 5.5 * w)


def upper_lip_raise(ctx, s):
    w = ctx.blob(s, (11, -36, 95), (11, 9, 30)) * ctx.upper_lip()
    return ctx.motion(dq=4.0 * w, dlift=0.6 * w)


def lower_lip_depress(ctx, s):
    w = ctx.blob(s, (11, -54, 92), (11, 10, 30)) * ctx.lower_lip()
    return ctx.motion(dq=-5.0 * w, dlift=0.5 * w)


def lip_press(ctx, s):
    half = ctx.half(s) * ctx.env
    up = half * ctx.upper_lip() * np.exp(-(np.maximum(ctx.d, 0) / 7.0) ** 2)
    lo = half * ctx.lower_lip() * np.exp(-(np.minimum(ctx.d, 0) / 8.0) ** 2)
    return ctx.motion(dq=-0.95 * up + 1.25 * lo, dlift=-0.8 * half * ctx.lip_body(5.0))


def lip_tighten(ctx, s):
    w = ctx.lip_body(5.0)
    corners = _corner(ctx, 1, (8, 8, 20)) - _corner(ctx, -1, (8, 8, 20))
    gap = ctx.env * (-0.25 * ctx.upper_lip() * np.exp(-(ctx.d / 6) ** 2) + 0.25 * ctx.lower_lip() * np.exp(-(ctx.d / 6) ** 2))
    return ctx.motion(dq=gap, dt=-1.5 * corners, dlift=-1.2 * w)


def _mouth_area(ctx, sigma=(26, 14, 40)):
    return ctx.blob(1, (0, ctx.anatomy.mouth_y, ctx.corner[2]), sigma)


def pucker(ctx, s):
    w = _mouth_area(ctx, (20, 11, 40))
    x = ctx.p[:, 0]
    inward = -np.clip(x / ctx.corner[0], -1.3, 1.3) * _mouth_area(ctx, (30, 12, 40))
    lips = ctx.lip_body(6.0)
    opening = ctx.env * (0.4 * ctx.upper_lip() - 0.4 * ctx.lower_lip()) * np.exp(-(ctx.d / 5) ** 2)
    return ctx.motion(dq=opening, dt=7.5 * inward, dlift=5.0 * w + 2.5 * lips)


def funnel(ctx, s):
    w = _mouth_area(ctx, (20, 13, 40))
    x = ctx.p[:, 0]
    inward = -np.clip(x / ctx.corner[0], -1.3, 1.3) * _mouth_area(ctx, (30, 12, 40))
    body = ctx.lip_body(7.0)
    dq = 2.2 * ctx.upper_lip() * body - 2.6 * ctx.lower_lip() * body
    return ctx.motion(dq=dq, dt=4.0 * inward, dlift=4.0 * w + 2.5 * body)


def _roll(ctx, upper, lift, dq):
    side = ctx.upper_lip() if upper else ctx.lower_lip()
    w = side * ctx.env ** 0.5 * np.exp(-((ctx.d - (2.5 if upper else -3.5)) / 4.5) ** 2)
    return ctx.motion(dq=dq * w, dlift=lift * w)


def upper_lip_roll_in(ctx, s):
    return _roll(ctx, True, -3.0, -0.8)


def lower_lip_roll_in(ctx, s):
    return _roll(ctx, False, -3.5, 1.0)


def upper_lip_roll_out(ctx, s):
    return _roll(ctx, True, 2.5, 1.0)


def lower_lip_roll_out(ctx, s):
    return _roll(ctx, False, 3.0, -1.5)


def chin_raise(ctx, s):
    chin = ctx.blob(1, (0, -68, 70), (18, 9, 25))
    lip = ctx.lower_lip() * ctx.blob(1, (0, -50, 90), (22, 8, 30))
    return ctx.motion(dq=4.0 * chin + 2.0 * lip, dlift=1.5 * chin + 1.5 * lip)


def mouth_side(ctx, s):
    return ctx.motion(dt=s * 5.0 * _mouth_area(ctx, (28, 16, 40)))


def lower_lip_tuck(ctx, s):
    w = ctx.lower_lip() * ctx.env ** 0.5 * np.exp(-((ctx.d + 3.5) / 5.0) ** 2)
    up = ctx.upper_lip() * ctx.env * np.exp(-(ctx.d / 4.0) ** 2)
    return ctx.motion(dq=4.5 * w + 0.8 * up, dlift=-5.5 * w)


def lips_part(ctx, s):
    up = ctx.env ** 0.5 * ctx.upper_lip() * np.exp(-(np.maximum(ctx.d, 0) / 6.0) ** 2)
    lo = ctx.env ** 0.5 * ctx.lower_lip() * np.exp(-(np.minimum(ctx.d, 0) / 7.0) ** 2)
    return ctx.motion(dq=1.5 * up - 2.5 * lo)


def jaw_open_lips_closed(ctx, s):
    # Sized to cancel about 0.08 rad of jaw at the lips: the lower lip rises, the upper lip comes down.
    lo = ctx.lower_lip() * ctx.env ** 0.5 * np.exp(-np.abs(np.minimum(ctx.d, 0)) / 14.0) * ctx.jaw
    up = ctx.upper_lip() * ctx.env ** 0.5 * np.exp(-(np.maximum(ctx.d, 0) / 6.0) ** 2)
    return ctx.motion(dq=7.5 * lo - 1.5 * up, dlift=1.0 * lo)


def jaw_open_lips_stretch(ctx, s):
    up = ctx.env ** 0.5 * ctx.upper_lip() * np.exp(-(np.maximum(ctx.d, 0) / 6.0) ** 2)
    lo = ctx.env ** 0.5 * ctx.lower_lip() * np.exp(-(np.minimum(ctx.d, 0) / 8.0) ** 2)
    return ctx.motion(dq=2.0 * up - 2.5 * lo, dlift=-1.0 * ctx.lip_body(5.0))


def jaw_forward(ctx, s):
    return ctx.motion(dlift=4.0 * ctx.jaw * sm((ctx.p[:, 2] - 10.0) / 30.0))


def jaw_clench(ctx, s):
    return ctx.motion(dlift=2.5 * ctx.both((52, -42, 12), (9, 14, 14)) - 0.5 * ctx.lip_body(5.0))


def chin_lower(ctx, s):
    w = ctx.blob(1, (0, -60, 80), (18, 8, 30)) * ctx.lower_lip()
    return ctx.motion(dq=-3.0 * w)


def mouth_vertical(ctx, s):
    return ctx.motion(dq=s * 4.0 * _mouth_area(ctx, (28, 16, 40)))


# name -> (function, side); side +1 left, -1 right, 0 none.
_TABLE = {}
for _base, _fn in (("blink", blink), ("squint", squint), ("eye_wide", eye_wide),
                   ("brow_inner_raise", brow_inner_raise), ("brow_outer_raise", brow_outer_raise),
                   ("brow_lower", brow_lower), ("cheek_raise", cheek_raise), ("nose_wrinkle", nose_wrinkle),
                   ("smile", smile), ("lip_corner_depress", lip_corner_depress), ("dimple", dimple),
                   ("lip_stretch", lip_stretch), ("upper_lip_raise", upper_lip_raise),
                   ("lower_lip_depress", lower_lip_depress), ("lip_press", lip_press)):
    _TABLE[_base + "_L"] = (_fn, 1)
    _TABLE[_base + "_R"] = (_fn, -1)
_TABLE.update({
    "cheek_puff": (cheek_puff, 0), "cheek_suck": (cheek_suck, 0), "nostril_flare": (nostril_flare, 0),
    "lip_tighten": (lip_tighten, 0), "pucker": (pucker, 0), "funnel": (funnel, 0),
    "upper_lip_roll_in": (upper_lip_roll_in, 0), "lower_lip_roll_in": (lower_lip_roll_in, 0),
    "upper_lip_roll_out": (upper_lip_roll_out, 0), "lower_lip_roll_out": (lower_lip_roll_out, 0),
    "chin_raise": (chin_raise, 0), "mouth_left": (mouth_side, 1), "mouth_right": (mouth_side, -1),
    "lower_lip_tuck": (lower_lip_tuck, 0), "lips_part": (lips_part, 0),
    "jaw_open_lips_closed": (jaw_open_lips_closed, 0), "jaw_open_lips_stretch": (jaw_open_lips_stretch, 0),
    "jaw_forward": (jaw_forward, 0), "jaw_clench": (jaw_clench, 0), "chin_lower": (chin_lower, 0),
    "mouth_up": (mouth_vertical, 1), "mouth_down": (mouth_vertical, -1),
})
missing = [n for n in EXPRESSION_NAMES if n not in _TABLE]
if missing:
    raise RuntimeError(f"expression components without a motion: {missing}")


def _normals(points, faces):
    """Area-weighted vertex normals (S, 3) of the skin, unit length."""
    a, b, c = points[faces[:, 0]], points[faces[:, 1]], points[faces[:, 2]]
    fn = np.cross(b - a, c - a)
    n = np.zeros_like(points)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _slide(m: Motion, theta, normal):
    """Displacements (S, 3) of a motion in the rest tangent plane (no recast), lift along the normal."""
    tangent = np.stack([np.cos(theta), np.zeros_like(theta), -np.sin(theta)], axis=1)
    v = m.dq[:, None] * np.array([0.0, 1.0, 0.0]) + m.dt[:, None] * tangent
    length = np.linalg.norm(v, axis=1, keepdims=True)
    v = v - np.sum(v * normal, axis=1, keepdims=True) * normal
    v *= length / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v + m.dlift[:, None] * normal


def expression_offsets(mesh: HeadMesh, jaw_weight: np.ndarray) -> np.ndarray:
    """Displacements (V, 3, len(EXPRESSION_NAMES)) in mm of every component at 1.0.

    Vertices are cast again at their moved parameters; where a ray grazes the
    head (under the nose and chin, in the eye socket) the new hit can jump to
    another surface, and there the motion slides in the rest tangent plane.
    """
    ctx = Context(mesh, jaw_weight)
    skin = mesh.skin
    base = ctx.p
    normal = _normals(base, skin.faces)
    normal *= np.sign(np.sum(normal * base * (1, 0, 1), axis=1, keepdims=True) + 1e-9)
    radius = np.hypot(base[:, 0], base[:, 2] - AXIS_Z)
    out = np.zeros((len(mesh.verts), 3, len(EXPRESSION_NAMES)))
    for k, name in enumerate(EXPRESSION_NAMES):
        fn, s = _TABLE[name]
        m = fn(ctx, s)
        theta = skin.theta + m.dt / np.maximum(radius, 1.0)
        pts = skin_points(skin, mesh.anatomy, theta=theta, q=skin.q + m.dq, lift=skin.lift + m.dlift, base=base)
        intended = np.sqrt(m.dq ** 2 + m.dt ** 2 + m.dlift ** 2)
        jump = np.linalg.norm(pts - base, axis=1) > 1.5 * intended + 0.3
        pts[jump] = base[jump] + _slide(m, skin.theta, normal)[jump]
        out[:, :, k] = mesh.attach(pts) - mesh.verts
        if name == "jaw_forward":
            out[mesh.teeth_lower, 2, k] += 4.0
    return out
