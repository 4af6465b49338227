"""Check the ARKit table by geometry: our head's displacement fields against ICT-FaceKit's (numpy only).

ICT-FaceKit's head is aligned to ours by the similarity transform that best
maps landmarks both heads define by the same geometric rule (eye centres,
mouth corners, nose tip, chin point). Each ICT face vertex is paired with the
nearest skin vertex of our head; an ARKit shape is then compared with each of
our channels (the 52 expression components and the jaw turned by the table's
full-weight angles) by the cosine of the two displacement fields over those
pairs, and by the least-squares gain that scales ours onto ICT's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..flame.lbs_numpy import flame_forward
from .arkit import ARKIT_NAMES, JAW_OPEN_RADIANS, JAW_SIDE_RADIANS
from .ict import IctHead, fit_sphere

MIDLINE = 1.5e-3      # m: vertices this close to x = 0 form the profile
PAIR_REACH = 6e-3     # m: an ICT vertex farther than this from our skin is left out of the comparison
SKIN_PARTS = ("skin", "lips", "brows")


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R, translation t with dst ~ s * src @ R.T + t (Umeyama)."""
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - cs, dst - cd
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ d @ vt
    s = float(np.trace(np.diag(sig) @ d) / np.mean(np.sum(a * a, axis=1)))
    return s, r, cd - s * r @ cs


def profile_landmarks(verts: np.ndarray, mouth_corners: np.ndarray, eye_centers: np.ndarray) -> np.ndarray:
    """(7, 3): left eye, right eye, left and right mouth corner, nose tip, chin point.

    Nose tip: the most forward midline vertex between eyes and mouth. Chin point:
    the midline vertex below the mouth farthest along (0, -1, 1), where the
    profile turns from the chin's front to its underside.
    """
    mouth_y = mouth_corners[:, 1].mean()
    eye_y = eye_centers[:, 1].mean()
    mid = verts[np.abs(verts[:, 0]) < MIDLINE]
    band = mid[(mid[:, 1] < eye_y) & (mid[:, 1] > mouth_y)]
    nose = band[np.argmax(band[:, 2])]
    span = eye_y - mouth_y
    below = mid[(mid[:, 1] < mouth_y) & (mid[:, 1] > mouth_y - 1.5 * span) & (mid[:, 2] > nose[2] - span)]
    chin = below[np.argmax(below[:, 2] - below[:, 1])]
    return np.vstack([eye_centers, mouth_corners, nose, chin])


def head_landmarks(model) -> tuple[np.ndarray, np.ndarray]:
    """Our head's landmarks (7, 3) and its skin vertex indices, from the FLAME file's extras."""
    groups = model.extras["avitalk_vertex_groups"]
    parts = list(model.extras["avitalk_part_names"])
    keep = np.isin(model.extras["avitalk_face_parts"], [parts.index(p) for p in SKIN_PARTS])
    skin = np.unique(model.faces[keep])
    v = model.v_template
    eyes = np.array([fit_sphere(v[groups["left_eye"]]), fit_sphere(v[groups["right_eye"]])])
    lip = groups["upper_lip"]
    corners = v[[lip[0], lip[-1]]]
    corners = corners[np.argsort(-corners[:, 0])]                             # left (+X) first
    return profile_landmarks(v[skin], corners, eyes), skin


def ict_landmarks(head: IctHead) -> np.ndarray:
    """ICT's landmarks (7, 3) by the same rules; mouth corners are Multi-PIE points 54 and 48."""
    face = head.vertices[head.part("face")]
    corners = head.vertices[head.landmarks[[54, 48]]]
    return profile_landmarks(face, corners, head.eye_centers)


