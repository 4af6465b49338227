"""The JSON-lines server under bad input, with the pipeline replaced by a tiny fake so no model loads.

The server runs in-process: ``Server.read`` over a stream of request lines, in
a thread joined with a bound, its messages collected from a fake stdout.
"""

import io
import json
import math
import os
import random
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from backend import protocol as P
from backend.errors import RequestError
from backend.motion import Motion, load_motion
from backend.pipeline import Analysis, GenerateResult, check_instruction
from backend.refine.controls import MotionControls
from backend.serve import MAX_LINE, Server

from helpers import speech_like


class FakePipeline:
    """What the server needs of ``Pipeline``, with no model: motions of zeros, a fixed instruction."""

    def __init__(self):
        self.calls = []

    def is_cached(self, audio):
        return False

    def describe(self):
        return {"device": "cpu"}

    def analyze(self, audio, progress=None, transcript=None, language="en"):
        self.calls.append(("analyze", transcript, language))
        return Analysis("A calm man.", "", {"stage1": 0.0}, list(audio.warnings))

    def generate(self, audio, instruction=None, seed=0, controls=None, progress=None, transcript=None, language="en"):
        self.calls.append(("generate", instruction, seed, controls))
        if progress:
            progress("stage2_generator", 0.5)
        text = "A calm man." if instruction is None else check_instruction(instruction)
        motion = Motion.zeros(max(1, round(audio.duration * 25)), 100, 25.0)
        motion.instruction, motion.seed = text, seed
        return GenerateResult(text, motion, instruction is None, {"total": 0.0}, None, list(audio.warnings))


class Out:
    """A fake stdout that keeps each message."""

    def __init__(self):
        self.lines, self.lock = [], threading.Lock()

    def write(self, text):
        with self.lock:
            self.lines += [json.loads(line) for line in text.splitlines() if line]

    def flush(self):
        pass


class Stdin(io.StringIO):
    """Request lines that end (stdin closed, which cancels a running request) once each work request
    is answered, or after ``timeout`` seconds."""

    def __init__(self, text, out, timeout):
        super().__init__(text)
        self.out, self.deadline = out, time.monotonic() + timeout
        self.ids = {r["id"] for r in map(_loads, (line for line in text.splitlines() if len(line) <= MAX_LINE))
                    if isinstance(r, dict) and isinstance(r.get("id"), str) and 0 < len(r["id"]) <= 200
                    and r.get("type") in P.WORK_REQUESTS}

    def readline(self, limit=-1):
        line = super().readline(limit)
        while not line and time.monotonic() < self.deadline:
            with self.out.lock:
                answered = {m.get("id") for m in self.out.lines if m["type"] in P.FINAL or m.get("id") is None}
            if self.ids <= answered | {None}:
                break
            time.sleep(0.01)
        return line


def _loads(line):
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def serve(lines, tmp_path, pipeline=None, motion_dir=None, timeout=60):
    """Run a server over ``lines`` (requests as dicts, or raw text); return its messages."""
    out = Out()
    server = Server(out, motion_dir=motion_dir, log_path=str(tmp_path / "log.txt"))
    server.pipeline = pipeline or FakePipeline()
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    reader = threading.Thread(target=server.read, args=(Stdin(text, out, timeout / 2),), daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), "the server hung"
    assert out.lines[-1]["type"] == P.BYE
    return out.lines, server


def final(messages, rid):
    ends = [m for m in messages if m.get("id") == rid and m["type"] in P.FINAL]
    assert len(ends) == 1, (rid, ends)
    return ends[0]


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "line.wav"
    sf.write(path, speech_like(1.0, 0, 16000), 16000)
    return str(path)


@pytest.mark.parametrize("rid", [["a"], {"x": 1}, 5, True, None, "", "x" * 1000])
def test_a_request_id_that_is_not_text_is_refused_and_the_server_keeps_answering(rid, wav, tmp_path):
    messages, _ = serve([{"type": "generate", "id": rid, "audio": wav}, {"type": "check", "id": "next"}], tmp_path)
    errors = [m for m in messages if m["type"] == P.ERROR]
    assert errors[0]["code"] == P.BAD_REQUEST and errors[0]["id"] is None and "'id'" in errors[0]["message"]
    assert final(messages, "next")["type"] == P.RESULT


@pytest.mark.parametrize("target", [["a"], {"x": 1}, 3, None])
def test_a_cancel_whose_target_is_not_text_is_refused(target, wav, tmp_path):
    messages, _ = serve([{"type": "cancel", "id": "c", "target": target}, {"type": "check", "id": "next"}], tmp_path)
    assert final(messages, "c")["code"] == P.BAD_REQUEST
    assert final(messages, "next")["type"] == P.RESULT


