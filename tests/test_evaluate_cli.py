"""python -m backend evaluate: argument checks and the clear error when no trained weights exist."""

import json

import numpy as np
import soundfile as sf

from backend.cli import main as cli_main
from backend.evaluate.run import format_table
from backend.motion import Motion, save_motion


def write_wav(path, seconds=1.0):
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, 0.1 * np.sin(2 * np.pi * 220 * t), 16000)
    return path


def write_corpus(root, n_clips=1):
    """A corpus folder in the layout of backend.corpus.build (manifest + clips)."""
    clips = root / "clips"
    clips.mkdir(parents=True)
    rows = []
    for i in range(n_clips):
        cid = f"c{i}"
        write_wav(clips / f"{cid}.wav")
        save_motion(clips / f"{cid}.npz", Motion.zeros(25, 100, 25.0))
        rows.append({"id": cid, "wav": f"clips/{cid}.wav", "motion": f"clips/{cid}.npz", "split": "test", "source": "espeak",
                     "emotion": "happy", "intensity": "strong", "transcript": "Bob", "instructions": ["A man is happy."],
                     "phones": [["SIL", 0.0, 0.3], ["B", 0.3, 0.4], ["AA", 0.4, 0.6], ["B", 0.6, 0.7], ["SIL", 0.7, 1.0]]})
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def test_audio_needs_transcript(tmp_path, capsys):
    wav = write_wav(tmp_path / "a.wav")
    assert cli_main(["evaluate", "--audio", str(wav)]) == 2
    assert "--transcript" in capsys.readouterr().err


def test_motion_needs_audio(tmp_path, capsys):
    assert cli_main(["evaluate", "--motion", str(tmp_path / "m.npz")]) == 2
    assert "--motion needs --audio" in capsys.readouterr().err


def test_missing_files_are_named(tmp_path, capsys):
    assert cli_main(["evaluate", "--audio", str(tmp_path / "nope.wav"), "--transcript", "hi"]) == 2
    assert "nope.wav" in capsys.readouterr().err


def test_audio_mode_without_weights_says_so(tmp_path, capsys):
    wav = write_wav(tmp_path / "a.wav")
    empty = tmp_path / "ckpt"
    empty.mkdir()
    assert cli_main(["evaluate", "--audio", str(wav), "--transcript", "Bob made a map", "--checkpoint", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no trained weights" in err and "stage1.safetensors" in err


def test_corpus_mode_without_weights_says_so(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    empty = tmp_path / "ckpt"
    empty.mkdir()
    assert cli_main(["evaluate", "--corpus", str(corpus), "--checkpoint", str(empty)]) == 2
    assert "no trained weights" in capsys.readouterr().err


def test_corpus_mode_needs_clips_of_the_split(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    assert cli_main(["evaluate", "--teacher", "--corpus", str(corpus), "--split", "val"]) == 2
    assert "no 'val' clips" in capsys.readouterr().err
    assert cli_main(["evaluate", "--teacher", "--corpus", str(tmp_path / "none")]) == 2
    assert "not found" in capsys.readouterr().err


def test_bad_counts_are_refused(tmp_path, capsys):
    assert cli_main(["evaluate", "--teacher", "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
    assert cli_main(["evaluate", "--seeds", "1"]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_table_lists_subsets_and_single_figures():
    report = {"clips": 3, "lip_closure_f1": 0.5, "subsets": {"tts": {"clips": 2, "lip_closure_f1": 1.0}, "real": {"clips": 1}},
              "teacher": {"lip_closure_f1": 0.9}, "instruction_following": 0.25, "diversity": {"style": 1.5, "seeds": 5}}
    table = format_table(report)
    assert "tts" in table and "real" in table and "teacher" in table
    assert "0.500" in table and "1.000" in table and "0.900" in table
    assert "instruction_following" in table and "0.250" in table and "style 1.500" in table


def test_real_recordings_are_also_split_by_language():
    from types import SimpleNamespace

    from backend.evaluate.run import _subsets

    assert _subsets(SimpleNamespace(meta={"source": "recording", "language": "it"})) == ("real", "real_it")
    assert _subsets(SimpleNamespace(meta={"source": "espeak", "language": "en"})) == ("tts",)


def test_corpus_mode_passes_describe_samples_and_records_it(tmp_path, capsys):
    import helpers

    corpus = write_corpus(tmp_path / "corpus")
    ckpt = helpers.tiny_checkpoints(tmp_path / "ckpt")
    base = ["evaluate", "--corpus", str(corpus), "--checkpoint", str(ckpt), "--follow-clips", "0", "--diversity-clips", "0"]
    assert cli_main(base + ["--describe-samples", "-1"]) == 2
    assert "describe_samples must be 0 or more" in capsys.readouterr().err
    out = tmp_path / "report.json"
    assert cli_main(base + ["--text-clips", "1", "--describe-samples", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["describe_samples"] == 2 and report["text_clips"] == 1
