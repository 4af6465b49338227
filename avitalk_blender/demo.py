"""Headless demo: the real two-stage pipeline on bundled speech, baked onto the default head.

    python -m avitalk_blender.demo --out out/              # assets/demo/line.wav -> instruction -> motion -> keys
    python -m avitalk_blender.demo --out out/ --audio my.wav
    python -m avitalk_blender.demo --out out/ --procedural # a scripted blink/smile/jaw (no models needed)

Puts the speech on a sound strip, runs ``avitalk.generate`` (stage 1 writes the
instruction, stage 2 the motion; the backend runs as a subprocess, synchronously
in background mode), prints the instruction, bakes the take with
``avitalk.bake`` and saves ``demo.blend``. Then it renders every frame with
Workbench into ``demo.mp4`` (the speech as its sound, the instruction as a
caption) and ``demo.gif``, and four telling moments, picked from the motion
itself, with Cycles into the labelled contact sheet ``demo_preview.png``.
"""

import argparse
import math
import sys
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from . import demo_video, look, register, session
from .core import backend_ref, demo_motion

FPS = 25
GIF_STEP, GIF_SCALE = 2, 75  # the GIF shows every other frame at 75 % size: a few hundred KB
BACKGROUND = (0.045, 0.045, 0.045)  # the world's grey, linear
DEMO_AUDIO = Path(__file__).resolve().parents[1] / "assets" / "demo" / "line.wav"


def _head_bounds(mesh_obj):
    corners = [mesh_obj.matrix_world @ Vector(c) for c in mesh_obj.bound_box]
    low = Vector([min(c[i] for c in corners) for i in range(3)])
    high = Vector([max(c[i] for c in corners) for i in range(3)])
    return (low + high) / 2, high - low


def _stage(scene, mesh_obj, size: int, samples: int):
    """Camera in front of the face (FLAME +Z is Blender -Y), the studio lights, a grey world, clean Cycles."""
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
    look.studio(scene, centre, height, BACKGROUND[0])
    look.clean_cycles(scene, samples)
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = 'PNG'


