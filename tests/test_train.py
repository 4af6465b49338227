"""Training CLI on a tiny synthetic corpus: every phase runs, resumes, and `all` writes
checkpoints the pipeline accepts. Tiny model configs, a tiny random Llama with a
word-level tokenizer, and small frozen stand-in encoders keep it to seconds."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import save_tiny_llm
import soundfile as sf
import torch

from backend.corpus.dataset import load_corpus
from backend.checkpoint import read_checkpoint
from backend.stage1.instructor import load_stage1
from backend.stage2.model import load_stage2
from backend.motion import Motion, save_motion
from backend.speech.base import SpeechEncoder
from backend.stage1.templates import TEMPLATES
from backend.train import main
from backend.train.cache import build_speech_cache, build_text_cache, phrasings, speech_cache_path, text_cache_path
from backend.train.context import TrainOptions
from backend.corpus.dataset import ClipRecord
from backend.train.data import TrainData, augment_text, bilabial_frames, source_of, window_batch, words_batch, words_of, Clip

EMOTIONS = ("happy", "sad", "angry", "neutral")
KIND = "tiny-test"  # speech encoder kind of the prebuilt cache: the real encoder never loads
STAGE1 = {"qformer": {"hidden": 16, "n_queries": 2, "n_layers": 1, "n_heads": 2, "embed_dim": 16, "words_dim": 384}}
STAGE2 = {
    "style_dim": 8, "cond_dim": 8, "n_ref_frames": 8, "content": {"hidden": 16}, "generator": {"hidden": 16, "layers": 1, "heads": 2, "radius": 4},
    "style_encoder": {"hidden": 16, "layers": 1, "heads": 2}, "instruction": {"hidden": 16, "proj_dim": 8},
    "prior": {"hidden": 16, "layers": 1, "heads": 2, "timesteps": 20, "sample_steps": 2},
}


class TinySpeech(SpeechEncoder):
    """Frame energies through a fixed random linear map: a real (if crude) speech feature."""

    name, dim, native_rate = KIND, 8, 50.0

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, self.dim)
        self.calls = 0

    def _encode_window(self, samples):
        self.calls += 1
        hop = 320  # 50 frames/s
        n = max(1, len(samples) // hop)
        frames = samples[: n * hop].reshape(n, hop)  # (T, hop)
        stats = torch.stack([frames.abs().mean(1), frames.std(1), frames.max(1).values, frames.min(1).values], dim=1)
        return self.proj(stats)  # (T, 8)


class HashText:
    """Bag of hashed words, unit length, 384-d: similar sentences land close together."""

    def encode(self, texts):
        out = torch.zeros(len(texts), 384)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, sum(map(ord, word)) * 7919 % 384] += 1.0
        return torch.nn.functional.normalize(out, dim=-1)


def write_corpus(root, n_clips=10):
    rng = np.random.default_rng(0)
    (root / "clips").mkdir(parents=True)
    rows = []
    for i in range(n_clips):
        clip_id = f"c{i:03d}"
        emotion = EMOTIONS[i % len(EMOTIONS)]
        seconds = float(rng.uniform(1.0, 2.5))
        sf.write(root / "clips" / f"{clip_id}.wav", (rng.normal(size=int(16000 * seconds)) * 0.1).astype(np.float32), 16000)
        motion = Motion.zeros(round(seconds * 25), 100, 25.0)
        motion.expression[:] = rng.normal(size=motion.expression.shape) * 0.3
        motion.jaw_pose[:, 0] = np.abs(rng.normal(size=motion.n_frames)) * 0.1
        save_motion(root / "clips" / f"{clip_id}.npz", motion)
        row = {
            "id": clip_id, "wav": f"clips/{clip_id}.wav", "motion": f"clips/{clip_id}.npz", "split": "val" if i >= n_clips - 2 else "train",
            "emotion": emotion, "intensity": "moderate",
            "instructions": [f"A man is {emotion} and speaks with raised brows.", f"The woman looks very {emotion}."],
            "transcript": f"I feel {emotion} about it", "language": "it" if i == 0 else "en",
        }
        (root / "clips" / f"{clip_id}.json").write_text(json.dumps(row))
        rows.append(row)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_tiny_llm(folder):
    text = " ".join(TEMPLATES) + " " + " ".join(f"A The man woman is looks very speaks with raised brows {e} eyebrows lifted" for e in EMOTIONS)
    save_tiny_llm(folder, text, seed=1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    corpus = root / "corpus"
    write_corpus(corpus)
    records = load_corpus(corpus)
    build_speech_cache(records, speech_cache_path(corpus / "cache", KIND), encoder=TinySpeech())
    n_paraphrase = TrainOptions(corpus).n_paraphrase
    sentences = [s for r in records for s in phrasings(r, 1, n_paraphrase)] + [w for w in map(words_of, records) if w]
    build_text_cache(sentences, text_cache_path(corpus / "cache"), encoder=HashText())
    write_tiny_llm(root / "llm")
    return root, corpus


def args(root, corpus, phase, run="run", *extra):
    return [phase, "--corpus", str(corpus), "--run", str(root / run), "--out", str(root / run / "weights"), "--llm", str(root / "llm"),
            "--speech-encoder", KIND, "--stage1-config", json.dumps(STAGE1), "--stage2-config", json.dumps(STAGE2),
            "--batch-size", "4", "--device", "cpu", *extra]


def log_rows(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_all_trains_every_phase_and_writes_trained_checkpoints(setup):
    root, corpus = setup
    assert main(args(root, corpus, "all", "run_all", "--steps", "3")) == 0
    rows = log_rows(root / "run_all")
    for phase in ("stage2-talking", "stage2-instruction", "stage1-qformer", "stage1-projection"):
        losses = [r["total"] for r in rows if r["phase"] == phase and "total" in r]
        assert losses and all(math.isfinite(v) for v in losses), phase
        assert any(r["phase"] == phase and r.get("event") == "validation" for r in rows), phase
    validation = {r["phase"]: r for r in rows if r.get("event") == "validation"}
    assert math.isfinite(validation["stage2-talking"]["val_recon"])
    assert 0.0 <= validation["stage1-projection"]["val_emotion_word_acc"] <= 1.0
    assert 0.0 <= validation["stage2-instruction"]["val_style_emotion_acc"] <= 1.0

    weights = root / "run_all" / "weights"
    _, _, extra1 = read_checkpoint(weights / "stage1.safetensors", "stage1")
    assert extra1["trained"] is True and extra1["speech_encoder"] == KIND and extra1["llm"] == "llm"
    stage1 = load_stage1(weights / "stage1.safetensors")
    stage1 = stage1[0] if isinstance(stage1, tuple) else stage1
    assert stage1.config.qformer.n_queries == 2 and stage1.config.instructor.llm_dim == 16
    assert stage1.config.qformer.words_dim == 384  # asked for: the clips' transcripts are read beside the speech
    stage2, extra2 = load_stage2(weights / "stage2.safetensors", require_trained=True)
    assert extra2["speech_encoder"] == KIND and extra2["steps"]["stage2-talking"] == 3
    assert stage2.config.content.speech_dim == TinySpeech.dim
    assert float(stage2.motion_std.min()) > 0 and not torch.allclose(stage2.motion_std, torch.ones_like(stage2.motion_std))
    # clips of one emotion share phrasings: each distinct sentence takes one bank row
    distinct = {t for r in load_corpus(corpus, split="train") for t in phrasings(r, 1, TrainOptions(corpus).n_paraphrase)}
    assert len(stage2.instruction.bank) == len(distinct)
    # instructions are also read through the run's LLM, cached beside MiniLM's embeddings
    assert stage2.config.lm_text_dim == 16 and extra2["llm"] == "llm"
    assert (corpus / "cache" / "text-llm.safetensors").is_file()


def test_instruction_phase_can_read_minilm_alone(setup):
    root, corpus = setup
    assert main(args(root, corpus, "stage2-talking", "run_minilm", "--steps", "1")) == 0
    assert main([*args(root, corpus, "stage2-instruction", "run_minilm", "--steps", "2"),
                 "--stage2-config", json.dumps({**STAGE2, "instruction": {**STAGE2["instruction"], "lm_dim": 0}})]) == 0
    stage2, extra = load_stage2(root / "run_minilm" / "stage2-instruction" / "model.safetensors")
    assert stage2.config.lm_text_dim == 0 and "llm" not in extra
    assert stage2.config.instruction.part_drop == 0.0  # nothing to drop with one text part
    assert stage2.sample_style(torch.randn(1, stage2.config.instruction.text_dim)).shape == (1, stage2.config.style_dim)


def test_phase_resumes_from_its_saved_step(setup, capsys):
    root, corpus = setup
    assert main(args(root, corpus, "stage2-talking", "run_resume", "--steps", "2")) == 0
    assert main(args(root, corpus, "stage2-talking", "run_resume", "--steps", "4")) == 0
    state = torch.load(root / "run_resume" / "stage2-talking" / "state.pt", weights_only=True)
    assert state["step"] == 4 and state["done"]
    steps = [r["step"] for r in log_rows(root / "run_resume") if r["phase"] == "stage2-talking" and "total" in r]
    assert steps == [2, 4]  # the second run logged only its own two steps
    assert '"resumed_from": 2' in capsys.readouterr().out


def test_stage2_prior_is_an_alias_of_stage2_talking(setup):
    root, corpus = setup
    assert main(args(root, corpus, "stage2-prior", "run_alias", "--steps", "1")) == 0
    stage2, extra = load_stage2(root / "run_alias" / "stage2-talking" / "model.safetensors")
    assert extra["phase"] == "stage2-talking" and extra["steps"] == 1
    assert stage2.config.generator.layers == 1  # the nested --stage2-config reached the model


def test_steps_are_fixed_unless_a_budget_is_asked_for():
    from backend.train.context import DEFAULTS, TrainOptions

    plain = TrainOptions(corpus=Path("."))
    assert plain.budget_minutes is None
    steps, batch, lr, limit = plain.phase("stage2-talking")
    assert (steps, batch, lr, limit) == (DEFAULTS["stage2-talking"].steps, DEFAULTS["stage2-talking"].batch_size, DEFAULTS["stage2-talking"].lr, None)
    assert TrainOptions(corpus=Path("."), steps=7).phase("stage1-qformer")[0] == 7
    steps, _, _, limit = TrainOptions(corpus=Path("."), budget_minutes=5.5).phase("stage2-talking")
    assert steps < DEFAULTS["stage2-talking"].steps and limit is not None


def test_later_phase_needs_its_dependency(setup):
    root, corpus = setup
    with pytest.raises(FileNotFoundError, match="stage2-talking"):
        main(args(root, corpus, "stage2-instruction", "run_missing", "--steps", "1"))


def test_bad_options_are_rejected(setup):
    root, corpus = setup
    with pytest.raises(ValueError, match="--steps"):
        main(args(root, corpus, "stage2-talking", "run_bad", "--steps", "0"))
    with pytest.raises(ValueError, match="JSON"):
        main([*args(root, corpus, "stage2-talking", "run_bad"), "--stage2-config", "{nope"])
    with pytest.raises(ValueError, match="unknown config field 'generator.layer'"):  # typos are not dropped silently
        main([*args(root, corpus, "stage2-talking", "run_bad"), "--stage2-config", json.dumps({"generator": {"layer": 2}})])
    with pytest.raises(ValueError, match="unknown config field 'hidden'"):  # format 1's flat names are gone
        main([*args(root, corpus, "stage2-talking", "run_bad"), "--stage2-config", json.dumps({"hidden": 16})])
    wide = json.dumps({"qformer": {**STAGE1["qformer"], "words_dim": 100}})
    with pytest.raises(ValueError, match="words_dim 100 needs English transcripts"):
        main([*args(root, corpus, "stage1-qformer", "run_bad", "--steps", "1"), "--stage1-config", wide])


def test_speech_cache_only_encodes_missing_clips(setup, tmp_path):
    _, corpus = setup
    records = load_corpus(corpus)
    encoder = TinySpeech()
    path = tmp_path / "speech.safetensors"
    build_speech_cache(records[:3], path, encoder=encoder)
    assert encoder.calls == 3
    feats = build_speech_cache(records, path, encoder=encoder)
    assert encoder.calls == len(records) and set(feats) == {r.id for r in records}
    assert feats[records[0].id].dtype == torch.float16 and feats[records[0].id].shape[1] == TinySpeech.dim
    build_speech_cache(records, path, load=lambda: pytest.fail("a complete cache must not load the encoder"))


def test_augment_text_swaps_and_drops_words_but_keeps_content():
    rng = np.random.default_rng(0)
    text = "A man is very angry and speaks with raised eyebrows."
    outs = {augment_text(text, rng, p_swap=0.5, p_drop=0.5) for _ in range(50)}
    assert len(outs) > 1
    assert all("angry" in o and o.endswith(".") for o in outs)
    assert augment_text("the", np.random.default_rng(0), p_drop=1.0) == "the"


def test_phrasings_add_paraphrases_unless_the_emotion_is_slight():
    from backend.corpus.paraphrases import PARAPHRASES

    def record(emotion, intensity, gender="female", rid="c1"):
        return ClipRecord(rid, None, None, ["A woman is angry."], emotion=emotion, intensity=intensity, meta={"gender": gender})

    strong = phrasings(record("angry", "strong"), 0, 4)
    assert strong[0] == "A woman is angry." and len(strong) == 5
    predicates = [p.format(pos="her", obj="her", refl="herself") for p in PARAPHRASES["angry"]]
    assert all(any(t.endswith(p + ".") for p in predicates) for t in strong[1:])
    assert strong == phrasings(record("angry", "strong"), 0, 4) != phrasings(record("angry", "strong", rid="c2"), 0, 4)
    assert phrasings(record("angry", "slight"), 0, 4) == ["A woman is angry."]
    assert len(phrasings(record("angry", None), 0, 4)) == 5  # a capture labelled without intensity
    assert phrasings(record(None, None), 0, 4) == ["A woman is angry."]
    assert phrasings(record("angry", "strong"), 0, 0) == ["A woman is angry."]
    assert not any(" her" in t or "She" in t for t in phrasings(record("sad", "moderate", gender="unknown"), 0, 6)[1:])


def test_projection_targets_name_the_emotion_and_find_its_words():
    from types import SimpleNamespace

    from backend.train.projection import emotion_spans, naming_phrasings

    text = "A man is over the moon and speaks with a grin; over-the-moon, he is Happy."
    assert [text[a:b] for a, b in emotion_spans(text, "happy")] == ["over the moon", "Happy"]
    assert emotion_spans(text, "sad") == [] and emotion_spans(text, None) == []
    record = SimpleNamespace(emotion="angry", instructions=["He speaks with brows pulled down.", "A furious man speaks with brows pulled down."])
    assert naming_phrasings(record) == ["A furious man speaks with brows pulled down."]
    unnamed = SimpleNamespace(emotion="angry", instructions=["He speaks with brows pulled down."])
    assert naming_phrasings(unnamed) == unnamed.instructions
    unknown = SimpleNamespace(emotion=None, instructions=["A calm voice.", "Someone speaks."])
    assert naming_phrasings(unknown) == unknown.instructions


def test_window_batch_takes_reference_frames_outside_the_window():
    motion = torch.arange(200, dtype=torch.float32)[:, None].expand(200, 115).clone()  # frame index in every channel
    clip = Clip(None, torch.zeros(200, 8, dtype=torch.float16), motion, torch.zeros(1, 384), ["x"], 0)
    short = Clip(None, torch.zeros(30, 8, dtype=torch.float16), motion[:30], torch.zeros(1, 384), ["x"], 1)
    batch = window_batch([clip, short], np.random.default_rng(0), 50, 60, 16)
    T = batch["motion"].shape[1]
    assert 50 <= T <= 60 and batch["speech"].shape == (2, T, 8)
    window = set(batch["motion"][0, :, 0].tolist())
    refs = set(batch["ref_motion"][0, :, 0].tolist())
    assert not window & refs and not batch["ref_mask"][0].any()
    assert batch["mask"][1, 30:].all() and not batch["mask"][1, :30].any()  # the short clip is padded


def test_bilabial_frames_follow_the_alignment_and_reach_the_batch():
    phones = [("SIL", 0.0, 0.2), ("M", 0.2, 0.32), ("AA", 0.32, 0.6), ("P", 0.6, 0.63), ("AH", 0.63, 0.8)]
    record = ClipRecord("c", None, None, ["x"], phones=phones)
    frames = bilabial_frames(record, 20)  # 25 fps: frame k at k / 25 s
    assert frames.dtype == torch.bool and frames.shape == (20,)
    assert frames[5:8].all() and not frames[:5].any() and not frames[8:15].any()
    assert frames[15]  # the 30 ms P owns the frame nearest its middle
    assert bilabial_frames(ClipRecord("c", None, None, ["x"]), 20) is None
    clip = Clip(record, torch.zeros(20, 8, dtype=torch.float16), torch.zeros(20, 115), torch.zeros(1, 384), ["x"], 0, frames)
    batch = window_batch([clip], np.random.default_rng(0), 20, 20, 4)
    assert torch.equal(batch["bilabial"][0], frames)


def test_balanced_sampling_draws_each_source_equally():
    def clip(source):
        return Clip(ClipRecord("c", None, None, ["x"], meta={"source": source}), torch.zeros(2, 8), torch.zeros(2, 115),
                    torch.zeros(1, 384), ["x"], 0)

    data = TrainData([clip("espeak") for _ in range(90)] + [clip("recording") for _ in range(10)])
    rng = np.random.default_rng(0)
    share = np.mean([c.record.meta["source"] == "recording" for _ in range(200) for c in data.sample(rng, 8, balance_by=source_of)])
    assert 0.4 < share < 0.6
    plain = np.mean([c.record.meta["source"] == "recording" for _ in range(200) for c in data.sample(rng, 8)])
    assert plain < 0.2


def test_qformer_loss_stays_finite_for_large_batches_with_repeated_clips():
    """Batches over 25 with repeated instructions once gave NaN (inexact cdist on the diagonal)."""
    from backend.stage1.qformer import QFormer, QFormerConfig

    torch.manual_seed(0)
    qformer = QFormer(QFormerConfig(audio_dim=8, hidden=16, n_queries=2, n_layers=1, n_heads=2, embed_dim=16))
    text = torch.nn.functional.normalize(torch.randn(16, 384), dim=-1)[torch.arange(32) % 16]  # (32, 384), each twice
    loss = qformer.contrastive_loss(qformer(torch.randn(32, 20, 8)), text)
    assert torch.isfinite(loss)


def test_words_are_english_transcripts_and_some_are_dropped_in_training():
    def record(transcript, language=None):
        meta = {"language": language} if language else {}
        return ClipRecord("c", None, None, ["A calm man."], transcript=transcript, meta=meta)

    assert words_of(record("  I  feel fine ")) == "I feel fine"  # no language given: English
    assert words_of(record("I feel fine", "en-us")) == "I feel fine"
    assert words_of(record("Mi sento bene", "it")) is None and words_of(record("")) is None and words_of(record(None)) is None
    clips = [Clip(None, torch.zeros(3, 2), torch.zeros(3, 4), torch.zeros(1, 384), ["x"], 0, words_emb=torch.ones(384) * (i + 1))
             for i in range(200)]
    clips[0].words_emb = None
    batch = words_batch(clips)
    assert batch.shape == (200, 384) and batch[0].abs().sum() == 0 and torch.equal(batch[5], clips[5].words_emb)
    dropped = (words_batch(clips, np.random.default_rng(0), 0.25).abs().sum(dim=1) == 0).float().mean()
    assert 0.15 < float(dropped) < 0.35


def test_transcripts_are_read_only_when_stage1_asks(setup):
    from backend.train.context import Context

    root, corpus = setup
    opts = {"corpus": corpus, "run": root / "run_ctx", "speech_encoder": KIND, "device": "cpu"}
    plain, _ = Context(TrainOptions(**opts)).data()
    assert all(c.words_emb is None for c in plain.clips)
    train, _ = Context(TrainOptions(**opts, stage1_config={"qformer": {"words_dim": 384}})).data()
    heard = {c.record.id: c.words_emb is not None for c in train.clips}
    assert not heard["c000"] and sum(heard.values()) == len(heard) - 1  # c000 is Italian
