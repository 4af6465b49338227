"""The extension's bpy-free core: fps maths, take naming, rig maths (plain pytest)."""

import numpy as np
import pytest

from avitalk_blender.core.errors import InputError
from avitalk_blender.core import naming, rig_maths, timing
from backend.flame import lbs_numpy
from backend.flame.pickle_io import model_from_raw
from backend.flame.synthetic import make_tiny_model


def test_scene_fps_ntsc_and_errors():
    assert timing.scene_fps(30, 1.001) == pytest.approx(29.97002997)
    assert timing.scene_fps(25, 1.0) == 25.0
    with pytest.raises(InputError):
        timing.scene_fps(0, 1.0)


def test_default_frame_start_prefers_first_sound():
    assert timing.default_frame_start([], 7) == 7
    assert timing.default_frame_start([40.0, 12.0], 1) == 12
    assert list(timing.key_frames(3, 10)) == [10.0, 11.0, 12.0]


def test_take_names_from_instruction_or_file_and_unique():
    assert naming.take_base_name("Speak calmly, then smile!", "x.npz") == "speak_calmly_then_smile"
    assert naming.take_base_name("", "/tmp/My Take-01.npz") == "my_take_01"
    assert naming.take_base_name("", "") == "take"
    assert len(naming.take_base_name("word " * 50)) <= naming.MAX_BASE_LENGTH
    existing = ["smile_pose", "smile_002_shapes"]
    assert naming.unique_take_name("smile", existing) == "smile_003"
    assert naming.unique_take_name("frown", existing) == "frown"


def test_quaternion_matches_rodrigues():
    aa = np.random.default_rng(0).normal(size=(20, 3))
    aa[0] = 0.0
    q = rig_maths.axis_angle_to_quaternion(aa)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(rig_maths.quaternion_to_matrix(q), lbs_numpy.rodrigues(aa), atol=1e-12)


def test_corrective_expressions_are_r_minus_i():
    aa = np.random.default_rng(1).normal(size=(4, 3))  # neck, jaw, left eye, right eye
    q = rig_maths.axis_angle_to_quaternion(aa)
    rot = np.concatenate([np.eye(3)[None], lbs_numpy.rodrigues(aa)])  # (5, 3, 3), root unused
    expected = lbs_numpy.pose_features(rot)  # (36,)
    drivers = rig_maths.pose_corrective_drivers()
    assert len(drivers) == 36
    for k, (bone, expression) in enumerate(drivers):
        w, x, y, z = q[rig_maths.POSE_JOINTS.index(bone)]
        # Our own constant strings, evaluated as Blender's simple expressions would be.
        value = eval(expression, {"__builtins__": {}}, {"w": w, "x": x, "y": y, "z": z})
        assert value == pytest.approx(expected[k], abs=1e-12)


def _blender_skinning(quats, locs, joints_rest):
    """Blender's pose chain for identity-rest bones -> skinning matrices (T, 5, 4, 4)."""
    n_frames = quats.shape[0]
    basis = np.tile(np.eye(4), (n_frames, 5, 1, 1))
    basis[..., :3, :3] = rig_maths.quaternion_to_matrix(quats)
    basis[..., :3, 3] = locs
    pose = np.empty_like(basis)
    for i, p in enumerate(rig_maths.PARENTS):
        offset = np.eye(4)
        offset[:3, 3] = joints_rest[i] - (joints_rest[p] if p >= 0 else 0.0)
        parent = pose[:, p] if p >= 0 else np.eye(4)
        pose[:, i] = parent @ offset @ basis[:, i]
    skin = pose.copy()
    skin[..., :3, 3] -= np.einsum("tjab,jb->tja", pose[..., :3, :3], joints_rest)
    return skin


def test_bone_values_reproduce_flame_skinning():
    model = model_from_raw(make_tiny_model(n_verts=60, n_expr=8, seed=2))
    rng = np.random.default_rng(3)
    n_frames = 6
    expression = rng.normal(scale=2.0, size=(n_frames, 8))
    pose = rng.normal(scale=0.3, size=(n_frames, 5, 3))
    joints_rest = model.J_regressor @ model.v_template
    joint_exprdirs = np.einsum("jv,vce->jce", model.J_regressor, model.exprdirs)

    quats, locs = rig_maths.bone_values(pose, expression, joints_rest, joint_exprdirs)
    world, rest_joints = lbs_numpy.joint_transforms(
        model, expression=expression, global_pose=pose[:, 0], neck_pose=pose[:, 1], jaw_pose=pose[:, 2],
        eye_pose=pose[:, 3:].reshape(n_frames, 6))
    flame_skin = world.copy()
    flame_skin[..., :3, 3] -= np.einsum("tjab,tjb->tja", world[..., :3, :3], rest_joints)

    assert np.abs(locs).max() > 1e-4  # expressions do move FLAME's joints here
    np.testing.assert_allclose(_blender_skinning(quats, locs, joints_rest), flame_skin, atol=1e-12)


def _motion(n_frames, n_expr, fps=25.0):
    from backend.motion import Motion

    rng = np.random.default_rng(4)
    f = lambda w: rng.normal(scale=0.1, size=(n_frames, w)).astype(np.float32)  # noqa: E731
    return Motion(fps=fps, expression=f(n_expr), jaw_pose=f(3), neck_pose=f(3), global_pose=f(3), eye_pose=f(6))


def test_prepare_take_pads_resamples_and_refuses():
    from avitalk_blender.core.take import prepare_take

    data = prepare_take(_motion(26, 4), n_expr_rig=10, fps=50.0, frame_start=3)
    assert data.expression.shape == (51, 10) and not data.expression[:, 4:].any()
    assert data.frames[0] == 3 and data.frames[-1] == 53 and data.pose.shape == (51, 5, 3)
    same = prepare_take(_motion(26, 4), n_expr_rig=4, fps=25.0, frame_start=1)
    np.testing.assert_allclose(same.pose[:, 3], same.motion.eye_pose[:, :3], atol=1e-7)  # left eye
    with pytest.raises(InputError, match="expression channels"):
        prepare_take(_motion(5, 12), n_expr_rig=10, fps=25.0, frame_start=1)
    big = _motion(5, 3)
    big.expression[2, 1] = 11.0
    with pytest.raises(InputError, match="beyond"):
        prepare_take(big, n_expr_rig=3, fps=25.0, frame_start=1)
