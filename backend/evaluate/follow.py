"""Free-text instructions for the instruction-following test, four per emotion.

The first of each is phrased like the training instructions; the others use
words and turns of phrase the corpus never uses (``unseen``: no word of the
corpus's ``EMOTION_WORDS`` table, for any emotion, appears in them).
"""

from __future__ import annotations

from ..emotions import named_emotions

FOLLOW_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "neutral": (
        "A man is calm and composed.",
        "She reads the weather report in a flat, even voice.",
        "An unbothered, level-headed woman just states the facts.",
        "He talks without any feeling showing on his face.",
    ),
    "happy": (
        "A woman is delighted and speaks with a broad smile.",
        "He is beaming with joy.",
        "She's on cloud nine, grinning from ear to ear.",
        "A man in high spirits, laughing as he talks.",
    ),
    "angry": (
        "A man is furious and speaks with his brows pulled down.",
        "She is boiling with rage.",
        "He's fuming, glaring as if ready to explode.",
        "A woman who has completely lost her temper.",
    ),
    "sad": (
        "A woman is sad and speaks with her lip corners turned down.",
        "He is on the verge of tears.",
        "She sounds crushed, her voice heavy with grief.",
        "A man mourning a loss, close to weeping.",
    ),
    "surprised": (
        "A man is astonished and speaks with his eyes wide open.",
        "She can't believe her ears, eyebrows shooting up.",
        "He is taken aback, eyes popping.",
        "A woman caught completely off guard by the news.",
    ),
    "fear": (
        "A woman is afraid and speaks with her eyes widened.",
        "He is shaking with dread.",
        "She looks as if she has just seen a ghost.",
        "A man in a state of panic, expecting the worst.",
    ),
    "disgusted": (
        "A man is disgusted and speaks with his nose wrinkled.",
        "She recoils as if from a foul smell.",
        "He looks at it as though it were rotten garbage.",
        "A woman finds the whole thing vile and gross.",
    ),
    "contempt": (
        "A woman is scornful and speaks with one lip corner pulled back.",
        "He looks down his nose at the listener.",
        "She smirks with cold condescension.",
        "A man who feels superior and lets it show with a smug half smile.",
    ),
}


def unseen(text: str) -> bool:
    """True when ``text`` names no emotion with a word of the corpus's table."""
    return not named_emotions(text)


def follow_set() -> list[tuple[str, str]]:
    """[(emotion, instruction)] in a fixed order."""
    return [(emotion, text) for emotion, texts in FOLLOW_INSTRUCTIONS.items() for text in texts]
