"""Linked rigs: a plain link is refused with a hint to make a library override; an override gets takes."""

import numpy as np
import pytest


def test_linked_rig_needs_an_override_and_an_override_works(blender, tiny_flame, tmp_path):
    bpy = blender
    from avitalk_blender import bake, rig, takes
    from avitalk_blender.core.errors import InputError
    from backend.flame.pickle_io import load_flame
    from backend.motion import Motion

    path, _ = tiny_flame
    collection = bpy.data.collections.new("HeadColl")
    bpy.context.scene.collection.children.link(collection)
    rig.build_rig(collection, load_flame(path), "head")
    library = tmp_path / "lib.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(library))
    bpy.ops.wm.read_factory_settings(use_empty=True)

    with bpy.data.libraries.load(str(library), link=True) as (_, dst):
        dst.collections = ["HeadColl"]
    linked = dst.collections[0]
    scene = bpy.context.scene
    scene.collection.children.link(linked)
    mesh, arm = rig.find_rig(bpy.data.objects["head_rig"])
    with pytest.raises(InputError, match="make a library override"):
        bake.check_editable(mesh, arm)

    scene.collection.children.unlink(linked)
    override = linked.override_hierarchy_create(scene, bpy.context.view_layer, do_fully_editable=True)
    arm = next(o for o in override.all_objects if o.type == 'ARMATURE')
    mesh, arm = rig.find_rig(arm)
    bake.check_editable(mesh, arm)
    n = 6
    motion = Motion(fps=25.0, expression=np.full((n, 12), 0.3, np.float32), jaw_pose=np.zeros((n, 3), np.float32),
                    neck_pose=np.zeros((n, 3), np.float32), global_pose=np.zeros((n, 3), np.float32),
                    eye_pose=np.zeros((n, 6), np.float32), instruction="A calm man.")
    name = takes.make_take(scene, arm, motion, 10, {"avitalk_seed": 0})
    shapes, pose = takes.take_actions(name)
    assert shapes.library is None and pose.library is None  # the actions are local
    assert mesh.data.shape_keys.animation_data.action == shapes and arm.animation_data.action == pose
    baked = takes.bake_take(scene, 0, push_to_nla=False, tolerance=0.0)
    assert arm.animation_data.action.name == baked + "_pose"
    # Constant curves reduce to their two end keys.
    curves = bake.action_fcurves(bpy.data.actions[baked + "_shapes"])
    assert all(len(fc.keyframe_points) == 2 for fc in curves)
