"""avitalk.apply_motion inside Blender: bake, read back, compare with FLAME's own maths."""

import numpy as np
import pytest

from avitalk_blender.core import rig_maths
from backend.flame import lbs_numpy
from backend.flame.pickle_io import load_flame
from backend.motion import Motion, save_motion

N_EXPR = 12


def _motion(n_frames, fps, seed=0, scale=1.0, **kw):
    rng = np.random.default_rng(seed)
    arrays = dict(
        expression=rng.normal(scale=scale, size=(n_frames, N_EXPR)),
        jaw_pose=rng.normal(scale=0.25 * scale, size=(n_frames, 3)),
        neck_pose=rng.normal(scale=0.3 * scale, size=(n_frames, 3)),
        global_pose=rng.normal(scale=0.2 * scale, size=(n_frames, 3)),
        eye_pose=rng.normal(scale=0.2 * scale, size=(n_frames, 6)),
    )
    arrays.update(kw)
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
    return Motion(fps=float(fps), instruction=kw.pop("instruction", "Talk with a wide smile"), seed=7,
                  source="dialogue.wav", **arrays)


@pytest.fixture
def rig(blender, tiny_flame):
    bpy = blender
    path, _ = tiny_flame
    assert bpy.ops.avitalk.import_head(filepath=str(path)) == {'FINISHED'}
    arm = bpy.context.view_layer.objects.active
    return bpy, arm.children[0], arm, load_flame(path)


def _set_fps(bpy, fps, fps_base=1.0):
    bpy.context.scene.render.fps = fps
    bpy.context.scene.render.fps_base = fps_base


def _evaluated_vertices(bpy, mesh):
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = mesh.evaluated_get(depsgraph).data
    co = np.empty(len(evaluated.vertices) * 3, dtype=np.float32)
    evaluated.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)  # mesh space == armature space == FLAME space


def test_round_trip_matches_flame_forward(rig, tmp_path):
    bpy, mesh, arm, model = rig
    assert not bpy.context.preferences.filepaths.use_scripts_auto_execute  # drivers must not need Python
    _set_fps(bpy, 25)
    motion = _motion(8, 25)
    save_motion(tmp_path / "take.npz", motion)
    assert bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "take.npz"), auto_start=False,
                                        frame_start=5) == {'FINISHED'}

    shapes_action = mesh.data.shape_keys.animation_data.action
    pose_action = arm.animation_data.action
    assert (shapes_action.name, pose_action.name) == ("talk_with_a_wide_smile_shapes", "talk_with_a_wide_smile_pose")
    assert shapes_action["avitalk_instruction"] == "Talk with a wide smile"
    assert shapes_action["avitalk_seed"] == 7 and pose_action["avitalk_source"] == "dialogue.wav"

    quats = rig_maths.axis_angle_to_quaternion(rig_maths.full_pose(
        motion.global_pose, motion.neck_pose, motion.jaw_pose, motion.eye_pose))
    for t in (0, 3, 7):
        bpy.context.scene.frame_set(5 + t)
        keys = mesh.data.shape_keys.key_blocks
        values = [keys[f"Exp{e:03d}"].value for e in range(N_EXPR)]
        np.testing.assert_allclose(values, motion.expression[t], atol=1e-6)
        for b, bone in enumerate(rig_maths.BONE_NAMES):
            np.testing.assert_allclose(arm.pose.bones[bone].rotation_quaternion, quats[t, b], atol=1e-6)
        expected, _ = lbs_numpy.flame_forward(
            model, expression=motion.expression[t], global_pose=motion.global_pose[t],
            neck_pose=motion.neck_pose[t], jaw_pose=motion.jaw_pose[t], eye_pose=motion.eye_pose[t])
        rest = model.v_template
        assert np.abs(expected[0] - rest).max() > 5e-3  # the pose really moves the head
        np.testing.assert_allclose(_evaluated_vertices(bpy, mesh), expected[0], atol=1e-5)


