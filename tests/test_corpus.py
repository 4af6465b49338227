"""The corpus builder: teacher lip shapes, determinism, instructions, paraphrases, augmentation, build/reload/resume."""

import json
import re
import shutil

import numpy as np
import pytest

from backend.phones import BILABIALS, VOWELS, Segment
from backend.corpus import augment
from backend.corpus.build import BuildConfig, build
from backend.corpus.dataset import DatasetError, load_corpus, load_real_layout
from backend.corpus.instructions import facial_actions, instructions
from backend.emotions import EMOTION_WORDS
from backend.corpus.paraphrases import PARAPHRASES, paraphrases
from backend.corpus.speech import EMOTIONS
from backend.corpus.teacher import teach, teach_full
from backend.head.visemes import articulation, frame_owners
from backend.evaluate.follow import follow_set, unseen
from backend.head.components import EXPRESSION_INDEX, N_EXPRESSION
from backend.motion import Motion, save_motion

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

# "bob made my map" at a fast pace, with a 30 ms bilabial that holds no 25 fps frame centre of its own
PHONES = [Segment("SIL", 0.0, 0.2), Segment("B", 0.2, 0.26), Segment("AA", 0.26, 0.42), Segment("B", 0.42, 0.45),
          Segment("M", 0.45, 0.52), Segment("EY", 0.52, 0.66), Segment("D", 0.66, 0.71), Segment("M", 0.71, 0.77),
          Segment("AY", 0.77, 0.93), Segment("M", 0.93, 0.99), Segment("AE", 0.99, 1.17), Segment("P", 1.17, 1.25),
          Segment("SIL", 1.25, 1.6)]


def _speech(seconds=1.6, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.05).astype(np.float32)


def _mid_frame(p, fps=25.0):
    return int(round((p.start + p.end) / 2 * fps))


def test_every_bilabial_and_vowel_owns_a_frame():
    owner = frame_owners(PHONES, 40, 25.0)
    for i, p in enumerate(PHONES):
        if p.label in BILABIALS | VOWELS:
            assert (owner == i).any(), p


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_teacher_closes_lips_at_bilabials_and_opens_vowels(emotion):
    taught = teach_full(PHONES, _speech(), emotion, "strong", seed=3)
    m = taught.motion
    owner = frame_owners(PHONES, m.n_frames, m.fps)
    _, closure = articulation(PHONES, m.n_frames, m.fps)
    opening = [EXPRESSION_INDEX[n] for n in ("lips_part", "jaw_open_lips_stretch", "upper_lip_raise_L", "lower_lip_depress_L")]
    for i, p in enumerate(PHONES):
        frames = np.flatnonzero(owner == i)
        if p.label in BILABIALS:
            assert closure[frames].min() > 0.9
            assert m.jaw_pose[frames, 0].max() < 0.04
            assert m.expression[frames][:, EXPRESSION_INDEX["lip_press_L"]].min() > 0.3
            assert m.expression[frames][:, opening].max() < 0.05
        if p.label in VOWELS:
            k = frames[np.argmin(np.abs(frames - (p.start + p.end) / 2 * m.fps))]
            assert m.jaw_pose[k, 0] > 0.12 and closure[k] < 0.5


def test_teacher_lip_gap_on_the_default_head():
    head = pytest.importorskip("backend.head")
    if not hasattr(head, "default_head_path"):
        pytest.skip("default head not available yet")
    from backend.flame.lbs_numpy import flame_forward
    from backend.flame.pickle_io import load_flame

    model = load_flame(head.default_head_path())
    groups = model.extras["avitalk_vertex_groups"]
    m = teach(PHONES, _speech(), "happy", "strong", seed=1)
    owner = frame_owners(PHONES, m.n_frames, m.fps)
    verts, _ = flame_forward(model, expression=m.expression, jaw_pose=m.jaw_pose, eye_pose=m.eye_pose)  # (T, V, 3)
    up, lo = verts[:, groups["upper_lip"]], verts[:, groups["lower_lip"]]
    up_mid = np.abs(model.v_template[groups["upper_lip"], 0]) < 0.005
    lo_mid = np.abs(model.v_template[groups["lower_lip"], 0]) < 0.005
    gaps = (up[:, up_mid, 1].min(axis=1) - lo[:, lo_mid, 1].max(axis=1)) * 1000  # (T,) mm
    for i, p in enumerate(PHONES):
        if p.label in BILABIALS:
            assert gaps[owner == i].max() < 1.0, (p, gaps[owner == i])
        if p.label in VOWELS:
            assert gaps[_mid_frame(p)] > 3.0, (p, gaps[_mid_frame(p)])


