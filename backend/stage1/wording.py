"""The words of stage 1's sentence: the face vocabulary, the sentence shapes, and the sentence the affect reader's decision writes.

The corpus's instructions (``corpus/instructions.py``) are built from the
same vocabulary, so a sentence written here reads like the ones stage 2 learnt
from: "<subject> is <emotion word> and speaks with <facial actions>."

- ``prefix(reading)``: the start the decision fixes ("A man is furious and
  speaks with"); the LLM then words the face (``Instructor.continue_from``).
- ``steered_sentence``: that sentence when its face is a list of known facial
  actions that suit the emotion, else ``template_sentence`` (the emotion's
  prototype face at the decided intensity).
- When the emotion is uncertain, ``template_sentence`` says what is certain:
  the voice's effort and pace ("speaks in a raised, tense voice") and the face
  that goes with it, never "calm".
- ``well_formed(sentence)``: whether a sentence is one of the shapes the corpus
  writes (or the uncertain one), with known subjects, emotion words and
  facial actions: the evaluation counts the sentences that are not.
"""

from __future__ import annotations

import re

from ..emotions import EMOTION_LEVELS, EMOTION_WORDS

# facial action phrases: component group -> (noun phrase, verb phrases by level low/mid/high)
ACTION_PHRASES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]] = {
    "brow_lower": (("brows", "eyebrows"), (("slightly lowered", "a little knitted"), ("pulled down", "furrowed", "knitted"),
                                           ("pulled down hard", "deeply furrowed", "tightly knitted"))),
    "brow_inner_raise": (("inner brows", "inner eyebrows"), (("slightly raised",), ("raised", "lifted", "drawn up"),
                                                             ("raised high", "strongly lifted"))),
    "brow_outer_raise": (("outer brows", "eyebrows"), (("slightly lifted",), ("lifted", "raised", "arched"),
                                                       ("extremely lifted", "raised high", "arched high"))),
    "eye_wide": (("eyes",), (("a little wide",), ("wide open", "widened"), ("wide as saucers", "extremely wide"))),
    "squint": (("eyes",), (("slightly narrowed",), ("narrowed", "squinting"), ("tightly narrowed", "squeezed"))),
    "cheek_raise": (("cheeks",), (("slightly lifted",), ("raised", "lifted"), ("pushed high",))),
    "smile": (("lip corners", "mouth corners"), (("slightly turned up", "hinting at a smile"), ("pulled up in a smile", "turned up"),
                                                ("pulled into a broad grin", "stretched in a big smile"))),
    "lip_corner_depress": (("lip corners", "mouth corners"), (("turned slightly down",), ("turned down", "drooping"),
                                                             ("pulled far down", "drooping heavily"))),
    "lip_press": (("lips",), (("lightly pressed",), ("pressed", "pressed together"), ("pressed tightly", "firmly pressed together"))),
    "lip_tighten": (("lips",), (("slightly tense",), ("tightened", "tense"), ("tightened hard", "very tense"))),
    "nose_wrinkle": (("nose",), (("slightly wrinkled",), ("wrinkled", "scrunched"), ("deeply wrinkled", "scrunched up"))),
    "upper_lip_raise": (("upper lip",), (("slightly raised",), ("raised", "curled up"), ("curled high", "raised in a sneer"))),
    "lip_stretch": (("lips",), (("slightly stretched",), ("stretched", "pulled wide"), ("stretched tight", "pulled far apart"))),
    "dimple": (("mouth corner", "lip corner"), (("slightly tucked",), ("pulled back", "dimpled"), ("pulled far back",))),
    "chin_raise": (("chin",), (("slightly raised",), ("raised", "pushed up"), ("pushed up hard",))),
    "jaw_drop": (("jaw", "mouth"), (("slightly dropped",), ("dropped", "hanging open"), ("dropped wide open",))),
}
NEUTRAL_ACTIONS = ("a relaxed face", "a still, relaxed face", "no particular expression", "a calm face")

