"""The procedural teacher: phones + timings + emotion + prosody -> FLAME motion for the default head.

Four layers are summed into one ``Motion``:

1. Visemes with coarticulation (Cohen-Massaro dominance blending): each phone
   has a target over the articulation channels (jaw angle and lip components)
   and a dominance that is flat inside the phone and falls off exponentially
   outside. Bilabials (P B M) dominate everything, so their closure is never
   blended away; each bilabial and each vowel owns at least one frame.
2. The emotion's expression at its intensity, with an onset ramp, slow drift
   and slight left/right asymmetry; its mouth channels give way at bilabials.
3. Blinks (Poisson), gaze saccades and fixations.
4. Head motion: slow sway from smoothed noise, nods on stressed vowels
   (energy peaks), brow raises on pitch peaks, a per-emotion posture.

Axes: FLAME, Y up, face along +Z. A positive rotation about +X opens the jaw,
tips the head down (nod) and turns the eyes down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..phones import VOWELS, Segment
from ..refine.blinks import BLINKS_PER_MINUTE, add_blinks
from ..head.components import EXPRESSION_INDEX, N_EXPRESSION
from ..head.visemes import LIP_OPENING, MOUTH, articulation
from ..motion import Motion
from .prosody import Contours, contours
from .speech import INTENSITY_SCALE, check_style

FPS = 25.0

# ---------------------------------------------------------------- emotions

EMOTION_ACTIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"smile_L": 0.8, "smile_R": 0.8, "cheek_raise_L": 0.6, "cheek_raise_R": 0.6, "squint_L": 0.35, "squint_R": 0.35,
              "brow_outer_raise_L": 0.15, "brow_outer_raise_R": 0.15},
    "angry": {"brow_lower_L": 0.9, "brow_lower_R": 0.9, "lip_press_L": 0.3, "lip_press_R": 0.3, "nose_wrinkle_L": 0.3,
              "nose_wrinkle_R": 0.3, "squint_L": 0.3, "squint_R": 0.3, "lip_tighten": 0.4, "nostril_flare": 0.4, "jaw_clench": 0.3},
    "sad": {"brow_inner_raise_L": 0.8, "brow_inner_raise_R": 0.8, "lip_corner_depress_L": 0.6, "lip_corner_depress_R": 0.6,
            "brow_lower_L": 0.2, "brow_lower_R": 0.2, "chin_raise": 0.3, "squint_L": 0.15, "squint_R": 0.15},
    "surprised": {"brow_inner_raise_L": 0.8, "brow_inner_raise_R": 0.8, "brow_outer_raise_L": 0.9, "brow_outer_raise_R": 0.9,
                  "eye_wide_L": 0.8, "eye_wide_R": 0.8, "jaw_drop": 0.08},
    "fear": {"brow_inner_raise_L": 0.8, "brow_inner_raise_R": 0.8, "brow_outer_raise_L": 0.5, "brow_outer_raise_R": 0.5,
             "eye_wide_L": 0.7, "eye_wide_R": 0.7, "lip_stretch_L": 0.55, "lip_stretch_R": 0.55, "brow_lower_L": 0.2,
             "brow_lower_R": 0.2, "jaw_drop": 0.04},
    "disgusted": {"nose_wrinkle_L": 0.8, "nose_wrinkle_R": 0.8, "upper_lip_raise_L": 0.6, "upper_lip_raise_R": 0.6,
                  "brow_lower_L": 0.45, "brow_lower_R": 0.45, "squint_L": 0.3, "squint_R": 0.3, "lip_corner_depress_L": 0.2,
                  "lip_corner_depress_R": 0.2},
    "contempt": {"smile_L": 0.5, "dimple_L": 0.55, "lip_press_L": 0.2, "lip_press_R": 0.2, "brow_outer_raise_L": 0.15,
                 "squint_L": 0.15, "squint_R": 0.15},
}
_EXTRA_BLINK_RATE = {"angry": 1.2, "fear": 1.4, "surprised": 0.7, "sad": 0.9}
# posture: (pitch about +X: + = head down, yaw about +Y, roll about +Z) in radians at full intensity
_POSTURE = {"neutral": (0.0, 0.0, 0.0), "happy": (-0.03, 0.0, 0.03), "angry": (0.06, 0.0, 0.0), "sad": (0.10, 0.0, 0.02),
            "surprised": (-0.06, 0.0, 0.0), "fear": (0.03, 0.03, 0.0), "disgusted": (-0.02, -0.04, 0.02),
            "contempt": (-0.05, 0.06, 0.05)}


@dataclass
class TeacherConfig:
    fps: float = FPS
    blink_per_minute: float = BLINKS_PER_MINUTE
    sway: float = 0.025  # radians, head sway amplitude
    nod: float = 0.035  # radians, nod on a stressed vowel
    gaze: float = 0.12  # radians, gaze shift range


@dataclass
class Taught:
    motion: Motion
    emotion_expression: np.ndarray  # (T, E) the emotion layer alone (what instructions describe)
    emotion_jaw: np.ndarray  # (T,) the emotion's extra jaw opening, radians


def teach(phones: list[Segment], samples: np.ndarray, emotion: str, intensity: str, seed: int,
          config: TeacherConfig | None = None, sample_rate: int = 16000) -> Motion:
    """Motion at ``config.fps`` for 16 kHz ``samples`` with aligned ``phones``. Deterministic per seed."""
    return teach_full(phones, samples, emotion, intensity, seed, config, sample_rate).motion


def teach_full(phones: list[Segment], samples: np.ndarray, emotion: str, intensity: str, seed: int,
               config: TeacherConfig | None = None, sample_rate: int = 16000) -> Taught:
    """``teach`` plus the emotion layer on its own."""
    check_style(emotion, intensity)
    cfg = config or TeacherConfig()
    duration = len(samples) / sample_rate
    n = max(1, int(np.ceil(duration * cfg.fps)))
    rng = np.random.default_rng(seed)
    prosody = contours(samples, n, cfg.fps, sample_rate)
    scale = INTENSITY_SCALE[intensity] if emotion != "neutral" else 0.0

    expr = np.zeros((n, N_EXPRESSION), dtype=np.float64)
    art, closure = articulation(phones, n, cfg.fps)
    jaw = art.pop("jaw").copy()
    for name, curve in art.items():
        expr[:, EXPRESSION_INDEX[name]] += curve

    # emotion with onset ramp, slow drift and asymmetry
    envelope = _emotion_envelope(n, cfg.fps, rng)
    side = 1.0 + rng.uniform(-0.12, 0.12)
    gain = scale * rng.uniform(0.85, 1.15)
    open_mask = 1.0 - closure
    layer = np.zeros_like(expr)
    layer_jaw = np.zeros(n)
    for name, value in EMOTION_ACTIONS[emotion].items():
        curve = gain * value * envelope * (side if name.endswith("_L") else 2 - side if name.endswith("_R") else 1.0)
        if name == "jaw_drop":
            layer_jaw += curve
            jaw += curve * open_mask
            continue
        layer[:, EXPRESSION_INDEX[name]] += curve
        if name in LIP_OPENING:
            curve = curve * open_mask**4
        elif name in MOUTH:
            curve = curve * (1.0 - 0.7 * closure)
        expr[:, EXPRESSION_INDEX[name]] += curve

    _add_brow_raises(expr, prosody, cfg.fps, rng, 0.25 + 0.2 * (emotion in ("surprised", "happy", "fear")))
    add_blinks(expr, cfg.fps, rng, cfg.blink_per_minute * _EXTRA_BLINK_RATE.get(emotion, 1.0), duration)
    eye = _gaze(n, cfg, rng, emotion, scale)
    neck, root = _head(n, cfg, rng, phones, prosody, emotion, scale)

    expr[:, :] = np.clip(expr, -1.0, 1.0)
    jaw_pose = np.zeros((n, 3))
    jaw_pose[:, 0] = np.clip(jaw, 0.0, 0.45)
    motion = Motion(fps=cfg.fps, expression=expr.astype(np.float32), jaw_pose=jaw_pose.astype(np.float32),
                    neck_pose=neck.astype(np.float32), global_pose=root.astype(np.float32), eye_pose=eye.astype(np.float32),
                    seed=int(seed), source=f"teacher:{emotion}:{intensity}")
    return Taught(motion=motion, emotion_expression=layer.astype(np.float32), emotion_jaw=layer_jaw.astype(np.float32))


def _smooth_noise(n: int, fps: float, rng: np.random.Generator, seconds: float) -> np.ndarray:
    """(n,) zero-mean noise low-passed with a Gaussian of ``seconds`` sigma, unit standard deviation."""
    sigma = max(seconds * fps, 0.5)
    pad = int(4 * sigma) + 1
    white = rng.standard_normal(n + 2 * pad)
    k = np.arange(-pad, pad + 1)
    kernel = np.exp(-0.5 * (k / sigma) ** 2)
    out = np.convolve(white, kernel / kernel.sum(), mode="same")[pad: pad + n]
    return (out - out.mean()) / (out.std() + 1e-9) if n > 1 else out * 0


def _emotion_envelope(n: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / fps
    base = rng.uniform(0.35, 0.6)
    onset = rng.uniform(0.3, 0.8)
    ramp = np.clip(t / onset, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    drift = 1.0 + 0.12 * _smooth_noise(n, fps, rng, 0.6)
    return np.clip((base + (1 - base) * ramp) * drift, 0.0, 1.2)


def _bump(n: int, fps: float, centre: float, width: float) -> np.ndarray:
    t = np.arange(n) / fps
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


def _add_brow_raises(expr: np.ndarray, prosody: Contours, fps: float, rng: np.random.Generator, amount: float) -> None:
    f0 = prosody.f0.astype(np.float64)
    voiced = f0 > 0
    if voiced.sum() < 5:
        return
    ref = np.median(f0[voiced])
    spread = f0[voiced].std() + 1e-6
    n = len(f0)
    for k in range(1, n - 1):
        if voiced[k] and f0[k] > ref + spread and f0[k] >= f0[k - 1] and f0[k] >= f0[k + 1] and f0[k] < 2 * ref:
            if rng.random() < 0.6:
                b = amount * rng.uniform(0.6, 1.2) * _bump(n, fps, k / fps, 0.12)
                for name in ("brow_inner_raise_L", "brow_inner_raise_R", "brow_outer_raise_L", "brow_outer_raise_R"):
                    expr[:, EXPRESSION_INDEX[name]] += b * (0.7 if "inner" in name else 1.0)


def _gaze(n: int, cfg: TeacherConfig, rng: np.random.Generator, emotion: str, scale: float) -> np.ndarray:
    """(n, 6) eye rotations: fixations with quick saccades (3 frames), both eyes together."""
    down = {"sad": 0.08, "fear": -0.02, "contempt": -0.03, "disgusted": 0.02}.get(emotion, 0.0) * scale
    side = {"contempt": 0.06, "fear": 0.04}.get(emotion, 0.0) * scale * rng.choice([-1.0, 1.0])
    yaw = np.zeros(n)
    pitch = np.zeros(n)
    k, target = 0, (0.0, 0.0)
    prev = (rng.normal(0, 0.3) * cfg.gaze, rng.normal(0, 0.2) * cfg.gaze)
    while k < n:
        hold = max(2, int(rng.exponential(0.9) * cfg.fps))
        target = (side + rng.normal(0, 0.35) * cfg.gaze, down + rng.normal(0, 0.2) * cfg.gaze)
        for j in range(min(hold, n - k)):
            a = min(1.0, (j + 1) / 3)
            yaw[k + j] = prev[0] + (target[0] - prev[0]) * a
            pitch[k + j] = prev[1] + (target[1] - prev[1]) * a
        prev = target
        k += hold
    yaw = np.clip(yaw, -0.3, 0.3)
    pitch = np.clip(pitch, -0.2, 0.25)
    eye = np.zeros((n, 6))
    eye[:, 0] = eye[:, 3] = pitch
    eye[:, 1] = eye[:, 4] = yaw
    return eye


def _head(n: int, cfg: TeacherConfig, rng: np.random.Generator, phones: list[Segment], prosody: Contours,
          emotion: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(neck (n, 3), global (n, 3)) axis-angle: posture + sway + nods on stressed vowels."""
    fps = cfg.fps
    posture = np.array(_POSTURE[emotion]) * scale
    lively = 1.0 + 0.5 * scale * (emotion in ("happy", "angry", "surprised", "fear"))
    neck = np.zeros((n, 3))
    neck += posture * np.clip(np.arange(n) / (0.6 * fps), 0, 1)[:, None]
    for axis, amp, sec in ((0, 0.8, 0.7), (1, 1.0, 0.9), (2, 0.5, 1.0)):
        neck[:, axis] += cfg.sway * amp * lively * _smooth_noise(n, fps, rng, sec)
    # nods on the loudest vowels
    energy = prosody.energy_db
    vowels = [p for p in phones if p.label in VOWELS]
    if vowels:
        levels = np.array([energy[min(int((p.start + p.end) / 2 * fps), n - 1)] for p in vowels])
        cut = np.percentile(levels, 70)
        for p, level in zip(vowels, levels):
            if level >= cut and rng.random() < 0.7:
                neck[:, 0] += cfg.nod * lively * rng.uniform(0.5, 1.0) * _bump(n, fps, (p.start + p.end) / 2 + 0.04, 0.09)
    root = np.zeros((n, 3))
    for axis, sec in ((0, 1.2), (1, 1.5), (2, 1.5)):
        root[:, axis] = 0.3 * cfg.sway * _smooth_noise(n, fps, rng, sec)
    return np.clip(neck, -0.2, 0.2), np.clip(root, -0.08, 0.08)
