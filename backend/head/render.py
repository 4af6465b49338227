"""Render FLAME-format heads with Blender's Cycles on the CPU (for docs and eyeballing).

``bpy`` is imported inside ``render_cases`` only, so importing this module is
cheap and works without Blender. The posed vertices come from the numpy
FLAME forward (``backend.flame.lbs_numpy``).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..flame.lbs_numpy import flame_forward
from ..flame.pickle_io import model_from_raw
from .components import EXPRESSION_INDEX

# Base colours per part name (linear RGB), roughness.
MATERIALS = {
    "skin": ((0.62, 0.40, 0.30), 0.55),
    "lips": ((0.50, 0.20, 0.18), 0.40),
    "brows": ((0.12, 0.07, 0.045), 0.8),
    "eye_white": ((0.80, 0.78, 0.74), 0.15),
    "iris": ((0.10, 0.22, 0.32), 0.15),
    "pupil": ((0.01, 0.01, 0.01), 0.1),
    "mouth": ((0.07, 0.012, 0.012), 0.7),
    "teeth": ((0.78, 0.74, 0.64), 0.3),
}
VIEWS = {"front": 0.0, "three_quarter": 35.0}


@dataclass
class RenderConfig:
    size: int = 512
    samples: int = 24
    threads: int = 2
    views: tuple = ("front", "three_quarter")
    distance: float = 0.62        # camera distance (m)
    lens: float = 85.0


@dataclass
class Case:
    name: str
    expression: dict = field(default_factory=dict)   # component name -> weight
    jaw_pose: tuple = (0.0, 0.0, 0.0)

    def vector(self, n_expr):
        e = np.zeros(n_expr)
        for name, w in self.expression.items():
            if name not in EXPRESSION_INDEX:
                raise ValueError(f"unknown expression component {name!r}")
            e[EXPRESSION_INDEX[name]] = w
        return e


DEFAULT_CASES = (
    Case("neutral"),
    Case("blink", {"blink_L": 1.0, "blink_R": 1.0}),
    Case("smile", {"smile_L": 1.0, "smile_R": 1.0, "cheek_raise_L": 0.6, "cheek_raise_R": 0.6,
                   "squint_L": 0.3, "squint_R": 0.3}),
    Case("jaw_open", {}, (0.3, 0.0, 0.0)),
    Case("lip_press", {"lip_press_L": 1.0, "lip_press_R": 1.0}),
    Case("pucker", {"pucker": 1.0}),
    Case("brow_raise", {"brow_inner_raise_L": 1.0, "brow_inner_raise_R": 1.0, "brow_outer_raise_L": 1.0,
                        "brow_outer_raise_R": 1.0, "eye_wide_L": 0.5, "eye_wide_R": 0.5}),
    Case("anger", {"brow_lower_L": 1.0, "brow_lower_R": 1.0, "squint_L": 0.5, "squint_R": 0.5,
                   "nose_wrinkle_L": 0.4, "nose_wrinkle_R": 0.4, "lip_press_L": 0.6, "lip_press_R": 0.6,
                   "jaw_clench": 1.0}),
    Case("surprise", {"brow_inner_raise_L": 1.0, "brow_inner_raise_R": 1.0, "brow_outer_raise_L": 1.0,
                      "brow_outer_raise_R": 1.0, "eye_wide_L": 1.0, "eye_wide_R": 1.0,
                      "jaw_open_lips_stretch": 0.5}, (0.22, 0.0, 0.0)),
)


def posed_vertices(raw: dict, case: Case) -> np.ndarray:
    """Vertices (V, 3) of the head in a case (FLAME coordinates, metres)."""
    model = model_from_raw(raw)
    verts, _ = flame_forward(model, expression=case.vector(model.exprdirs.shape[2]), jaw_pose=case.jaw_pose)
    return verts[0]


def _material(bpy, name, color, roughness):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    if name in ("skin", "lips"):
        bsdf.inputs["Subsurface Weight"].default_value = 0.15
        bsdf.inputs["Subsurface Radius"].default_value = (0.004, 0.0015, 0.001)
    return mat


def _light(bpy, scene, name, location, energy, size, color=(1, 1, 1)):
    data = bpy.data.lights.new(name, "AREA")
    data.energy = energy
    data.size = size
    data.color = color
    obj = bpy.data.objects.new(name, data)
    obj.location = location
    direction = -np.asarray(location, dtype=float)
    obj.rotation_euler = _look_rotation(direction)
    scene.collection.objects.link(obj)


def _look_rotation(direction):
    """Euler XYZ rotation pointing an object's -Z along direction."""
    from mathutils import Vector

    return Vector(tuple(direction)).to_track_quat("-Z", "Y").to_euler()


