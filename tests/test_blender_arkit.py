"""An ARKit-named character in Blender: a plain mesh with camelCase keys and a jaw bone gets takes."""

import numpy as np
import pytest

from backend.head.components import EXPRESSION_NAMES
from backend.motion import Motion, save_motion

N = 10
KEYS = ("mouthSmileLeft", "mouthSmileRight", "jawOpen", "eyeBlinkLeft", "mouthClose", "browInnerUp")


def _motion(smile=0.0, jaw=0.0, n=N):
    expression = np.zeros((n, len(EXPRESSION_NAMES)), dtype=np.float32)
    for name in ("smile_L", "smile_R"):
        expression[:, EXPRESSION_NAMES.index(name)] = np.linspace(0.0, smile, n)
    jaw_pose = np.zeros((n, 3), dtype=np.float32)
    jaw_pose[:, 0] = np.linspace(0.0, jaw, n)
    zeros = np.zeros((n, 3), dtype=np.float32)
    return Motion(fps=25.0, expression=expression, jaw_pose=jaw_pose, neck_pose=zeros, global_pose=zeros,
                  eye_pose=np.zeros((n, 6), dtype=np.float32), instruction="a delighted woman, beaming")


def _character(bpy, keys=KEYS, jaw_bone="Jaw"):
    """A small mesh with the given shape keys, parented to an armature with ``jaw_bone`` (if any)."""
    me = bpy.data.meshes.new("face")
    me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 0, 1), (1, 0, 1)], [], [(0, 1, 3, 2)])
    mesh = bpy.data.objects.new("face", me)
    bpy.context.scene.collection.objects.link(mesh)
    mesh.shape_key_add(name="Basis")
    for i, name in enumerate(keys):
        kb = mesh.shape_key_add(name=name, from_mix=False)
        kb.data[i % 4].co.y -= 0.1
    arm_obj = None
    if jaw_bone:
        arm = bpy.data.armatures.new("rig")
        arm_obj = bpy.data.objects.new("rig", arm)
        bpy.context.scene.collection.objects.link(arm_obj)
        bpy.context.view_layer.objects.active = arm_obj
        bpy.ops.object.mode_set(mode='EDIT')
        for name, head in (("Head", (0, 0, 1.5)), (jaw_bone, (0, 0, 0.5))):
            bone = arm.edit_bones.new(name)
            bone.head, bone.tail = head, (head[0], head[1] - 0.2, head[2])   # pointing forward (-Y)
        arm.edit_bones[jaw_bone].parent = arm.edit_bones["Head"]
        bpy.ops.object.mode_set(mode='OBJECT')
        mesh.parent = arm_obj
    bpy.context.view_layer.objects.active = mesh
    mesh.select_set(True)
    return mesh, arm_obj


def _apply(bpy, tmp_path, motion, name="m.npz"):
    save_motion(tmp_path / name, motion)
    return bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / name), auto_start=False, frame_start=1)


def _paths(action):
    from avitalk_blender.bake import action_fcurves

    return {fc.data_path for fc in action_fcurves(action)}


def _values(bpy, mesh, key, frames):
    out = []
    for f in frames:
        bpy.context.scene.frame_set(f)
        out.append(mesh.data.shape_keys.key_blocks[key].value)
    return np.array(out)


def test_smile_keys_rise_and_jaw_bone_turns(blender, tmp_path):
    bpy = blender
    mesh, arm = _character(bpy)
    assert _apply(bpy, tmp_path, _motion(smile=0.8, jaw=0.3)) == {'FINISHED'}
    smile = _values(bpy, mesh, "mouthSmileLeft", (1, N))
    assert smile[0] == pytest.approx(0.0, abs=1e-6) and smile[1] > 0.5
    assert _values(bpy, mesh, "mouthSmileRight", (N,))[0] > 0.5
    # the jaw bone takes the jaw: its key is not animated, the bone turns about its own axis
    assert 'key_blocks["jawOpen"].value' not in _paths(mesh.data.shape_keys.animation_data.action)
    bpy.context.scene.frame_set(N)
    jaw = arm.pose.bones["Jaw"]
    angle = jaw.rotation_quaternion.to_axis_angle()[1]
    assert angle == pytest.approx(0.3, abs=1e-4)
    # opening turns the chin down: the bone's tail (forward) goes down in world space
    tail = (arm.matrix_world @ jaw.tail)
    assert tail.z < 0.5 - 0.02
    bpy.context.scene.frame_set(1)
    assert arm.pose.bones["Jaw"].rotation_quaternion.angle == pytest.approx(0.0, abs=1e-6)


