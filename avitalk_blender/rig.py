"""Build the FLAME rig in Blender, and find it again from the selection.

Result (docs/architecture.md, "Blender rig"): an armature ``<name>_rig``
rotated +90 degrees about X (FLAME's Y-up becomes Z-up) with the bones of
``core.rig_maths.BONE_NAMES``, and a mesh parented to it (identity parent
transform, so mesh space == armature space == FLAME space, metres) with an
Armature modifier and the shape keys ``Basis``, ``Shape000..``, ``Exp000..``,
``Pose000..Pose035``. The Pose keys are driven from the bones' quaternions.

The armature object carries what baking needs (``avitalk_joints_rest``,
``avitalk_joint_exprdirs``), so a motion can be applied without the FLAME file.
"""

import math

import bpy
import numpy as np

from . import compat, look
from .core import look_maps, rig_maths
from .core.errors import InputError, RigError
from .core.take import SHAPE_KEY_LIMIT

RIG_VERSION = 1
POSE_SLIDER = 2.0     # entries of (R - I) lie in [-2, 2]
BONE_LENGTHS = {"root": 0.03, "neck": 0.03, "jaw": 0.03, "left_eye": 0.015, "right_eye": 0.015}
PART_COLOURS = {
    "skin": (0.80, 0.57, 0.47, 1.0),
    "eye_white": (0.90, 0.89, 0.86, 1.0),
    "iris": (0.12, 0.22, 0.35, 1.0),
    "pupil": (0.01, 0.01, 0.01, 1.0),
    "mouth": (0.45, 0.12, 0.13, 1.0),
    "teeth": (0.92, 0.90, 0.82, 1.0),
    "tongue": (0.65, 0.25, 0.27, 1.0),
    "lips": (0.70, 0.38, 0.36, 1.0),
    "brows": (0.30, 0.20, 0.14, 1.0),
}
DEFAULT_COLOUR = (0.6, 0.6, 0.6, 1.0)


def shape_key_name(kind: str, i: int) -> str:
    """FLAME's shape key names: ``Shape000``, ``Exp000``, ``Pose000``."""
    return f"{kind}{i:03d}"


def build_rig(collection, model, name: str = "flame_head", shape=None):
    """Create the rig for a ``FlameModel`` in ``collection``; returns (mesh object, armature object).

    ``shape``: optional identity coefficients (at most n_shape values, default
    zeros), applied as fixed values of the ``Shape*`` keys.
    """
    n_shape = model.shapedirs.shape[2]
    betas = np.zeros(n_shape)
    if shape is not None:
        shape = np.asarray(shape, dtype=np.float64).ravel()
        if shape.size > n_shape:
            raise InputError(f"{shape.size} shape coefficients given, the model has {n_shape}")
        if not np.all(np.isfinite(shape)) or np.any(np.abs(shape) > SHAPE_KEY_LIMIT):
            raise InputError(f"shape coefficients must be finite and within +-{SHAPE_KEY_LIMIT}")
        betas[:shape.size] = shape

    v_shaped = model.v_template + model.shapedirs @ betas  # (V, 3)
    joints_rest = model.J_regressor @ v_shaped  # (5, 3)
    joint_exprdirs = np.einsum("jv,vce->jce", model.J_regressor, model.exprdirs)  # (5, 3, E)

    mesh_obj = _mesh(collection, name, model)  # first: the only step that can refuse the data
    arm_obj = build_armature(collection, name + "_rig", joints_rest)
    mesh_obj.parent = arm_obj
    modifier = mesh_obj.modifiers.new("Armature", 'ARMATURE')
    modifier.object = arm_obj
    _vertex_groups(mesh_obj, model)
    _shape_keys(mesh_obj, model, betas)
    _pose_drivers(mesh_obj, arm_obj)

    expression_names = list(model.extras.get("avitalk_expression_names", []))
    for obj in (mesh_obj, arm_obj):
        obj["avitalk_rig"] = RIG_VERSION
        obj["avitalk_n_expr"] = model.exprdirs.shape[2]
        obj["avitalk_n_shape"] = n_shape
        obj["avitalk_expression_names"] = expression_names
    arm_obj["avitalk_joints_rest"] = joints_rest.ravel().tolist()
    arm_obj["avitalk_joint_exprdirs"] = joint_exprdirs.ravel().tolist()
    return mesh_obj, arm_obj


