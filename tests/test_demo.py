"""The demo's outputs: an MP4 with video and sound, a GIF whose LZW decodes back, four telling moments."""

import numpy as np
import pytest

from backend.head.components import EXPRESSION_INDEX, EXPRESSION_NAMES
from backend.motion import Motion

bpy = pytest.importorskip("bpy")

from avitalk_blender import demo, demo_video  # noqa: E402  (needs bpy)


def _motion(expression, jaw):
    n = len(jaw)
    zeros = np.zeros((n, 3), dtype=np.float32)
    jaw_pose = zeros.copy()
    jaw_pose[:, 0] = jaw
    return Motion(fps=25.0, expression=expression.astype(np.float32), jaw_pose=jaw_pose, neck_pose=zeros,
                  global_pose=zeros, eye_pose=np.zeros((n, 6), dtype=np.float32), instruction="", seed=0, source="")


def _bump(n, peak, width, height):
    t = np.arange(n)
    return height * np.clip(1.0 - np.abs(t - peak) / width, 0.0, 1.0)


def test_telling_frames_finds_the_closure_in_speech_the_widest_vowel_the_blink_and_expression_away_from_it():
    n = 80
    expr = np.zeros((n, 100))
    jaw = np.zeros(n)
    jaw[10:70] = 0.15  # the line is spoken from frame 10 to 69
    jaw += _bump(n, 45, 4, 0.15)  # its widest vowel
    jaw[29:32] = 0.02  # a bilabial inside the line
    for name in ("lip_press_L", "lip_press_R"):
        expr[29:32, EXPRESSION_INDEX[name]] = [0.3, 0.55, 0.3]
        expr[:6, EXPRESSION_INDEX[name]] = 0.8  # pressed lips at rest before the line: not a closure
    for name in ("blink_L", "blink_R"):
        expr[:, EXPRESSION_INDEX[name]] = _bump(n, 20, 3, 1.0)
    for name in ("brow_inner_raise_L", "brow_inner_raise_R"):
        expr[:, EXPRESSION_INDEX[name]] = _bump(n, 21, 5, 0.9) + _bump(n, 60, 5, 0.7)  # strongest next to the blink
    frames = demo.telling_frames(_motion(expr, jaw), list(EXPRESSION_NAMES))
    assert frames == {"closure": 30, "open": 45, "blink": 20, "expressive": 60}


def test_telling_frames_are_distinct_on_a_still_face():
    n = 30
    frames = demo.telling_frames(_motion(np.zeros((n, 100)), np.zeros(n)), list(EXPRESSION_NAMES), gap=3)
    picked = sorted(frames.values())
    assert len(picked) == 4 and all(b - a > 3 for a, b in zip(picked, picked[1:]))


def _unlzw(data: bytes) -> list:
    """A plain GIF LZW reader (sub-blocks in, palette indices out), written from the format's description."""
    min_size, pos, stream = data[0], 1, bytearray()
    while data[pos]:
        stream += data[pos + 1:pos + 1 + data[pos]]
        pos += 1 + data[pos]
    clear, stop = 1 << min_size, (1 << min_size) + 1
    bits = int.from_bytes(bytes(stream), "little")
    at, out, table, previous, width = 0, [], None, None, min_size + 1
    while True:
        code = (bits >> at) & ((1 << width) - 1)
        at += width
        if code == clear:
            table, previous, width = [[i] for i in range(clear)] + [None, None], None, min_size + 1
            continue
        if code == stop:
            return out
        if code < len(table):
            entry = table[code]
            if previous is not None:
                table.append(previous + entry[:1])
        else:
            entry = previous + previous[:1]
            table.append(entry)
        out += entry
        previous = entry
        if len(table) == (1 << width) and width < 12:
            width += 1


@pytest.mark.parametrize("n, levels", [(1, 256), (5000, 3), (30000, 256)])
def test_gif_lzw_decodes_back_across_table_resets(n, levels):
    values = np.random.default_rng(n).integers(0, levels, size=n).astype(np.uint8)
    assert _unlzw(demo_video._lzw(values)) == values.tolist()


@pytest.fixture
def fresh_blender():
    import avitalk_blender

    try:
        yield bpy
    finally:
        avitalk_blender.unregister()
        bpy.ops.wm.read_factory_settings(use_empty=True)


def test_demo_writes_mp4_with_video_and_sound_gif_and_labelled_sheet(fresh_blender, tmp_path):
    sheet = demo.run(tmp_path, size=32, samples=1, procedural=True, video_size=48, max_frames=6)
    tracks = {handler: (codec, count) for handler, codec, count in demo_video.mp4_tracks(tmp_path / "demo.mp4")}
    assert tracks["vide"] == ("avc1", 6)
    assert tracks["soun"][0] == "mp4a" and tracks["soun"][1] > 0
    gif = (tmp_path / "demo.gif").read_bytes()
    assert gif[:6] == b"GIF89a" and gif[-1:] == b";" and gif.count(b"\x21\xf9\x04") == 3  # every other frame

    image = bpy.data.images.load(str(sheet))
    width, height = image.size
    pixels = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    pixels = pixels.reshape(height, width, 4)  # bottom row first
    assert width == 32 * len(demo_motion_beats()) and height > 32
    band = pixels[:height - 32, :, :3]  # the labels' strip under the tiles
    assert band.max() > 0.3 and np.median(band) < 0.1  # bright letters on the dark background
    tiles = [pixels[height - 32:, 32 * i:32 * (i + 1), :3] for i in range(width // 32)]
    assert all(np.abs(a - b).max() > 0.02 for k, a in enumerate(tiles) for b in tiles[k + 1:])


def demo_motion_beats():
    from avitalk_blender.core import demo_motion

    return demo_motion.BEATS
