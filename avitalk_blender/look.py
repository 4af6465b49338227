"""The default head's look: node materials per part and a neutral studio light rig.

Materials read the per-vertex maps of ``core.look_maps`` (stored as point
attributes at import), so brows are hairs that thin out at their edges, the
iris is round whatever the mesh's facets, and the lash line sits on the lid
margin. Works in Cycles and EEVEE from Blender 3.4 (Principled BSDF inputs are
looked up under their 3.x and 4.x+ names); Workbench shows each material's
viewport colour.
"""

import bpy
import numpy as np

from .core import look_maps

ATTRIBUTES = {"skin": "avitalk_skin", "eye": "avitalk_eye", "mouth": "avitalk_mouth", "hair": "avitalk_hair"}
# Linear RGB. The viewport colour of each part is its base tone.
SKIN = (0.46, 0.24, 0.155)
SKIN_FLUSH = (0.50, 0.17, 0.12)
SKIN_PALE = (0.50, 0.30, 0.21)
HAIR = (0.032, 0.02, 0.013)
SCALP_HAIR = (0.06, 0.038, 0.024)
LIPS = (0.36, 0.11, 0.09)
SCLERA = (0.72, 0.68, 0.63)
SCLERA_CORNER = (0.66, 0.42, 0.38)
IRIS_DARK = (0.035, 0.05, 0.045)
IRIS_LIGHT = (0.20, 0.24, 0.16)
PUPIL = (0.004, 0.004, 0.004)
INTERIOR = (0.10, 0.025, 0.022)
TONGUE = (0.42, 0.12, 0.11)
TOOTH = (0.74, 0.70, 0.58)
GUM = (0.45, 0.13, 0.13)
VIEWPORT = {"skin": SKIN, "brows": SKIN, "lips": LIPS, "eye_white": SCLERA, "iris": IRIS_LIGHT, "pupil": PUPIL,
            "mouth": INTERIOR, "teeth": TOOTH, "tongue": TONGUE}
SSS_RADIUS = (1.0, 0.35, 0.2)   # red scatters furthest
SSS_SCALE = 0.004               # m


def _socket(sockets, *names):
    """The first socket whose identifier or name is among ``names`` (names differ across Blender versions)."""
    for name in names:
        for socket in sockets:
            if socket.identifier == name or socket.name == name:
                return socket
    return None


def _set(node, names, value):
    socket = _socket(node.inputs, *names)
    if socket is not None:
        socket.default_value = value
    return socket


class _Graph:
    """Small helpers to write a node tree as expressions."""

    def __init__(self, mat):
        self.tree = mat.node_tree
        self.nodes, self.links = self.tree.nodes, self.tree.links

    def node(self, kind, **props):
        n = self.nodes.new(kind)
        for key, value in props.items():
            setattr(n, key, value)
        return n

    def link(self, out, node, *names):
        """Link ``out`` (a socket, or a constant) into ``node``'s input named one of ``names``."""
        socket = _socket(node.inputs, *names)
        if hasattr(out, "links"):
            self.links.new(out, socket)
        else:
            socket.default_value = out
        return node

    def attribute(self, name):
        n = self.node("ShaderNodeAttribute", attribute_name=name)
        sep = self.node("ShaderNodeSeparateXYZ")
        self.links.new(n.outputs["Vector"], sep.inputs[0])
        return sep.outputs["X"], sep.outputs["Y"], sep.outputs["Z"]

    def object_xyz(self):
        coords = self.node("ShaderNodeTexCoord")
        sep = self.node("ShaderNodeSeparateXYZ")
        self.links.new(coords.outputs["Object"], sep.inputs[0])
        return coords.outputs["Object"], (sep.outputs["X"], sep.outputs["Y"], sep.outputs["Z"])

    def math(self, op, a, b=0.0, clamp=False):
        n = self.node("ShaderNodeMath", operation=op, use_clamp=clamp)
        for socket, value in zip(n.inputs, (a, b)):
            if hasattr(value, "links"):
                self.links.new(value, socket)
            else:
                socket.default_value = value
        return n.outputs[0]

    def ramp(self, value, lo, hi):
        """0 below lo, 1 above hi, smooth between (lo > hi turns it round)."""
        n = self.node("ShaderNodeMapRange", interpolation_type='SMOOTHSTEP')
        self.link(value, n, "Value")
        if lo > hi:
            lo, hi = hi, lo
            _set(n, ("From Min",), lo), _set(n, ("From Max",), hi), _set(n, ("To Min",), 1.0), _set(n, ("To Max",), 0.0)
        else:
            _set(n, ("From Min",), lo), _set(n, ("From Max",), hi)
        return n.outputs["Result"]

    def mix(self, a, b, fac):
        n = self.node("ShaderNodeMix", data_type='RGBA')
        for name, value in (("Factor_Float", fac), ("A_Color", a), ("B_Color", b)):
            value = (*value, 1.0) if isinstance(value, tuple) and len(value) == 3 else value
            self.link(value, n, name)
        return _socket(n.outputs, "Result_Color")

    def noise(self, vector, scale, detail=2.0, roughness=0.5):
        n = self.node("ShaderNodeTexNoise")
        if vector is not None:
            self.links.new(vector, n.inputs["Vector"])
        n.inputs["Scale"].default_value = scale
        n.inputs["Detail"].default_value = detail
        _set(n, ("Roughness",), roughness)
        return n.outputs["Fac"]

    def combine(self, x, y, z):
        n = self.node("ShaderNodeCombineXYZ")
        for socket, value in zip(n.inputs, (x, y, z)):
            self.link(value, n, socket.name)
        return n.outputs[0]

    def occlusion(self, colour, distance):
        n = self.node("ShaderNodeAmbientOcclusion")
        n.inputs["Distance"].default_value = distance
        self.link(colour, n, "Color")
        return n.outputs["Color"], n.outputs["AO"]

    def bump(self, height, strength, distance):
        n = self.node("ShaderNodeBump")
        self.link(height, n, "Height")
        n.inputs["Strength"].default_value = strength
        n.inputs["Distance"].default_value = distance
        return n.outputs["Normal"]