def build_armature(collection, name, joints_rest):
    """An armature with FLAME's bones at ``joints_rest`` (5, 3), identity rest rotations, turned so Y-up is Z-up."""
    arm = bpy.data.armatures.new(name)
    arm_obj = bpy.data.objects.new(name, arm)
    collection.objects.link(arm_obj)
    arm_obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    # Edit bones exist only in edit mode; build them from the armature's own context.
    view_layer = bpy.context.view_layer
    previous_active = view_layer.objects.active
    view_layer.objects.active = arm_obj
    with bpy.context.temp_override(active_object=arm_obj, object=arm_obj):
        bpy.ops.object.mode_set(mode='EDIT')
        bones = []
        for i, bone_name in enumerate(rig_maths.BONE_NAMES):
            bone = arm.edit_bones.new(bone_name)
            bone.head = joints_rest[i]
            bone.tail = joints_rest[i] + np.array([0.0, BONE_LENGTHS[bone_name], 0.0])
            bone.roll = 0.0
            bone.use_connect = False
            parent = rig_maths.PARENTS[i]
            if parent >= 0:
                bone.parent = bones[parent]
            bones.append(bone)
        bpy.ops.object.mode_set(mode='OBJECT')
    view_layer.objects.active = previous_active
    for pose_bone in arm_obj.pose.bones:
        pose_bone.rotation_mode = 'QUATERNION'
    return arm_obj


def _mesh(collection, name, model):
    verts = model.v_template
    faces = model.faces
    me = bpy.data.meshes.new(name)
    me.vertices.add(len(verts))
    me.vertices.foreach_set("co", verts.astype(np.float32).ravel())
    me.loops.add(faces.size)
    me.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    me.polygons.add(len(faces))
    compat.set_triangles(me, len(faces))
    me.update()
    if me.validate(clean_customdata=False):
        bpy.data.meshes.remove(me)
        raise InputError("the FLAME file's faces do not form a valid mesh")
    compat.shade_smooth(me)

    part_names = list(model.extras.get("avitalk_part_names", []))
    face_parts = model.extras.get("avitalk_face_parts")
    if face_parts is not None and part_names and len(face_parts) == len(faces):
        look.dress(me, name, part_names)
        me.polygons.foreach_set("material_index", np.asarray(face_parts, dtype=np.int32))
        eye_centres = (model.J_regressor @ verts)[[rig_maths.BONE_NAMES.index("left_eye"),
                                                   rig_maths.BONE_NAMES.index("right_eye")]]
        look.store_maps(me, look_maps.look_maps(verts, faces, face_parts, part_names, eye_centres))
    else:
        me.materials.append(material(f"{name}_skin", PART_COLOURS["skin"]))

    obj = bpy.data.objects.new(name, me)
    collection.objects.link(obj)
    return obj


def material(name, colour):
    """A plain material of one colour (viewport and Principled BSDF)."""
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = colour
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = colour
        bsdf.inputs["Roughness"].default_value = 0.2 if colour == PART_COLOURS["eye_white"] else 0.5
    return mat


