"""The timeline's audio for the backend: the scene's sound strips mixed into one clip, or a file.

The mixed clip goes to this Blender's private folder (``session.private_dir``).
"""

from __future__ import annotations

import os

import aud
import bpy

from . import compat, session
from .core import mixdown, timing
from .core.errors import InputError


def sound_strips(scene) -> list:
    """The scene's audible sound strips."""
    editor = scene.sequence_editor
    if editor is None:
        return []
    return [s for s in compat.all_strips(editor) if s.type == 'SOUND' and not s.mute and s.sound is not None]


def _strip_audio(strip):
    path = bpy.path.abspath(strip.sound.filepath, library=strip.sound.library)
    if not os.path.isfile(path):
        raise InputError(f"the sound file of strip '{strip.name}' is missing: {path}")
    try:
        sound = aud.Sound(path).rechannel(1).resample(mixdown.RATE, False)
        samples = sound.data()[:, 0]  # (N,)
    except Exception as exc:  # aud raises plain Exception on unreadable files
        raise InputError(f"the sound file of strip '{strip.name}' cannot be read: {exc}") from exc
    return mixdown.StripAudio(samples, mixdown.RATE, strip.frame_start, strip.frame_final_start,
                              strip.frame_final_end, strip.volume, getattr(strip, "sound_offset", 0.0))


def sound_starts(scene) -> list:
    """First frames of the scene's sound strips (muted ones too): where a motion file's take may start."""
    editor = scene.sequence_editor
    if editor is None:
        return []
    return [strip.frame_start for strip in compat.all_strips(editor) if strip.type == 'SOUND']


def strips_extent(scene) -> tuple:
    """(first frame, one past the last) of the scene's audible sound strips."""
    strips = sound_strips(scene)
    if not strips:
        raise InputError("the scene has no sound strips")
    return min(s.frame_final_start for s in strips), max(s.frame_final_end for s in strips)


def _clip_path(scene) -> str:
    folder = session.private_dir()
    name = bpy.path.clean_name(bpy.path.basename(bpy.data.filepath) or "untitled")
    return os.path.join(folder, f"{name}_{bpy.path.clean_name(scene.name)}_{os.getpid()}.wav")


def audio_clip(scene, settings) -> tuple:
    """(path of the clip for the backend, first frame, one past the last frame) at the scene's fps."""
    fps = timing.scene_fps(scene.render.fps, scene.render.fps_base)
    if settings.audio_source == 'FILE':
        path = bpy.path.abspath(settings.audio_file)
        if not settings.audio_file or not os.path.isfile(path):
            raise InputError(f"choose an audio file (not found: '{path}')" if settings.audio_file else "choose an audio file")
        try:
            sound = aud.Sound(path)
            seconds = sound.length / sound.specs[0]
        except Exception as exc:  # aud raises plain Exception on unreadable files
            raise InputError(f"the audio file cannot be read: {path}: {exc}") from exc
        start = settings.frame_start
        return path, start, start + max(1, int(round(seconds * fps)))
    strips = [_strip_audio(s) for s in sound_strips(scene)]
    start, end = (settings.range_start, settings.range_end) if settings.use_range else mixdown.strips_extent(strips)
    path = _clip_path(scene)
    mixdown.write_wav(path, mixdown.mix(strips, start, end, fps))
    return path, start, end