def _principled(graph, colour, roughness, sss=0.0, coat=0.0, normal=None, specular=0.5):
    bsdf = graph.nodes.get("Principled BSDF") or graph.node("ShaderNodeBsdfPrincipled")
    graph.link(colour, bsdf, "Base Color")
    graph.link(roughness, bsdf, "Roughness")
    _set(bsdf, ("Subsurface Weight", "Subsurface"), sss)
    if sss:
        _set(bsdf, ("Subsurface Radius",), SSS_RADIUS)
        _set(bsdf, ("Subsurface Scale",), SSS_SCALE)
        if _socket(bsdf.inputs, "Subsurface Color") is not None:  # Blender 3.x scatters this colour
            graph.link(colour, bsdf, "Subsurface Color")
            _set(bsdf, ("Subsurface Radius",), tuple(SSS_SCALE * r for r in SSS_RADIUS))
    _set(bsdf, ("Coat Weight", "Clearcoat"), coat)
    _set(bsdf, ("Coat Roughness", "Clearcoat Roughness"), 0.03)
    _set(bsdf, ("Specular IOR Level", "Specular"), specular)
    if normal is not None:
        graph.link(normal, bsdf, "Normal")
    out = graph.nodes.get("Material Output") or graph.node("ShaderNodeOutputMaterial")
    graph.links.new(bsdf.outputs[0], out.inputs["Surface"])
    return bsdf


def _new(name, viewport):
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*viewport, 1.0)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    return mat, _Graph(mat)