@pytest.mark.parametrize("field, value, words", [
    ("seed", -1, "seed"), ("seed", 2**70, "seed"), ("seed", 1e23, "seed"), ("seed", True, "seed"), ("seed", "3", "seed"),
    ("controls", {"intensity": 1e3}, "between 0 and 3"), ("controls", {"smoothing": 1e7}, "between 0 and 25"),
    ("controls", {"intensity": "high"}, "must be a number"), ("controls", {"wobble": 1.0}, "unknown control"),
    ("controls", {"blinks": "no"}, "true or false"), ("controls", [1, 2], "'controls'"),
    ("instruction", 5, "'instruction' must be text"), ("transcript", ["a"], "'transcript'"), ("language", 7, "'language'"),
    ("output", 3, "'output'"), ("output", "take.npz", "absolute path"), ("audio", None, "'audio'"),
])
def test_bad_fields_are_bad_requests_with_a_clear_message(field, value, words, wav, tmp_path):
    fake = FakePipeline()
    request = {"type": "generate", "id": "g", "audio": wav, "instruction": "A calm man.", field: value}
    messages, _ = serve([request], tmp_path, fake)
    msg = final(messages, "g")
    assert msg["type"] == P.ERROR and msg["code"] == P.BAD_REQUEST and words in msg["message"], msg
    assert fake.calls == []  # refused before the run


def test_only_instruction_errors_are_bad_instruction(wav, tmp_path):
    messages, _ = serve([{"type": "synthesize", "id": "s", "audio": wav, "instruction": "!!! ???"},
                         {"type": "synthesize", "id": "z", "audio": wav, "instruction": "一个愤怒的男人，眉头紧锁。"}], tmp_path)
    assert final(messages, "s")["code"] == P.BAD_INSTRUCTION
    assert final(messages, "z")["code"] == P.BAD_INSTRUCTION and "English" in final(messages, "z")["message"]


def test_bad_input_is_never_echoed_whole(wav, tmp_path):
    huge = "x" * 100_000
    messages, _ = serve([{"type": "generate", "id": "g", "audio": wav, "seed": huge},
                         {"type": "generate", "id": "h", "audio": wav, "controls": {"intensity": huge}}], tmp_path)
    assert all(len(m.get("message", "")) < 300 for m in messages)


def test_a_request_line_over_the_limit_is_refused_unread(tmp_path):
    line = json.dumps({"type": "check", "id": "big", "pad": "y" * (MAX_LINE + 10)})
    messages, _ = serve([line, {"type": "check", "id": "next"}], tmp_path)
    refused = [m for m in messages if m["type"] == P.ERROR]
    assert refused[0]["code"] == P.BAD_REQUEST and "over" in refused[0]["message"] and len(refused[0]["message"]) < 200
    assert not any(m.get("id") == "big" for m in messages)
    assert final(messages, "next")["type"] == P.RESULT


def test_motion_files_are_private_and_unique_per_request(wav, tmp_path):
    requests = [{"type": "generate", "id": "take-1", "audio": wav, "instruction": "A calm man.", "seed": s} for s in (1, 2)]
    requests.append({"type": "generate", "id": "../../evil", "audio": wav, "instruction": "A calm man."})
    messages, server = serve(requests, tmp_path)
    first, second = [m for m in messages if m["type"] == P.RESULT and m["id"] == "take-1"]
    assert first["motion"] != second["motion"]  # duplicate ids never overwrite each other
    assert load_motion(first["motion"]).seed == 1 and load_motion(second["motion"]).seed == 2
    folder = Path(first["motion"]).parent
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    evil = final(messages, "../../evil")["motion"]
    assert Path(evil).parent == folder and "/" not in Path(evil).name
    _, other = serve(requests[:1], tmp_path)
    assert other.motion_dir != server.motion_dir  # another server, another folder
    explicit, _ = serve(requests[:1], tmp_path, motion_dir=tmp_path / "mine")
    assert Path(final(explicit, "take-1")["motion"]).parent == tmp_path / "mine"


def test_the_output_may_not_be_the_input_or_in_a_missing_folder(wav, tmp_path):
    fake = FakePipeline()
    messages, _ = serve([{"type": "generate", "id": "a", "audio": wav, "output": wav},
                         {"type": "generate", "id": "b", "audio": wav, "output": str(tmp_path / "nope" / "m.npz")}], tmp_path, fake)
    assert final(messages, "a")["code"] == P.BAD_REQUEST and "input audio" in final(messages, "a")["message"]
    assert final(messages, "b")["code"] == P.BAD_REQUEST and str(tmp_path / "nope") in final(messages, "b")["message"]
    assert fake.calls == [] and Path(wav).stat().st_size > 1000


