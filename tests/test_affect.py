"""The affect reader: prosodic cues, the head, the sentence its decision writes, the acted lines' table."""

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.stage1.affect import EMOTIONS, N_WORDS, Affect, AffectConfig, Reading, load_affect, pool, read_words, save_affect
from backend.stage1.cues import CUE_NAMES, N_CUES, cues
from backend.stage1.wording import (SUITS, parse_actions, prefix, steered_sentence, template_sentence, well_formed)

RATE = 16000


def voice(f0=120.0, seconds=1.2, level=0.3, glide_st=0.0, seed=0):
    """A buzzy vowel-like tone: harmonics of ``f0`` (gliding by ``glide_st`` semitones), syllable-like loudness bursts."""
    t = np.arange(int(seconds * RATE)) / RATE
    f = f0 * 2 ** (glide_st * t / seconds / 12)
    phase = 2 * np.pi * np.cumsum(f) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    bursts = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    return (level * x * bursts / np.abs(x).max() + np.random.default_rng(seed).normal(0, 1e-3, len(t))).astype(np.float32)


def values(samples):
    return dict(zip(CUE_NAMES, cues(samples).tolist()))


def test_cues_read_pitch_level_and_movement():
    low, high = values(voice(110.0)), values(voice(220.0))
    assert abs(100 * 2 ** low["f0_log"] - 110) < 6 and abs(100 * 2 ** high["f0_log"] - 220) < 10
    flat, glide = values(voice(150.0)), values(voice(150.0, glide_st=10.0))
    assert glide["f0_range_st"] > flat["f0_range_st"] + 4 and glide["f0_slope_st"] > 4
    assert flat["voiced_share"] > 0.8 and 2.0 < flat["rate_per_s"] < 16.0


def test_cues_do_not_depend_on_the_recording_gain():
    x = voice(level=0.5)
    np.testing.assert_allclose(cues(x * 0.1), cues(x), atol=1e-3)


def test_cues_of_silence_and_bad_input():
    assert cues(np.zeros(RATE, np.float32)).shape == (N_CUES,) and not cues(np.zeros(RATE, np.float32)).any()
    assert not cues(np.ones(10, np.float32)).any()  # shorter than one frame
    with pytest.raises(ValueError, match="mono"):
        cues(np.zeros((2, RATE), np.float32))


def tiny_affect(**kw):
    torch.manual_seed(0)
    return Affect(AffectConfig(audio_dim=8, hidden=16, **kw))


def test_affect_shapes_and_decision():
    model = tiny_affect().eval()
    logits, effort, sex = model(torch.randn(3, 16), torch.randn(3, N_CUES), torch.randn(3, N_WORDS))
    assert logits.shape == (3, len(EMOTIONS)) and effort.shape == (3,) and sex.shape == (3,)
    assert ((effort >= 0) & (effort <= 2)).all()
    reading = model.decide(torch.randn(1, 16), torch.randn(1, N_CUES), torch.randn(1, N_WORDS))
    assert abs(sum(reading.probabilities.values()) - 1) < 1e-5
    assert reading.emotion is None or reading.probabilities[reading.emotion] >= model.config.min_emotion_p
    sure = max(reading.female_p, 1 - reading.female_p) >= model.config.sure_sex_p
    assert (reading.sex is not None) == sure


def test_affect_checkpoint_round_trip(tmp_path):
    model = tiny_affect()
    model.cue_mean.fill_(3.0)
    save_affect(tmp_path / "affect.safetensors", model, extra={"trained": True})
    again, extra = load_affect(tmp_path / "affect.safetensors")
    assert extra == {"trained": True} and again.config == model.config and not again.training
    x = (torch.randn(2, 16), torch.randn(2, N_CUES), torch.randn(2, N_WORDS))
    model.eval()
    torch.testing.assert_close(model(*x)[0], again(*x)[0])


def test_pool_is_mean_and_spread_over_time():
    feats = torch.arange(12.0).view(1, 3, 4)
    out = pool(feats)
    assert out.shape == (1, 8) and torch.allclose(out[0, :4], feats[0].mean(0)) and torch.allclose(out[0, 4:], feats[0].std(0, unbiased=False))
    assert torch.equal(pool(feats[:, :1])[0, 4:], torch.zeros(4))  # one frame: no spread


class FakeEncoder:
    """Bag-of-letters 'sentence embeddings': texts sharing words are close."""

    def encode(self, texts):
        out = torch.zeros(len(texts), 26)
        for i, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        return torch.nn.functional.normalize(out, dim=-1)


