"""The CLI as a thin shell: input checked before any model loads, the error family as one line, bugs as tracebacks."""

import pytest
import soundfile as sf

from backend import cli
from backend.cli import main as cli_main
from backend.errors import AviTalkError

from helpers import speech_like


@pytest.fixture
def no_models(monkeypatch):
    """A Pipeline that fails the test if built: the checks must come first."""

    def refuse(config=None):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr("backend.pipeline.Pipeline", refuse)


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "line.wav"
    sf.write(path, speech_like(1.0, 0, 16000), 16000)
    return path


def test_generate_refuses_to_write_over_its_input(wav, no_models, capsys):
    before = wav.read_bytes()
    assert cli_main(["generate", str(wav), "-o", str(wav)]) == 2
    assert "input audio" in capsys.readouterr().err and wav.read_bytes() == before


def test_generate_refuses_a_missing_output_folder(wav, tmp_path, no_models, capsys):
    assert cli_main(["generate", str(wav), "-o", str(tmp_path / "nope" / "m.npz")]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err


@pytest.mark.parametrize("command", ["generate", "analyze"])
def test_the_audio_is_checked_before_any_model_loads(command, tmp_path, no_models, capsys):
    args = [command, str(tmp_path / "missing.wav")] + (["-o", str(tmp_path / "m.npz")] if command == "generate" else [])
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "missing.wav" in err and "Traceback" not in err


@pytest.mark.parametrize("extra, words", [(["--seed", "-1"], "seed"), (["--instruction", "   "], "empty"),
                                          (["--transcript", "word " * 400], "400 words")])
def test_bad_options_are_refused_before_any_model_loads(extra, words, wav, tmp_path, no_models, capsys):
    assert cli_main(["generate", str(wav), "-o", str(tmp_path / "m.npz"), *extra]) == 2
    assert words in capsys.readouterr().err


def test_a_bug_stays_a_traceback_and_v_shows_user_errors_whole(wav, tmp_path, monkeypatch):
    def buggy(config=None):
        raise ValueError("a bug")

    monkeypatch.setattr("backend.pipeline.Pipeline", buggy)
    with pytest.raises(ValueError, match="a bug"):
        cli_main(["analyze", str(wav)])
    with pytest.raises(AviTalkError):
        cli_main(["-v", "analyze", str(tmp_path / "missing.wav")])


def test_one_set_of_pipeline_options():
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_pipeline_options(parser)
    config = cli.pipeline_config(parser.parse_args(["--checkpoint", "ck", "--device", "cpu", "--content-model", "c",
                                                    "--no-lip-seal", "--describe-samples", "0"]))
    assert (config.checkpoint_dir, config.device, config.content_path, config.lip_seal, config.describe_samples) == \
        ("ck", "cpu", "c", False, 0)
    defaults = cli.pipeline_config(parser.parse_args([]))
    from backend.pipeline import PipelineConfig

    assert defaults == PipelineConfig()
    from backend.evaluate.run import build_parser

    assert build_parser().parse_args(["--content-model", "c"]).content_model == "c"  # evaluate shares them