def test_without_jaw_bone_jaw_open_key_and_underscore_names(blender, tmp_path):
    bpy = blender
    mesh, _ = _character(bpy, keys=("mouthSmile_L", "MouthSmile_R", "jawOpen"), jaw_bone=None)
    assert _apply(bpy, tmp_path, _motion(smile=0.8, jaw=0.44)) == {'FINISHED'}
    assert _values(bpy, mesh, "mouthSmile_L", (N,))[0] > 0.5
    assert _values(bpy, mesh, "MouthSmile_R", (N,))[0] > 0.5
    assert _values(bpy, mesh, "jawOpen", (N,))[0] == pytest.approx(1.0, abs=1e-3)


def test_values_stay_in_slider_range(blender, tmp_path):
    bpy = blender
    mesh, _ = _character(bpy, jaw_bone=None)
    mesh.data.shape_keys.key_blocks["mouthSmileLeft"].slider_max = 0.4
    assert _apply(bpy, tmp_path, _motion(smile=3.0, jaw=2.0)) == {'FINISHED'}
    assert _values(bpy, mesh, "mouthSmileLeft", (N,))[0] == pytest.approx(0.4, abs=1e-6)
    assert _values(bpy, mesh, "jawOpen", (N,))[0] <= 1.0


def test_map_edit_is_honoured(blender, tmp_path):
    bpy = blender
    mesh, arm = _character(bpy, keys=KEYS + ("grin",))
    assert bpy.ops.avitalk.store_map() == {'FINISHED'}
    stored = mesh.avitalk_map
    assert stored.stored and stored.jaw == "Jaw"
    entry = next(e for e in stored.entries if e.arkit == "mouthSmileLeft")
    assert entry.key == "mouthSmileLeft"
    entry.key = "grin"
    stored.jaw = ""                      # no jaw bone: the jawOpen key takes the jaw
    assert _apply(bpy, tmp_path, _motion(smile=0.8, jaw=0.44)) == {'FINISHED'}
    assert _values(bpy, mesh, "grin", (N,))[0] > 0.5
    assert 'key_blocks["mouthSmileLeft"].value' not in _paths(mesh.data.shape_keys.animation_data.action)
    assert _values(bpy, mesh, "jawOpen", (N,))[0] == pytest.approx(1.0, abs=1e-3)


def test_refused_character_leaves_scene_unchanged(blender, tmp_path):
    bpy = blender
    mesh, _ = _character(bpy, keys=("Key 1", "smirk"), jaw_bone=None)
    actions, objects = len(bpy.data.actions), len(bpy.data.objects)
    save_motion(tmp_path / "m.npz", _motion(smile=1.0))
    with pytest.raises(RuntimeError, match=r"no shape key with an ARKit name.*Key 1, smirk"):
        bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "m.npz"), auto_start=False)
    assert len(bpy.data.actions) == actions and len(bpy.data.objects) == objects
    assert mesh.data.shape_keys.animation_data is None
    assert len(bpy.context.scene.avitalk.takes) == 0
    assert not mesh.avitalk_map.stored


def test_bake_copies_an_arkit_take(blender, tmp_path):
    bpy = blender
    mesh, arm = _character(bpy)
    assert _apply(bpy, tmp_path, _motion(smile=0.8, jaw=0.3)) == {'FINISHED'}
    assert bpy.ops.avitalk.bake() == {'FINISHED'}
    assert mesh.data.shape_keys.animation_data.action.name.endswith("_baked_shapes")
    assert arm.animation_data.action.name.endswith("_baked_pose")
    bpy.context.scene.avitalk.take_index = 0                     # choosing the take in the list plays it again
    assert mesh.data.shape_keys.animation_data.action.name == "a_delighted_woman_beaming_shapes"
    assert arm.animation_data.action.name == "a_delighted_woman_beaming_pose"


def test_character_without_armature_takes_shapes_only(blender, tmp_path):
    bpy = blender
    mesh, _ = _character(bpy, jaw_bone=None)
    assert _apply(bpy, tmp_path, _motion(smile=0.8)) == {'FINISHED'}
    assert bpy.context.scene.avitalk.takes[0].rig == "face"
    assert bpy.ops.avitalk.bake() == {'FINISHED'}
    assert mesh.data.shape_keys.animation_data.action.name == "a_delighted_woman_beaming_baked_shapes"