def _vertex_groups(obj, model):
    # One call per distinct weight value: FLAME's weights are mostly 0 or 1.
    for j, bone_name in enumerate(rig_maths.BONE_NAMES):
        group = obj.vertex_groups.new(name=bone_name)
        column = model.weights[:, j]
        nonzero = np.flatnonzero(column)
        values, which = np.unique(column[nonzero], return_inverse=True)
        for k, value in enumerate(values):
            group.add(nonzero[which == k].tolist(), float(value), 'REPLACE')
    for group_name, indices in model.extras.get("avitalk_vertex_groups", {}).items():
        if group_name in rig_maths.BONE_NAMES:
            continue  # never let an extra group deform as a bone
        group = obj.vertex_groups.new(name=group_name)
        group.add(np.asarray(indices, dtype=np.int64).tolist(), 1.0, 'REPLACE')


def _shape_keys(obj, model, betas):
    basis = model.v_template  # (V, 3)
    obj.shape_key_add(name="Basis", from_mix=False)

    def add(kind, dirs, slider, values=None):
        for i in range(dirs.shape[2]):
            key = obj.shape_key_add(name=shape_key_name(kind, i), from_mix=False)
            compat.shape_key_points(key).foreach_set("co", (basis + dirs[:, :, i]).astype(np.float32).ravel())
            key.slider_min, key.slider_max = -slider, slider
            if values is not None:
                key.value = values[i]

    add("Shape", model.shapedirs, SHAPE_KEY_LIMIT, betas)
    add("Exp", model.exprdirs, SHAPE_KEY_LIMIT)
    add("Pose", model.posedirs, POSE_SLIDER)
    obj.data.shape_keys.name = obj.name + "_keys"


def _pose_drivers(mesh_obj, arm_obj):
    key_blocks = mesh_obj.data.shape_keys.key_blocks
    channels = (("w", 'ROT_W'), ("x", 'ROT_X'), ("y", 'ROT_Y'), ("z", 'ROT_Z'))
    for k, (bone_name, expression) in enumerate(rig_maths.pose_corrective_drivers()):
        fcurve = key_blocks[shape_key_name("Pose", k)].driver_add("value")
        driver = fcurve.driver
        driver.type = 'SCRIPTED'
        for var_name, transform_type in channels:
            var = driver.variables.new()
            var.name = var_name
            var.type = 'TRANSFORMS'
            target = var.targets[0]
            target.id = arm_obj
            target.bone_target = bone_name
            target.transform_type = transform_type
            target.transform_space = 'LOCAL_SPACE'
            target.rotation_mode = 'QUATERNION'
        driver.expression = expression


def is_rig(obj) -> bool:
    return obj is not None and obj.get("avitalk_rig") is not None


def find_rig(obj):
    """(mesh object, armature object) of the AVI-Talk rig that ``obj`` belongs to.

    ``obj`` may be the rig's mesh or its armature. Raises ``RigError`` otherwise.
    """
    if not is_rig(obj):
        raise RigError("select an AVI-Talk FLAME head (its mesh or its armature); import one with 'Import FLAME Head'")
    if obj.type == 'MESH':
        mesh_obj, arm_obj = obj, obj.parent
    elif obj.type == 'ARMATURE':
        arm_obj = obj
        meshes = [child for child in obj.children if child.type == 'MESH' and is_rig(child)]
        mesh_obj = meshes[0] if meshes else None
    else:
        mesh_obj = arm_obj = None
    if mesh_obj is None or not is_rig(arm_obj) or arm_obj.type != 'ARMATURE' or mesh_obj.data.shape_keys is None:
        raise RigError(f"'{obj.name}' is part of an incomplete AVI-Talk rig (mesh, armature or shape keys missing)")
    return mesh_obj, arm_obj


def rig_constants(arm_obj):
    """(joints_rest (5, 3), joint_exprdirs (5, 3, E)) stored on the armature at import."""
    n_expr = int(arm_obj["avitalk_n_expr"])
    joints_rest = np.asarray(arm_obj["avitalk_joints_rest"], dtype=np.float64).reshape(5, 3)
    joint_exprdirs = np.asarray(arm_obj["avitalk_joint_exprdirs"], dtype=np.float64).reshape(5, 3, n_expr)
    return joints_rest, joint_exprdirs
