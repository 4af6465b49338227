"""Build ICT-FaceKit's head in Blender from ``backend.retarget.ict.IctHead``: an ARKit-named character.

Result: an armature ``<name>_rig`` with FLAME's bones (``root``, ``neck``,
``jaw``, ``left_eye``, ``right_eye``; the same frame and +90 degree turn as
rig.py, so a motion's poses are the bones' quaternions) and a mesh parented to
it with UVs, a shape key per ARKit name (and ICT's extra shapes), vertex groups
from ICT's part ranges (the eyeballs turn with the eye bones, the rest with the
neck), and plain materials for skin, mouth, teeth, eyes and lashes. The jaw
bone drives the ``jawOpen``, ``jawLeft`` and ``jawRight`` keys, because ICT's
jaw lives in those shapes. ICT's eye-occlusion, tear and blend shells need its
own shaders, so their faces are left out (their vertices stay, the count is ICT's).
It is not an AVI-Talk FLAME rig: motions reach it through its ARKit names.
"""

import bpy
import numpy as np

from . import rig
from .core import character as core

HIDDEN_PARTS = ("lacrimal_fluid", "eye_blend", "eye_occlusion")
MATERIALS = (  # material name, colour, ICT parts
    ("skin", rig.PART_COLOURS["skin"], ("face", "head_and_neck", "eye_sockets")),
    ("mouth", rig.PART_COLOURS["mouth"], ("mouth_socket", "gums_and_tongue")),
    ("teeth", rig.PART_COLOURS["teeth"], ("teeth",)),
    ("eye_white", rig.PART_COLOURS["eye_white"], ("eyeballs",)),
    ("lashes", rig.PART_COLOURS["brows"], ("eyelashes",)),
    ("iris", rig.PART_COLOURS["iris"], ()),
    ("pupil", rig.PART_COLOURS["pupil"], ()),
)
IRIS_COS, PUPIL_COS = 0.93, 0.985    # eyeball faces this close to straight ahead (cosine from the eye centre)


def _part_of(head, vertex_ids: np.ndarray) -> np.ndarray:
    """Index into ``list(head.parts)`` of each vertex."""
    firsts = np.array([first for first, _ in head.parts.values()])
    return np.searchsorted(firsts, vertex_ids, side="right") - 1


def build_ict(collection, head, name: str = "ict_head"):
    """Create the ICT head in ``collection``; returns (mesh object, armature object)."""
    joints = _joints(head)
    mesh_obj = _mesh(collection, name, head)
    arm_obj = rig.build_armature(collection, name + "_rig", joints)
    mesh_obj.parent = arm_obj
    modifier = mesh_obj.modifiers.new("Armature", 'ARMATURE')
    modifier.object = arm_obj
    _vertex_groups(mesh_obj, head)
    _shape_keys(mesh_obj, head)
    _jaw_drivers(mesh_obj, arm_obj, head)
    return mesh_obj, arm_obj


def _joints(head) -> np.ndarray:
    """(5, 3) bone heads in FLAME's order: root and neck low in the neck, the jaw hinge, the eye centres."""
    neck = head.vertices[head.part("head_and_neck")]
    low = neck[:, 1].min() + 0.25 * np.ptp(neck[:, 1])
    pivot = np.array([0.0, low, float(np.median(neck[:, 2]))])
    return np.array([pivot, pivot, head.jaw_pivot, head.eye_centers[0], head.eye_centers[1]])


