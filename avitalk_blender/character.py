"""The selected character: an AVI-Talk FLAME rig, or any mesh with ARKit-named shape keys (maybe with an armature).

``find`` is the one place operators turn the selection into a character.
A non-FLAME character's channel map is read from its names each time, unless
the artist stored and edited one on the mesh (``object.avitalk_map``).
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy

from . import rig
from .core import character as core
from .core.errors import RigError


@dataclass
class Character:
    mesh: object            # the mesh object with the shape keys
    armature: object        # its armature object, or None
    flame: bool             # an AVI-Talk FLAME rig (rig.py), else an ARKit-named character

    @property
    def name(self) -> str:
        """The object a take remembers: the armature when there is one."""
        return (self.armature or self.mesh).name

    def channel_map(self) -> core.ChannelMap:
        return channel_map(self.mesh, self.armature)


def _armature_of(mesh_obj):
    if mesh_obj.parent is not None and mesh_obj.parent.type == 'ARMATURE':
        return mesh_obj.parent
    for modifier in mesh_obj.modifiers:
        if modifier.type == 'ARMATURE' and modifier.object is not None:
            return modifier.object
    return None


def _meshes_of(arm_obj):
    """Meshes with shape keys that ``arm_obj`` deforms or parents, most shape keys first."""
    found = [o for o in bpy.data.objects if o.type == 'MESH' and o.data.shape_keys is not None
             and _armature_of(o) == arm_obj]
    return sorted(found, key=lambda o: -len(o.data.shape_keys.key_blocks))


def candidate(obj) -> bool:
    """Cheap test for polls: a FLAME rig, a mesh with shape keys, or an armature driving one."""
    if obj is None:
        return False
    if rig.is_rig(obj):
        return True
    if obj.type == 'MESH':
        return obj.data.shape_keys is not None
    return obj.type == 'ARMATURE'


def find(obj) -> Character:
    """The character ``obj`` belongs to (its mesh or its armature); RigError when there is none."""
    if rig.is_rig(obj):
        mesh_obj, arm_obj = rig.find_rig(obj)
        return Character(mesh_obj, arm_obj, True)
    if obj is not None and obj.type == 'MESH' and obj.data.shape_keys is not None:
        return Character(obj, _armature_of(obj), False)
    if obj is not None and obj.type == 'ARMATURE':
        meshes = _meshes_of(obj)
        if meshes:
            return Character(meshes[0], obj, False)
        raise RigError(f"the armature '{obj.name}' deforms no mesh with shape keys; select the character's mesh")
    what = f"'{obj.name}' has no shape keys" if obj is not None else "nothing is selected"
    raise RigError(f"{what}: select an AVI-Talk head, or a character mesh with ARKit-named shape keys "
                   "(mouthSmileLeft, jawOpen, ...)")


def checked(obj) -> Character:
    """``find``, and for an ARKit-named character a project error when no channel can be driven."""
    found = find(obj)
    if not found.flame:
        found.channel_map().check()
    return found


def shape_key_names(mesh_obj) -> list:
    key = mesh_obj.data.shape_keys
    return [] if key is None else [kb.name for kb in key.key_blocks[1:]]   # the first is the basis


def bone_names(arm_obj) -> list:
    return [] if arm_obj is None else [bone.name for bone in arm_obj.data.bones]


def channel_map(mesh_obj, arm_obj) -> core.ChannelMap:
    """The stored map when the artist made one, else the names' automatic map."""
    stored = mesh_obj.avitalk_map
    keys = shape_key_names(mesh_obj)
    if stored.stored:
        bones = {role: name for role, name in stored.bones().items() if name in set(bone_names(arm_obj))}
        return core.from_entries([(e.arkit, e.key) for e in stored.entries], bones, keys)
    return core.automatic(keys, bone_names(arm_obj))


def store_map(mesh_obj, arm_obj) -> core.ChannelMap:
    """Write the automatic map onto the mesh, one row per ARKit name, for the artist to edit."""
    automatic = core.automatic(shape_key_names(mesh_obj), bone_names(arm_obj))
    stored = mesh_obj.avitalk_map
    stored.entries.clear()
    for name in core.retarget("arkit").ARKIT_NAMES:
        for key in automatic.shapes.get(name, ("",)):
            entry = stored.entries.add()
            entry.name = entry.arkit = name
            entry.key = key
    for role in core.BONE_ROLES:
        setattr(stored, role, automatic.bones.get(role, ""))
    stored.stored = True
    return automatic


def clear_map(mesh_obj) -> None:
    stored = mesh_obj.avitalk_map
    stored.entries.clear()
    for role in core.BONE_ROLES:
        setattr(stored, role, "")
    stored.stored = False
