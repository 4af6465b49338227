"""The bpy-free side of ARKit-named characters (avitalk_blender.core.character): plain pytest."""

import numpy as np
import pytest

from avitalk_blender.core import character, rig_maths
from backend.motion import Motion


def _rot(aa):
    return rig_maths.quaternion_to_matrix(rig_maths.axis_angle_to_quaternion(np.asarray(aa, dtype=np.float64)))


def test_matrix_to_axis_angle_round_trip():
    aa = np.random.default_rng(0).normal(scale=0.8, size=(20, 3))
    np.testing.assert_allclose(character.matrix_to_axis_angle(_rot(aa)), aa, atol=1e-9)
    np.testing.assert_allclose(character.matrix_to_axis_angle(np.eye(3)[None]), np.zeros((1, 3)), atol=1e-12)


def test_one_head_bone_takes_global_then_neck():
    n = 4
    rng = np.random.default_rng(1)
    g, k = rng.normal(scale=0.3, size=(n, 3)), rng.normal(scale=0.3, size=(n, 3))
    zeros = np.zeros((n, 3))
    motion = Motion(fps=25.0, expression=np.zeros((n, 4)), jaw_pose=zeros, neck_pose=k, global_pose=g,
                    eye_pose=np.zeros((n, 6)))
    both = character.bone_rotations({"head": "Head", "jaw": "Jaw"}, motion)
    np.testing.assert_allclose(_rot(both["head"]), _rot(g) @ _rot(k), atol=1e-6)
    split = character.bone_rotations({"head": "Head", "neck": "Neck"}, motion)
    np.testing.assert_allclose(split["neck"], g, atol=1e-6)
    np.testing.assert_allclose(split["head"], k, atol=1e-6)
    assert set(both) == {"head", "jaw"}


def test_local_quaternions_follow_the_bone_frame():
    # a bone whose rest turns armature X into its local Z: FLAME's X axis becomes the bone's Z
    rest = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])        # columns: local axes in armature
    world_to_armature = character.FLAME_TO_WORLD.T                              # an armature turned like our rig
    q = character.local_quaternions(np.array([[0.3, 0.0, 0.0]]), world_to_armature, rest)
    np.testing.assert_allclose(q[0], rig_maths.axis_angle_to_quaternion(np.array([0.0, 0.0, 0.3])), atol=1e-12)


def test_map_rules_and_slider_ranges():
    found = character.automatic(["mouthSmile_L", "jawOpen", "eyeLookUp_L", "grin"], ["Jaw", "eye.L"])
    assert found.bones == {"jaw": "Jaw", "left_eye": "eye.L"}
    assert set(found.driven_keys()) == {"mouthSmileLeft"}                # bones take the jaw and the gaze
    weights = np.zeros((3, 52))
    weights[:, character.retarget("arkit").ARKIT_INDEX["mouthSmileLeft"]] = [0.0, 0.5, 1.0]
    values = character.key_values(found, weights, {"mouthSmile_L": (0.0, 0.6)})
    np.testing.assert_allclose(values["mouthSmile_L"], [0.0, 0.5, 0.6])
    stored = character.from_entries([("mouthSmileLeft", "grin"), ("jawOpen", "gone")], {"jaw": ""},
                                    ["mouthSmile_L", "jawOpen", "grin"])
    assert stored.shapes == {"mouthSmileLeft": ("grin",)} and stored.bones == {}
    assert "mouthSmile_L" in stored.unmatched_keys and "jawOpen" in stored.unmatched_arkit


def test_no_channels_is_a_clear_error():
    with pytest.raises(character.backend_ref.errors().AviTalkError, match="its shape keys are Key 1, smirk"):
        character.automatic(["Key 1", "smirk"]).check()
