"""Forced alignment on speech with known text (espeak-ng) and the text front end."""

import shutil
import subprocess

import numpy as np
import pytest

from backend.phones import BILABIALS, VOWELS
from backend.speech.align import align_full, ipa_to_arpabet, normalize_text
from backend.audio import load_audio

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _speak(tmp_path, text, voice="en-us"):
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
    return load_audio(wav).samples


def _rms(samples, seg):
    part = samples[int(seg.start * 16000): int(seg.end * 16000)]
    return float(np.sqrt(np.mean(part**2))) if len(part) else 0.0


@needs_espeak
@pytest.mark.parametrize("voice", ["en-us", "en+f3"])
def test_bilabials_of_a_known_sentence(tmp_path, voice):
    samples = _speak(tmp_path, "Bob made my map.", voice)
    result = align_full(samples, "Bob made my map.")
    labels = [p.label for p in result.phones if p.label != "SIL"]
    assert labels == ["B", "AA", "B", "M", "EY", "D", "M", "AY", "M", "AE", "P"]
    assert [w.label for w in result.words if w.label != "SIL"] == ["bob", "made", "my", "map"]
    # segments tile the clip in order
    assert result.phones[0].start == 0.0 and abs(result.phones[-1].end - len(samples) / 16000) < 1e-6
    assert all(a.end == pytest.approx(b.start) for a, b in zip(result.phones, result.phones[1:]))
    # lips closed -> quieter than open vowels
    bil = [_rms(samples, p) for p in result.phones if p.label in BILABIALS]
    vow = [_rms(samples, p) for p in result.phones if p.label in VOWELS]
    assert len(bil) == 6 and np.median(bil) < 0.6 * np.median(vow)


@needs_espeak
def test_unknown_words_numbers_and_punctuation(tmp_path):
    text = "Zorblatt paid 42 pounds, my friend!"
    result = align_full(_speak(tmp_path, text), text)
    words = [w.label for w in result.words if w.label != "SIL"]
    assert words == ["zorblatt", "paid", "forty", "two", "pounds", "my", "friend"]
    assert any("zorblatt" in w for w in result.warnings)
    assert sum(p.label in BILABIALS for p in result.phones) >= 4  # Z AO R B ..., P, P, M


def test_normalize_text():
    assert normalize_text("I can't pay $5 on the 3rd & 45% more, 2.5x") == [
        "i", "can't", "pay", "five", "on", "the", "third", "and", "forty", "five", "percent", "more",
        "two", "point", "five", "x"]
    assert normalize_text("l’utente, premere 8", "it") == ["lutente", "premere", "8"]


def test_ipa_to_arpabet():
    assert ipa_to_arpabet("zˈaɪləfˌoʊn") == ["Z", "AY", "L", "AH", "F", "OW", "N"]
    assert ipa_to_arpabet("dʒˈa", "it") == ["JH", "AA"]


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        align_full(np.zeros((2, 16000), np.float32), "hello")