@pytest.mark.parametrize("fps, fps_base", [(24, 1.0), (30, 1.0), (30, 1.001), (60, 1.0)])
def test_resampling_lands_on_scene_frames(rig, tmp_path, fps, fps_base):
    bpy, mesh, arm, _ = rig
    _set_fps(bpy, fps, fps_base)
    seconds = np.arange(51) / 25.0  # 2 s at 25 fps, linear ramps resample exactly
    expression = np.zeros((51, N_EXPR))
    expression[:, 0] = seconds
    jaw = np.zeros((51, 3))
    jaw[:, 0] = 0.2 * seconds
    motion = _motion(51, 25, expression=expression, jaw_pose=jaw, neck_pose=np.zeros((51, 3)),
                     global_pose=np.zeros((51, 3)), eye_pose=np.zeros((51, 6)))
    save_motion(tmp_path / "ramp.npz", motion)
    assert bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "ramp.npz"), auto_start=False,
                                        frame_start=10) == {'FINISHED'}

    scene_fps = fps / fps_base
    fcurve = mesh.data.shape_keys.animation_data.action.layers[0].strips[0].channelbags[0].fcurves.find(
        'key_blocks["Exp000"].value')
    frames = np.array([k.co[0] for k in fcurve.keyframe_points])
    values = np.array([k.co[1] for k in fcurve.keyframe_points])
    n = len(frames)
    assert n == round(2.0 * scene_fps) + 1  # the duration, to within half a frame
    np.testing.assert_array_equal(frames, 10 + np.arange(n))
    seconds = np.minimum(np.arange(n) / scene_fps, 2.0)  # the last frame may lie past the end: held
    np.testing.assert_allclose(values, seconds, atol=1e-5)
    for k in (0, n // 2, n - 1):
        bpy.context.scene.frame_set(10 + k)
        assert mesh.data.shape_keys.key_blocks["Exp000"].value == pytest.approx(seconds[k], abs=1e-5)
        angle = 0.2 * seconds[k]
        np.testing.assert_allclose(arm.pose.bones["jaw"].rotation_quaternion,
                                   [np.cos(angle / 2), np.sin(angle / 2), 0, 0], atol=1e-5)


def test_takes_never_overwrite_and_push_to_nla(rig, tmp_path):
    bpy, mesh, arm, _ = rig
    artist = bpy.data.actions.new("artist_blink")
    mesh.data.shape_keys.animation_data_create().action = artist
    save_motion(tmp_path / "a.npz", _motion(5, 24))
    for _ in range(2):
        assert bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "a.npz")) == {'FINISHED'}
    assert bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "a.npz"), push_to_nla=True) == {'FINISHED'}
    names = sorted(a.name for a in bpy.data.actions)
    assert names == sorted(["artist_blink"] + [f"talk_with_a_wide_smile{s}_{k}" for s in ("", "_002", "_003")
                                              for k in ("shapes", "pose")])
    assert artist.use_fake_user  # still saved with the file after being swapped out
    strip = arm.animation_data.nla_tracks[-1].strips[0]
    assert strip.action.name == "talk_with_a_wide_smile_003_pose" and strip.action_slot is not None
    assert arm.animation_data.action is None


def test_frame_start_defaults_to_first_sound_strip(rig, tmp_path):
    bpy, mesh, arm, _ = rig
    import wave

    wav = tmp_path / "line.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 16000)
    scene = bpy.context.scene
    scene.sequence_editor_create()
    scene.sequence_editor.strips.new_sound("line", str(wav), 2, 37)
    save_motion(tmp_path / "a.npz", _motion(5, 24))
    assert bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "a.npz")) == {'FINISHED'}
    fcurve = arm.animation_data.action.layers[0].strips[0].channelbags[0].fcurves[0]
    assert fcurve.keyframe_points[0].co[0] == 37


def _state(bpy):
    anim = [(o.name, o.animation_data.action.name if o.animation_data and o.animation_data.action else None)
            for o in bpy.data.objects]
    keys = [(k.name, k.animation_data.action.name if k.animation_data and k.animation_data.action else None)
            for k in bpy.data.shape_keys]
    return sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions), anim, keys


def test_bad_motion_files_leave_scene_unchanged(rig, tmp_path):
    bpy, mesh, arm, _ = rig
    good = tmp_path / "good.npz"
    save_motion(good, _motion(6, 24))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    arrays = {k: getattr(_motion(6, 24), k) for k in ("expression", "jaw_pose", "neck_pose", "global_pose", "eye_pose")}
    with_nan = dict(arrays)
    with_nan["jaw_pose"] = arrays["jaw_pose"].copy()
    with_nan["jaw_pose"][2, 1] = np.nan
    np.savez(tmp_path / "nan.npz", fps=np.float32(24), **with_nan)
    too_wide = dict(arrays, expression=np.zeros((6, N_EXPR + 3), dtype=np.float32))
    np.savez(tmp_path / "wide.npz", fps=np.float32(24), **too_wide)

    assert bpy.ops.avitalk.apply_motion(filepath=str(good)) == {'FINISHED'}
    before = _state(bpy)
    for name in ("missing.npz", "truncated.npz", "nan.npz", "wide.npz"):
        with pytest.raises(RuntimeError, match="Error"):
            bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / name))
        assert _state(bpy) == before, name

    other = bpy.data.objects.new("empty", None)
    bpy.context.scene.collection.objects.link(other)
    bpy.context.view_layer.objects.active = other
    before = _state(bpy)
    assert not bpy.ops.avitalk.apply_motion.poll()
    with pytest.raises(RuntimeError):
        bpy.ops.avitalk.apply_motion(filepath=str(good))
    assert _state(bpy) == before