def skin_material(name):
    """Skin with scattering, mottled tone and warm spots, pores, brow hairs, the lash line and the lips' red."""
    mat, g = _new(name, SKIN)
    brow, lash, flush = g.attribute(ATTRIBUTES["skin"])
    coords, (x, y, z) = g.object_xyz()
    mottle = g.noise(coords, 45.0, detail=4.0)
    tone = g.mix(SKIN_PALE, SKIN, g.ramp(mottle, 0.35, 0.65))
    colour = g.mix(tone, SKIN_FLUSH, g.math('MULTIPLY', flush, 0.75))
    _, _, lip = g.attribute(ATTRIBUTES["mouth"])
    lip = g.ramp(lip, 0.3, 0.7)
    creases = g.noise(g.combine(g.math('MULTIPLY', x, 2500.0), g.math('MULTIPLY', y, 150.0), 0.0), 1.0, detail=2.0)
    colour = g.mix(colour, g.mix(LIPS, SKIN_FLUSH, g.ramp(mottle, 0.3, 0.7)), lip)
    # Brow hairs: noise stretched along the hair (outward, rising toward the middle of the brow).
    ax = g.math('ABSOLUTE', x)
    along = g.math('MULTIPLY', ax, 160.0)
    across = g.math('MULTIPLY', g.math('SUBTRACT', y, g.math('MULTIPLY', ax, 0.25)), 2600.0)
    strands = g.noise(g.combine(along, across, g.math('MULTIPLY', z, 900.0)), 1.0, detail=3.0, roughness=0.6)
    hair = g.ramp(g.math('ADD', strands, g.math('MULTIPLY', brow, 0.55)), 0.72, 0.86)
    hair = g.math('MULTIPLY', hair, g.ramp(brow, 0.05, 0.25))
    colour = g.mix(colour, HAIR, hair)
    colour = g.mix(colour, HAIR, g.math('MULTIPLY', lash, 0.9))
    # Scalp: a short crop, strands combed back, thinning out at the hairline.
    scalp, _, _ = g.attribute(ATTRIBUTES["hair"])
    crop = g.noise(g.combine(g.math('MULTIPLY', x, 3000.0), g.math('MULTIPLY', y, 3000.0), g.math('MULTIPLY', z, 250.0)),
                   1.0, detail=3.0, roughness=0.6)
    crop = g.ramp(g.math('ADD', crop, g.math('MULTIPLY', scalp, 0.7)), 0.75, 0.9)
    colour = g.mix(colour, g.mix(HAIR, SCALP_HAIR, g.ramp(mottle, 0.3, 0.7)), crop)
    hair = g.math('MAXIMUM', hair, crop)
    pores = g.noise(coords, 2200.0, detail=1.0)
    height = g.math('ADD', g.math('ADD', pores, g.math('MULTIPLY', g.math('ADD', strands, crop), hair)),
                    g.math('MULTIPLY', creases, lip))
    roughness = g.math('ADD', g.math('SUBTRACT', 0.42, g.math('MULTIPLY', lip, 0.1)),
                       g.math('MULTIPLY', g.math('MAXIMUM', hair, lash), 0.3))
    _principled(g, colour, roughness, sss=1.0, normal=g.bump(height, 0.12, 0.0004), specular=0.45)
    return mat


def eye_material(name):
    """Sclera, iris and pupil on one wet ball: a round iris with fibres and a limbal ring, shaded by the lids."""
    mat, g = _new(name, SCLERA)
    u, v, _ = g.attribute(ATTRIBUTES["eye"])
    r = g.math('SQRT', g.math('ADD', g.math('MULTIPLY', u, u), g.math('MULTIPLY', v, v)))
    angle = g.math('ARCTAN2', v, u)
    fibres = g.noise(g.combine(g.math('MULTIPLY', angle, 9.0), g.math('MULTIPLY', r, 2.0), 0.0), 1.0,
                     detail=4.0, roughness=0.6)
    iris = g.mix(IRIS_DARK, IRIS_LIGHT, g.ramp(fibres, 0.35, 0.7))
    iris = g.mix(iris, (0.30, 0.22, 0.08), g.math('MULTIPLY', g.ramp(r, 0.75, 0.45), 0.6))  # warm collarette
    iris = g.mix(iris, IRIS_DARK, g.ramp(r, 0.8, 1.0))                                          # limbal ring
    sclera = g.mix(SCLERA, SCLERA_CORNER, g.ramp(r, 1.6, 3.0))
    colour = g.mix(sclera, iris, g.ramp(r, 1.04, 0.97))
    colour = g.mix(colour, PUPIL, g.ramp(r, 0.42, 0.37))
    shaded, ao = g.occlusion(colour, 0.006)
    colour = g.mix(g.mix(colour, (0.0, 0.0, 0.0), 0.55), colour, ao)
    _principled(g, colour, 0.06, coat=1.0, specular=0.6)
    return mat


def mouth_material(name):
    """The mouth bag: a dark, matte interior with the tongue on its floor, darker the deeper it goes."""
    mat, g = _new(name, INTERIOR)
    _, tongue, _ = g.attribute(ATTRIBUTES["mouth"])
    colour = g.mix(INTERIOR, TONGUE, g.ramp(tongue, 0.2, 0.6))
    shaded, ao = g.occlusion(colour, 0.02)
    colour = g.mix(g.mix(colour, (0.0, 0.0, 0.0), 0.6), colour, ao)
    _principled(g, colour, 0.45, specular=0.3)
    return mat


