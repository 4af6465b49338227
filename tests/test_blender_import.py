"""avitalk.import_head inside Blender: shape keys, bones, groups, drivers, materials."""

import numpy as np
import pytest

from avitalk_blender.core import rig_maths


def _rig(bpy):
    arm = bpy.context.view_layer.objects.active
    assert arm.type == 'ARMATURE'
    return arm.children[0], arm


def test_import_synthetic_head(blender, tiny_flame):
    bpy = blender
    path, raw = tiny_flame
    assert bpy.ops.avitalk.import_head(filepath=str(path)) == {'FINISHED'}
    mesh, arm = _rig(bpy)

    names = [k.name for k in mesh.data.shape_keys.key_blocks]
    expected = (["Basis"] + [f"Shape{i:03d}" for i in range(300)] + [f"Exp{i:03d}" for i in range(12)]
                + [f"Pose{i:03d}" for i in range(36)])
    assert names == expected
    co = np.empty(len(mesh.data.vertices) * 3, dtype=np.float32)
    mesh.data.shape_keys.key_blocks["Exp004"].data.foreach_get("co", co)
    np.testing.assert_allclose(co.reshape(-1, 3), raw["v_template"] + raw["shapedirs"][:, :, 304], atol=1e-6)

    assert [b.name for b in arm.data.bones] == list(rig_maths.BONE_NAMES)
    joints = raw["J_regressor"] @ raw["v_template"]
    for i, bone in enumerate(arm.data.bones):
        np.testing.assert_allclose(bone.head_local, joints[i], atol=1e-6)
        np.testing.assert_allclose(np.array(bone.matrix_local.to_3x3()), np.eye(3), atol=1e-6)
        parent = rig_maths.PARENTS[i]
        assert (bone.parent.name if bone.parent else None) == (rig_maths.BONE_NAMES[parent] if parent >= 0 else None)
    assert all(pb.rotation_mode == 'QUATERNION' for pb in arm.pose.bones)
    assert arm.rotation_euler[0] == pytest.approx(np.pi / 2)
    assert mesh.parent == arm and mesh.modifiers["Armature"].object == arm

    weights = np.zeros((len(mesh.data.vertices), 5))
    index = {g.index: rig_maths.BONE_NAMES.index(g.name) for g in mesh.vertex_groups}
    for v in mesh.data.vertices:
        for g in v.groups:
            weights[v.index, index[g.group]] = g.weight
    np.testing.assert_allclose(weights, raw["weights"], atol=1e-6)

    drivers = mesh.data.shape_keys.animation_data.drivers
    assert len(drivers) == 36
    assert all(d.driver.is_simple_expression and d.driver.is_valid for d in drivers)
    assert arm["avitalk_n_expr"] == 12 and mesh["avitalk_n_expr"] == 12
    assert len(mesh.data.materials) == 1


def test_import_with_shape_coefficients(blender, tiny_flame, tmp_path):
    bpy = blender
    path, raw = tiny_flame
    betas = np.linspace(-1.0, 1.0, 10)
    np.save(tmp_path / "shape.npy", betas)
    assert bpy.ops.avitalk.import_head(filepath=str(path), shape_path=str(tmp_path / "shape.npy")) == {'FINISHED'}
    mesh, arm = _rig(bpy)
    assert mesh.data.shape_keys.key_blocks["Shape009"].value == pytest.approx(1.0)
    assert mesh.data.shape_keys.key_blocks["Shape010"].value == 0.0
    joints = raw["J_regressor"] @ (raw["v_template"] + raw["shapedirs"][:, :, :10] @ betas)
    np.testing.assert_allclose(arm.data.bones["jaw"].head_local, joints[2], atol=1e-6)


def _scene_state(bpy):
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            sorted(m.name for m in bpy.data.meshes), sorted(k.name for k in bpy.data.shape_keys))


def test_import_refuses_bad_files(blender, tmp_path):
    bpy = blender
    import pickle

    bad = {
        "missing.pkl": None,
        "not_flame.pkl": pickle.dumps({"hello": 1}, protocol=2),
        "malicious.pkl": b"cos\nsystem\n(S'echo pwned'\ntR.",
        "garbage.pkl": b"\x00\x01 not a pickle",
    }
    before = _scene_state(bpy)
    for name, data in bad.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(RuntimeError, match="Error"):
            bpy.ops.avitalk.import_head(filepath=str(tmp_path / name))
        assert _scene_state(bpy) == before


def test_import_default_head(blender):
    bpy = blender
    from backend.head import default_head_path
    from backend.flame.pickle_io import load_flame

    model = load_flame(default_head_path())
    assert bpy.ops.avitalk.import_head() == {'FINISHED'}
    mesh, arm = _rig(bpy)
    n_expr = model.exprdirs.shape[2]
    assert arm["avitalk_n_expr"] == n_expr
    assert f"Exp{n_expr - 1:03d}" in mesh.data.shape_keys.key_blocks
    names = model.extras["avitalk_expression_names"]
    assert list(arm["avitalk_expression_names"]) == list(names)
    for group in model.extras.get("avitalk_vertex_groups", {}):
        assert group in mesh.vertex_groups
    if "avitalk_part_names" in model.extras:
        assert len(mesh.data.materials) == len(model.extras["avitalk_part_names"])


def test_default_head_materials_read_its_maps(blender):
    bpy = blender
    assert bpy.ops.avitalk.import_head() == {'FINISHED'}
    mesh, _ = _rig(bpy)
    me = mesh.data
    for name in ("avitalk_skin", "avitalk_eye", "avitalk_mouth", "avitalk_hair"):
        assert me.attributes[name].domain == 'POINT' and me.attributes[name].data_type == 'FLOAT_VECTOR'
    slots = {mat.name.rsplit("_", 1)[-1]: mat for mat in me.materials}
    for part, attribute in (("skin", "avitalk_skin"), ("iris", "avitalk_eye"), ("teeth", "avitalk_mouth")):
        read = {n.attribute_name for n in slots[part].node_tree.nodes if n.bl_idname == "ShaderNodeAttribute"}
        assert attribute in read, part
    # Workbench draws a material in its one colour: the iris must not be the sclera's.
    assert tuple(slots["iris"].diffuse_color) != tuple(slots["white"].diffuse_color)
    eye = np.array([d.vector[:] for d in me.attributes["avitalk_eye"].data])
    assert np.isclose(np.hypot(eye[:, 0], eye[:, 1]).min(), 0.0, atol=0.05)  # the pupil's centre is there
