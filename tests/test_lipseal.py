"""The lip seal: speech recognition, phone timing and the mouth closing on P, B and M."""

from pathlib import Path

import numpy as np
import pytest

from backend.phones import Segment
from backend.audio import load_audio
from backend.evaluate.geometry import default_geometry
from backend.evaluate.metrics import lip_sync_counts
from backend.head.components import EXPRESSION_INDEX
from backend.refine.lipseal import closure_weight, seal
from backend.speech.lips import LipTiming, time_lips
from backend.motion import motion_slices
from backend.motion import Motion
from backend.speech.asr import Heard, chunks, compression_ratio

ROOT = Path(__file__).resolve().parents[1]
DEMO_WAV = ROOT / "assets" / "demo" / "line.wav"
DEMO_TEXT = (ROOT / "assets" / "demo" / "line.txt").read_text().strip()
N_EXPR = 100
FPS = 25.0


def open_mouth(n_frames: int) -> np.ndarray:
    """Packed motion (T, C) with the mouth wide open and the brows raised in every frame."""
    packed = np.zeros((n_frames, N_EXPR + 15), dtype=np.float32)
    parts = motion_slices(N_EXPR)
    packed[:, EXPRESSION_INDEX["lips_part"]] = 0.8
    packed[:, EXPRESSION_INDEX["jaw_open_lips_stretch"]] = 0.3
    packed[:, EXPRESSION_INDEX["smile_L"]] = 0.5
    packed[:, EXPRESSION_INDEX["brow_inner_raise_L"]] = 0.7
    packed[:, parts["jaw_pose"].start] = 0.3
    return packed


def gap_mm(packed: np.ndarray) -> np.ndarray:
    parts = motion_slices(N_EXPR)
    motion = Motion(fps=FPS, expression=packed[:, parts["expression"]], jaw_pose=packed[:, parts["jaw_pose"]],
                    neck_pose=packed[:, parts["neck_pose"]], global_pose=packed[:, parts["global_pose"]],
                    eye_pose=packed[:, parts["eye_pose"]])
    geometry = default_geometry()
    return geometry.lip_gap(geometry.vertices(motion))


PHONES = [Segment("SIL", 0.0, 0.2), Segment("AA", 0.2, 0.4), Segment("M", 0.4, 0.46), Segment("AA", 0.46, 0.8),
          Segment("SIL", 0.8, 1.6), Segment("AA", 1.6, 1.8), Segment("B", 1.8, 1.84), Segment("IY", 1.84, 2.0)]


def test_seal_closes_the_lips_on_each_bilabial_and_leaves_the_rest():
    packed = open_mouth(50)
    geometry = default_geometry()
    assert gap_mm(packed).min() > 5 * geometry.closed_gap_mm  # wide open everywhere before
    out = seal(packed, closure_weight(PHONES, 50, FPS))
    gap = gap_mm(out)
    counts = lip_sync_counts(gap, FPS, PHONES, geometry.closed_gap_mm)
    assert counts.events == 2 and counts.events_hit == 2 and counts.closures_hit == counts.closures
    far = slice(28, 38)  # 1.1-1.5 s: silence, far from both bilabials
    np.testing.assert_allclose(out[far], packed[far], atol=1e-3)  # only the dominance tails reach here
    brow = EXPRESSION_INDEX["brow_inner_raise_L"]
    np.testing.assert_array_equal(out[:, brow], packed[:, brow])  # the upper face is never touched
    assert out[11, EXPRESSION_INDEX["smile_L"]] < packed[11, EXPRESSION_INDEX["smile_L"]]  # reduced at the closure
    assert np.all(gap[[7, 15]] > geometry.closed_gap_mm)  # the vowels either side stay open


def test_no_phones_no_change():
    packed = open_mouth(20)
    np.testing.assert_array_equal(seal(packed, closure_weight([], 20, FPS)), packed)
    with pytest.raises(ValueError, match="weight"):
        seal(packed, np.zeros(19))


def test_chunks_cut_long_audio_at_a_quiet_point():
    rng = np.random.default_rng(0)
    x = (0.2 * rng.standard_normal(16000 * 70)).astype(np.float32)
    x[16000 * 25: 16000 * 25 + 3200] = 0.0  # a 0.2 s pause at 25 s
    spans = chunks(x)
    assert spans[0][0] == 0 and spans[-1][1] == len(x)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(end - start <= 28 * 16000 for start, end in spans)
    assert 16000 * 25 <= spans[0][1] <= 16000 * 25 + 3200
    assert chunks(x[:16000 * 5]) == [(0, 16000 * 5)]


def test_compression_ratio_flags_a_loop():
    assert compression_ratio("Mom, I told you to put me back by my bed.") < 2.4
    assert compression_ratio("Mom, I told you to put me up, " + "my, " * 40) > 2.4


