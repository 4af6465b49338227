"""Our head's motion onto ICT-FaceKit by the per-frame solve rather than the table (numpy only).

Our head is posed frame by frame; its displacements at the vertices paired
with ICT's face (``compare.pair_heads``) are the targets, and ICT's ARKit
shapes, brought into our frame, the basis. The solve then finds the weights
that reproduce our head's motion on ICT's own, correlated shapes, with
``mouthClose`` capped by ``jawOpen`` and left/right tied.

``solve_on_ict`` poses our head exactly and needs both heads' meshes.
``SolveMap`` is what Blender keeps on the imported ICT head instead: the
same problem reduced once, at import, to a few small matrices (the QR of
ICT's basis and our channels' fields projected on it), our head's motion
taken as linear in its channels (the jaw's opening at 0.2 rad). Its jaw bone
drives jawOpen, jawLeft and jawRight, and one bone cannot turn left and right
at once, so the sideways turn is not solved: it goes to the bone as the
motion has it (as with the table), and the eyes to the eye bones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AviTalkError
from ..flame.lbs_numpy import flame_forward
from .arkit import ARKIT_INDEX, ARKIT_NAMES
from .compare import Pairing, pair_heads
from .solve import SolveSettings, arkit_ties, solve_weights

SETTINGS = SolveSettings(symmetry=0.05, iterations=500)   # no temporal tie: it held short closures open


def our_displacements(model, expression, jaw_pose, eye_pose, vertices) -> np.ndarray:
    """(T, 3n) displacements of our head's ``vertices`` under the motion arrays, metres."""
    expression = np.asarray(expression, dtype=np.float64)
    full = np.zeros((len(expression), model.n_expr))
    full[:, : expression.shape[1]] = expression
    posed = flame_forward(model, expression=full, jaw_pose=jaw_pose, eye_pose=eye_pose)[0]     # (T, V, 3)
    rest = flame_forward(model)[0][0]
    return (posed[:, vertices] - rest[vertices]).reshape(len(expression), -1)


def solve_on_ict(model, head, expression, jaw_pose, eye_pose, pairing: Pairing | None = None,
                 settings: SolveSettings = SETTINGS) -> np.ndarray:
    """(T, 52) ARKit weights in ``ARKIT_NAMES`` order that reproduce our head's motion on ICT's shapes."""
    pairing = pairing or pair_heads(model, head)
    keys = [n for n in ARKIT_NAMES if n in head.deltas]
    basis = np.stack([pairing.ict_field(head.deltas[k]) for k in keys], axis=1)                # (3P, K)
    targets = our_displacements(model, expression, jaw_pose, eye_pose, pairing.ours)            # (T, 3P)
    pairs, capped = arkit_ties(keys)
    w = solve_weights(basis, targets, pairs=pairs, capped=capped, settings=settings)
    out = np.zeros((len(targets), len(ARKIT_NAMES)))
    out[:, [ARKIT_INDEX[k] for k in keys]] = w
    return out


SOLVE_MAP_VERSION = 1
JAW_OPEN_REF = 0.2        # rad: our jaw's opening field is taken at this angle
UNSOLVED = ("jawLeft", "jawRight")   # the jaw bone's sideways turn; the eyeLook keys are not solved either


class SolveMapError(AviTalkError):
    """A stored solve map of another version, or unreadable."""


@dataclass
class SolveMap:
    keys: tuple              # the rig's ARKit names, the basis' columns
    channels: tuple          # our channels: expression names, then "jaw_open"
    basis_r: np.ndarray      # (K, K): R of the QR of the rig's basis over the paired vertices
    fields_q: np.ndarray     # (C, K): our channels' fields projected on Q
    jaw_open_angle: float    # rad: the rig's jaw turn at full jawOpen (its jaw bone's scale)

    def inputs(self, expression, jaw_pose) -> np.ndarray:
        """(T, C): our expression coefficients (missing ones 0) and the jaw's opening in its field's unit."""
        expression = np.asarray(expression, dtype=np.float64)
        n_ours = len(self.channels) - 1
        out = np.zeros((len(expression), len(self.channels)))
        k = min(n_ours, expression.shape[1])
        out[:, :k] = expression[:, :k]
        out[:, -1] = np.asarray(jaw_pose, dtype=np.float64)[:, 0] / JAW_OPEN_REF
        return out

    def weights(self, expression, jaw_pose, settings: SolveSettings = SETTINGS) -> np.ndarray:
        """(T, 52) ARKit weights in ``ARKIT_NAMES`` order (keys the rig lacks, and those not solved, stay 0)."""
        pairs, capped = arkit_ties(self.keys)
        w = solve_weights(self.basis_r, self.inputs(expression, jaw_pose) @ self.fields_q, pairs=pairs,
                          capped=capped, settings=settings)
        out = np.zeros((len(w), len(ARKIT_NAMES)))
        out[:, [ARKIT_INDEX[k] for k in self.keys]] = w
        return out

    def jaw_opening(self, weights: np.ndarray) -> np.ndarray:
        """(T,) rad: the rig's jaw bone's opening for solved weights (the inverse of its jawOpen driver)."""
        return weights[:, ARKIT_INDEX["jawOpen"]] * self.jaw_open_angle

    def as_dict(self) -> dict:
        return {"version": SOLVE_MAP_VERSION, "keys": list(self.keys), "channels": list(self.channels),
                "basis_r": self.basis_r.ravel().tolist(), "fields_q": self.fields_q.ravel().tolist(),
                "jaw_open_angle": float(self.jaw_open_angle)}

    @classmethod
    def from_dict(cls, data) -> "SolveMap":
        try:
            if int(data["version"]) != SOLVE_MAP_VERSION:
                raise SolveMapError(f"a version {int(data['version'])} solve map, not {SOLVE_MAP_VERSION}: "
                                    "import the head again")
            keys, channels = tuple(str(k) for k in data["keys"]), tuple(str(c) for c in data["channels"])
            k, c = len(keys), len(channels)
            return cls(keys, channels, np.asarray(data["basis_r"], dtype=np.float64).reshape(k, k),
                       np.asarray(data["fields_q"], dtype=np.float64).reshape(c, k), float(data["jaw_open_angle"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SolveMapError(f"the stored solve map is unreadable ({exc}): import the head again") from None


def solve_map_for_ict(model, head, pairing: Pairing | None = None) -> SolveMap:
    """The reduced per-frame problem for ICT's head (its ARKit shapes but the eyeLook ones) and our channels."""
    pairing = pairing or pair_heads(model, head)
    keys = tuple(n for n in ARKIT_NAMES if n in head.deltas and not n.startswith("eyeLook") and n not in UNSOLVED)
    basis = np.stack([pairing.ict_field(head.deltas[k]) for k in keys], axis=1)                # (3P, K)
    names = [n for n in model.extras["avitalk_expression_names"] if not str(n).startswith("reserved")]
    rest = flame_forward(model)[0][0]
    fields = [model.exprdirs[pairing.ours, :, i].ravel() for i in range(len(names))]
    posed = flame_forward(model, jaw_pose=np.array([JAW_OPEN_REF, 0.0, 0.0]))[0][0]
    fields.append((posed - rest)[pairing.ours].ravel())
    q, r = np.linalg.qr(basis)                                                                  # (3P, K), (K, K)
    return SolveMap(keys, tuple(names) + ("jaw_open",), r, np.stack(fields) @ q,
                    float(head.jaw_open_angle))