SUBJECTS = {"male": ("A man", "The man", "A male speaker", "A guy", "He"), "female": ("A woman", "The woman", "A female speaker", "A lady", "She")}
SENTENCE_SHAPES = (  # the corpus instructions' shapes
    "{sub} is {emo} and speaks with {act}.",
    "{sub} is {emo}, speaking with {act}.",
    "{sub} talks with {act}, looking {emo}.",
    "{sub} is {emo}.",
    "{sub} speaks with {act}.",
    "{sub} sounds {emo} and talks with {act}.",
    "Looking {emo}, {sub_l} speaks with {act}.",
    "{sub} is {emo} while talking.",
)
PERSON = "A person"  # the subject when the speaker's sex is unsure
SUBJECT = {"male": "A man", "female": "A woman", None: PERSON}
UNCERTAIN_SHAPE = "{sub} speaks in {voice}, with {act}."

# the face of each emotion (its EMFACS prototype's action groups, strongest first)
EMOTION_FACE: dict[str, tuple[str, ...]] = {
    "happy": ("smile", "cheek_raise"), "angry": ("brow_lower", "lip_tighten", "squint"),
    "sad": ("brow_inner_raise", "lip_corner_depress"), "surprised": ("brow_outer_raise", "eye_wide", "jaw_drop"),
    "fear": ("brow_inner_raise", "eye_wide", "lip_stretch"), "disgusted": ("nose_wrinkle", "upper_lip_raise"),
    "contempt": ("dimple", "upper_lip_raise"),
}
# facial actions a sentence naming the emotion may show (its own and those often seen with it)
SUITS: dict[str, frozenset[str]] = {
    "happy": frozenset({"smile", "cheek_raise", "squint", "jaw_drop", "brow_outer_raise"}),
    "angry": frozenset({"brow_lower", "lip_tighten", "squint", "lip_press", "nose_wrinkle", "upper_lip_raise", "chin_raise"}),
    "sad": frozenset({"brow_inner_raise", "lip_corner_depress", "brow_lower", "chin_raise", "lip_press"}),
    "surprised": frozenset({"brow_outer_raise", "brow_inner_raise", "eye_wide", "jaw_drop"}),
    "fear": frozenset({"brow_inner_raise", "brow_outer_raise", "eye_wide", "lip_stretch", "brow_lower", "jaw_drop"}),
    "disgusted": frozenset({"nose_wrinkle", "upper_lip_raise", "brow_lower", "lip_corner_depress", "squint"}),
    "contempt": frozenset({"dimple", "smile", "upper_lip_raise", "squint", "lip_press"}),
}
LEVELS = ("slight", "moderate", "strong")

# what is certain when the emotion is not: the voice, and the face that goes with it (groups, level)
VOICES = {
    "raised": ("a raised, tense voice", (("brow_lower", 1), ("lip_tighten", 1))),
    "hushed": ("a hushed, slow and low voice", (("brow_lower", 0), ("lip_press", 0))),
    "hushed_quick": ("a hushed, quick voice", (("brow_inner_raise", 0), ("lip_tighten", 0))),
    "lively": ("a lively, animated voice", (("brow_outer_raise", 0), ("smile", 0))),
    "even": ("an even, steady voice", (("brow_lower", 0),)),
}
SLOW_RATE = 4.0        # loudness peaks a second below which speech is slow
LIVELY_RANGE_ST = 9.0  # pitch range (semitones) above which a voice is lively

_PHRASE_GROUP = {f"{noun} {verb}": group for group, (nouns, levels) in ACTION_PHRASES.items()
                 for noun in nouns for level in levels for verb in level}


def _phrase(group: str, level: int) -> str:
    nouns, verbs = ACTION_PHRASES[group]
    return f"{nouns[0]} {verbs[level][0]}"


def join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def parse_actions(text: str) -> list[str] | None:
    """'brows pulled down and lips tightened' -> ['brow_lower', 'lip_tighten']; ['neutral'] for a relaxed
    face; None when any part is not a known facial action."""
    text = text.strip()
    if text in NEUTRAL_ACTIONS:
        return ["neutral"]
    parts = [p.strip() for p in re.split(r",\s+|\s+and\s+", text)]
    groups = [_PHRASE_GROUP.get(p) for p in parts]
    return None if not parts or None in groups else groups