def nearest(points: np.ndarray, targets: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Index into ``targets`` of each point's nearest target, and the distance."""
    idx = np.empty(len(points), dtype=np.int64)
    dist = np.empty(len(points))
    t2 = np.sum(targets * targets, axis=1)
    for i in range(0, len(points), chunk):
        p = points[i: i + chunk]
        d2 = t2[None, :] - 2.0 * p @ targets.T + np.sum(p * p, axis=1)[:, None]   # (chunk, N)
        j = np.argmin(d2, axis=1)
        idx[i: i + chunk] = j
        dist[i: i + chunk] = np.sqrt(np.maximum(d2[np.arange(len(p)), j], 0.0))
    return idx, dist


def our_fields(model) -> dict:
    """Our channels' displacement fields (V, 3) in metres: the expression components and the jaw."""
    names = [n for n in model.extras["avitalk_expression_names"] if not n.startswith("reserved")]
    fields = {n: model.exprdirs[:, :, i] for i, n in enumerate(names)}
    rest = flame_forward(model)[0][0]
    for name, pose in (("jaw_open", (JAW_OPEN_RADIANS, 0, 0)), ("jaw_left", (0, JAW_SIDE_RADIANS, 0)),
                       ("jaw_right", (0, -JAW_SIDE_RADIANS, 0))):
        fields[name] = flame_forward(model, jaw_pose=np.array(pose, dtype=float))[0][0] - rest
    return fields


@dataclass
class Match:
    arkit: str
    best: str           # our channel whose field matches best
    best_cosine: float
    cosines: dict       # our channel -> cosine
    gains: dict         # our channel -> ARKit weight that one unit of it corresponds to


@dataclass
class Pairing:
    scale: float
    rotation: np.ndarray   # (3, 3): ICT -> ours is scale * x @ rotation.T + shift
    shift: np.ndarray      # (3,)
    ict: np.ndarray        # (P,) ICT face vertices that have a partner
    ours: np.ndarray       # (P,) their nearest skin vertices on our head
    info: dict

    def ict_field(self, delta: np.ndarray) -> np.ndarray:
        """An ICT displacement field (V, 3) at the paired vertices, in our frame, flattened (3P,)."""
        return (self.scale * delta[self.ict] @ self.rotation.T).ravel()


def pair_heads(model, head: IctHead) -> Pairing:
    """Align ICT to our head by the landmarks and pair each ICT face vertex with our nearest skin vertex."""
    ours, skin = head_landmarks(model)
    theirs = ict_landmarks(head)
    s, r, t = similarity(theirs, ours)
    residual = np.linalg.norm(s * theirs @ r.T + t - ours, axis=1)
    face = head.part("face")
    placed = s * head.vertices[face] @ r.T + t
    pair, dist = nearest(placed, model.v_template[skin])
    use = dist < PAIR_REACH
    info = {"scale": s, "landmark_residual_mm": residual * 1000.0, "pairs": int(use.sum()), "face_vertices": len(face)}
    return Pairing(s, r, t, face[use], skin[pair[use]], info)


def compare(model, head: IctHead) -> tuple[list[Match], Pairing]:
    """Each ICT shape against each of our channels, with the pairing it used."""
    pairing = pair_heads(model, head)
    ours_flat = {n: f[pairing.ours].ravel() for n, f in our_fields(model).items()}
    matches = []
    for name in ARKIT_NAMES:
        if name not in head.deltas:
            continue
        d = pairing.ict_field(head.deltas[name])
        cos, gain = {}, {}
        for ch, f in ours_flat.items():
            denom = np.linalg.norm(f) * np.linalg.norm(d)
            cos[ch] = float(f @ d / denom) if denom > 0 else 0.0
            gain[ch] = float(f @ d / (d @ d)) if d @ d > 0 else 0.0
        best = max(cos, key=cos.get)
        matches.append(Match(name, best, cos[best], cos, gain))
    return matches, pairing


def fit_on_arkit(model, head: IctHead, channels, pairing: Pairing | None = None) -> dict:
    """Our channels each as a non-negative mix of ICT's ARKit shapes: name -> ((ARKit name, weight), ...)
    sorted by weight, and the share of the field's energy the mix leaves unexplained."""
    from .solve import SolveSettings, solve_weights

    pairing = pairing or pair_heads(model, head)
    names = [n for n in ARKIT_NAMES if n in head.deltas]
    basis = np.stack([pairing.ict_field(head.deltas[n]) for n in names], axis=1)        # (3P, K)
    fields = our_fields(model)
    targets = np.stack([fields[c][pairing.ours].ravel() for c in channels])              # (C, 3P)
    w = solve_weights(basis, targets, 0.0, 1.0, settings=SolveSettings(ridge=1e-3, iterations=2000))
    out = {}
    for c, row, y in zip(channels, w, targets):
        order = np.argsort(-row)
        mix = tuple((names[i], float(row[i])) for i in order if row[i] > 1e-3)
        left = float(np.sum((basis @ row - y) ** 2) / max(np.sum(y * y), 1e-30))
        out[c] = (mix, left)
    return out


def table_residuals(model, head: IctHead, channels, pairing: Pairing | None = None) -> dict:
    """Share of each of our channels' field that the table's ARKit mix (at channel value 1) leaves unexplained."""
    from .arkit import TABLE

    pairing = pairing or pair_heads(model, head)
    fields = our_fields(model)
    out = {}
    for c in channels:
        y = fields[c][pairing.ours].ravel()
        mix = sum((g * pairing.ict_field(head.deltas[a]) for a, row in TABLE.items() if a in head.deltas
                   for ch, g in row if ch == c), np.zeros_like(y))
        out[c] = float(np.sum((mix - y) ** 2) / max(np.sum(y * y), 1e-30))
    return out


def report(model, folder) -> str:
    """The check's figures as Markdown: alignment, each ARKit row against ICT, the geometric rows' fits."""
    from .arkit import GEOMETRIC, TABLE, UNMAPPED
    from .ict import load_ict

    head = load_ict(folder)
    matches, pairing = compare(model, head)
    info = pairing.info
    lines = [f"Alignment: scale {info['scale']:.3f} (ICT to ours), landmark residuals "
             + ", ".join(f"{r:.1f}" for r in info["landmark_residual_mm"])
             + f" mm (eyes L R, mouth corners L R, nose tip, chin); {info['pairs']} of {info['face_vertices']} "
             f"ICT face vertices within {PAIR_REACH * 1000:.0f} mm of our skin.", "",
             "| ARKit | table row | cosine of its first channel | best of our channels (cosine) |",
             "|---|---|---|---|"]
    for m in matches:
        row = ", ".join(f"{c} x{g:g}" for c, g in TABLE[m.arkit])
        first = m.cosines.get(TABLE[m.arkit][0][0])
        first = "n/a" if first is None else f"{first:.2f}"
        lines.append(f"| {m.arkit} | {row} | {first} | {m.best} ({m.best_cosine:.2f}) |")
    geometric = list(GEOMETRIC) + list(UNMAPPED) + ["jaw_open_lips_closed", "lip_press_L"]
    fits = fit_on_arkit(model, head, geometric, pairing)
    table_left = table_residuals(model, head, geometric, pairing)
    lines += ["", "| our channel | non-negative fit on ICT's shapes (weights > 0.05) | left unexplained: fit | "
              "left unexplained: table |", "|---|---|---|---|"]
    for c in geometric:
        mix, left = fits[c]
        lines.append(f"| {c} | " + ", ".join(f"{n} {w:.2f}" for n, w in mix if w > 0.05)
                     + f" | {left:.0%} | {table_left[c]:.0%} |")
    return "\n".join(lines)


if __name__ == "__main__":   # python -m backend.retarget.compare ICT_FACEXMODEL_FOLDER
    import sys

    from ..flame.pickle_io import load_flame
    from ..head import default_head_path

    print(report(load_flame(default_head_path()), sys.argv[1]))
