"""The demo's moving pictures: every frame rendered, cut with the speech and a caption into an MP4, and a small GIF.

The 3D scene renders its frames to PNGs; a second scene's sequencer lays them
out with the speech as a sound strip and the instruction as a text strip (``cut``),
and renders H.264 video with AAC audio through Blender's FFmpeg, or captioned PNGs. ``mp4_tracks``
reads the written file's tracks back (no ffprobe needed), and ``write_gif``
encodes frames for the README (stdlib only: a shared palette, LZW, and pixels
unchanged since the previous frame left transparent, which keeps it small).
"""

import struct
from pathlib import Path

import bpy
import numpy as np


def render_frames(scene, folder: Path) -> list:
    """Render frame_start..frame_end of ``scene`` as it is set up (engine, camera, size) into numbered PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    scene.render.image_settings.media_type = 'IMAGE'
    scene.render.image_settings.file_format = 'PNG'
    scene.render.filepath = str(folder / "frame_")
    scene.render.use_file_extension = True
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(animation=True)
    return [folder / f"frame_{f:04d}.png" for f in range(scene.frame_start, scene.frame_end + 1)]


def cut(frames, fps: int, audio: Path | None = None, caption: str = ""):
    """A new scene whose sequencer shows the PNG ``frames`` with ``audio`` under them and ``caption`` along the bottom."""
    first = bpy.data.images.load(str(frames[0]))
    width, height = first.size
    bpy.data.images.remove(first)
    scene = bpy.data.scenes.new("demo_video")
    scene.render.fps, scene.render.fps_base = fps, 1.0
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, len(frames)
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_image("frames", str(frames[0]), 1, 1)
    for path in frames[1:]:
        strip.elements.append(Path(path).name)
    if audio is not None:
        editor.strips.new_sound("speech", str(audio), 2, 1)
    if caption:
        text = editor.strips.new_effect("caption", 'TEXT', 3, 1, length=len(frames))
        text.text = caption
        text.font_size = max(10, height // 18)
        text.wrap_width = 0.94
        text.location = (0.5, 0.03)
        text.anchor_x, text.anchor_y = 'CENTER', 'BOTTOM'
        text.alignment_x = 'CENTER'
        text.use_box, text.box_color, text.box_margin = True, (0.0, 0.0, 0.0, 0.55), 0.01
    return scene


def write_mp4(scene, target: Path) -> Path:
    """The cut ``scene`` as H.264 video with its sound as AAC (no sound strip: no audio track)."""
    settings = scene.render.image_settings
    settings.media_type = 'VIDEO'
    settings.file_format = 'FFMPEG'
    ffmpeg = scene.render.ffmpeg
    ffmpeg.format, ffmpeg.codec = 'MPEG4', 'H264'
    ffmpeg.constant_rate_factor, ffmpeg.ffmpeg_preset = 'MEDIUM', 'GOOD'
    has_sound = any(strip.type == 'SOUND' for strip in scene.sequence_editor.strips)
    ffmpeg.audio_codec = 'AAC' if has_sound else 'NONE'
    ffmpeg.audio_channels, ffmpeg.audio_mixrate, ffmpeg.audio_bitrate = 'MONO', 48000, 128
    target.parent.mkdir(parents=True, exist_ok=True)
    stem = target.with_suffix("")
    scene.render.filepath = str(stem) + "_####"
    scene.render.use_file_extension = True
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(animation=True)
    Path(f"{stem}_{scene.frame_start:04d}-{scene.frame_end:04d}.mp4").replace(target)
    return target


def write_stills(scene, folder: Path, step: int = 1, percent: int = 100) -> list:
    """Every ``step``-th frame of the cut ``scene`` as PNGs at ``percent`` size (the caption burned in, as in the MP4)."""
    scene.render.resolution_percentage = percent
    scene.render.image_settings.media_type = 'IMAGE'
    scene.render.image_settings.file_format = 'PNG'
    scene.frame_step = step
    folder.mkdir(parents=True, exist_ok=True)
    scene.render.filepath = str(folder / "still_")
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(animation=True)
    return [folder / f"still_{f:04d}.png" for f in range(scene.frame_start, scene.frame_end + 1, step)]


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, payload end) of the ISO media boxes between ``start`` and ``end``."""
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[start + 8:start + 16])[0], 16
        elif size == 0:
            size = end - start
        if size < header:
            return
        yield kind.decode("latin-1"), start + header, start + size
        start += size


def _child(data: bytes, start: int, end: int, path: str):
    for name in path.split("/"):
        start, end = next(((s, e) for kind, s, e in _boxes(data, start, end) if kind == name), (None, None))
        if start is None:
            return None
    return start, end


