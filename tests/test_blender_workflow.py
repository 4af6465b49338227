"""The Generate / Regenerate / Bake ops_generate inside Blender (the ``bpy`` module) with the real
backend subprocess (``python -m backend serve``).

Weights: the shipped starter weights when ``backend/weights/stage1.safetensors`` exists, else
tiny random checkpoints marked trained (enough to test the plumbing, not the motion's quality).
"""

import os
import sys
import time
import wave

import numpy as np
import pytest

from helpers import speech_like, tiny_checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_WEIGHTS = os.path.isfile(os.path.join(ROOT, "backend", "weights", "stage1.safetensors"))
N_EXPR = 100
SAFETY_S = 600  # a loop guard against a hung test, not a timing assertion
_CONFIG = {}


def write_speech(path, seconds, rate=16000, seed=0):
    x = speech_like(seconds, seed, rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """Blender with the add-on, one backend for the module, a 100-expression rig, a sound strip at frame 30."""
    import bpy

    import avitalk_blender
    from avitalk_blender import session
    from backend.flame.synthetic import write_tiny_model

    folder = tmp_path_factory.mktemp("ops_generate")
    checkpoint = "" if REAL_WEIGHTS else str(tiny_checkpoints(folder))
    _CONFIG.update(python=sys.executable, checkpoint=checkpoint, device="cpu", log=str(folder / "backend.log"),
                   motion_dir=str(folder / "motion"))
    session.configure(**_CONFIG)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    avitalk_blender.register()
    flame = folder / "flame.pkl"
    write_tiny_model(flame, n_verts=60, n_expr=N_EXPR, seed=2)
    try:
        yield bpy, folder, flame
    finally:
        avitalk_blender.unregister()
        session.configure()
        bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture
def scene(session):
    """A fresh scene at 24 fps with the rig selected and a 1.2 s line on a strip starting at frame 30."""
    bpy, folder, flame = session
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    assert bpy.ops.avitalk.import_head(filepath=str(flame), name="head") == {'FINISHED'}
    wav = write_speech(folder / "line.wav", 1.2)
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_sound("line", str(wav), 1, 30)
    return bpy, scene, strip


def _fcurve_frames(bpy, action):
    from avitalk_blender import bake

    curves = bake.action_fcurves(action)
    assert curves
    out = []
    for fc in curves:
        co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out.append(co.reshape(-1, 2))
    return out


def _tick_until_done(ops_generate):
    deadline = time.monotonic() + SAFETY_S
    while time.monotonic() < deadline:
        state = ops_generate.tick()
        if state != ops_generate.RUNNING:
            return state
        time.sleep(0.02)
    raise AssertionError("the ops_generate did not end")


def _tick_until_progress(ops_generate, session):
    deadline = time.monotonic() + SAFETY_S
    while time.monotonic() < deadline:
        assert ops_generate.tick() == ops_generate.RUNNING
        jobs = list(session.SESSION.requests.values())
        if jobs and jobs[0].stage != "starting":
            return jobs[0]
        time.sleep(0.01)
    raise AssertionError("no progress from the backend")


def test_generate_edit_regenerate_bake_end_to_end(scene):
    bpy, scene, strip = scene
    settings = scene.avitalk
    assert (strip.frame_final_start, strip.frame_final_end) == (30, 30 + round(1.2 * 24))

    assert bpy.ops.avitalk.generate() == {'FINISHED'}
    assert settings.instruction.strip()  # stage 1 wrote the instruction into the text field
    assert len(settings.takes) == 1
    take = settings.takes[0].name
    shapes = bpy.data.actions[take + "_shapes"]
    assert shapes["avitalk_instruction"] == settings.instruction and shapes["avitalk_seed"] == 0
    assert shapes["avitalk_stage1_ran"] is True or shapes["avitalk_stage1_ran"] == 1
    assert shapes["avitalk_frame_start"] == 30 and shapes["avitalk_intensity"] == 1.0
    assert shapes["avitalk_dialogue"] == "" and shapes["avitalk_lips"] in ("recognized", "none")  # no text: recognition
    mesh = bpy.data.objects["head"]
    assert mesh.data.shape_keys.animation_data.action == shapes  # the preview plays

    # Edit the instruction, Regenerate: stage 2 only, on cached speech features.
    settings.instruction = "A tired old man speaks slowly, eyes half closed."
    settings.intensity = 0.5
    settings.dialogue = "Mama made a map."
    assert bpy.ops.avitalk.regenerate() == {'FINISHED'}
    from avitalk_blender.session import SESSION

    assert "lips" in SESSION.message  # the panel says what timed the lip closures
    assert len(settings.takes) == 2 and settings.take_index == 1
    second = bpy.data.actions[settings.takes[1].name + "_pose"]
    assert second["avitalk_instruction"] == settings.instruction
    assert not second["avitalk_stage1_ran"] and second["avitalk_features_cached"]
    assert second["avitalk_intensity"] == 0.5
    assert second["avitalk_dialogue"] == "Mama made a map." and second["avitalk_lips"] in ("transcript", "none")
    assert bpy.ops.avitalk.regenerate(new_variation=True) == {'FINISHED'}
    assert settings.seed == 1 and bpy.data.actions[settings.takes[2].name + "_pose"]["avitalk_seed"] == 1

    # Audition the first take, then bake it with key reduction.
    settings.take_index = 0
    assert mesh.data.shape_keys.animation_data.action == shapes
    settings.decimate, settings.tolerance = True, 1e-4
    assert bpy.ops.avitalk.bake() == {'FINISHED'}
    arm = bpy.data.objects["head_rig"]
    baked = arm.animation_data.action
    assert baked["avitalk_baked_from"] == take and baked.name.endswith("_baked_pose")
    frames = _fcurve_frames(bpy, baked)
    n_frames = strip.frame_final_end - strip.frame_final_start
    for co in frames:  # every curve starts at the strip's first frame, keys on whole scene frames
        assert co[0, 0] == 30 and abs(co[-1, 0] - (30 + n_frames - 1)) <= 1
        assert np.all(co[:, 0] == np.round(co[:, 0]))
    full = _fcurve_frames(bpy, bpy.data.actions[take + "_pose"])
    assert sum(len(c) for c in frames) <= sum(len(c) for c in full)
    assert max(len(c) for c in full) == pytest.approx(n_frames, abs=1)


def test_bake_to_nla_at_audio_start(scene):
    bpy, scene, strip = scene
    settings = scene.avitalk
    settings.instruction = "A calm woman, slight smile."
    assert bpy.ops.avitalk.regenerate() == {'FINISHED'}
    settings.push_to_nla = True
    assert bpy.ops.avitalk.bake() == {'FINISHED'}
    arm = bpy.data.objects["head_rig"]
    track = arm.animation_data.nla_tracks[-1]
    assert track.strips[0].frame_start == 30 and track.strips[0].action["avitalk_take"].endswith("_baked")
    assert bpy.ops.avitalk.delete_take() == {'FINISHED'} and len(settings.takes) == 0


def test_segments_blend_per_marker_instructions(scene):
    bpy, scene, strip = scene
    settings = scene.avitalk
    scene.timeline_markers.new("cut", frame=45)
    settings.use_segments = True
    assert bpy.ops.avitalk.sync_segments() == {'FINISHED'}
    assert [s.frame for s in settings.segments] == [30, 45]
    settings.segments[1].instruction = "A furious man shouts, brows drawn down."
    settings.instruction = "A calm man."
    assert bpy.ops.avitalk.regenerate() == {'FINISHED'}
    action = bpy.data.actions[settings.takes[0].name + "_shapes"]
    assert list(action["avitalk_segment_instructions"]) == ["A calm man.", "A furious man shouts, brows drawn down."]
    assert action["avitalk_instruction"] == "A calm man. | A furious man shouts, brows drawn down."
    assert list(action["avitalk_segment_joins"]) == [pytest.approx(15 / 24)]


def test_cancel_stops_generation(scene):
    bpy, scene, strip = scene
    from avitalk_blender import session, ops_generate

    ops_generate.start(bpy.context, "generate")
    _tick_until_progress(ops_generate, session)
    assert bpy.ops.avitalk.cancel() == {'FINISHED'}
    assert ops_generate.tick() == ops_generate.IDLE and not session.SESSION.working
    assert len(scene.avitalk.takes) == 0
    scene.avitalk.instruction = "A calm man."
    assert bpy.ops.avitalk.regenerate() == {'FINISHED'}  # the backend still serves


def test_backend_killed_mid_request_reports_and_restarts(scene):
    bpy, scene, strip = scene
    from avitalk_blender import session, ops_generate

    scene.avitalk.instruction = "A calm man."
    ops_generate.start(bpy.context, "regenerate")
    _tick_until_progress(ops_generate, session)
    session.SESSION.process.kill()
    assert _tick_until_done(ops_generate) == ops_generate.FAILED_STATE
    assert "exited unexpectedly" in session.SESSION.message and "restarts" in session.SESSION.message
    assert len(scene.avitalk.takes) == 0
    assert bpy.ops.avitalk.regenerate() == {'FINISHED'} and len(scene.avitalk.takes) == 1


def test_file_load_drops_the_result(scene):
    bpy, scene, strip = scene
    from avitalk_blender import session, ops_generate

    scene.avitalk.instruction = "A calm man."
    ops_generate.start(bpy.context, "regenerate")
    bpy.ops.wm.read_factory_settings(use_empty=True)  # load_pre: the work in flight is dropped
    assert not session.SESSION.working and "dropped" in session.SESSION.message
    assert ops_generate.tick() == ops_generate.IDLE
    assert all(len(s.avitalk.takes) == 0 for s in bpy.data.scenes)


def test_errors_are_clear(scene):
    bpy, scene, strip = scene
    scene.avitalk.instruction = "  "
    with pytest.raises(RuntimeError, match="needs an instruction"):
        bpy.ops.avitalk.regenerate()
    scene.avitalk.audio_source = 'FILE'
    with pytest.raises(RuntimeError, match="choose an audio file"):
        bpy.ops.avitalk.generate()
    from avitalk_blender import session

    session.configure(python="/nonexistent/python", backend_root=session.backend_root())
    try:
        session.SESSION.shutdown()
        scene.avitalk.audio_source = 'STRIPS'
        with pytest.raises(RuntimeError, match="backend Python does not exist"):
            bpy.ops.avitalk.generate()
        assert not session.SESSION.working
    finally:
        session.configure(**_CONFIG)
