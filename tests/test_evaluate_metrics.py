"""Evaluation metrics on synthetic signals with known answers."""

import numpy as np
import pytest

from backend.phones import Segment
from backend.evaluate import emotion
from backend.evaluate.metrics import (
    Interval,
    LipSyncCounts,
    bilabial_events,
    closure_intervals,
    face_dynamics_deviation,
    lip_sync_counts,
    lip_vertex_error,
)
from backend.evaluate.text_metrics import bleu, emotion_accuracy, lcs_length, named_emotions, rouge_l, rouge_l_sentence
from backend.head.components import EXPRESSION_INDEX, N_EXPRESSION

FPS = 25.0
THRESHOLD = 1.0
# "Bob made my map" at 10 frames (0.4 s) per phone: frame t lies in phone t // 10
LABELS = ["SIL", "B", "AA", "B", "M", "EY", "D", "M", "AY", "M", "AE", "P", "SIL"]
PHONES = [Segment(label, i * 0.4, (i + 1) * 0.4) for i, label in enumerate(LABELS)]
N_FRAMES = 10 * len(LABELS)


def gap_closed_at(labels: set[str]) -> np.ndarray:
    gap = np.full(N_FRAMES, 3.0)
    for i, p in enumerate(PHONES):
        if p.label in labels:
            gap[i * 10:(i + 1) * 10] = 0.2
    return gap


def test_closures_exactly_at_bilabials_score_one():
    counts = lip_sync_counts(gap_closed_at({"P", "B", "M"}), FPS, PHONES, THRESHOLD)
    assert counts.events == 5  # "B M" touch and make one event
    assert counts.recall == 1.0 and counts.precision == 1.0 and counts.f1 == 1.0
    assert counts.vowel_open_rate == 1.0


def test_mouth_that_never_closes_has_zero_recall():
    counts = lip_sync_counts(np.full(N_FRAMES, 3.0), FPS, PHONES, THRESHOLD)
    assert counts.recall == 0.0 and counts.closures == 0
    assert counts.precision == 0.0 and counts.f1 == 0.0
    assert counts.vowel_open_rate == 1.0


def test_closure_everywhere_closes_every_vowel():
    counts = lip_sync_counts(np.zeros(N_FRAMES), FPS, PHONES, THRESHOLD)
    assert counts.recall == 1.0
    # one closure per spoken phone (silence is left out); in this bilabial-dense line every phone touches a bilabial
    assert counts.closures == len([p for p in PHONES if p.label != "SIL"]) == counts.closures_hit
    assert counts.vowel_open_rate == 0.0


def test_closure_everywhere_has_low_precision():
    labels = ["SIL", "B", "AA", "S", "T", "IY", "S", "T", "AA", "N", "D", "SIL"]
    phones = [Segment(label, i * 0.4, (i + 1) * 0.4) for i, label in enumerate(labels)]
    counts = lip_sync_counts(np.zeros(10 * len(labels)), FPS, phones, THRESHOLD)
    assert counts.closures == 10 and counts.closures_hit == 2  # B and the AA touching it
    assert counts.precision == pytest.approx(0.2)
    assert counts.f1 == pytest.approx(2 * 0.2 / 1.2)


def test_tolerance_is_40_ms():
    gap = np.full(N_FRAMES, 3.0)
    # B is [0.4, 0.8): a closure of frames 22..24 ([0.86, 1.0]) is 60 ms late, 21..24 ([0.82, 1.0]) is 20 ms late
    gap[22:25] = 0.0
    late = lip_sync_counts(gap, FPS, PHONES[:3], THRESHOLD)
    assert late.events == 1 and late.events_hit == 0 and late.closures_hit == 0
    gap[21] = 0.0
    near = lip_sync_counts(gap, FPS, PHONES[:3], THRESHOLD)
    assert near.events_hit == 1 and near.closures_hit == 1


def test_interval_near_and_events_merge():
    assert Interval(0.0, 1.0).near(Interval(1.04, 2.0))
    assert not Interval(0.0, 1.0).near(Interval(1.05, 2.0))
    events = [x for e in bilabial_events(PHONES) for x in (e.start, e.end)]
    assert events == pytest.approx([0.4, 0.8, 1.2, 2.0, 2.8, 3.2, 3.6, 4.0, 4.4, 4.8])