def _mesh(collection, name, head):
    sizes, corners = head.face_sizes, head.face_vertices
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    part_names = list(head.parts)
    face_part = _part_of(head, corners[starts])
    keep = ~np.isin(face_part, [part_names.index(p) for p in HIDDEN_PARTS])
    corner_keep = np.repeat(keep, sizes)
    sizes, corners, uvs, face_part = sizes[keep], corners[corner_keep], head.corner_uvs[corner_keep], face_part[keep]

    me = bpy.data.meshes.new(name)
    me.vertices.add(len(head.vertices))
    me.vertices.foreach_set("co", head.vertices.astype(np.float32).ravel())
    me.loops.add(len(corners))
    me.loops.foreach_set("vertex_index", corners.astype(np.int32))
    me.polygons.add(len(sizes))
    me.polygons.foreach_set("loop_start", np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32))
    uv_layer = me.uv_layers.new(name="UVMap")
    uv_layer.data.foreach_set("uv", uvs.astype(np.float32).ravel())
    me.update()
    me.validate(clean_customdata=False)
    me.shade_smooth()

    index = {}
    for i, (mat_name, colour, parts) in enumerate(MATERIALS):
        me.materials.append(rig.material(f"{name}_{mat_name}", colour))
        index.update({part_names.index(p): i for p in parts})
    material = np.array([index.get(p, 0) for p in face_part], dtype=np.int32)
    material[_eye_faces(head, me, face_part, IRIS_COS)] = [m for m, *_ in MATERIALS].index("iris")
    material[_eye_faces(head, me, face_part, PUPIL_COS)] = [m for m, *_ in MATERIALS].index("pupil")
    me.polygons.foreach_set("material_index", material)
    obj = bpy.data.objects.new(name, me)
    collection.objects.link(obj)
    return obj


def _eye_faces(head, me, face_part, cosine) -> np.ndarray:
    """Eyeball faces whose centre lies within ``cosine`` of straight ahead (+Z) from their eye's centre."""
    centres = np.empty(len(me.polygons) * 3, dtype=np.float32)
    me.polygons.foreach_get("center", centres)
    centres = centres.reshape(-1, 3)
    eye = np.where(centres[:, 0] > 0, 0, 1)
    direction = centres - head.eye_centers[eye]
    cos = direction[:, 2] / np.maximum(np.linalg.norm(direction, axis=1), 1e-9)
    return (face_part == list(head.parts).index("eyeballs")) & (cos > cosine)


def _vertex_groups(obj, head):
    eyeballs = head.part("eyeballs")
    left = eyeballs[head.vertices[eyeballs, 0] > 0]
    right = eyeballs[head.vertices[eyeballs, 0] <= 0]
    rest = np.setdiff1d(np.arange(len(head.vertices)), eyeballs)
    for bone_name, ids in (("neck", rest), ("left_eye", left), ("right_eye", right)):
        obj.vertex_groups.new(name=bone_name).add(ids.tolist(), 1.0, 'REPLACE')


def _shape_keys(obj, head):
    obj.shape_key_add(name="Basis", from_mix=False)
    rest = head.vertices.astype(np.float32)
    for shape_name, delta in list(head.deltas.items()) + list(head.extra_deltas.items()):
        key = obj.shape_key_add(name=shape_name, from_mix=False)
        key.points.foreach_set("co", (rest + delta).ravel())
        key.slider_min, key.slider_max = 0.0, 1.0
        key.value = 0.0                  # a new key starts at 1: the head would wear every shape at once
    obj.data.shape_keys.name = obj.name + "_keys"


def _jaw_drivers(mesh_obj, arm_obj, head):
    """jawOpen, jawLeft, jawRight follow the jaw bone's X and Y turns (simple expressions, no Python)."""
    arkit = core.retarget("arkit")
    key_blocks = mesh_obj.data.shape_keys.key_blocks
    for key_name, transform, expression in (
            ("jawOpen", 'ROT_X', f"max(0.0, a / {head.jaw_open_angle:.6f})"),
            ("jawLeft", 'ROT_Y', f"max(0.0, a / {arkit.JAW_SIDE_RADIANS})"),
            ("jawRight", 'ROT_Y', f"max(0.0, -a / {arkit.JAW_SIDE_RADIANS})")):
        if key_name not in key_blocks:
            continue
        driver = key_blocks[key_name].driver_add("value").driver
        driver.type = 'SCRIPTED'
        var = driver.variables.new()
        var.name = "a"
        var.type = 'TRANSFORMS'
        target = var.targets[0]
        target.id = arm_obj
        target.bone_target = "jaw"
        target.transform_type = transform
        target.transform_space = 'LOCAL_SPACE'
        target.rotation_mode = 'XYZ'
        driver.expression = expression
