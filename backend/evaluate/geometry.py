"""Head geometry for the metrics: lip and upper-face vertices of a motion, and the inner-lip gap (numpy only).

Vertices are in millimetres in the head's own frame: global and neck pose
are set to zero (a turn of the head is not a lip error), jaw and eyes are kept.

Only the vertices the metrics read are skinned. FLAME's rest joints are a
linear function of the shaped vertices, J = R (T + E e), so five proxy
vertices with template R T and expression basis R E stand in for the whole
mesh under the joint regressor; the result is exact, not an approximation.

Lip gap: the head's ``upper_lip`` and ``lower_lip`` groups are the inner lip
contour, paired index by index (the upper vertex above its lower partner).
The gap of a frame is the mean, over the pairs in the central third of the
mouth width, of the upper vertex's height above its partner (negative when
the lips press into each other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..flame.lbs_numpy import flame_forward
from ..flame.pickle_io import FlameModel
from ..motion import Motion
from ..errors import AviTalkError

# Lips count as closed at or below this gap on the default head (adult size; rest gap 1.6 mm, head/field.py).
CLOSED_GAP_MM = 1.0
GROUPS = ("upper_lip", "lower_lip", "upper_face")


class GeometryError(AviTalkError):
    """The head lacks what the metrics need (vertex groups, paired lips)."""


@dataclass
class HeadGeometry:
    model: FlameModel                # reduced: the metric vertices, then 5 joint proxies
    groups: dict[str, np.ndarray]    # group -> indices into the reduced model's vertices
    rest: np.ndarray                 # (V, 3) mm, neutral rest positions of the metric vertices
    central: np.ndarray              # indices into the lip pairs used for the gap
    mouth_width_mm: float
    closed_gap_mm: float             # CLOSED_GAP_MM, scaled by mouth width for other heads

    @classmethod
    def from_model(cls, model: FlameModel, reference_width_mm: float | None = None) -> "HeadGeometry":
        """Geometry of ``model``; with ``reference_width_mm`` (the default head's mouth width), the
        closed threshold scales by this head's mouth width over it."""
        raw_groups = model.extras.get("avitalk_vertex_groups")
        if not isinstance(raw_groups, dict):
            raise GeometryError("the head has no 'avitalk_vertex_groups'; lip metrics need the default head's groups")
        missing = [g for g in GROUPS if g not in raw_groups]
        if missing:
            raise GeometryError(f"the head lacks vertex groups {missing}")
        idx = {g: np.asarray(raw_groups[g], dtype=np.int64).ravel() for g in GROUPS}
        for g, ids in idx.items():
            if len(ids) == 0 or ids.min() < 0 or ids.max() >= model.n_verts:
                raise GeometryError(f"vertex group '{g}' is empty or has indices outside the mesh")
        if len(idx["upper_lip"]) != len(idx["lower_lip"]):
            raise GeometryError(f"upper_lip and lower_lip must pair up, got {len(idx['upper_lip'])} and {len(idx['lower_lip'])} vertices")

        keep = np.unique(np.concatenate(list(idx.values())))
        where = {v: i for i, v in enumerate(keep)}
        groups = {g: np.array([where[v] for v in ids]) for g, ids in idx.items()}
        reduced = _reduce(model, keep)
        rest = flame_forward(reduced)[0][0, : len(keep)] * 1000.0  # (V, 3) mm

        x = rest[groups["upper_lip"], 0]
        width = float(x.max() - x.min())
        if width <= 0:
            raise GeometryError("the lip contour has no width")
        centre = (x.max() + x.min()) / 2
        central = np.flatnonzero(np.abs(x - centre) <= width / 6)  # the central third
        scale = width / reference_width_mm if reference_width_mm else 1.0
        return cls(reduced, groups, rest, central, width, CLOSED_GAP_MM * scale)

    def vertices(self, motion: Motion) -> np.ndarray:
        """(T, V, 3) mm positions of the metric vertices, head pose (global, neck) removed."""
        n_expr = min(motion.n_expression, self.model.n_expr)
        verts, _ = flame_forward(self.model, expression=motion.expression[:, :n_expr], jaw_pose=motion.jaw_pose,
                                 eye_pose=motion.eye_pose)
        return verts[:, : len(self.rest)] * 1000.0

    def group(self, vertices: np.ndarray, name: str) -> np.ndarray:
        """(T, n, 3) vertices of group ``name`` (lips: ``lips`` = upper then lower)."""
        if name == "lips":
            return vertices[:, np.concatenate([self.groups["upper_lip"], self.groups["lower_lip"]])]
        return vertices[:, self.groups[name]]

    def lip_gap(self, vertices: np.ndarray) -> np.ndarray:
        """(T,) inner-lip gap in mm: mean height of the upper lip above the lower over the central third."""
        up = vertices[:, self.groups["upper_lip"][self.central], 1]
        low = vertices[:, self.groups["lower_lip"][self.central], 1]
        return (up - low).mean(axis=1)


def _reduce(model: FlameModel, keep: np.ndarray) -> FlameModel:
    """The vertices ``keep`` plus five proxies that carry the joint regressor exactly."""
    reg = model.J_regressor  # (5, V)
    proxy = lambda dirs: np.einsum("jv,vkl->jkl", reg, dirs)  # noqa: E731  (5, 3, L)
    n = len(keep)
    j_reg = np.zeros((5, n + 5))
    j_reg[:, n:] = np.eye(5)
    weights = np.zeros((n + 5, 5))
    weights[:n] = model.weights[keep]
    weights[n:, 0] = 1.0
    return FlameModel(
        v_template=np.concatenate([model.v_template[keep], reg @ model.v_template]),
        faces=np.zeros((0, 3), dtype=np.int64),
        shapedirs=np.zeros((n + 5, 3, 0)),
        exprdirs=np.concatenate([model.exprdirs[keep], proxy(model.exprdirs)]),
        posedirs=np.concatenate([model.posedirs[keep], np.zeros((5, 3, model.posedirs.shape[2]))]),
        J_regressor=j_reg,
        weights=weights,
        parents=model.parents,
        extras={},
    )


_DEFAULT: HeadGeometry | None = None


def default_geometry() -> HeadGeometry:
    """Geometry of the default head (built and cached by ``backend.head``)."""
    global _DEFAULT
    if _DEFAULT is None:
        from ..flame.pickle_io import load_flame
        from ..head import default_head_path

        _DEFAULT = HeadGeometry.from_model(load_flame(default_head_path()))
    return _DEFAULT