def test_analyze_results_carry_warnings(tmp_path):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000, dtype=np.float32), 16000)
    messages, _ = serve([{"type": "analyze", "id": "a", "audio": str(quiet)}], tmp_path)
    msg = final(messages, "a")
    assert msg["type"] == P.RESULT and any("silent" in w for w in msg["warnings"])


def test_a_bug_is_internal_with_the_log_path(wav, tmp_path):
    class Broken(FakePipeline):
        def analyze(self, *args, **kwargs):
            raise ValueError("a bug, not the user's fault")

    messages, _ = serve([{"type": "analyze", "id": "a", "audio": wav}, {"type": "check", "id": "next"}], tmp_path, Broken())
    msg = final(messages, "a")
    assert msg["code"] == P.INTERNAL and str(tmp_path / "log.txt") in msg["message"]
    assert final(messages, "next")["type"] == P.RESULT


def test_motion_controls_share_the_protocol_ranges():
    for name, (low, high, default) in P.CONTROL_RANGES.items():
        assert getattr(MotionControls(), name) == default
        MotionControls(**{name: high})
        for bad in (high + 1e-3, low - 1e-3, float("nan"), float("inf"), "1", True, None):
            with pytest.raises(RequestError):
                MotionControls(**{name: bad})
    with pytest.raises(RequestError, match="unknown control"):
        MotionControls.from_dict({"intensity": 1.0, "speed": 2.0})


# ---- fuzz ----------------------------------------------------------------------------

FIELDS = ("id", "type", "audio", "instruction", "seed", "controls", "transcript", "language", "output", "target")


def random_value(rng: random.Random, wav: str, depth: int = 0):
    choices = [None, True, False, 0, -1, 2**63, -(2**70), 10**30, 1.5, -0.0, float("nan"), float("inf"), float("-inf"),
               "", "x" * rng.choice((1, 200, 5000)), "\x00\x07\u200b\u202e", "A calm man. 😀", wav, "/nonexistent.wav",
               "../escape.npz", "relative.npz", "一个愤怒的男人"]
    if depth < 2:
        choices += [[random_value(rng, wav, depth + 1) for _ in range(rng.randint(0, 3))],
                    {rng.choice(FIELDS + tuple(P.CONTROL_RANGES) + ("blinks",)): random_value(rng, wav, depth + 1)
                     for _ in range(rng.randint(0, 3))}]
    return rng.choice(choices)


def test_fuzz_the_protocol(wav, tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # relative paths in the fuzz stay inside the test's folder
    rng = random.Random(24)
    lines, ids = [], []
    for i in range(300):
        kind = rng.choice(P.REQUESTS[:-1] + ("dance",))  # everything but shutdown, which would end the run
        request = {"type": kind, "id": f"r{i}", "audio": wav}
        for name in rng.sample(FIELDS, rng.randint(1, 4)):
            request[name] = random_value(rng, wav)
        if request["type"] == P.SHUTDOWN:
            request["type"] = P.CHECK
        if rng.random() < 0.05:
            request = random_value(rng, wav)
        line = json.dumps(request, allow_nan=True)
        lines.append(line if rng.random() > 0.05 else line[: rng.randint(0, len(line))])
        if isinstance(request, dict) and isinstance(request.get("id"), str) and 0 < len(request["id"]) <= 200 \
                and request.get("type") not in (P.CANCEL, P.SHUTDOWN) and lines[-1] == line:
            ids.append(request["id"])
    lines.append({"type": "generate", "id": "last", "audio": wav, "instruction": "A calm man.", "output": str(tmp_path / "last.npz")})
    messages, _ = serve(lines, tmp_path, timeout=120)
    assert final(messages, "last")["type"] == P.RESULT and (tmp_path / "last.npz").is_file()
    for rid in set(ids):
        assert any(m.get("id") == rid and m["type"] in P.FINAL for m in messages), rid
    assert not [m for m in messages if m.get("code") == P.INTERNAL], [m for m in messages if m.get("code") == P.INTERNAL][:3]
    assert not list((tmp_path / "cwd").iterdir()) and not (tmp_path / "escape.npz").exists()
    for m in messages:
        assert m["type"] in P.MESSAGES and (m["type"] != P.ERROR or m["code"] in P.ERROR_CODES)
        assert math.isfinite(m.get("fraction", 0.0))