def test_character_panel_shows_the_map_and_edits_it(blender):
    bpy = blender
    from avitalk_blender import panels
    from test_blender_workflow_ui import Host, RecordingLayout

    class Layout(RecordingLayout):
        def _child(self, *args, **kw):
            return Layout(self.bpy, self.calls)

        row = column = box = split = _child

        def prop_search(self, data, name, search_data, search_name, **kw):
            assert name in data.bl_rna.properties and search_name in search_data.bl_rna.properties
            self.calls.append(("search", name))

    mesh, arm = _character(bpy, keys=KEYS + ("grin",))
    assert panels.AVITALK_PT_character.poll(bpy.context)
    calls = []
    panels.AVITALK_PT_character.draw(Host(Layout(bpy, calls)), bpy.context)
    assert ("label", "5 ARKit channels driven, 46 not on the rig") in calls   # jawOpen goes to the Jaw bone
    assert ("label", "Bones: jaw: Jaw, head: Head") in calls
    assert ("label", "Unmatched keys: grin") in calls and ("operator", "avitalk.store_map") in calls

    assert bpy.ops.avitalk.store_map() == {'FINISHED'}
    calls = []
    panels.AVITALK_PT_character.draw(Host(Layout(bpy, calls)), bpy.context)
    assert ("list", "AVITALK_UL_channels") in calls and ("search", "key") in calls and ("search", "jaw") in calls
    assert ("operator", "avitalk.clear_map") in calls
    assert bpy.ops.avitalk.clear_map() == {'FINISHED'} and not mesh.avitalk_map.stored


def test_armature_selected_and_euler_bones(blender, tmp_path):
    bpy = blender
    mesh, arm = _character(bpy)
    arm.pose.bones["Jaw"].rotation_mode = 'XYZ'
    mesh.select_set(False)
    bpy.context.view_layer.objects.active = arm
    assert _apply(bpy, tmp_path, _motion(smile=0.5, jaw=0.3)) == {'FINISHED'}
    assert bpy.context.scene.avitalk.takes[0].rig == "rig"
    bpy.context.scene.frame_set(N)
    jaw = arm.pose.bones["Jaw"]
    assert jaw.rotation_mode == 'XYZ'                          # the rig itself is not changed
    assert jaw.rotation_euler.to_quaternion().angle == pytest.approx(0.3, abs=1e-4)
    assert (arm.matrix_world @ jaw.tail).z < 0.5 - 0.02
    assert _values(bpy, mesh, "mouthSmileLeft", (N,))[0] > 0.3


def test_generated_result_becomes_a_take_on_the_character(blender, tmp_path):
    """Generate's last step (ops_generate.apply) on an ARKit-named character, with a finished job."""
    bpy = blender
    from avitalk_blender import ops_generate
    from avitalk_blender.core.job import GENERATE, Job

    mesh, arm = _character(bpy)
    save_motion(tmp_path / "gen.npz", _motion(smile=0.9, jaw=0.2))
    scene = bpy.context.scene
    job = Job(GENERATE, str(tmp_path / "clip.wav"), 3, scene.avitalk.controls(), None,
              tag={"scene": scene.name, "rig": arm.name, "frame_start": 11, "frame_end": 11 + N, "joins": [],
                   "blend_seconds": 0.2})
    job.sent("j1", {"instruction": None})
    job.on_result("j1", {"instruction": "a delighted woman, beaming", "motion": str(tmp_path / "gen.npz")})
    assert ops_generate.apply(job).startswith("New take 'a_delighted_woman_beaming'")
    assert scene.avitalk.takes[0].rig == arm.name
    assert _values(bpy, mesh, "mouthSmileLeft", (10 + N,))[0] > 0.5
    assert arm.animation_data.action["avitalk_seed"] == 3


def test_refusals_name_the_problem(blender, tiny_flame, tmp_path):
    bpy = blender
    save_motion(tmp_path / "m.npz", _motion(smile=1.0))
    arm_data = bpy.data.armatures.new("lonely")
    lonely = bpy.data.objects.new("lonely", arm_data)
    bpy.context.scene.collection.objects.link(lonely)
    bpy.context.view_layer.objects.active = lonely
    with pytest.raises(RuntimeError, match="the armature 'lonely' deforms no mesh with shape keys"):
        bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "m.npz"), auto_start=False)
    assert len(bpy.data.actions) == 0 and lonely.animation_data is None

    path, _ = tiny_flame
    assert bpy.ops.avitalk.import_head(filepath=str(path)) == {'FINISHED'}
    with pytest.raises(RuntimeError, match="needs no channel map"):
        bpy.ops.avitalk.store_map()
    assert not bpy.context.active_object.avitalk_map.stored
