"""Stills of the default head as the add-on imports it: neutral, emotions and visemes, front and three-quarter.

    python -m avitalk_blender.head_renders [--front] [out_dir] [case ...]     # default out_dir: docs/head

The head comes in through ``avitalk.import_head`` (its materials and maps are
the add-on's), each case sets the rig's expression keys and jaw bone, and
Cycles renders it on the CPU under ``look.studio``'s lights, denoised.
"""

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import bpy
from mathutils import Quaternion, Vector

from . import look, register
from .core import backend_ref

SIZE, SAMPLES, THREADS = 320, 24, 2
VIEWS = {"front": 0.0, "three_quarter": 35.0}
BACKGROUND = 0.045


@dataclass
class Case:
    name: str
    expression: dict = field(default_factory=dict)  # component name -> weight
    jaw: float = 0.0                                 # radians, opening


def _viseme(label: str) -> Case:
    target = dict(backend_ref.module("head.visemes").viseme(label))
    jaw = target.pop("jaw", 0.0)
    return Case(f"viseme_{label}", target, jaw)


def _both(**weights) -> dict:
    return {f"{name}_{side}": w for name, w in weights.items() for side in "LR"}


EMOTIONS = (
    Case("neutral"),
    Case("happy", _both(smile=1.0, cheek_raise=0.6, squint=0.3)),
    Case("sad", {**_both(brow_inner_raise=1.0, lip_corner_depress=0.8, brow_lower=0.3), "chin_raise": 0.4}),
    Case("angry", {**_both(brow_lower=1.0, squint=0.5, nose_wrinkle=0.4, lip_press=0.6), "jaw_clench": 1.0}),
    Case("surprised", {**_both(brow_inner_raise=1.0, brow_outer_raise=1.0, eye_wide=1.0), "jaw_open_lips_stretch": 0.5},
         0.22),
    Case("blink", _both(blink=1.0)),
)
VISEMES = ("P", "AA", "UW", "F", "IY")


def cases() -> tuple:
    return EMOTIONS + tuple(_viseme(label) for label in VISEMES)


def _pose(mesh_obj, arm_obj, case: Case):
    names = list(arm_obj["avitalk_expression_names"])
    keys = mesh_obj.data.shape_keys.key_blocks
    for i in range(int(arm_obj["avitalk_n_expr"])):
        keys[f"Exp{i:03d}"].value = 0.0
    for name, weight in case.expression.items():
        keys[f"Exp{names.index(name):03d}"].value = weight
    arm_obj.pose.bones["jaw"].rotation_quaternion = Quaternion((1.0, 0.0, 0.0), case.jaw)
    bpy.context.view_layer.update()


def _scene(mesh_obj):
    scene = bpy.context.scene
    corners = [mesh_obj.matrix_world @ Vector(c) for c in mesh_obj.bound_box]
    low = Vector([min(c[i] for c in corners) for i in range(3)])
    high = Vector([max(c[i] for c in corners) for i in range(3)])
    centre, height = (low + high) / 2, (high - low).z
    look.studio(scene, centre, height, BACKGROUND)
    look.clean_cycles(scene, SAMPLES, THREADS)
    scene.render.resolution_x = scene.render.resolution_y = SIZE
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.color_mode = 'RGB'
    scene.render.image_settings.compression = 100
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.lens = 85.0
    scene.collection.objects.link(camera)
    scene.camera = camera
    return scene, camera, centre, height


def render(out_dir: Path, wanted=(), views=tuple(VIEWS)) -> list:
    """Render the cases (all, or those named in ``wanted``) into ``out_dir/<case>_<view>.png``."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    register()
    bpy.ops.avitalk.import_head(name="avitalk_head")
    arm_obj = bpy.context.view_layer.objects.active
    mesh_obj = next(child for child in arm_obj.children if child.type == 'MESH')
    scene, camera, centre, height = _scene(mesh_obj)
    target = centre + Vector((0.0, 0.0, 0.06 * height))
    distance = 1.25 * height * camera.data.lens / camera.data.sensor_width
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in cases():
        if wanted and case.name not in wanted:
            continue
        _pose(mesh_obj, arm_obj, case)
        for view in views:
            a = math.radians(VIEWS[view])
            camera.location = target + distance * Vector((math.sin(a), -math.cos(a), 0.02))
            camera.rotation_euler = (target - camera.location).to_track_quat('-Z', 'Y').to_euler()
            scene.render.filepath = str(out_dir / f"{case.name}_{view}.png")
            bpy.ops.render.render(write_still=True)
            paths.append(Path(scene.render.filepath))
    return paths


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        args = args[args.index("--") + 1:]
    views = tuple(VIEWS)
    if "--front" in args:
        args.remove("--front")
        views = ("front",)
    out_dir = Path(args.pop(0)) if args else Path("docs/head")
    t0 = time.time()
    paths = render(out_dir, set(args), views)
    print(f"rendered {len(paths)} images into {out_dir} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