def test_closure_intervals_cut_at_phones_and_skip_silence():
    closed = np.zeros(30, dtype=bool)
    closed[5:25] = True
    phones = [Segment("SIL", 0, 0.4), Segment("M", 0.4, 0.8), Segment("AA", 0.8, 1.2)]
    found = [x for c in closure_intervals(closed, FPS, phones) for x in (c.start, c.end)]
    assert found == pytest.approx([9.5 / FPS, 19.5 / FPS, 19.5 / FPS, 24.5 / FPS])


def test_counts_pool_over_clips():
    a = LipSyncCounts(events=2, events_hit=2, closures=2, closures_hit=1, vowels=3, vowels_open=3)
    b = LipSyncCounts(events=2, events_hit=0, closures=0, closures_hit=0, vowels=1, vowels_open=0)
    total = a + b
    assert total.recall == 0.5 and total.precision == 0.5 and total.f1 == 0.5 and total.vowel_open_rate == 0.75
    assert LipSyncCounts().f1 is None


def test_lip_sync_rejects_bad_gap():
    with pytest.raises(ValueError):
        lip_sync_counts(np.array([1.0, np.nan]), FPS, PHONES, THRESHOLD)
    with pytest.raises(ValueError):
        lip_sync_counts(np.zeros((2, 2)), FPS, PHONES, THRESHOLD)


def test_lve_is_mean_over_frames_of_max_vertex_error():
    truth = np.zeros((2, 3, 3))
    gen = truth.copy()
    gen[0, 1] = [3.0, 4.0, 0.0]  # error 5 at one vertex in frame 0
    gen[1, :, 0] = 1.0  # error 1 everywhere in frame 1
    assert lip_vertex_error(gen, truth) == pytest.approx(3.0)
    assert lip_vertex_error(gen, np.concatenate([truth, truth])) == pytest.approx(3.0)  # extra frames are cut


def test_fdd_compares_temporal_spread_of_displacement():
    rest = np.zeros((2, 3))
    t = np.arange(50)
    truth = np.zeros((50, 2, 3))
    truth[:, 0, 1] = 2.0 * np.sin(t)  # vertex 0 moves
    gen = np.zeros((50, 2, 3))
    assert face_dynamics_deviation(truth, truth, rest) == 0.0
    expected = np.abs(2.0 * np.sin(t)).std() / 2  # vertex 0 differs, vertex 1 agrees
    assert face_dynamics_deviation(gen, truth, rest) == pytest.approx(expected)
    with pytest.raises(ValueError):
        face_dynamics_deviation(gen, truth, np.zeros((3, 3)))


# ---------------------------------------------------------------- text


def test_bleu_hand_computed():
    cand = ["the cat sat on the mat"]
    refs = [["the cat is on the mat"]]
    # 1-grams 5/6, 2-grams 3/5 (the cat, on the, the mat), 3-grams 1/4, 4-grams 0/3 -> smoothed 0.1/3
    assert bleu(cand, refs, max_n=1) == pytest.approx(5 / 6)
    expected4 = np.exp(np.mean(np.log([5 / 6, 3 / 5, 1 / 4, 0.1 / 3])))
    assert bleu(cand, refs) == pytest.approx(expected4)
    assert bleu(["the cat is on the mat"], refs) == pytest.approx(1.0)


def test_bleu_clips_counts_and_penalises_brevity():
    assert bleu(["the the the the"], [["the cat sat down"]], max_n=1) == pytest.approx(1 / 4)
    # candidate of 3 words against a 6-word reference: BP = exp(1 - 6/3)
    assert bleu(["the cat sat"], [["the cat sat on the mat"]], max_n=1) == pytest.approx(np.exp(-1.0))
    # matches are clipped by the max count over references; the closest reference length (3, not 6) is used
    assert bleu(["the cat sat"], [["the cat sat on the mat", "a cat sat"]], max_n=1) == pytest.approx(1.0)
    assert bleu(["the cat sat"], [["a dog sat on the mat", "a cat sat"]], max_n=1) == pytest.approx(1.0)
    assert bleu(["the cat sat"], [["a dog sat on a mat", "a cat sat"]], max_n=1) == pytest.approx(2 / 3)


