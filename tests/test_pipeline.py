"""The pipeline as a library, the CLI and the JSON-lines server, on small random weights.

Random weights are loaded only with ``allow_untrained`` (tests and benchmarks);
the default refuses them, which is tested here too.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.audio import load_audio
from backend.errors import AviTalkError, InstructionError
from backend.pipeline import Pipeline, PipelineConfig, PipelineError, check_instruction

from helpers import speech_like, tiny_checkpoints

ROOT = Path(__file__).resolve().parents[1]


def speech(seconds=1.0, seed=0, rate=16000):
    return speech_like(seconds, seed, rate)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from backend.speech.asr import Heard

    folder = tiny_checkpoints(tmp_path_factory.mktemp("ckpt"), trained=False)
    pipe = Pipeline(PipelineConfig(checkpoint_dir=folder, device="cpu", allow_untrained=True))
    # the test signals are buzzes Whisper rightly hears as no speech: by default it hears speech without sure words
    pipe._transcriber = CountingTranscriber([Heard("", 0.0, 1.0, -2.0, no_speech=0.1)])
    return pipe


def test_missing_weights_are_refused(tmp_path):
    with pytest.raises(PipelineError, match="no trained weights") as caught:
        Pipeline(PipelineConfig(checkpoint_dir=tmp_path))
    assert caught.value.code == "no_weights" and isinstance(caught.value, AviTalkError)


def test_untrained_weights_are_refused(tmp_path):
    tiny_checkpoints(tmp_path, trained=False)
    with pytest.raises(PipelineError, match="never trained"):
        Pipeline(PipelineConfig(checkpoint_dir=tmp_path))


def test_a_negative_sample_count_is_refused(tmp_path):
    with pytest.raises(PipelineError, match="describe_samples must be 0 or more"):
        Pipeline(PipelineConfig(checkpoint_dir=tmp_path, describe_samples=-1))


def test_shipped_weights_are_trained_and_under_60_mb():
    from backend.checkpoint import read_checkpoint
    from backend.pipeline import STAGE1_FILE, STAGE2_FILE, WEIGHTS_DIR

    files = [WEIGHTS_DIR / STAGE1_FILE, WEIGHTS_DIR / STAGE2_FILE]
    assert sum(f.stat().st_size for f in files) < 60e6
    assert all(read_checkpoint(f)[2].get("trained") is True for f in files)


def test_instruction_llm_of_the_wrong_width_is_refused(tmp_path):
    tiny_checkpoints(tmp_path, lm_text_dim=7)
    pipe = Pipeline(PipelineConfig(checkpoint_dir=tmp_path, device="cpu"))
    with pytest.raises(PipelineError, match="width 7") as caught:
        pipe.sample_style("A man is angry.")
    assert caught.value.code == "model_error"


def test_bad_device_is_refused():
    with pytest.raises(PipelineError, match="auto, cpu or cuda"):
        Pipeline(PipelineConfig(device="tpu"))


@pytest.mark.parametrize("text, message", [("", "empty"), ("   ", "empty"), ("!!! ???", "no words"), ("x" * 2000, "characters long"), (None, "must be text")])
def test_bad_instructions(text, message):
    with pytest.raises(InstructionError, match=message):
        check_instruction(text)


def test_synthesize_shapes_and_metadata(pipe):
    audio = load_audio((speech(1.3), 16000))
    motion = pipe.synthesize(audio, "A man is furious, brows drawn down.", seed=4).motion
    assert motion.n_frames == round(1.3 * 25)
    assert motion.expression.shape == (motion.n_frames, 100) and motion.expression.dtype == np.float32
    assert motion.eye_pose.shape == (motion.n_frames, 6)
    assert motion.instruction == "A man is furious, brows drawn down." and motion.seed == 4
    motion.validate(100)


def test_features_are_cached_so_regenerate_runs_stage2_only(pipe):
    audio = load_audio((speech(1.0, seed=7), 16000))
    before = dict(pipe.stats)
    first = pipe.generate(audio, instruction="A calm woman, slight smile.", seed=0)
    second = pipe.generate(audio, instruction="A sad man, corners of the mouth down.", seed=1)
    assert pipe.stats["feature_runs"] == before["feature_runs"] + 1
    assert pipe.stats["stage2_runs"] == before["stage2_runs"] + 2
    assert pipe.stats["stage1_runs"] == before["stage1_runs"]  # instruction given: no stage 1
    assert "speech_features" in first.timings and "speech_features" not in second.timings
    assert not first.inferred


def test_generated_motion_blinks_per_seed_and_the_blinks_control_removes_them(pipe):
    from backend.head.components import EXPRESSION_INDEX
    from backend.refine.controls import MotionControls

    blink = EXPRESSION_INDEX["blink_L"]
    audio = load_audio((speech(8.0, seed=5), 16000))
    a = pipe.synthesize(audio, "A calm woman.", seed=1).motion
    b = pipe.synthesize(audio, "A calm woman.", seed=2).motion
    assert a.expression[:, blink].max() > 0.8 and b.expression[:, blink].max() > 0.8
    assert not np.array_equal(a.expression[:, blink], b.expression[:, blink])
    off = pipe.synthesize(audio, "A calm woman.", seed=1, controls=MotionControls(blinks=False)).motion
    assert np.all(off.expression[:, blink] == 0.0)


def test_same_seed_same_motion(pipe):
    # (that different seeds differ needs a trained prior: tests/test_stage2_prior.py)
    audio = load_audio((speech(1.0, seed=3), 16000))
    a = pipe.synthesize(audio, "A happy woman.", seed=1).motion
    b = pipe.synthesize(audio, "A happy woman.", seed=1).motion
    np.testing.assert_array_equal(a.expression, b.expression)


def test_analyze_runs_stage1_and_generate_infers(pipe):
    audio = load_audio((speech(1.0, seed=9), 16000))
    runs = pipe.stats["stage1_runs"]
    result = pipe.generate(audio, seed=0)
    assert pipe.stats["stage1_runs"] == runs + 1
    assert result.inferred and isinstance(result.instruction, str)
    assert "stage1" in result.timings and result.timings["total"] > 0


def test_progress_callback_can_cancel(pipe):
    from backend.errors import Cancelled

    audio = load_audio((speech(1.0, seed=11), 16000))
    seen = []

    def progress(stage, fraction):
        seen.append(stage)
        if stage == "stage2_prior":
            raise Cancelled()

    with pytest.raises(Cancelled):
        pipe.synthesize(audio, "A calm man.", progress=progress)
    assert seen[:2] == ["features", "stage2_prior"]


# ---- CLI ---------------------------------------------------------------------------


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_cli_generate_without_weights_says_how_to_get_them(tmp_path):
    import soundfile as sf

    wav = tmp_path / "line.wav"
    sf.write(wav, speech(1.0), 16000)
    out = run_cli("generate", str(wav), "-o", str(tmp_path / "m.npz"), "--checkpoint", str(tmp_path))
    assert out.returncode == 2
    assert "no trained weights" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "m.npz").exists()


def test_cli_bad_audio_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    out = run_cli("analyze", str(bad), "--checkpoint", str(tiny_checkpoints(tmp_path, trained=True)))
    assert out.returncode == 2
    assert "error:" in out.stderr and "Traceback" not in out.stderr


def test_cli_passes_describe_samples_to_the_pipeline(tmp_path):
    import soundfile as sf

    wav = tmp_path / "line.wav"
    sf.write(wav, speech(1.0), 16000)
    out = run_cli("analyze", str(wav), "--checkpoint", str(tiny_checkpoints(tmp_path, trained=True)), "--describe-samples", "-1")
    assert out.returncode == 2
    assert "describe_samples must be 0 or more" in out.stderr and "Traceback" not in out.stderr


def test_cli_generate_writes_a_motion_file_and_json(tmp_path):
    import soundfile as sf

    from backend.motion import load_motion

    wav = tmp_path / "line.wav"
    sf.write(wav, speech(1.2, rate=22050), 22050)
    (tmp_path / "ckpt").mkdir()
    ckpt = tiny_checkpoints(tmp_path / "ckpt", trained=True)
    out = run_cli("generate", str(wav), "-o", str(tmp_path / "m.npz"), "--instruction", "An angry man.", "--seed", "3",
                  "--checkpoint", str(ckpt), "--device", "cpu")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["instruction"] == "An angry man." and summary["frames"] == round(1.2 * 25)
    assert set(summary["seconds"]) >= {"speech_features", "stage2_prior", "stage2_generator", "total"}
    motion = load_motion(tmp_path / "m.npz")
    assert motion.n_frames == summary["frames"] and motion.seed == 3


# ---- server ------------------------------------------------------------------------


class Backend:
    """The server as Blender runs it: a subprocess spoken to in JSON lines."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, "-m", "backend", "serve", *args], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.ready = self.read()

    def send(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def read(self):
        line = self.proc.stdout.readline()
        assert line, "the server closed its output"
        return json.loads(line)

    def until(self, rid, types=("result", "error", "cancelled")):
        messages = []
        while True:
            msg = self.read()
            messages.append(msg)
            if msg.get("id") == rid and msg["type"] in types:
                return msg, messages

    def close(self):
        self.proc.stdin.close()
        return self.proc.wait(timeout=60)


def test_server_protocol(tmp_path):
    import soundfile as sf

    wav = tmp_path / "line.wav"
    sf.write(wav, speech(1.0), 16000)
    ckpt = tiny_checkpoints(tmp_path, trained=True)
    backend = Backend("--checkpoint", str(ckpt), "--device", "cpu", "--log", str(tmp_path / "log.txt"))
    try:
        assert backend.ready["type"] == "ready" and backend.ready["protocol"] == 1
        backend.send(id="x", type="dance")
        msg, _ = backend.until("x")
        assert msg["type"] == "error" and msg["code"] == "bad_request"
        backend.proc.stdin.write("{not json\n")
        backend.proc.stdin.flush()
        assert backend.read()["code"] == "bad_request"

        out = tmp_path / "take1.npz"
        backend.send(id="g1", type="generate", audio=str(wav), instruction="A calm man.", seed=2, output=str(out))
        msg, messages = backend.until("g1")
        assert msg["type"] == "result", msg
        assert msg["motion"] == str(out) and out.is_file() and msg["frames"] == 25
        assert any(m["type"] == "progress" and m["id"] == "g1" for m in messages)
        assert msg["features_cached"] is False
        assert msg["lip_seal"]["source"] in ("recognized", "none")  # no dialogue text: speech recognition
        assert any(m["type"] == "progress" and m["stage"] == "lip_seal" for m in messages)

        backend.send(id="g2", type="synthesize", audio=str(wav), instruction="A sad man.", seed=3,
                     controls={"intensity": 0.5, "blinks": False}, transcript="Bob made a map.")
        msg, _ = backend.until("g2")
        assert msg["type"] == "result", msg
        assert msg["features_cached"] is True and msg["stage1_ran"] is False
        assert msg["lip_seal"]["source"] in ("transcript", "none") and msg["lip_seal"]["text"] in ("Bob made a map.", "")

        backend.send(id="b0", type="synthesize", audio=str(wav), instruction="A sad man.", transcript=5)
        msg, _ = backend.until("b0")
        assert msg["type"] == "error" and msg["code"] == "bad_request" and "transcript" in msg["message"]

        backend.send(id="b1", type="generate", audio=str(tmp_path / "missing.wav"))
        msg, _ = backend.until("b1")
        assert msg["type"] == "error" and msg["code"] == "bad_audio" and "missing.wav" in msg["message"]

        backend.send(id="b2", type="synthesize", audio=str(wav), instruction="   ")
        msg, _ = backend.until("b2")
        assert msg["type"] == "error" and msg["code"] == "bad_instruction"

        backend.send(id="c1", type="cancel", target="g3")  # cancelled before it starts
        backend.send(id="g3", type="synthesize", audio=str(wav), instruction="A calm man.")
        msg, _ = backend.until("g3")
        assert msg["type"] == "cancelled"
    finally:
        assert backend.close() == 0
    assert (tmp_path / "log.txt").read_text()


def test_server_without_weights_reports_and_keeps_serving(tmp_path):
    backend = Backend("--checkpoint", str(tmp_path), "--log", str(tmp_path / "log.txt"))
    try:
        backend.send(id="k", type="check")
        msg, _ = backend.until("k")
        assert msg["type"] == "result" and msg["models_ok"] is False and "no trained weights" in msg["models_error"]
        assert msg["torch"] == torch.__version__
        backend.send(id="a", type="generate", audio="/nonexistent.wav")  # the audio is checked before the models load
        msg, _ = backend.until("a")
        assert msg["type"] == "error" and msg["code"] == "bad_audio"
        import soundfile as sf

        sf.write(tmp_path / "line.wav", speech(1.0), 16000)
        backend.send(id="g", type="generate", audio=str(tmp_path / "line.wav"))
        msg, _ = backend.until("g")
        assert msg["type"] == "error" and msg["code"] == "no_weights"
    finally:
        assert backend.close() == 0


# ---- lip seal ------------------------------------------------------------------------

class CountingTranscriber:
    def __init__(self, heard=(), error=None):
        self.heard, self.error, self.calls, self.encoded = list(heard), error, 0, []

    def transcribe(self, samples, encoded=None):
        self.calls += 1
        self.encoded.append(encoded)
        if self.error:
            raise self.error
        return self.heard


def test_lip_seal_closes_the_dialogue_bilabials_and_is_cached(pipe, monkeypatch):
    from backend.evaluate.geometry import default_geometry
    from backend.evaluate.run import lip_scores
    from backend.speech.lips import time_lips

    audio = load_audio(ROOT / "assets" / "demo" / "line.wav")
    text = (ROOT / "assets" / "demo" / "line.txt").read_text()
    never = CountingTranscriber(error=AssertionError("the dialogue text was given: no recognition"))
    monkeypatch.setattr(pipe, "_transcriber", never)
    first = pipe.generate(audio, instruction="A calm man.", seed=0, transcript=text)
    second = pipe.generate(audio, instruction="A furious man.", seed=1, transcript=text)
    assert first.lips.source == "transcript" and never.calls == 0
    assert "lip_timing" in first.timings and "lip_timing" not in second.timings  # Regenerate reuses the timing
    counts = lip_scores(default_geometry(), first.motion, time_lips(audio.samples, text).phones)
    assert counts.events >= 8 and counts.events_hit == counts.events  # every P, B, M closed, even on random weights


def test_lip_seal_off_and_recogniser_failures_keep_the_take(pipe, monkeypatch, tmp_path):
    audio = load_audio((speech(1.0, seed=21), 16000))
    broken = CountingTranscriber(error=RuntimeError("ctranslate2 exploded"))
    monkeypatch.setattr(pipe, "_transcriber", broken)
    result = pipe.generate(audio, instruction="A calm man.", seed=0)
    assert broken.calls == 1 and result.lips.source == "none" and "exploded" in result.lips.notes[0]
    folder = tiny_checkpoints(tmp_path, trained=False)
    plain = Pipeline(PipelineConfig(checkpoint_dir=folder, device="cpu", allow_untrained=True, lip_seal=False))
    result = plain.generate(audio, instruction="A calm man.", seed=0)
    assert result.lips is None and "lip_timing" not in result.timings and plain._transcriber is None


def test_instructions_are_read_by_minilm_and_the_llm(pipe):
    emb = pipe.text_encoder.encode(["A man is furious.", "A woman is over the moon."])
    assert emb.shape == (2, 384 + 576)
    assert torch.allclose(emb[:, :384].norm(dim=-1), torch.ones(2), atol=1e-4)  # MiniLM part unit length
    assert not torch.allclose(emb[0, 384:], emb[1, 384:])


def test_long_audio_is_encoded_once_for_features_and_recognition(pipe, monkeypatch):
    """Past one recognition chunk, too, the decoder reads the windows the speech features came from."""
    from backend.speech.asr import Heard, chunks

    heard = CountingTranscriber([Heard("", 0.0, 1.0, -0.2)])
    monkeypatch.setattr(pipe, "_transcriber", heard)
    runs = []
    encode = pipe.style_encoder.encode_padded
    monkeypatch.setattr(pipe.style_encoder, "encode_padded", lambda x: runs.append(len(x)) or encode(x))
    audio = load_audio((speech(45.0, seed=5), 16000))
    feats = pipe.features(audio)
    assert feats["style"].shape[1] == 45 * 25
    pipe.heard(audio)
    spans = chunks(audio.samples)
    assert len(spans) == 2 and runs == [end - start for start, end in spans]  # one encoder run per chunk, no other
    assert heard.encoded[0].shape == (2, 1500, 384) and "whisper_windows" not in pipe.features(audio)  # handed over once


def test_stage1_reads_the_dialogue_text_or_what_whisper_heard(pipe, monkeypatch):
    from backend.speech.asr import Heard

    seen = []
    describe = pipe.stage1.describe
    options = []
    monkeypatch.setattr(pipe.stage1, "describe", lambda *a, words=None, **k: seen.append(words) or options.append(k) or describe(*a, words=words, **k))
    heard = CountingTranscriber([Heard("I am so angry with you.", 0.0, 1.0, -0.2), Heard("mumble", 1.0, 2.0, -2.5)])
    monkeypatch.setattr(pipe, "_transcriber", heard)
    audio = load_audio((speech(1.0, seed=31), 16000))
    analysis = pipe.analyze(audio)
    assert isinstance(analysis.instruction, str) and analysis.instruction
    assert analysis.words == "I am so angry with you." and heard.calls == 1  # the unsure chunk is left out
    assert heard.encoded[0].shape == (1, 1500, 384)  # one pass over the speech: recognition reads the features' encoder run
    assert options[-1]["samples"] == PipelineConfig().describe_samples > 0  # sampled sentences vote on the emotion
    assert seen[-1].shape == (1, 384) and abs(float(seen[-1].norm()) - 1) < 1e-3
    result = pipe.generate(audio, seed=0)
    assert heard.calls == 1 and result.lips.source in ("recognized", "none")  # the seal reuses the recognition
    assert pipe.analyze(audio, transcript="  Lovely   to see you. ").words == "Lovely to see you." and not torch.allclose(seen[-1], seen[0])
    assert pipe.analyze(audio, transcript="Che bello vederti.", language="it").words == "" and seen[-1] is None  # English words only: the speech alone
    monkeypatch.setattr(pipe, "_transcriber", CountingTranscriber(error=RuntimeError("ctranslate2 exploded")))
    assert pipe.analyze(load_audio((speech(1.0, seed=32), 16000))).words == "" and seen[-1] is None


# ---- bad input (issue 24) -------------------------------------------------------------


def test_noise_without_speech_skips_stage1_and_says_so(pipe, monkeypatch):
    from backend.pipeline import SILENT_INSTRUCTION
    from backend.speech.asr import Heard

    calls = []
    monkeypatch.setattr(pipe.stage1, "describe", lambda *a, **k: calls.append(1) or "A man is angry.")
    monkeypatch.setattr(pipe, "_transcriber", CountingTranscriber([Heard("you", 0.0, 2.0, -3.0, no_speech=0.9)]))
    noise = load_audio((0.1 * np.random.default_rng(5).standard_normal(16000 * 2).astype(np.float32), 16000))
    analysis = pipe.analyze(noise)
    assert analysis.instruction == SILENT_INSTRUCTION and not calls
    assert any("no speech heard" in w for w in analysis.warnings)
    assert pipe.analyze(noise, transcript="Hello there.").instruction == "A man is angry." and calls  # the user says it is speech
    monkeypatch.setattr(pipe, "_transcriber", CountingTranscriber([Heard("hello", 0.0, 2.0, -0.3, no_speech=0.2)]))
    assert pipe.analyze(load_audio((speech(2.0, seed=40), 16000))).instruction == "A man is angry."  # speech: stage 1 runs


def test_digital_silence_skips_stage1_and_says_so(pipe):
    from backend.pipeline import SILENT_INSTRUCTION

    audio = load_audio((np.zeros(16000 * 2, dtype=np.float32), 16000))
    runs = pipe.stats["stage1_runs"]
    analysis = pipe.analyze(audio)
    assert analysis.instruction == SILENT_INSTRUCTION and pipe.stats["stage1_runs"] == runs
    assert any("nobody speaks" in w for w in analysis.warnings) and any("silent" in w for w in analysis.warnings)
    result = pipe.generate(audio, seed=0)
    assert result.inferred and result.instruction == SILENT_INSTRUCTION and any("nobody speaks" in w for w in result.warnings)


@pytest.mark.parametrize("text, clean", [
    ("A hap\u200bpy\x00 man.", "A happy man."),
    ("A happy 😀 woman, \x07slight smile.", "A happy woman, slight smile."),
    ("An \u202eangry\u2060 man.", "An angry man."),
    ("Une femme très fâchée.", "Une femme très fâchée."),
])
def test_instructions_lose_control_and_invisible_characters(text, clean):
    assert check_instruction(text) == clean


@pytest.mark.parametrize("text", ["一个愤怒的男人，眉头紧锁。", "رجل غاضب جدا", "Очень злой мужчина."])
def test_instructions_in_another_script_are_refused(text):
    with pytest.raises(InstructionError, match="read in English"):
        check_instruction(text)


def test_seeds_and_absurd_transcripts_are_refused_before_the_run(pipe, monkeypatch):
    from backend.errors import RequestError

    monkeypatch.setattr("backend.pipeline.time_lips", lambda *a, **k: pytest.fail("aligned an absurd transcript"))
    audio = load_audio((speech(1.0, seed=41), 16000))
    runs = pipe.stats["stage2_runs"]
    for seed in (-1, 2**31, 2**70, True, 1.5):
        with pytest.raises(RequestError, match="seed"):
            pipe.generate(audio, instruction="A calm man.", seed=seed)
    with pytest.raises(RequestError, match="400 words"):
        pipe.generate(audio, instruction="A calm man.", transcript=" ".join(["word"] * 400))
    assert pipe.stats["stage2_runs"] == runs


def test_lip_timing_reports_progress_while_it_works(pipe, monkeypatch):
    import threading

    from backend.speech.lips import LipTiming

    beat = threading.Event()
    monkeypatch.setattr("backend.pipeline.HEARTBEAT_S", 0.01)

    def slow_alignment(*args, **kwargs):
        assert beat.wait(60), "no progress while the lips were timed"
        return LipTiming([], "none", "", ["test"])

    monkeypatch.setattr("backend.pipeline.time_lips", slow_alignment)
    seen = []

    def progress(stage, fraction):
        seen.append((stage, fraction))
        if stage == "lip_seal" and 0.0 < fraction < 1.0:
            beat.set()

    audio = load_audio((speech(1.0, seed=42), 16000))
    result = pipe.generate(audio, instruction="A calm man.", transcript="Bob made a map.", progress=progress)
    assert beat.is_set() and result.lips.notes == ["test"]
    fractions = [f for s, f in seen if s == "lip_seal"]
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)