def teeth_material(name):
    """Teeth, with gums toward the roots."""
    mat, g = _new(name, TOOTH)
    gum, _, _ = g.attribute(ATTRIBUTES["mouth"])
    coords, _ = g.object_xyz()
    colour = g.mix(TOOTH, (0.70, 0.62, 0.45), g.ramp(g.noise(coords, 400.0), 0.4, 0.7))
    colour = g.mix(colour, GUM, g.ramp(gum, 0.62, 0.7))
    shaded, ao = g.occlusion(colour, 0.01)
    colour = g.mix(g.mix(colour, (0.0, 0.0, 0.0), 0.8), colour, ao)
    _principled(g, colour, 0.22, coat=0.4, specular=0.5)
    return mat


MATERIALS = {"skin": skin_material, "brows": skin_material, "lips": skin_material, "eye_white": eye_material,
             "iris": eye_material, "pupil": eye_material, "mouth": mouth_material, "teeth": teeth_material,
             "tongue": mouth_material}


def store_maps(me, maps: look_maps.LookMaps):
    """The maps as point attributes of ``me`` (float vectors the materials' Attribute nodes read)."""
    for key, values in (("skin", maps.skin), ("eye", maps.eye), ("mouth", maps.mouth), ("hair", maps.hair)):
        name = ATTRIBUTES[key]
        if name in me.attributes:
            me.attributes.remove(me.attributes[name])
        attribute = me.attributes.new(name, 'FLOAT_VECTOR', 'POINT')
        attribute.data.foreach_set("vector", np.asarray(values, dtype=np.float32).ravel())


def dress(me, name, part_names):
    """One material slot per part. Parts that share a shader share its material, unless their viewport colours
    differ (Workbench draws each material in its one colour): then each gets a copy in its own colour."""
    made = {}
    for part in part_names:
        maker = MATERIALS.get(part, skin_material)
        viewport = VIEWPORT.get(part, SKIN)
        if (maker, viewport) not in made:
            first = next((mat for (m, _), mat in made.items() if m is maker), None)
            mat = maker(f"{name}_{part}") if first is None else first.copy()
            mat.name = f"{name}_{part}"
            mat.diffuse_color = (*viewport, 1.0)
            made[maker, viewport] = mat
        me.materials.append(made[maker, viewport])


def studio(scene, centre, height, world_grey=0.045):
    """A neutral three-point rig around a head of ``height`` at ``centre`` (Blender Z up, the face looks along -Y):
    a big soft key above left, a dimmer fill right, a rim behind, and a grey world for the shadows."""
    from mathutils import Vector

    centre = Vector(centre)
    for name, offset, power, size, colour in (
            ("key", (-0.55, -1.0, 0.55), 18.0, 1.2, (1.0, 0.97, 0.93)),
            ("fill", (0.9, -0.8, 0.0), 6.0, 1.6, (0.95, 0.97, 1.0)),
            ("rim", (0.5, 1.0, 0.6), 14.0, 0.6, (1.0, 1.0, 1.0))):
        light = bpy.data.objects.new(name, bpy.data.lights.new(name, 'AREA'))
        light.data.energy = power * height ** 2 / 0.04
        light.data.size = size * height
        light.data.color = colour
        light.location = centre + Vector(offset) * (3.0 * height)
        light.rotation_euler = (centre - light.location).to_track_quat('-Z', 'Y').to_euler()
        scene.collection.objects.link(light)
    world = bpy.data.worlds.new("studio")
    world.color = (world_grey,) * 3
    if bpy.app.version < (5, 0, 0):
        world.use_nodes = True
    if world.node_tree is not None and "Background" in world.node_tree.nodes:
        world.node_tree.nodes["Background"].inputs["Color"].default_value = (world_grey,) * 3 + (1.0,)
    scene.world = world
    return world


def clean_cycles(scene, samples: int, threads: int = 0):
    """Cycles on the CPU with enough samples and the denoiser, clamped so no firefly survives."""
    scene.render.engine = 'CYCLES'
    scene.cycles.device = 'CPU'
    scene.cycles.samples = samples
    scene.cycles.use_denoising = True
    scene.cycles.sample_clamp_indirect = 3.0
    scene.cycles.max_bounces = 6
    if hasattr(scene.cycles, "use_adaptive_sampling"):
        scene.cycles.use_adaptive_sampling = True
    if threads:
        scene.render.threads_mode = 'FIXED'
        scene.render.threads = threads
