"""The bpy-free workflow core: backend session (against a scripted stand-in server), mixdown,
segment cross-fades, key decimation, the shared package list."""

import sys
import textwrap
import wave

import numpy as np
import pytest

from avitalk_blender.core import decimate, mixdown, requirements, segments
from avitalk_blender.core.client import BackendConfig, BackendError
from avitalk_blender.core.errors import InputError
from avitalk_blender.core.job import Job
from avitalk_blender.core.session import CANCELLED, DONE, FAILED, Session, overall_fraction
from backend.motion import Motion

# A stand-in for `python -m backend serve` that speaks the protocol and misbehaves on request.
FAKE_SERVER = textwrap.dedent('''
    import json, os, sys, time
    print(json.dumps({"type": "ready", "protocol": int(os.environ.get("FAKE_PROTOCOL", "1")), "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        kind, rid = req["type"], req.get("id")
        if kind == "cancel":
            continue
        if kind == "hang":
            time.sleep(60)
        if kind == "crash":
            print("Traceback (most recent call last): boom", file=sys.stderr, flush=True)
            os._exit(3)
        print("not json", flush=True)
        print(json.dumps({"type": "progress", "id": rid, "stage": "features", "fraction": 0.5}), flush=True)
        print(json.dumps({"type": "result", "id": rid, "echo": req, "warnings": req.get("warn", [])}), flush=True)
''')


@pytest.fixture
def fake_root(tmp_path):
    package = tmp_path / "backend"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(FAKE_SERVER)
    return tmp_path


def _session(root, **kw):
    return Session(BackendConfig(python=sys.executable, backend_root=str(root), **kw))


def test_session_result_progress_and_garbage(fake_root):
    session = _session(fake_root)
    try:
        job = session.submit("generate", {"audio": "a.wav", "seed": 3}, tag={"scene": "Scene"})
        assert session.busy
        session.wait(job, timeout=30)
        assert job.state == DONE and job.result["echo"]["seed"] == 3 and job.result["echo"]["id"] == job.id
        assert job.tag == {"scene": "Scene"} and not session.busy
        assert session.ready["protocol"] == 1
    finally:
        session.stop()


def test_request_ids_are_unique_per_session_and_results_carry_warnings(fake_root):
    first, second = _session(fake_root), _session(fake_root)
    try:
        a, b = first.submit("check"), second.submit("check")
        assert a.id != b.id and a.id.startswith("check-") and first.prefix != second.prefix
        c = first.wait(first.submit("generate", {"warn": ["the audio is silent"]}), timeout=30)
        assert c.id not in (a.id, b.id) and c.fields["id"] == c.id
        assert c.state == DONE and c.warnings == ["the audio is silent"]
    finally:
        first.stop()
        second.stop()


def test_config_passes_the_private_motion_folder_and_errors_are_the_family(tmp_path):
    from avitalk_blender.core.errors import AviTalkError, RigError
    from backend.errors import AviTalkError as BackendFamily

    argv = BackendConfig(python=sys.executable, motion_dir=str(tmp_path / "m")).command()
    assert argv[argv.index("--motion-dir") + 1] == str(tmp_path / "m")
    assert AviTalkError is BackendFamily
    assert issubclass(BackendError, AviTalkError) and issubclass(RigError, AviTalkError)
    assert issubclass(InputError, AviTalkError) and not issubclass(InputError, ValueError)
    assert BackendError("x", "no_backend").code == "no_backend"


def test_session_poll_is_bounded(fake_root):
    session = _session(fake_root)
    try:
        job = session.submit("check")
        ended = []
        while not ended:
            ended = session.poll(max_messages=1)  # one message per tick: ready, garbage, progress, result
        assert ended == [job] and job.state == DONE
    finally:
        session.stop()


def test_session_crash_is_reported_and_restarts(fake_root, tmp_path):
    log = tmp_path / "logs" / "backend.log"
    session = _session(fake_root, log=str(log))
    try:
        job = session.submit("crash")
        session.wait(job, timeout=30)
        assert job.state == FAILED and job.code == "crashed" and "code 3" in job.error and "restarts" in job.error
        assert str(log) in job.error and "Traceback (most recent call last): boom" in log.read_text()  # stderr kept
        assert session.process is None
        again = session.wait(session.submit("check"), timeout=30)
        assert again.state == DONE
    finally:
        session.stop()


def test_session_hang_times_out_and_restarts(fake_root):
    session = _session(fake_root, stall_timeout=0.5)
    try:
        job = session.wait(session.submit("hang"), timeout=30)
        assert job.state == FAILED and job.code == "timeout"
        assert session.wait(session.submit("check"), timeout=30).state == DONE
    finally:
        session.stop()


def test_session_cancel_ends_now_and_ignores_late_messages(fake_root):
    session = _session(fake_root)
    try:
        job = session.submit("hang")
        assert session.cancel() == [job] and job.state == CANCELLED and not session.busy
        assert session.poll() == []
    finally:
        session.stop()


