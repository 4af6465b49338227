"""Our head's motion onto ICT-FaceKit by the per-frame solve rather than the table (numpy only).

Our head is posed frame by frame; its displacements at the vertices paired
with ICT's face (``compare.pair_heads``) are the targets, and ICT's ARKit
shapes, brought into our frame, the basis. The solve then finds the weights
that reproduce our head's motion on ICT's own, correlated shapes, with
``mouthClose`` capped by ``jawOpen`` and left/right tied.
"""

from __future__ import annotations

import numpy as np

from ..flame.lbs_numpy import flame_forward
from .arkit import ARKIT_INDEX, ARKIT_NAMES
from .compare import Pairing, pair_heads
from .solve import SolveSettings, arkit_ties, solve_weights

SETTINGS = SolveSettings(symmetry=0.05, smooth=0.05, iterations=500)


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