def test_read_words_compares_with_each_emotions_prototypes_and_flags_missing_words():
    enc = FakeEncoder()
    prototypes = [enc.encode(["zzz"]) if e == "angry" else enc.encode(["qqq"]) for e in EMOTIONS]
    out = read_words(enc, prototypes, ["zzz zzz", ""])
    assert out.shape == (2, N_WORDS)
    assert out[0, EMOTIONS.index("angry")] > 0.99 and out[0, -1] == 1
    assert not out[1].any()  # no words: zeros and the flag off


def reading(emotion, effort=1.0, sex=None, **cue_values):
    return Reading(emotion, {}, effort, sex, 0.5, cue_values)


def test_template_sentences_are_well_formed_name_the_emotion_and_the_speaker():
    from backend.emotions import named_emotions

    for emotion in EMOTIONS:
        for effort in (0.2, 1.0, 1.9):
            for sex in ("male", "female", None):
                text = template_sentence(reading(emotion, effort, sex))
                assert well_formed(text), text
                assert emotion in named_emotions(text), text
                assert text.startswith({"male": "A man ", "female": "A woman ", None: "A person "}[sex])


def test_uncertain_sentences_say_what_is_certain_never_calm():
    from backend.emotions import named_emotions

    raised = template_sentence(reading(None, 1.8))
    hushed = template_sentence(reading(None, 0.3, rate_per_s=2.5))
    assert "raised" in raised and "hushed, slow and low" in hushed
    for text in (raised, hushed, template_sentence(reading(None, 1.0, f0_range_st=12.0)), template_sentence(reading(None, 1.0))):
        assert well_formed(text) and named_emotions(text) == set(), text


def test_steered_sentence_keeps_a_suitable_face_and_falls_back_otherwise():
    angry = reading("angry", 1.9, "female")
    assert prefix(angry) == "A woman is furious and speaks with"
    kept = steered_sentence(angry, " brows deeply furrowed and lips very tense.")
    assert kept == "A woman is furious and speaks with brows deeply furrowed and lips very tense." and well_formed(kept)
    for bad in ("lip corners pulled up in a smile.", "an air pulled up, often seen in the mouth.", "brows knitted", ""):
        assert steered_sentence(angry, bad) == template_sentence(angry)


def test_well_formed_rejects_broken_sentences():
    for text in ("A man is a bit of someone who speaks with an air pulled up, often seen in the mouth.",
                 "A female speaker is a little bit off-kilter.", "A woman is neutral and", "", "brows pulled down."):
        assert not well_formed(text), text
    assert well_formed("The woman talks with brows pulled down and lips tightened, looking angry.")
    assert parse_actions("a still, relaxed face") == ["neutral"] and parse_actions("eyes wide open and jaw dropped") == ["eye_wide", "jaw_drop"]
    assert all(groups for groups in SUITS.values())


def test_corpus_instructions_are_well_formed():
    from backend.corpus.instructions import instructions

    for seed in range(30):
        for emotion in EMOTIONS:
            actions = [] if emotion == "neutral" else [("brow_lower", 0.6), ("squint", 0.2), ("smile", 0.4)]
            for text in instructions(emotion, "moderate", "female" if seed % 2 else "male", actions, seed):
                assert well_formed(text), text


# ---- the acted lines' table ---------------------------------------------------------------


def test_event_table_uses_the_eight_emotions_and_keeps_held_out_packs_out():
    from backend.corpus import acted

    assert {e for e, _, _ in acted.EVENTS.values()} <= set(EMOTIONS)
    assert all(effort in (0, 1, 2) for _, _, effort in acted.EVENTS.values())
    assert not set(acted.EVENTS) & set(acted.UNLABELLED)
    assert acted.event_of("Ooff2.ogg") == "Ooff" and acted.event_of("Uh-oh.ogg") == "Uh-oh"
    for held_out in ("British", "Classic", "Default", "Mobster", "Pirate"):
        assert held_out not in acted.PACKS
        with pytest.raises(ValueError, match="may use"):
            acted.acted_lines(packs=(held_out,))
    source = Path(acted.__file__).read_text()
    assert not any(f'"{p}"' in source for p in ("British", "Classic", "Default", "Mobster", "Pirate"))


