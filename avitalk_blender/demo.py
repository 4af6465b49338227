"""Headless demo: import the default head, bake a scripted animation, save and render previews.

    python -m avitalk_blender.demo --out out/

Writes ``demo.blend``, ``demo_motion.npz``, one PNG per beat of
``core.demo_motion.BEATS`` and ``demo_preview.png`` (those frames side by side).
"""

import argparse
import math
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from . import register
from .core import backend_ref, demo_motion

FPS = 25


def _head_bounds(mesh_obj):
    corners = [mesh_obj.matrix_world @ Vector(c) for c in mesh_obj.bound_box]
    low = Vector([min(c[i] for c in corners) for i in range(3)])
    high = Vector([max(c[i] for c in corners) for i in range(3)])
    return (low + high) / 2, high - low


def _stage(scene, mesh_obj, size: int, samples: int):
    """Camera in front of the face (FLAME +Z is Blender -Y), a key and a fill light, a grey world."""
    bpy.context.view_layer.update()
    centre, extent = _head_bounds(mesh_obj)
    height = max(extent.x, extent.z)
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.lens = 85.0
    distance = 1.35 * height * camera.data.lens / camera.data.sensor_width
    camera.location = centre + Vector((0.0, -distance, 0.0))
    camera.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.collection.objects.link(camera)
    scene.camera = camera
    for name, offset, power in (("key", (-0.6, -1.0, 0.8), 60.0), ("fill", (0.8, -0.8, 0.1), 20.0)):
        light = bpy.data.objects.new(name, bpy.data.lights.new(name, 'AREA'))
        light.data.energy = power * height ** 2 / 0.04
        light.data.size = height
        light.location = centre + Vector(offset) * (3.0 * height)
        direction = centre - light.location
        light.rotation_euler = direction.to_track_quat('-Z', 'Y').to_euler()
        scene.collection.objects.link(light)
    world = bpy.data.worlds.new("world")
    world.color = (0.05, 0.05, 0.06)
    if world.node_tree is not None and "Background" in world.node_tree.nodes:
        world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.05, 0.05, 0.06, 1.0)
    scene.world = world
    scene.render.engine = 'CYCLES'
    scene.cycles.device = 'CPU'
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = 'PNG'


def _contact_sheet(paths, target: Path):
    """Place the PNGs side by side in one PNG."""
    tiles = []
    for path in paths:
        image = bpy.data.images.load(str(path))
        pixels = np.empty(image.size[0] * image.size[1] * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        tiles.append(pixels.reshape(image.size[1], image.size[0], 4))  # (H, W, 4), bottom row first
        bpy.data.images.remove(image)
    sheet = np.concatenate(tiles, axis=1)  # (H, W * n, 4)
    image = bpy.data.images.new("contact_sheet", sheet.shape[1], sheet.shape[0], alpha=True)
    image.pixels.foreach_set(sheet.ravel())
    image.filepath_raw = str(target)
    image.file_format = 'PNG'
    image.save()
    bpy.data.images.remove(image)


def run(out: Path, flame_path: str = "", size: int = 320, samples: int = 16) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    register()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    bpy.ops.avitalk.import_head(filepath=flame_path, name="avitalk_head")
    arm_obj = bpy.context.view_layer.objects.active
    mesh_obj = next(child for child in arm_obj.children if child.type == 'MESH')

    names = list(arm_obj["avitalk_expression_names"])
    motion = demo_motion.procedural_motion(names, int(arm_obj["avitalk_n_expr"]), fps=FPS)
    motion_path = out / "demo_motion.npz"
    backend_ref.motion().save_motion(motion_path, motion)
    bpy.ops.avitalk.apply_motion(filepath=str(motion_path), auto_start=False, frame_start=1)
    scene.frame_start, scene.frame_end = 1, motion.n_frames

    _stage(scene, mesh_obj, size, samples)
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "demo.blend"))
    frames = []
    for beat, seconds in demo_motion.BEATS.items():
        scene.frame_set(1 + int(round(seconds * FPS)))
        scene.render.filepath = str(out / f"demo_{beat}.png")
        bpy.ops.render.render(write_still=True)
        frames.append(out / f"demo_{beat}.png")
    sheet = out / "demo_preview.png"
    _contact_sheet(frames, sheet)
    return sheet


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--flame", default="", help="FLAME file with AVI-Talk expression names (default head)")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args(argv)
    print(run(args.out, args.flame, args.size, args.samples))


if __name__ == "__main__":
    main()