def test_session_protocol_mismatch(fake_root):
    session = _session(fake_root, extra_env={"FAKE_PROTOCOL": "9"})
    try:
        job = session.wait(session.submit("check"), timeout=30)
        assert job.state == FAILED and job.code == "protocol"
    finally:
        session.stop()


def test_missing_backend_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="no backend Python"):
        Session(BackendConfig(backend_root=str(tmp_path))).submit("check")
    with pytest.raises(BackendError, match="backend package was not found"):
        Session(BackendConfig(python=sys.executable, backend_root=str(tmp_path))).submit("check")


def test_overall_fraction_is_monotonic_over_stages():
    from backend.protocol import STAGES

    order = ["starting", *STAGES]
    values = [overall_fraction(s, f) for s in order for f in (0.0, 0.5, 1.0)]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] == 1.0


def test_setup_commands_use_the_shared_lists(tmp_path):
    commands = requirements.setup_commands(tmp_path / "env", "/usr/bin/python3")
    labels = [label for label, _ in commands]
    assert labels[0] == "create the environment" and commands[0][1][-1] == str(tmp_path / "env")
    flat = [arg for _, argv in commands for arg in argv]
    for package in requirements.BACKEND_PACKAGES + requirements.BACKEND_PACKAGES_NO_DEPS:
        assert package in flat
    assert "bpy==5.0.1" not in flat and "--index-url" not in flat
    cpu = requirements.setup_commands(tmp_path / "env", "/usr/bin/python3", "https://example.org/cpu")
    assert cpu[1][1][-2:] == ["--index-url", "https://example.org/cpu"]


def test_build_script_reads_the_same_lists():
    import build

    assert build.PACKAGES == requirements.BACKEND_PACKAGES + requirements.DEV_PACKAGES
    assert build.PACKAGES_NO_DEPS == requirements.BACKEND_PACKAGES_NO_DEPS


# ---- mixdown -------------------------------------------------------------------------------


def _strip(samples, rate, frame_start, final_start, final_end, volume=1.0, offset=0.0):
    return mixdown.StripAudio(np.asarray(samples, dtype=np.float32), rate, frame_start, final_start, final_end,
                              volume, offset)


def test_mix_places_strips_at_their_frames():
    fps, rate = 25.0, 1000
    ramp = np.arange(2000) / 2000.0  # 2 s of a ramp, so every sample says where it came from
    # Sound starts at frame 10; its first 5 frames (0.2 s) are trimmed away.
    strip = _strip(ramp, rate, 10, 15, 60)
    out = mixdown.mix([strip], 10, 70, fps, rate)
    assert out.shape == (round(60 / fps * rate),)
    assert np.all(out[:200] == 0)  # trimmed part is silent
    np.testing.assert_allclose(out[200:1999], ramp[200:1999], atol=1e-6)  # sample i of the mix is file sample i
    assert np.all(out[2000:] == 0)  # after the strip's end


def test_mix_sums_volumes_resamples_and_offsets():
    fps = 24.0
    a = _strip(np.ones(8000), 8000, 0, 0, 24, volume=0.5)               # 1 s at 8 kHz
    b = _strip(np.full(16000, 0.25), 16000, 12, 12, 36, offset=0.0)     # starts half a second later
    out = mixdown.mix([a, b], 0, 36, fps, 16000)
    assert out.shape == (24000,)
    np.testing.assert_allclose(out[:8000], 0.5, atol=1e-6)
    np.testing.assert_allclose(out[8000:16000], 0.75, atol=1e-6)
    np.testing.assert_allclose(out[16000:], 0.25, atol=1e-6)
    assert mixdown.strips_extent([a, b]) == (0, 36)
    with pytest.raises(InputError, match="no sound strips"):
        mixdown.strips_extent([])