def test_acted_lines_read_a_pack_folder(tmp_path):
    from backend.corpus import acted

    (tmp_path / "Surfer").mkdir()
    for name in ("Victory.ogg", "Ow3.ogg", "Oops.ogg", "Illgetyou.ogg"):
        (tmp_path / "Surfer" / name).write_bytes(b"")
    lines = acted.acted_lines(tmp_path)
    assert [(line.event, line.emotion, line.trusted) for line in lines] == [
        ("Illgetyou", "angry", True), ("Oops", "surprised", False), ("Victory", "happy", True)]
    assert [line.event for line in acted.acted_lines(tmp_path, trusted_only=True)] == ["Illgetyou", "Victory"]


@pytest.mark.skipif(not (Path("/usr/share/games/hedgewars/Data/Sounds/voices") / "Surfer").is_dir(),
                    reason="hedgewars-data is not installed (apt-get install hedgewars-data)")
def test_installed_packs_have_labelled_lines_of_every_pack():
    from backend.corpus import acted

    lines = acted.acted_lines()
    packs = {line.pack for line in lines}
    assert packs == set(acted.PACKS)
    assert sum(line.trusted for line in lines) > 200
    assert all(Path(line.path).parent.name in acted.PACKS for line in lines)


# ---- training ---------------------------------------------------------------------------------


def toy_set(n_per=12, groups=("a", "b", "c"), seed=0):
    """Clips whose cues carry the emotion (first cue = class index); their pooled speech is the same for all."""
    rng = np.random.default_rng(seed)
    meta, cue_rows = [], []
    for g in groups:
        for k, emotion in enumerate(("neutral", "angry", "sad")):
            for _ in range(n_per):
                meta.append({"emotion": emotion, "effort": float(k == 1) + 1.0, "sex": ("male", "female")[k % 2],
                             "group": g, "weight": 1.0, "trusted": True})
                row = rng.normal(0, 0.3, N_CUES)
                row[0] += 3 * k
                cue_rows.append(row)
    n = len(meta)
    return {"pooled": np.tile(rng.normal(0, 1, (1, 768)), (n, 1)).astype(np.float32), "cues": np.array(cue_rows, np.float32),
            "words": np.zeros((n, N_WORDS), np.float32), "meta": meta}


def test_fit_learns_cues_and_leave_one_group_out_scores_each_group():
    from backend.train import affect

    data = toy_set()
    report = affect.leave_one_group_out(data, ["a", "b", "c"], steps=400)
    assert report["lines"] == len(data["meta"]) and set(report["per_group_accuracy"]) == {"a", "b", "c"}
    assert report["accuracy_all"] > 0.8
    assert sum(sum(row.values()) for row in report["confusion"].values()) == len(data["meta"])
    assert 0 <= report["emotional_called_neutral"] <= 1 and report["neutral_lines"] == 36


# ---- in the pipeline ----------------------------------------------------------------------------


class FixedTranscriber:
    def __init__(self, text):
        from backend.speech.asr import Heard

        self.heard = [Heard(text, 0.0, 1.0, -0.2, no_speech=0.05)]

    def transcribe(self, samples, encoded=None):
        return self.heard


def test_pipeline_reads_affect_and_writes_a_well_formed_sentence(tmp_path):
    from helpers import speech_like, tiny_checkpoints

    from backend.audio import load_audio
    from backend.pipeline import AFFECT_FILE, Pipeline, PipelineConfig

    folder = tiny_checkpoints(tmp_path, trained=True)
    model = Affect(AffectConfig())
    torch.manual_seed(0)
    model.emotion.bias.data = torch.tensor([0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # a sure 'angry' whatever it hears
    model.effort.bias.data.fill_(5.0)  # shouted
    save_affect(folder / AFFECT_FILE, model, extra={"trained": True})
    audio = load_audio((speech_like(1.0, 5, RATE), RATE))
    for steer in (True, False):
        pipe = Pipeline(PipelineConfig(checkpoint_dir=folder, device="cpu", steer_llm=steer))
        pipe._transcriber = FixedTranscriber("Get out of here, now!")
        analysis = pipe.analyze(audio)
        assert analysis.reading is not None and analysis.reading.emotion == "angry" and analysis.reading.intensity == "strong"
        assert analysis.words == "Get out of here, now!" and analysis.reading.cues.keys() == set(CUE_NAMES)
        assert analysis.instruction.startswith(prefix(analysis.reading)) and well_formed(analysis.instruction), analysis.instruction
        assert ("stage1" in analysis.timings) == steer and "affect" in analysis.timings
    off = Pipeline(PipelineConfig(checkpoint_dir=folder, device="cpu", affect=False, describe_samples=0))
    off._transcriber = FixedTranscriber("Get out of here, now!")
    assert off.affect is None and off.analyze(audio).reading is None