def mp4_tracks(path: Path) -> list:
    """[(handler, codec, sample count)] of an MP4's tracks, e.g. [('vide', 'avc1', 127), ('soun', 'mp4a', 239)]."""
    data = Path(path).read_bytes()
    moov = _child(data, 0, len(data), "moov")
    if moov is None:
        return []
    tracks = []
    for kind, start, end in _boxes(data, *moov):
        if kind != "trak":
            continue
        hdlr = _child(data, start, end, "mdia/hdlr")
        stbl = _child(data, start, end, "mdia/minf/stbl")
        stsd, stsz = _child(data, *stbl, "stsd"), _child(data, *stbl, "stsz")
        handler = data[hdlr[0] + 8:hdlr[0] + 12].decode("latin-1")
        codec = data[stsd[0] + 12:stsd[0] + 16].decode("latin-1")
        count = struct.unpack(">I", data[stsz[0] + 8:stsz[0] + 12])[0]
        tracks.append((handler, codec, count))
    return tracks


def _read_rgb(path: Path) -> np.ndarray:
    image = bpy.data.images.load(str(path))
    pixels = np.empty(image.size[0] * image.size[1] * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    rgb = pixels.reshape(image.size[1], image.size[0], 4)[::-1, :, :3]  # (H, W, 3), top row first
    bpy.data.images.remove(image)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def _palette(frames: list, n: int = 255) -> tuple:
    """The ``n`` most common colours at 5 bits a channel, and a table from every 15-bit colour to its nearest."""
    keys = np.concatenate([(f >> 3).astype(np.int32) @ np.array([1024, 32, 1]) for f in frames], axis=None)
    counts = np.bincount(keys.ravel(), minlength=32768)
    chosen = np.argsort(counts)[::-1][:n]
    chosen = chosen[counts[chosen] > 0]
    colours = np.stack([chosen >> 10, (chosen >> 5) & 31, chosen & 31], axis=1) * 8 + 4  # (n, 3)
    cube = np.stack(np.meshgrid(np.arange(32), np.arange(32), np.arange(32), indexing="ij"), -1).reshape(-1, 3) * 8 + 4
    lookup = np.empty(32768, dtype=np.uint8)
    for lo in range(0, 32768, 4096):
        distance = ((cube[lo:lo + 4096, None, :] - colours[None, :, :]) ** 2).sum(-1)  # (4096, n)
        lookup[lo:lo + 4096] = np.argmin(distance, axis=1)
    return colours.astype(np.uint8), lookup


def _lzw(indices: np.ndarray, min_size: int = 8) -> bytes:
    """GIF's variable-width LZW over a flat array of palette indices, packed into 255-byte sub-blocks."""
    clear, stop = 1 << min_size, (1 << min_size) + 1
    table, width, next_code = {}, min_size + 1, stop + 1  # (prefix code, index) -> code
    bits, n_bits, out = 0, 0, bytearray()

    def emit(code):
        nonlocal bits, n_bits
        bits |= code << n_bits
        n_bits += width
        while n_bits >= 8:
            out.append(bits & 255)
            bits >>= 8
            n_bits -= 8

    emit(clear)
    values = indices.tobytes()
    word = values[0]
    for value in values[1:]:
        code = table.get((word, value))
        if code is not None:
            word = code
            continue
        emit(word)
        if next_code < 4096:
            table[word, value] = next_code
            next_code += 1
            if next_code > (1 << width) and width < 12:
                width += 1
        else:
            emit(clear)
            table, width, next_code = {}, min_size + 1, stop + 1
        word = value
    emit(word)
    if next_code == (1 << width) and width < 12:  # the reader adds one more entry before it reads the stop
        width += 1
    emit(stop)
    if n_bits:
        out.append(bits & 255)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    return bytes([min_size]) + blocks + b"\x00"


def write_gif(frames, target: Path, fps: float) -> Path:
    """The PNG ``frames`` as a looping GIF at ``fps``."""
    images = [_read_rgb(path) for path in frames]
    colours, lookup = _palette(images)
    height, width = images[0].shape[:2]
    transparent = 255
    delay = int(round(100 / fps))
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0xF7, 0, 0))
    out += np.vstack([colours, np.zeros((256 - len(colours), 3), np.uint8)]).tobytes()
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    previous = None
    for image in images:
        index = lookup[(image >> 3).astype(np.int32) @ np.array([1024, 32, 1])]  # (H, W)
        shown = index.copy()
        if previous is not None:
            shown[index == previous] = transparent
        previous = index
        out += b"\x21\xf9\x04" + struct.pack("<BHBB", 0x05, delay, transparent, 0)  # keep the frame, then draw over
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
        out += _lzw(shown.astype(np.uint8).ravel())
    out += b"\x3b"
    target.write_bytes(bytes(out))
    return target