def _contact_sheet(tiles, labels, target: Path):
    """The PNG ``tiles`` side by side, each with its label below, composed and rendered in the sequencer."""
    first = bpy.data.images.load(str(tiles[0]))
    width, height = first.size
    bpy.data.images.remove(first)
    band = 2 * max(9, height // 18)  # even: the tiles sit on whole pixels
    scene = bpy.data.scenes.new("contact_sheet")
    scene.render.resolution_x, scene.render.resolution_y = width * len(tiles), height + band
    scene.render.resolution_percentage = 100
    scene.frame_start = scene.frame_end = 1
    editor = scene.sequence_editor_create()
    editor.strips.new_effect("background", 'COLOR', 1, 1, length=1).color = BACKGROUND
    for i, (path, label) in enumerate(zip(tiles, labels)):
        strip = editor.strips.new_image(f"tile{i}", str(path), 2, 1)
        strip.transform.offset_x = (i + 0.5) * width - 0.5 * width * len(tiles)
        strip.transform.offset_y = 0.5 * band
        text = editor.strips.new_effect(f"label{i}", 'TEXT', 3, 1, length=1)
        text.text = label
        text.font_size = max(8, min(int(band * 0.55), width // 20))  # a label of ~28 characters fits its tile
        text.location = ((i + 0.5) / len(tiles), 0.5 * band / (height + band))
        text.anchor_x, text.anchor_y = 'CENTER', 'CENTER'
    scene.render.image_settings.file_format = 'PNG'
    scene.render.filepath = str(target)
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(write_still=True)
    bpy.data.scenes.remove(scene)


def _import_head(flame_path: str):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    register()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    bpy.ops.avitalk.import_head(filepath=flame_path, name="avitalk_head")
    arm_obj = bpy.context.view_layer.objects.active
    mesh_obj = next(child for child in arm_obj.children if child.type == 'MESH')
    return scene, arm_obj, mesh_obj


def _procedural(out: Path, arm_obj) -> tuple:
    """Bake the scripted animation; returns ({beat: frame}, caption)."""
    names = list(arm_obj["avitalk_expression_names"])
    motion = demo_motion.procedural_motion(names, int(arm_obj["avitalk_n_expr"]), fps=FPS)
    motion_path = out / "demo_motion.npz"
    backend_ref.motion().save_motion(motion_path, motion)
    bpy.ops.avitalk.apply_motion(filepath=str(motion_path), auto_start=False, frame_start=1)
    bpy.context.scene.frame_start, bpy.context.scene.frame_end = 1, motion.n_frames
    return {beat: 1 + int(round(seconds * FPS)) for beat, seconds in demo_motion.BEATS.items()}, motion.instruction


# Channels of the default head that say where the lips seal, the mouth opens, the eyes close, and which
# ones only articulate speech (left out when looking for the most expressive face).
CLOSING = ("lip_press_L", "lip_press_R", "jaw_open_lips_closed")
OPENING = ("lips_part", "jaw_open_lips_stretch", "lower_lip_depress_L", "lower_lip_depress_R")
BLINKING = ("blink_L", "blink_R")
ARTICULATING = CLOSING + OPENING + ("pucker", "funnel", "lower_lip_tuck", "upper_lip_raise_L", "upper_lip_raise_R")
MOMENTS = {"closure": "bilabial closure", "open": "open vowel", "blink": "blink", "expressive": "most expressive"}


def telling_frames(motion, names, gap: int = 3, speech_window: int = 8) -> dict:
    """{moment: frame index} for the MOMENTS of a generated motion: four frames at least ``gap`` apart.

    A bilabial closure is a frame with the lips pressed and the jaw shut between two opened frames (so not the
    resting mouth before or after the line); the open vowel is the widest jaw; the blink the most closed lids;
    the most expressive frame moves the non-speech channels most (all non-blink channels if those stay still),
    away from the other three.
    """
    index = {name: i for i, name in enumerate(names) if i < motion.expression.shape[1]}
    expr = motion.expression  # (T, E)
    n = len(expr)

    def channels(wanted):
        return expr[:, [index[w] for w in wanted if w in index]].sum(axis=1)  # (T,)

    jaw = np.maximum(motion.jaw_pose[:, 0], 0.0)
    opening = jaw + 0.3 * channels(OPENING)
    opened = opening > 0.3 * opening.max() if opening.max() > 0 else np.zeros(n, dtype=bool)
    before = np.array([opened[max(0, t - speech_window):t].any() for t in range(n)])
    after = np.array([opened[t + 1:t + 1 + speech_window].any() for t in range(n)])
    closure = channels(CLOSING) - 4.0 * jaw
    closure = np.where(before & after, closure, closure - 100.0)
    blink = channels(BLINKING)
    others = [i for name, i in index.items() if name not in BLINKING]
    still = [i for name, i in index.items() if name not in BLINKING + ARTICULATING]
    expressive = np.abs(expr[:, still]).sum(axis=1)
    if expressive.max() < 0.05:
        expressive = np.abs(expr[:, others]).sum(axis=1) + jaw
    taken = np.zeros(n, dtype=bool)
    frames = {}
    for moment, score in (("blink", blink), ("closure", closure), ("open", opening), ("expressive", expressive)):
        frame = int(np.argmax(np.where(taken, -np.inf, score)))
        frames[moment] = frame
        taken[max(0, frame - gap):frame + gap + 1] = True
    return {moment: frames[moment] for moment in MOMENTS}


def _generate(out: Path, scene, arm_obj) -> tuple:
    """The real pipeline through the extension's own operators on the sound strip; returns ({moment: frame}, instruction)."""
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
    frames = telling_frames(motion, list(arm_obj.get("avitalk_expression_names", [])))
    return {MOMENTS[moment]: 1 + frame for moment, frame in frames.items()}, scene.avitalk.instruction


def run(out: Path, flame_path: str = "", size: int = 320, samples: int = 16, audio: Path = DEMO_AUDIO,
        procedural: bool = False, video_size: int = 320, max_frames: int = 0) -> Path:
    """The whole demo into ``out``; ``max_frames`` > 0 cuts the video short (tests). Returns the contact sheet."""
    if not audio.is_file():
        raise SystemExit(f"demo audio not found: {audio}")
    out.mkdir(parents=True, exist_ok=True)
    scene, arm_obj, mesh_obj = _import_head(flame_path)
    scene.sequence_editor_create().strips.new_sound("line", str(audio), 1, 1)
    beats, caption = _procedural(out, arm_obj) if procedural else _generate(out, scene, arm_obj)
    session.SESSION.shutdown()
    _stage(scene, mesh_obj, size, samples)
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "demo.blend"))
    _video(out, scene, audio, caption, video_size, max_frames)
    scene.render.engine = 'CYCLES'
    scene.render.resolution_x = scene.render.resolution_y = size
    tiles = []
    for beat, frame in beats.items():
        scene.frame_set(frame)
        tiles.append(out / f"demo_{beat.replace(' ', '_')}.png")
        scene.render.filepath = str(tiles[-1])
        bpy.ops.render.render(write_still=True)
    sheet = out / "demo_preview.png"
    _contact_sheet(tiles, [f"{beat} \u00b7 frame {frame}" for beat, frame in beats.items()], sheet)
    return sheet


def _video(out: Path, scene, audio: Path, caption: str, size: int, max_frames: int) -> Path:
    """Every frame with Workbench (quick on a CPU), cut with the speech and the caption into demo.mp4, and demo.gif."""
    frame_range = scene.frame_start, scene.frame_end
    if max_frames > 0:
        scene.frame_end = min(scene.frame_end, scene.frame_start + max_frames - 1)
    scene.render.engine = 'BLENDER_WORKBENCH'
    scene.display.shading.light, scene.display.shading.color_type = 'STUDIO', 'MATERIAL'
    scene.display.render_aa = '8'
    scene.render.resolution_x = scene.render.resolution_y = size
    try:
        frames = demo_video.render_frames(scene, out / "frames")
    except RuntimeError as error:  # no OpenGL here (Mesa's EGL missing): Cycles needs none, and is slower
        print(f"note: Workbench cannot render here ({error}); rendering the video with Cycles")
        scene.render.engine = 'CYCLES'
        frames = demo_video.render_frames(scene, out / "frames")
    scene.frame_start, scene.frame_end = frame_range
    cut = demo_video.cut(frames, FPS, audio, caption)
    movie = demo_video.write_mp4(cut, out / "demo.mp4")
    tracks = demo_video.mp4_tracks(movie)
    print(f"{movie}: " + ", ".join(f"{handler} {codec} x{count}" for handler, codec, count in tracks))
    demo_video.write_gif(demo_video.write_stills(cut, out / "stills", GIF_STEP, GIF_SCALE), out / "demo.gif", FPS / GIF_STEP)
    bpy.data.scenes.remove(cut)
    return movie


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--flame", default="", help="FLAME file with AVI-Talk expression names (default head)")
    parser.add_argument("--size", type=int, default=320, help="contact sheet tile size (Cycles)")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--video-size", type=int, default=320, help="video frame size (Workbench)")
    parser.add_argument("--max-frames", type=int, default=0, help="render only this many video frames (0: all)")
    parser.add_argument("--audio", type=Path, default=DEMO_AUDIO, help="speech to animate (default: the bundled line)")
    parser.add_argument("--procedural", action="store_true", help="bake the scripted animation instead of running the models")
    args = parser.parse_args(argv)
    print(run(args.out, args.flame, args.size, args.samples, args.audio, args.procedural, args.video_size,
              args.max_frames))


if __name__ == "__main__":
    main()
