"""TalkCLIP-style instruction sentences for a clip.

Format (TalkCLIP, Sec. 3.1): "<SUB> <EMOTION> and speaks with <ACTIONS>", where
<EMOTION> is one of several words for the clip's emotion at its intensity and
<ACTIONS> names the strongest facial actions the teacher actually put in,
with a degree word from their level. Several phrasings per clip (templates x
synonyms), and, as in TalkCLIP, some drop the emotion or the actions.
"""

from __future__ import annotations


import numpy as np

from ..emotions import EMOTION_LEVELS
from ..head.components import EXPRESSION_NAMES
from ..stage1.wording import ACTION_PHRASES as _ACTION_PHRASES, NEUTRAL_ACTIONS as _NEUTRAL_ACTIONS
from ..stage1.wording import SENTENCE_SHAPES as _TEMPLATES, SUBJECTS as _SUBJECTS
from .speech import check_style

_LEVEL_WORDS = (("slightly", "a little", "faintly"), ("clearly", "noticeably", "visibly"), ("extremely", "strongly", "very"))


def facial_actions(expression: np.ndarray, jaw_pose: np.ndarray | None = None, top: int = 3, threshold: float = 0.1) -> list[tuple[str, float]]:
    """The strongest facial action groups of a motion: [(group, mean level)] with level in 0..1.

    ``expression`` (T, E); a left/right pair counts by its stronger side;
    speech articulation is not separated out, so pass the emotion layer when you have it.
    """
    mean = np.asarray(expression, dtype=np.float64).mean(axis=0)
    names = EXPRESSION_NAMES
    levels: dict[str, float] = {}
    for group in _ACTION_PHRASES:
        idx = [i for i, n in enumerate(names) if n == group or n in (f"{group}_L", f"{group}_R")]
        if idx:
            levels[group] = float(mean[idx].max())
    if jaw_pose is not None:
        levels["jaw_drop"] = float(np.clip(np.asarray(jaw_pose)[:, 0].mean() / 0.08, 0, 1) * 0.5)
    ranked = sorted(((g, v) for g, v in levels.items() if v >= threshold), key=lambda gv: -gv[1])
    return ranked[:top]


def _level(value: float) -> int:
    return 0 if value < 0.3 else 1 if value < 0.55 else 2


def _action_phrase(actions: list[tuple[str, float]], rng: np.random.Generator) -> str:
    if not actions:
        return str(rng.choice(_NEUTRAL_ACTIONS))
    parts = []
    for group, value in actions:
        nouns, verbs = _ACTION_PHRASES[group]
        parts.append(f"{rng.choice(nouns)} {rng.choice(verbs[_level(value)])}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def instructions(emotion: str, intensity: str, gender: str, actions: list[tuple[str, float]], seed: int, count: int = 5) -> list[str]:
    """``count`` different instruction sentences for one clip; the first always names the emotion and the actions."""
    check_style(emotion, intensity)
    if gender not in _SUBJECTS:
        raise ValueError(f"gender must be 'male' or 'female', got {gender!r}")
    rng = np.random.default_rng(seed)
    level = ("slight", "moderate", "strong").index(intensity)
    out: list[str] = []
    for attempt in range(count * 10):
        template = _TEMPLATES[0] if attempt == 0 else str(rng.choice(_TEMPLATES))
        if "{emo}" not in template and emotion != "neutral" and rng.random() < 0.5:
            continue  # keep most sentences naming the emotion
        if "{act}" in template and not actions and emotion != "neutral":
            continue  # no visible action: do not claim a relaxed face for an emotion
        subject = str(rng.choice(_SUBJECTS[gender]))
        near = level if rng.random() < 0.85 else int(np.clip(level + rng.choice([-1, 1]), 0, 2))  # synonyms from a neighbouring level now and then
        words = EMOTION_LEVELS[emotion][near]
        text = template.format(
            sub=subject, sub_l=subject[0].lower() + subject[1:] if subject not in ("He", "She") else subject.lower(),
            emo=str(rng.choice(words)), act=_action_phrase(actions, rng),
        )
        if text not in out:
            out.append(text)
        if len(out) == count:
            break
    return out
