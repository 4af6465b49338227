"""Real acted speech: the affect reader scored leave-one-pack-out over the Hedgewars packs we may use.

For each pack, a reader is trained (``backend/train/affect.py``, shipped settings) on every other clip
(synthetic lines, the other packs, the Asterisk prompts) and decides on that pack's lines with a trusted
label (``corpus/acted.py``); the decisions of all packs are pooled. Stage 1's sentence names the
reader's emotion (its start is fixed by the decision, ``stage1/wording.py``) or, when the reader is
uncertain, none, so these are the figures of the emotion the sentence names. The speaker's sex is
scored the same way, leaving out one Asterisk voice at a time (the game voices are pitched up and
carry no sex label). Features are cached in ``cache`` (built on first use: some minutes).
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_CACHE = "data/affect"


def acted_report(cache: str | Path = DEFAULT_CACHE, steps: int | None = None, say=None) -> dict:
    from ..corpus.acted import PACKS, acted_lines
    from ..errors import RequestError
    from ..train import affect

    say = say or (lambda text: None)
    if not acted_lines():
        raise RequestError("the real acted speech section needs the Debian package hedgewars-data "
                           "(apt-get install hedgewars-data)")
    cache = Path(cache)
    say(f"acted: features in {cache} (built on first use)")
    affect.main(["features", "--cache", str(cache)])
    sets = affect.all_sets(cache)
    train = affect.training_set(sets)
    steps = steps or affect.STEPS
    report = {"leave_one_pack_out": affect.leave_one_group_out(train, list(PACKS), steps=steps),
              "sex_leave_one_voice_out": affect.leave_one_group_out(train, affect.real_voices(train), steps=steps)}
    model = affect.fit(train, steps=steps)
    report["synthetic_heldout_voices"] = affect.scores(affect.predict(model, sets["synthetic_test"]), sets["synthetic_test"]["meta"])
    return report


ROWS = ("lines", "emotional_lines", "neutral_lines", "emotion_accuracy", "emotional_called_neutral", "emotional_uncertain",
        "neutral_kept", "sex_right_or_person", "sex_named_wrong", "sex_named")


def format_acted(report: dict) -> str:
    """The section as text: the figures of each part, then the pooled confusion matrix of the packs."""
    lines = ["real acted speech (affect reader, held-out packs / voices)"]
    for part, figures in report.items():
        shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()
                          if k in ROWS and v is not None)
        lines.append(f"  {part}: {shown}")
    confusion = report["leave_one_pack_out"]["confusion"]
    columns = list(next(iter(confusion.values())))
    lines.append("  confusion (rows: weak label, columns: named):")
    lines.append(f"  {'':11}" + "".join(f"{c[:9]:>10}" for c in columns))
    for label, row in confusion.items():
        lines.append(f"  {label:11}" + "".join(f"{row[c]:>10}" for c in columns))
    return "\n".join(lines)
