"""Headless demo: the real two-stage pipeline on bundled speech, baked onto the default head.

    python -m avitalk_blender.demo --out out/              # assets/demo/line.wav -> instruction -> motion -> keys
    python -m avitalk_blender.demo --out out/ --audio my.wav
    python -m avitalk_blender.demo --out out/ --procedural # a scripted blink/smile/jaw (no models needed)

Puts the speech on a sound strip, runs ``avitalk.generate`` (stage 1 writes the
instruction, stage 2 the motion; the backend runs as a subprocess, synchronously
in background mode), prints the instruction, bakes the take with
``avitalk.bake``, saves ``demo.blend`` and renders a few telling frames into
``demo_preview.png``.
"""

import argparse
import math
import sys
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from . import register, session
from .core import backend_ref, demo_motion

FPS = 25
DEMO_AUDIO = Path(__file__).resolve().parents[1] / "assets" / "demo" / "line.wav"


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


def _import_head(flame_path: str):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    register()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    bpy.ops.avitalk.import_head(filepath=flame_path, name="avitalk_head")
    arm_obj = bpy.context.view_layer.objects.active
    mesh_obj = next(child for child in arm_obj.children if child.type == 'MESH')
    return scene, arm_obj, mesh_obj


def _procedural(out: Path, arm_obj) -> dict:
    """Bake the scripted animation; returns {beat: frame}."""
    names = list(arm_obj["avitalk_expression_names"])
    motion = demo_motion.procedural_motion(names, int(arm_obj["avitalk_n_expr"]), fps=FPS)
    motion_path = out / "demo_motion.npz"
    backend_ref.motion().save_motion(motion_path, motion)
    bpy.ops.avitalk.apply_motion(filepath=str(motion_path), auto_start=False, frame_start=1)
    bpy.context.scene.frame_start, bpy.context.scene.frame_end = 1, motion.n_frames
    return {beat: 1 + int(round(seconds * FPS)) for beat, seconds in demo_motion.BEATS.items()}


def _telling_frames(motion, names) -> dict:
    """Frames worth a look in a generated motion: lips sealed, mouth widest, a blink, the face at its most expressive."""
    index = {name: i for i, name in enumerate(names)}
    expr = motion.expression
    def channel(*wanted):
        return sum(expr[:, index[n]] for n in wanted if n in index and index[n] < expr.shape[1])
    jaw = motion.jaw_pose[:, 0]
    seal = channel("lip_press_L", "lip_press_R", "jaw_open_lips_closed") - 4.0 * np.abs(jaw)
    frames = {
        "lips_closed": int(np.argmax(seal)),
        "mouth_open": int(np.argmax(jaw)),
        "blink": int(np.argmax(channel("blink_L", "blink_R"))),
        "expressive": int(np.argmax(np.abs(expr).sum(axis=1))),
    }
    return {beat: 1 + f for beat, f in frames.items()}


def _generate(out: Path, scene, arm_obj, audio: Path) -> dict:
    """The real pipeline through the extension's own operators; returns {beat: frame}."""
    if not audio.is_file():
        raise SystemExit(f"demo audio not found: {audio}")
    editor = scene.sequence_editor_create()
    editor.strips.new_sound("line", str(audio), 1, 1)
    session.configure(python=sys.executable, checkpoint="", device="auto", log=str(out / "backend.log"),
                     motion_dir=str(out / "motion"))
    if bpy.ops.avitalk.generate() != {'FINISHED'}:
        raise SystemExit(f"generation failed; see {out / 'backend.log'}")
    print(f"inferred instruction: {scene.avitalk.instruction}")
    if bpy.ops.avitalk.bake() != {'FINISHED'}:
        raise SystemExit("bake failed")
    motion_file = max((out / "motion").glob("*.npz"), key=lambda p: p.stat().st_mtime)
    motion = backend_ref.motion().load_motion(motion_file)
    scene.frame_start, scene.frame_end = 1, motion.n_frames
    return _telling_frames(motion, list(arm_obj.get("avitalk_expression_names", [])))


def run(out: Path, flame_path: str = "", size: int = 320, samples: int = 16, audio: Path = DEMO_AUDIO,
        procedural: bool = False) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    scene, arm_obj, mesh_obj = _import_head(flame_path)
    beats = _procedural(out, arm_obj) if procedural else _generate(out, scene, arm_obj, audio)
    session.SESSION.shutdown()
    _stage(scene, mesh_obj, size, samples)
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "demo.blend"))
    frames = []
    for beat, frame in beats.items():
        scene.frame_set(frame)
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
    parser.add_argument("--audio", type=Path, default=DEMO_AUDIO, help="speech to animate (default: the bundled line)")
    parser.add_argument("--procedural", action="store_true", help="bake the scripted animation instead of running the models")
    args = parser.parse_args(argv)
    print(run(args.out, args.flame, args.size, args.samples, args.audio, args.procedural))


if __name__ == "__main__":
    main()