def test_bleu_is_corpus_level():
    cands = ["a b c d", "e f"]
    refs = [["a b c d"], ["e g"]]
    # unigrams: (4 + 1) / 6; candidate and reference lengths equal, no brevity penalty
    assert bleu(cands, refs, max_n=1) == pytest.approx(5 / 6)


def test_rouge_l_hand_computed():
    assert lcs_length("a b c d e".split(), "a c e f".split()) == 3
    p, r, beta = 3 / 5, 3 / 4, 1.2
    assert rouge_l_sentence("a b c d e", ["a c e f"]) == pytest.approx((1 + beta**2) * p * r / (r + beta**2 * p))
    assert rouge_l(["A man is angry.", "x"], [["a man is angry"], ["y"]]) == pytest.approx(0.5)


def test_text_metrics_reject_mismatched_inputs():
    with pytest.raises(ValueError):
        bleu(["a"], [])
    with pytest.raises(ValueError):
        rouge_l(["a"], ["a"])  # a string, not a list of references


def test_emotion_words():
    words = {"angry": ["mad", "furious", "displeased"], "happy": ["pleased", "over the moon"],
             "disgusted": ["displeased", "put off"]}
    assert named_emotions("A man is mad.", words) == {"angry"}
    assert named_emotions("She is over the moon, not mad", words) == {"happy"}
    assert named_emotions("He made a displeased face", words) == {"angry", "disgusted"}  # not "pleased", not "mad"
    assert named_emotions("He speaks calmly", words) == set()
    assert emotion_accuracy(["a furious man", "a pleased woman", "a man"], ["angry", "angry", "happy"], words) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        emotion_accuracy(["x"], ["bored"], words)


def test_emotion_words_from_the_corpus_table():
    assert named_emotions("A woman is heartbroken and speaks with lip corners turned down.") == {"sad"}
    assert named_emotions("The man is grief-stricken.") == {"sad"}


# ---------------------------------------------------------------- emotion classifier


def expression_with(**levels) -> np.ndarray:
    expr = np.zeros((20, N_EXPRESSION))
    for name, value in levels.items():
        expr[:, EXPRESSION_INDEX[name]] = value
    return expr


@pytest.mark.parametrize("label, levels", [
    ("neutral", {}),
    ("neutral", {"brow_inner_raise_L": 0.05, "brow_inner_raise_R": 0.05}),
    ("happy", {"smile_L": 0.6, "smile_R": 0.6, "cheek_raise_L": 0.4, "cheek_raise_R": 0.4}),
    ("angry", {"brow_lower_L": 0.7, "brow_lower_R": 0.7, "lip_tighten": 0.3}),
    ("sad", {"brow_inner_raise_L": 0.6, "brow_inner_raise_R": 0.6, "lip_corner_depress_L": 0.5, "lip_corner_depress_R": 0.5}),
    ("surprised", {"brow_inner_raise_L": 0.6, "brow_inner_raise_R": 0.6, "brow_outer_raise_L": 0.7, "brow_outer_raise_R": 0.7,
                   "eye_wide_L": 0.6, "eye_wide_R": 0.6}),
    ("fear", {"brow_inner_raise_L": 0.6, "brow_inner_raise_R": 0.6, "eye_wide_L": 0.5, "eye_wide_R": 0.5,
              "lip_stretch_L": 0.5, "lip_stretch_R": 0.5, "brow_lower_L": 0.2, "brow_lower_R": 0.2}),
    ("disgusted", {"nose_wrinkle_L": 0.6, "nose_wrinkle_R": 0.6, "upper_lip_raise_L": 0.5, "upper_lip_raise_R": 0.5}),
    ("contempt", {"smile_L": 0.5, "dimple_L": 0.5}),
])
def test_nearest_signature_classifier(label, levels):
    assert emotion.classify(expression_with(**levels)) == label


def test_speech_components_do_not_move_the_classifier():
    speech = expression_with(lip_press_L=0.5, lip_press_R=0.5, pucker=0.6, funnel=0.5, lips_part=0.4, dimple_L=0.3, dimple_R=0.3)
    assert emotion.classify(speech) == "neutral"


def test_classifier_rejects_bad_shapes():
    with pytest.raises(ValueError):
        emotion.classify(np.zeros((5, 10)))
    with pytest.raises(ValueError):
        emotion.classify(np.zeros((0, N_EXPRESSION)))
