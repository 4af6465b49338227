"""The emotion vocabulary: the eight emotions, their words by intensity, and which emotion a text names.

Shared by stage 1 (its vote reads the emotion each sentence names), the
corpus's instruction writer and the evaluation.
"""

from __future__ import annotations

import re

# emotion words by intensity: slight, moderate, strong (the evaluator reads the union)
EMOTION_LEVELS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "neutral": (("calm", "neutral", "composed", "matter-of-fact"), ("expressionless", "neutral", "impassive", "even-tempered"),
                ("completely neutral", "blank-faced", "perfectly calm", "emotionless")),
    "happy": (("pleased", "content", "cheerful", "glad"), ("happy", "joyful", "delighted", "merry"),
              ("overjoyed", "ecstatic", "over the moon", "elated", "thrilled")),
    "angry": (("annoyed", "irritated", "cross", "displeased"), ("angry", "mad", "indignant", "exasperated"),
              ("furious", "enraged", "livid", "seething", "outraged")),
    "sad": (("a little sad", "downcast", "wistful", "glum"), ("sad", "unhappy", "sorrowful", "dejected"),
            ("heartbroken", "devastated", "grief-stricken", "desolate", "miserable")),
    "surprised": (("mildly surprised", "curious", "intrigued", "puzzled"), ("surprised", "startled", "amazed", "astonished"),
                  ("astounded", "stunned", "shocked", "flabbergasted", "dumbfounded")),
    "fear": (("uneasy", "nervous", "worried", "apprehensive"), ("afraid", "scared", "fearful", "anxious"),
             ("terrified", "petrified", "panic-stricken", "horrified", "frightened")),
    "disgusted": (("put off", "displeased", "distasteful", "squeamish"), ("disgusted", "repulsed", "grossed out", "revolted"),
                  ("sickened", "nauseated", "appalled", "utterly revolted")),
    "contempt": (("unimpressed", "dismissive", "skeptical", "aloof"), ("contemptuous", "scornful", "disdainful", "sneering"),
                 ("utterly contemptuous", "derisive", "full of scorn", "haughty")),
}
EMOTION_WORDS: dict[str, list[str]] = {e: sorted({w for level in levels for w in level}) for e, levels in EMOTION_LEVELS.items()}


def tokenize(text: str) -> list[str]:
    """Lower-case words of letters, digits, hyphens and apostrophes (other punctuation dropped)."""
    return re.findall(r"[a-z0-9]+(?:['\-][a-z0-9]+)*", text.lower())


def named_emotions(text: str, words: dict[str, list[str]] | None = None) -> set[str]:
    """The emotions named by the first emotion word in ``text`` (whole words, longest first; empty when none is).
    A word listed under two emotions names both."""
    words = EMOTION_WORDS if words is None else words
    lowered = " ".join(tokenize(text))
    best: tuple[int, int, str] | None = None  # (position, -length, word)
    for synonyms in words.values():
        for word in synonyms:
            phrase = " ".join(tokenize(word))
            m = re.search(rf"(?<![a-z0-9'\-]){re.escape(phrase)}(?![a-z0-9'\-])", lowered)
            if m and (best is None or (m.start(), -len(phrase)) < best[:2]):
                best = (m.start(), -len(phrase), phrase)
    if best is None:
        return set()
    return {e for e, synonyms in words.items() if best[2] in {" ".join(tokenize(w)) for w in synonyms}}
