"""Self-consistency for stage 1: sampled sentences vote on the emotion the chosen sentence names."""

from __future__ import annotations

from collections import Counter

from ..emotions import named_emotions


def vote(sentences: list[str]) -> str:
    """The first sentence that names the emotion most of ``sentences`` name (ties: the one named
    first); the first sentence when none names an emotion."""
    named = [named_emotions(s) for s in sentences]
    counts = Counter(e for names in named for e in sorted(names))
    if not counts:
        return sentences[0]
    top = counts.most_common(1)[0][0]  # equal counts keep the order first met
    return next(s for s, names in zip(sentences, named) if top in names)