def emotion_word(emotion: str, intensity: str) -> str:
    return EMOTION_LEVELS[emotion][LEVELS.index(intensity) if emotion != "neutral" else 0][0]


def prefix(reading) -> str:
    """The start of the sentence the decision fixes: 'A man is furious and speaks with'."""
    return f"{SUBJECT[reading.sex]} is {emotion_word(reading.emotion, reading.intensity)} and speaks with"


def voice_of(reading) -> str:
    """Which of ``VOICES`` describes an uncertain clip: its effort, pace and pitch movement."""
    slow = reading.cues.get("rate_per_s", SLOW_RATE) < SLOW_RATE
    if reading.effort >= 1.4:
        return "raised"
    if reading.effort < 0.7:
        return "hushed" if slow else "hushed_quick"
    if reading.cues.get("f0_range_st", 0.0) >= LIVELY_RANGE_ST:
        return "lively"
    return "even"


def template_sentence(reading) -> str:
    """The decision in the corpus's words: the emotion's prototype face at its intensity, a relaxed face when
    neutral, and when the emotion is uncertain the voice and the face that goes with it."""
    subject = SUBJECT[reading.sex]
    if reading.emotion is None:
        voice, face = VOICES[voice_of(reading)]
        return UNCERTAIN_SHAPE.format(sub=subject, voice=voice, act=join([_phrase(g, lv) for g, lv in face]))
    if reading.emotion == "neutral":
        return f"{prefix(reading)} {NEUTRAL_ACTIONS[0]}."
    level = LEVELS.index(reading.intensity)
    groups = EMOTION_FACE[reading.emotion][: 2 if level < 2 else 3]
    return f"{prefix(reading)} {join([_phrase(g, level) for g in groups])}."


def steered_sentence(reading, continuation: str) -> str:
    """``prefix(reading)`` + the LLM's ``continuation`` when it is a list of at most three known facial
    actions that suit the emotion, ending the sentence; else ``template_sentence``."""
    text = " ".join(continuation.split())
    if reading.emotion is None or not text.endswith(".") or text.count(".") != 1:
        return template_sentence(reading)
    groups = parse_actions(text[:-1])
    allowed = {"neutral"} if reading.emotion == "neutral" else SUITS[reading.emotion]
    if groups is None or len(groups) > 3 or len(set(groups)) != len(groups) or not set(groups) <= allowed:
        return template_sentence(reading)
    return f"{prefix(reading)} {text}"


def _shape_pattern(shape: str) -> re.Pattern:
    subjects = sorted({s for group in SUBJECTS.values() for s in group} | {PERSON}, key=len, reverse=True)
    lowered = sorted({s if s in ("He", "She") else s[0].lower() + s[1:] for s in subjects} | {s.lower() for s in ("He", "She")},
                     key=len, reverse=True)
    words = sorted({w for ws in EMOTION_WORDS.values() for w in ws}, key=len, reverse=True)
    voices = sorted(v for v, _ in VOICES.values())
    pattern = re.escape(shape)
    for slot, options in (("sub", subjects), ("sub_l", lowered), ("emo", words), ("voice", voices)):
        pattern = pattern.replace(re.escape("{" + slot + "}"), "(?:" + "|".join(map(re.escape, options)) + ")")
    return re.compile("^" + pattern.replace(re.escape("{act}"), "(?P<act>.+?)") + "$")


_SHAPES = None


def well_formed(sentence: str) -> bool:
    """Whether ``sentence`` is one of the corpus's sentence shapes (or the uncertain one) with a known subject,
    emotion word and facial actions."""
    global _SHAPES
    if _SHAPES is None:
        _SHAPES = [_shape_pattern(s) for s in SENTENCE_SHAPES + (UNCERTAIN_SHAPE,)]
    text = " ".join(sentence.split())
    for pattern in _SHAPES:
        m = pattern.match(text)
        if m and ("act" not in m.groupdict() or parse_actions(m.group("act")) is not None):
            return True
    return False
