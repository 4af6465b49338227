"""The protocol on the teacher's own motion, on a short espeak-ng line, on the default head."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from backend.phones import Segment
from backend.speech.align import align_full
from backend.cli import main as cli_main
from backend.corpus.speech import Prosody, Voice, synthesize
from backend.corpus.teacher import teach
from backend.motion import Motion, save_motion

import backend.head

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"),
    pytest.mark.skipif(not hasattr(backend.head, "default_head_path"), reason="the default head (backend.head.default_head_path) has not landed"),
]

TEXT = "Bob made my map before the meeting."


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    folder = tmp_path_factory.mktemp("line")
    samples = np.pad(synthesize(TEXT, Voice("en-us", "m3", "male"), Prosody(50, "medium", 160, 100, 0)), (4000, 4000))
    wav = folder / "line.wav"
    sf.write(wav, samples, 16000)
    phones = align_full(samples, TEXT).phones
    return folder, wav, samples, phones


def score(tmp_path, wav, motion) -> dict:
    path, out = tmp_path / "m.npz", tmp_path / "report.json"
    save_motion(path, motion)
    assert cli_main(["evaluate", "--motion", str(path), "--audio", str(wav), "--transcript", TEXT, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_teacher_scores_near_one(tmp_path, line):
    _, wav, samples, phones = line
    report = score(tmp_path, wav, teach(phones, samples, "happy", "moderate", seed=0))
    assert report["bilabial_events"] >= 6
    assert report["lip_closure_f1"] >= 0.9
    assert report["vowel_open_rate"] >= 0.9
    assert report["emotion"] == "happy"


def test_late_lips_and_a_still_mouth_score_low(tmp_path, line):
    _, wav, samples, phones = line
    # The line is dense with bilabials, so lips 250 ms late still meet a neighbouring one now and
    # then: they must score clearly below the same lips on time, not near zero.
    on_time = score(tmp_path, wav, teach(phones, samples, "neutral", "moderate", seed=0))
    late = [Segment(p.label, p.start + 0.25, p.end + 0.25) for p in phones]
    report = score(tmp_path, wav, teach(late, samples, "neutral", "moderate", seed=0))
    assert report["lip_closure_f1"] < on_time["lip_closure_f1"] - 0.2
    still = score(tmp_path, wav, Motion.zeros(int(np.ceil(len(samples) / 16000 * 25)), 100, 25.0))  # as long as the audio
    assert still["lip_closure_recall"] == 0.0 and still["lip_closure_f1"] == 0.0
    assert still["vowel_open_rate"] == 1.0  # the rest pose is slightly open
    assert still["emotion"] == "neutral"


def test_teacher_mode_over_a_corpus(tmp_path, line, capsys):
    _, wav, samples, phones = line
    clips = tmp_path / "corpus" / "clips"
    clips.mkdir(parents=True)
    rows = []
    for i, emotion in enumerate(("sad", "angry")):
        shutil.copy(wav, clips / f"c{i}.wav")
        save_motion(clips / f"c{i}.npz", teach(phones, samples, emotion, "strong", seed=i))
        rows.append({"id": f"c{i}", "wav": f"clips/c{i}.wav", "motion": f"clips/c{i}.npz", "split": "test", "source": "espeak",
                     "emotion": emotion, "intensity": "strong", "transcript": TEXT, "instructions": [f"A man is {emotion}."],
                     "phones": [[p.label, p.start, p.end] for p in phones]})
    (tmp_path / "corpus" / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "report.json"
    assert cli_main(["evaluate", "--teacher", "--corpus", str(tmp_path / "corpus"), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clips"] == 2 and report["subsets"]["tts"]["clips"] == 2
    assert report["lve_mm"] == 0.0 and report["fdd_mm"] == 0.0
    assert report["lip_closure_f1"] == report["teacher"]["lip_closure_f1"] >= 0.9
    assert report["instruction_following"] == 1.0
    assert "lip_closure_f1" in capsys.readouterr().out
