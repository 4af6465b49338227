"""Which emotion does a motion carry? A nearest-signature classifier on the default head's components (numpy only).

Features are the mean activations over the clip of the head's expression
components that speech does not drive (no jaw, lip press, pucker, funnel,
lips part, lip tuck, symmetric dimple), left and right averaged, plus the
left/right asymmetry of smile and dimple (contempt is one-sided).

Signatures follow EMFACS (Friesen & Ekman 1983), the action units of each
prototype mapped to our components: AU1 brow_inner_raise, AU2
brow_outer_raise, AU4 brow_lower, AU5 eye_wide, AU6 cheek_raise, AU7 squint,
AU9 nose_wrinkle, AU10 upper_lip_raise, AU12 smile, AU14 dimple, AU15
lip_corner_depress, AU17 chin_raise, AU20 lip_stretch, AU23 lip_tighten.
Fear and surprise share AU1, AU2 and AU5; fear's AU4 and AU20 count against
surprise (negative weights). A clip scores ``features . s / |s|`` against each signature ``s``; neutral
scores the constant ``NEUTRAL_SCORE`` (low overall activation), and the
highest score wins.
"""

from __future__ import annotations

import numpy as np

from ..head.components import EXPRESSION_INDEX

# feature name -> components averaged into it
FEATURES: dict[str, tuple[str, ...]] = {
    name: (f"{name}_L", f"{name}_R")
    for name in ("brow_inner_raise", "brow_outer_raise", "brow_lower", "eye_wide", "squint", "cheek_raise", "nose_wrinkle",
                 "smile", "lip_corner_depress", "lip_stretch", "upper_lip_raise")
}
FEATURES.update({"lip_tighten": ("lip_tighten",), "nostril_flare": ("nostril_flare",), "chin_raise": ("chin_raise",),
                 "jaw_clench": ("jaw_clench",)})
ASYMMETRIC = ("smile", "dimple")  # features "<name>_asym" = |mean L - mean R|
FEATURE_NAMES = tuple(FEATURES) + tuple(f"{name}_asym" for name in ASYMMETRIC)

SIGNATURES: dict[str, dict[str, float]] = {
    "happy": {"smile": 1.0, "cheek_raise": 0.8},                                                  # AU6 + AU12
    "angry": {"brow_lower": 1.0, "lip_tighten": 0.6, "squint": 0.4, "nostril_flare": 0.3, "jaw_clench": 0.3},  # AU4 + 7 + 23
    "sad": {"brow_inner_raise": 1.0, "lip_corner_depress": 0.8, "brow_lower": 0.3, "chin_raise": 0.3},     # AU1 + 4 + 15 (+17)
    # surprise and fear share AU1 + 2 + 5; fear adds AU4 and AU20, so they count against surprise
    "surprised": {"brow_inner_raise": 0.8, "brow_outer_raise": 1.0, "eye_wide": 1.0, "brow_lower": -0.5, "lip_stretch": -0.5},
    "fear": {"brow_inner_raise": 0.8, "brow_outer_raise": 0.3, "brow_lower": 0.5, "eye_wide": 0.7, "lip_stretch": 1.0},
    "disgusted": {"nose_wrinkle": 1.0, "upper_lip_raise": 0.8, "brow_lower": 0.3},               # AU9 + 10 (+4)
    "contempt": {"smile_asym": 1.0, "dimple_asym": 1.0},                                         # unilateral AU12 + AU14
}
NEUTRAL = "neutral"
NEUTRAL_SCORE = 0.16  # below this on every signature is "low overall activation" (teacher: neutral <= 0.14, slight emotions >= 0.178)
EMOTIONS = (NEUTRAL,) + tuple(SIGNATURES)


def features(expression: np.ndarray) -> np.ndarray:
    """(len(FEATURE_NAMES),) features of an (T, E) expression track of the default head."""
    expression = np.asarray(expression, dtype=np.float64)
    if expression.ndim != 2 or expression.shape[0] == 0:
        raise ValueError(f"expression must be a non-empty (T, E) array, got shape {expression.shape}")
    if expression.shape[1] <= max(EXPRESSION_INDEX.values()):
        raise ValueError(f"expression has {expression.shape[1]} components; the default head has {len(EXPRESSION_INDEX)}")
    mean = expression.mean(axis=0)  # (E,)
    out = [np.mean([mean[EXPRESSION_INDEX[c]] for c in comps]) for comps in FEATURES.values()]
    out += [abs(mean[EXPRESSION_INDEX[f"{name}_L"]] - mean[EXPRESSION_INDEX[f"{name}_R"]]) for name in ASYMMETRIC]
    return np.array(out)


def _signature_matrix() -> np.ndarray:
    """(len(SIGNATURES), len(FEATURE_NAMES)) unit signatures."""
    rows = np.zeros((len(SIGNATURES), len(FEATURE_NAMES)))
    for i, sig in enumerate(SIGNATURES.values()):
        for name, weight in sig.items():
            rows[i, FEATURE_NAMES.index(name)] = weight
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def scores(expression: np.ndarray) -> dict[str, float]:
    """Score of each emotion (neutral: the constant ``NEUTRAL_SCORE``)."""
    projection = _signature_matrix() @ features(expression)
    return {NEUTRAL: NEUTRAL_SCORE, **{e: float(s) for e, s in zip(SIGNATURES, projection)}}


def classify(expression: np.ndarray) -> str:
    """The emotion with the highest score."""
    s = scores(expression)
    return max(s, key=s.get)
