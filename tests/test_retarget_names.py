"""Forgiving matching of a rig's shape-key and bone names to ARKit names and our joints."""

import pytest

from backend.retarget.arkit import ARKIT_NAMES
from backend.retarget.names import RigMatchError, arkit_name, guess_bones, match_rig


@pytest.mark.parametrize("key", ["mouthSmileLeft", "mouthSmile_L", "MouthSmileLeft", "mouthSmile.L", "mouthsmile_l",
                                 "ARKit_mouthSmileLeft", "blendShape1.mouthSmileLeft", "CC_Base_Mouth_Smile_L",
                                 "Mouth_Smile_Left", "L_mouthSmile", "mouth-smile-left"])
def test_spellings_of_one_shape(key):
    assert arkit_name(key)[:2] == ("mouthSmileLeft", None)


@pytest.mark.parametrize("key, name", [("mouthSmile_R", "mouthSmileRight"), ("eyeBlink_L", "eyeBlinkLeft"),
                                       ("EyeLookIn.R", "eyeLookInRight"), ("jawOpen", "jawOpen"),
                                       ("jaw_L", "jawLeft"), ("JawRight", "jawRight"), ("mouthLeft", "mouthLeft"),
                                       ("mouth_R", "mouthRight"), ("cheekSquint_L", "cheekSquintLeft"),
                                       ("eyeSquintLeft", "eyeSquintLeft"), ("browInnerUp", "browInnerUp"),
                                       ("A25_Jaw_Open", "jawOpen"), ("tongueOut", "tongueOut")])
def test_names_read_as_their_arkit_shape(key, name):
    assert arkit_name(key)[0] == name


@pytest.mark.parametrize("key", ["Basis", "smile", "mouthSmile", "eyeBlink", "Key 1", "Exp001", "brow_up", "noseSneer"])
def test_names_that_are_no_arkit_shape(key):
    assert arkit_name(key)[0] is None
    assert match_rig([key]).shapes == {}


def test_full_camel_case_rig_matches_every_name():
    found = match_rig(["Basis"] + list(ARKIT_NAMES))
    assert list(found.shapes) == list(ARKIT_NAMES) and found.unmatched_arkit == () and found.unmatched_keys == ()
    assert all(found.shapes[n] == (n,) for n in ARKIT_NAMES)


def test_map_reports_both_sides_and_prefers_the_plainer_duplicate():
    keys = ["Basis", "mouthSmile_L", "ARKit_mouthSmile_R", "mouthSmile_R", "jawOpen", "Wrinkle", "browInnerUp_L",
            "browInnerUp_R", "cheekPuff_L"]
    found = match_rig(keys)
    assert found.shapes == {"jawOpen": ("jawOpen",), "mouthSmileLeft": ("mouthSmile_L",),
                            "mouthSmileRight": ("mouthSmile_R",), "browInnerUp": ("browInnerUp_L", "browInnerUp_R")}
    assert set(found.unmatched_keys) == {"ARKit_mouthSmile_R", "Wrinkle", "cheekPuff_L"}   # a lone half drives nothing
    assert "cheekPuff" in found.unmatched_arkit and "eyeBlinkLeft" in found.unmatched_arkit
    assert len(found.unmatched_arkit) == len(ARKIT_NAMES) - 4


@pytest.mark.parametrize("bones, expected", [
    (["root", "neck", "jaw", "left_eye", "right_eye"],
     {"jaw": "jaw", "neck": "neck", "left_eye": "left_eye", "right_eye": "right_eye"}),
    (["CC_Base_Head", "CC_Base_NeckTwist01", "CC_Base_JawRoot", "CC_Base_L_Eye", "CC_Base_R_Eye", "CC_Base_Teeth02",
      "CC_Base_L_Eyelid"],
     {"head": "CC_Base_Head", "neck": "CC_Base_NeckTwist01", "jaw": "CC_Base_JawRoot", "left_eye": "CC_Base_L_Eye",
      "right_eye": "CC_Base_R_Eye"}),
    (["mixamorig:Head", "mixamorig:HeadTop_End", "mixamorig:Neck", "mixamorig:LeftEye", "mixamorig:RightEye",
      "Jaw"],
     {"head": "mixamorig:Head", "neck": "mixamorig:Neck", "jaw": "Jaw", "left_eye": "mixamorig:LeftEye",
      "right_eye": "mixamorig:RightEye"}),
    (["head", "jaw_master", "MCH-jaw_master", "DEF-jaw", "eye.L", "eye.R", "lid.T.L", "brow.T.L"],
     {"head": "head", "jaw": "jaw_master", "left_eye": "eye.L", "right_eye": "eye.R"}),
])
def test_bone_guesses(bones, expected):
    assert guess_bones(bones) == expected


def test_rig_with_nothing_to_drive_names_what_it_has():
    with pytest.raises(RigMatchError, match="its shape keys are Basis, Key 1, Smile"):
        match_rig(["Basis", "Key 1", "Smile"], ["Bone", "Bone.001"]).check()
    with pytest.raises(RigMatchError, match="no shape keys"):
        match_rig([], []).check()
    assert match_rig([], ["jaw"]).check().bones == {"jaw": "jaw"}