def test_write_wav(tmp_path):
    mixdown.write_wav(tmp_path / "m.wav", np.array([0.0, 0.5, -2.0]), 16000)
    with wave.open(str(tmp_path / "m.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, 3)
        pcm = np.frombuffer(w.readframes(3), dtype="<i2")
    assert list(pcm) == [0, 16384, -32767]


# ---- segments ------------------------------------------------------------------------------


def _motion(value, n=50, fps=25.0, instruction="x"):
    def full(c):
        return np.full((n, c), value, dtype=np.float32)
    return Motion(fps=fps, expression=full(4), jaw_pose=full(3), neck_pose=full(3), global_pose=full(3),
                  eye_pose=full(6), instruction=instruction)


def test_segment_bounds_from_markers():
    assert segments.segment_bounds([30, 5, 100, 20, 20], 10, 50) == [(10, 20), (20, 30), (30, 50)]
    assert segments.segment_bounds([], 1, 9) == [(1, 9)]
    assert segments.segment_index_at([(10, 20), (20, 30)], 25) == 1


def test_weights_sum_to_one_even_when_blends_overlap():
    w = segments.segment_weights(100, [20.0, 23.0, 60.0], 10.0)
    np.testing.assert_allclose(w.sum(0), 1.0)
    assert w[0, 0] == 1.0 and w[-1, -1] == 1.0 and np.all(w >= 0)


def test_blend_motions_holds_segments_and_joins_smoothly():
    a, b = _motion(0.0, instruction="calm"), _motion(1.0, instruction="angry")
    out = segments.blend_motions([a, b], [1.0], blend_seconds=0.24)
    x = out.expression[:, 0]
    assert np.all(x[:22] == 0) and np.all(x[29:] == 1)  # the join is frames 22..28 around frame 25
    assert np.all(np.diff(x) >= 0) and np.max(np.diff(x)) < 0.3  # a ramp, not a jump
    assert out.instruction == "calm | angry" and out.n_frames == 50
    with pytest.raises(InputError, match="differ in length"):
        segments.blend_motions([a, _motion(1.0, n=40)], [1.0])


# ---- decimation ----------------------------------------------------------------------------


def test_decimation_stays_within_tolerance():
    frames = np.arange(200, dtype=np.float64)
    values = np.sin(frames / 15.0) + np.where(frames > 120, 0.0, 0.3 * (frames > 80))
    for tol in (0.0, 1e-3, 0.05):
        kf, kv = decimate.decimate(frames, values, tol)
        assert kf[0] == 0 and kf[-1] == 199
        assert np.max(np.abs(np.interp(frames, kf, kv) - values)) <= tol + 1e-12
    assert len(decimate.decimate(frames, values, 0.05)[0]) < 60
    line = decimate.keep_mask(frames, 2 * frames + 1, 1e-9)
    assert line.sum() == 2


# ---- backend environment set-up ---------------------------------------------------------------


def test_env_setup_runs_steps_in_order_and_reports_failure(tmp_path):
    from avitalk_blender.core.setup_env import EnvSetup

    ok = [("first", [sys.executable, "-c", "print('hello')"]), ("second", [sys.executable, "-c", "print('world')"])]
    setup = EnvSetup(tmp_path / "env", sys.executable, commands=ok)
    assert setup.wait() == "done" and setup.fraction == 1.0 and setup.last_line == "world"
    bad = ok[:1] + [("install torch", [sys.executable, "-c", "import sys; print('no index'); sys.exit(2)"])]
    setup = EnvSetup(tmp_path / "env", sys.executable, commands=bad)
    assert setup.wait() == "failed" and "install torch failed (exit code 2)" in setup.error and "no index" in setup.error


# ---- jobs -------------------------------------------------------------------------------------


def test_generate_job_runs_stage1_once_then_stage2_per_segment_instruction():

    job = Job("generate", "clip.wav", 3, {}, None, ["", "angry", "", "angry"])
    (kind, fields), = job.first_requests()
    assert kind == "generate" and fields["instruction"] is None and fields["seed"] == 3
    job.sent("g1", fields)
    follow = job.on_result("g1", {"instruction": "calm", "motion": "m1.npz", "stage1_ran": True})
    assert [(k, f["instruction"]) for k, f in follow] == [("synthesize", "angry")] and not job.done
    job.sent("s1", follow[0][1])
    assert job.on_result("s1", {"instruction": "angry", "motion": "m2.npz"}) == [] and job.done
    assert job.motion_paths() == ["m1.npz", "m2.npz", "m1.npz", "m2.npz"] and job.stage1_ran


def test_regenerate_job_needs_an_instruction_and_skips_stage1():

    with pytest.raises(InputError, match="needs an instruction"):
        Job("regenerate", "clip.wav", 0, {}, "  ")
    job = Job("regenerate", "clip.wav", 0, {}, "calm")
    assert [(k, f["instruction"]) for k, f in job.first_requests()] == [("synthesize", "calm")]


def test_job_collects_each_warning_once():
    job = Job("regenerate", "clip.wav", 0, {}, "calm", ["", "angry"])
    for text in job.effective_instructions():
        job.sent(text, {"instruction": text})
    job.on_result("calm", {"instruction": "calm", "motion": "a.npz", "warnings": ["the audio is silent"]})
    job.on_result("angry", {"instruction": "angry", "motion": "b.npz", "warnings": ["the audio is silent", "clipped"]})
    assert job.done and job.warnings == ["the audio is silent", "clipped"]


def test_job_sends_the_dialogue_and_reports_what_timed_the_lips():

    job = Job("regenerate", "clip.wav", 0, {}, "calm", dialogue="  Bob, put the map back.  ", language="it")
    (kind, fields), = job.first_requests()
    assert fields["transcript"] == "Bob, put the map back." and fields["language"] == "it"
    assert Job("regenerate", "clip.wav", 0, {}, "calm").first_requests()[0][1]["transcript"] is None
    assert job.lips_summary() == ""
    job.sent("s1", fields)
    job.on_result("s1", {"instruction": "calm", "motion": "m.npz", "lip_seal": {"source": "transcript", "text": "x"}})
    assert job.lips_summary() == "lips timed from the dialogue text"
    job.lips = {"source": "recognized", "text": "word " * 30}
    assert job.lips_summary().startswith('lips timed from speech heard as "word') and job.lips_summary().endswith('..."')
    job.lips = {"source": "none", "text": ""}
    assert "type the Dialogue" in job.lips_summary()