def test_time_lips_keeps_only_confident_speech():
    audio = load_audio(DEMO_WAV)
    n = audio.duration
    sure = [Heard(DEMO_TEXT, 0.0, n, -0.2)]
    timing = time_lips(audio.samples, heard=sure)
    assert timing.source == "recognized" and timing.as_dict()["bilabials"] >= 8
    assert timing.phones[0].start == 0.0 and abs(timing.phones[-1].end - n) < 1e-6
    # recognised words are English: a dialogue language left set (Blender's field) must not change them
    assert time_lips(audio.samples, heard=sure, language="it").phones == timing.phones

    unsure = time_lips(audio.samples, heard=[Heard("remedy", 0.0, n, -1.6)])
    assert unsure.source == "none" and not unsure.phones and "not sure" in unsure.notes[0]
    silence = time_lips(audio.samples, heard=[Heard("Thank you.", 0.0, n, -0.3, no_speech=0.95)])
    assert silence.source == "none" and "no speech" in silence.notes[0]
    assert time_lips(audio.samples).source == "none"  # neither text nor recogniser


def test_time_lips_from_the_dialogue_text_and_a_bad_one():
    audio = load_audio(DEMO_WAV)
    timing = time_lips(audio.samples, DEMO_TEXT)
    labels = [p.label for p in timing.phones]
    assert timing.source == "transcript" and sum(label in ("P", "B", "M") for label in labels) >= 8
    bad = time_lips(np.zeros(800, dtype=np.float32), "hello there")  # 50 ms: nothing to align
    assert bad.source == "none" and "could not be aligned" in bad.notes[0]


def test_untimed_stretches_hold_no_closure():
    # a recognised chunk covers 0-1 s only; nothing after it may close
    timing = LipTiming([Segment("AA", 0.0, 0.4), Segment("M", 0.4, 0.5), Segment("AA", 0.5, 1.0)], "recognized")
    from backend.speech.lips import _fill_silence

    w = closure_weight(_fill_silence(timing.phones, 3.0), 75, FPS)
    assert w[11] > 0.9 and np.all(w[30:] < 1e-6)


@pytest.fixture(scope="module")
def transcriber():
    from backend.speech.asr import Transcriber

    return Transcriber()


def test_whisper_hears_the_demo_line(transcriber):
    audio = load_audio(DEMO_WAV)
    heard = transcriber.transcribe(audio.samples)
    assert len(heard) == 1 and heard[0].end == pytest.approx(audio.duration)
    words = set(heard[0].text.lower().replace(",", " ").replace(".", " ").replace("?", " ").split())
    assert {"told", "you", "back", "by", "bed", "nobody"} <= words  # greedy decoding loops here; the retry must not
    assert heard[0].score > -0.7 and compression_ratio(heard[0].text) < 2.4


def test_whisper_is_unsure_of_noise(transcriber):
    rng = np.random.default_rng(1)
    noise = (0.05 * rng.standard_normal(48000)).astype(np.float32)
    timing = time_lips(noise, heard=transcriber.transcribe(noise))
    assert timing.source == "none" and not timing.phones


def test_whisper_hears_the_same_words_from_our_encoder_output(transcriber):
    """One pass over the speech: the decoder reading the speech features' encoder run hears what it hears from the log-mel."""
    import torch

    from backend.speech import load_encoder

    audio = load_audio(DEMO_WAV)
    window = load_encoder().encode_padded(torch.from_numpy(audio.samples))  # (1500, 384)
    [ours], [theirs] = transcriber.transcribe(audio.samples, window.numpy()), transcriber.transcribe(audio.samples)
    assert ours.text == theirs.text and (ours.start, ours.end) == (theirs.start, theirs.end)
    assert ours.score == pytest.approx(theirs.score, abs=1e-4) and ours.no_speech == pytest.approx(theirs.no_speech, abs=1e-4)
    with pytest.raises(ValueError, match="per chunk"):
        transcriber.transcribe(np.zeros(16000 * 40, dtype=np.float32), window.numpy())


def test_long_audio_is_decoded_a_few_chunks_at_a_time(transcriber, monkeypatch):
    """Memory stays bounded on long audio: CTranslate2 never sees more than BATCH_CHUNKS windows at once."""
    from types import SimpleNamespace

    from backend.speech import asr

    sizes = []

    def generate(features, prompts, **options):
        sizes.append(len(prompts))
        return [SimpleNamespace(sequences_ids=[[transcriber.tokenizer.token_to_id("hello")]], scores=[-0.1], no_speech_prob=0.0)
                for _ in prompts]

    monkeypatch.setattr(transcriber, "model", SimpleNamespace(generate=generate))
    samples = np.zeros(int(16000 * asr.MAX_CHUNK_S * (asr.BATCH_CHUNKS + 1.5)), dtype=np.float32)
    heard = transcriber.transcribe(samples)
    n = len(asr.chunks(samples))
    assert n > asr.BATCH_CHUNKS and len(heard) == n and sum(sizes) == n and max(sizes) == asr.BATCH_CHUNKS
    assert all(h.text == "hello" for h in heard)