def test_teacher_is_deterministic_per_seed_and_in_range():
    a = teach(PHONES, _speech(), "angry", "moderate", seed=7)
    b = teach(PHONES, _speech(), "angry", "moderate", seed=7)
    c = teach(PHONES, _speech(), "angry", "moderate", seed=8)
    for key in ("expression", "jaw_pose", "neck_pose", "global_pose", "eye_pose"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not np.array_equal(a.neck_pose, c.neck_pose)
    assert a.expression.shape == (40, N_EXPRESSION) and a.fps == 25.0
    assert np.abs(a.expression[:, 52:]).max() == 0.0  # reserved slots stay zero
    assert np.abs(a.neck_pose).max() < 0.21 and np.abs(a.global_pose).max() < 0.09
    a.validate()


def test_emotion_layer_shows_the_emotion():
    angry = teach_full(PHONES, _speech(), "angry", "strong", seed=2)
    happy = teach_full(PHONES, _speech(), "happy", "strong", seed=2)
    assert facial_actions(angry.emotion_expression)[0][0] == "brow_lower"
    assert {g for g, _ in facial_actions(happy.emotion_expression)} & {"smile", "cheek_raise"}
    assert np.abs(teach_full(PHONES, _speech(), "neutral", "moderate", seed=2).emotion_expression).max() == 0.0


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_instructions_name_the_emotion(emotion):
    texts = instructions(emotion, "strong", "female", [("brow_lower", 0.7), ("lip_press", 0.4)], seed=1, count=6)
    assert len(texts) == 6 and len(set(texts)) == 6
    named = [t for t in texts if any(w in t for w in EMOTION_WORDS[emotion])]
    assert texts[0] in named and len(named) >= 3
    assert all(t.split()[0] in ("A", "The", "She", "Looking") for t in texts)
    with pytest.raises(ValueError):
        instructions("bored", "strong", "female", [], seed=1)


def test_augmentation_keeps_length_and_is_reproducible():
    x = _speech(1.0)
    params = augment.random_params(np.random.default_rng(4), clean_share=0.0)
    y1, y2 = augment.apply(x, params), augment.apply(x, params)
    assert y1.shape == x.shape and y1.dtype == np.float32
    np.testing.assert_array_equal(y1, y2)
    tel = augment.apply(x, augment.AugmentParams(band="telephone"))
    spectrum = np.abs(np.fft.rfft(tel))
    assert spectrum[5000:].mean() < 0.05 * spectrum[400:3000].mean()  # nothing above 5 kHz (bins are 1 Hz)


@needs_espeak
def test_build_reload_and_resume(tmp_path):
    config = BuildConfig(out=str(tmp_path / "corpus"), n_clips=3, seed=5, workers=1, real_share=0.0)
    summary = build(config)
    assert summary["made"] + summary["skipped"] == 3 and summary["clips_in_manifest"] == summary["made"] >= 2
    records = load_corpus(tmp_path / "corpus")
    assert len(records) == summary["made"]
    for rec in records:
        motion = rec.motion()
        audio = rec.audio()
        assert abs(motion.n_frames / motion.fps - len(audio) / 16000) < 0.05
        assert rec.instructions and rec.split in ("train", "val", "test") and rec.phones
        assert any(w in rec.instructions[0] for w in EMOTION_WORDS[rec.emotion])
        assert motion.instruction == rec.instructions[0]
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "corpus" / "clips").iterdir()}
    again = build(config)
    assert again["already_done"] == 3 and again["made"] == 0
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "corpus" / "clips").iterdir()}