def _scene(bpy, cfg: RenderConfig):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = cfg.samples
    scene.cycles.use_denoising = bool(getattr(bpy.app.build_options, "openimagedenoise", False))
    scene.render.threads_mode = "FIXED"
    scene.render.threads = cfg.threads
    scene.render.resolution_x = scene.render.resolution_y = cfg.size
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.view_settings.view_transform = "Standard"
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.05, 0.055, 0.06, 1.0)
    scene.world = world
    # Key, fill and rim lights (Blender Z up; the face looks along -Y).
    _light(bpy, scene, "key", (0.45, -0.55, 0.45), 22.0, 0.35, (1.0, 0.96, 0.9))
    _light(bpy, scene, "fill", (-0.6, -0.45, 0.05), 7.0, 0.6, (0.85, 0.9, 1.0))
    _light(bpy, scene, "rim", (-0.2, 0.6, 0.4), 18.0, 0.3)
    return scene


def render_cases(raw: dict, cases=DEFAULT_CASES, out_dir="docs/head", cfg: RenderConfig = RenderConfig()):
    """Render each case from each view to ``out_dir/<case>_<view>.png``; returns the paths."""
    os.environ.setdefault("BLENDER_USER_RESOURCES", "/tmp/avitalk-blender-resources")
    import bpy

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scene = _scene(bpy, cfg)
    part_names = list(raw.get("avitalk_part_names", ["skin"]))
    face_parts = np.asarray(raw.get("avitalk_face_parts", np.zeros(len(raw["f"]), dtype=np.int8)))
    faces = np.asarray(raw["f"], dtype=np.int64)

    mesh = bpy.data.meshes.new("head")
    mesh.from_pydata([(0.0, 0.0, 0.0)] * len(raw["v_template"]), [], faces.tolist())
    for name in part_names:
        color, rough = MATERIALS.get(name, ((0.5, 0.5, 0.5), 0.5))
        mesh.materials.append(_material(bpy, name, color, rough))
    mesh.polygons.foreach_set("material_index", face_parts.astype(np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    obj = bpy.data.objects.new("head", mesh)
    scene.collection.objects.link(obj)

    cam_data = bpy.data.cameras.new("camera")
    cam_data.lens = cfg.lens
    cam = bpy.data.objects.new("camera", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam

    paths = []
    for case in cases:
        v = posed_vertices(raw, case)
        blender = np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)  # FLAME Y-up -> Blender Z-up
        mesh.vertices.foreach_set("co", blender.astype(np.float32).ravel())
        mesh.update()
        target = np.array([0.0, 0.0, 0.005])
        for view in cfg.views:
            a = np.deg2rad(VIEWS[view])
            pos = target + cfg.distance * np.array([np.sin(a), -np.cos(a), 0.03])
            cam.location = tuple(pos)
            cam.rotation_euler = _look_rotation(target - pos)
            path = out_dir / f"{case.name}_{view}.png"
            scene.render.filepath = str(path)
            bpy.ops.render.render(write_still=True)
            paths.append(path)
    return paths


def main(argv=None):
    """python -m backend.head.render [out_dir] [case ...]"""
    import sys
    import time

    from .build import build_head

    args = list(sys.argv[1:] if argv is None else argv)
    out_dir = args.pop(0) if args else "docs/head"
    names = set(args)
    cases = [c for c in DEFAULT_CASES if not names or c.name in names]
    t0 = time.time()
    raw = build_head()
    t1 = time.time()
    paths = render_cases(raw, cases, out_dir)
    print(f"built in {t1 - t0:.2f}s, rendered {len(paths)} images in {time.time() - t1:.1f}s")


if __name__ == "__main__":
    main()