def test_real_layout(tmp_path):
    speaker = tmp_path / "anna"
    speaker.mkdir()
    import soundfile as sf

    sf.write(speaker / "c1.wav", _speech(1.0), 16000)
    n = 25
    save_motion(speaker / "c1.npz", Motion(25.0, np.zeros((n, 100), np.float32), np.zeros((n, 3), np.float32),
                                           np.zeros((n, 3), np.float32), np.zeros((n, 3), np.float32), np.zeros((n, 6), np.float32)))
    (speaker / "c1.txt").write_text("A woman is calm.\n\nShe speaks softly.\n")
    (speaker / "c1.json").write_text(json.dumps({"split": "val", "emotion": "neutral"}))
    sf.write(speaker / "c2.wav", _speech(1.0), 16000)  # no motion: skipped
    records = load_real_layout(tmp_path)
    assert [r.id for r in records] == ["anna/c1"]
    assert records[0].instructions == ["A woman is calm.", "She speaks softly."] and records[0].split == "val"
    assert records[0].motion().n_frames == n
    with pytest.raises(DatasetError, match="no <speaker>/<clip>.wav"):
        load_real_layout(speaker)  # the speaker folder itself has no <speaker>/ level
    (speaker / "c1.npz").unlink()
    with pytest.raises(DatasetError, match="no motion file"):
        load_real_layout(tmp_path)


def test_subset_keeps_every_test_clip_and_links_the_clips(tmp_path):
    import json

    from backend.corpus.build import write_subset

    corpus = tmp_path / "corpus"
    (corpus / "clips").mkdir(parents=True)
    rows = [{"id": f"c{i}", "split": "test" if i % 4 == 0 else "train"} for i in range(20)]
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = write_subset(corpus, tmp_path / "sub", 6, seed=1)
    chosen = [json.loads(line) for line in (tmp_path / "sub" / "manifest.jsonl").read_text().splitlines()]
    assert result == {"clips_in_manifest": 11, "train_and_val": 6}
    assert sum(r["split"] == "test" for r in chosen) == 5 and len(chosen) == 11
    assert (tmp_path / "sub" / "clips").resolve() == (corpus / "clips").resolve()
    with pytest.raises(ValueError, match="between 1 and 15"):
        write_subset(corpus, tmp_path / "sub2", 16)


def test_paraphrases_are_deterministic_and_fit_the_speaker():
    a = paraphrases("angry", "female", seed=3, count=5)
    assert a == paraphrases("angry", "female", seed=3, count=5) and len(set(a)) == 5
    assert all(t.endswith(".") and "{" not in t for t in a)
    assert not any(re.search(r"\b(he|his|him|himself|man|guy)\b", t.lower()) for t in a)
    unknown = paraphrases("sad", None, seed=1, count=len(PARAPHRASES["sad"]))
    assert len(unknown) == len(PARAPHRASES["sad"]) and not any(re.search(r"\b(she|her|herself|he|his)\b", t.lower()) for t in unknown)
    assert set(PARAPHRASES) == set(EMOTIONS)
    with pytest.raises(ValueError):
        paraphrases("bored", "male", seed=0, count=2)


def test_paraphrases_keep_the_follow_sets_unseen_wording_unseen():
    generic = {"a", "an", "the", "is", "he", "she", "his", "her", "him", "who", "with", "in", "on", "at", "of", "to", "as", "if",
               "it", "and", "from", "for", "up", "down", "out", "off", "by", "than", "so", "not", "no", "all", "this", "that", "be", "can", "without", "any", "just", "has", "face", "voice", "talks", "speaks", "sounds", "lip", "eyes", "wide"}
    ours = {w for phrases in PARAPHRASES.values() for p in phrases for w in re.findall(r"[a-z']+", p.lower())}
    for emotion, text in follow_set():
        if unseen(text):
            shared = set(re.findall(r"[a-z']+", text.lower())) & ours - generic
            assert not shared, (text, shared)
