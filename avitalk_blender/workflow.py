"""Generate / Regenerate: timeline audio -> backend requests -> a take on the rig.

``start`` mixes the audio and sends the first requests; ``tick`` (main
thread, from the modal operator) drains the session without blocking and,
when the batch is complete, ``apply`` bakes the take; ``run_sync`` does the
same in one call for background mode and scripts. Between ticks only names
and plain data are kept; the scene and rig are looked up again by name.
"""

from __future__ import annotations

import os
import tempfile

import bpy

from . import bake, rig, takes
from .core import backend_ref, mixdown, segments, timing
from .core.batch import GENERATE, REGENERATE, Batch
from .core.client import BackendError
from .core.session import DONE, FAILED
from .runner import RUNNER, config_from

MAX_MESSAGES_PER_TICK = 20
IDLE, RUNNING, FINISHED, FAILED_STATE, CANCELLED = "idle", "running", "finished", "failed", "cancelled"


# ---- audio ----------------------------------------------------------------------------------


def sound_strips(scene) -> list:
    editor = scene.sequence_editor
    if editor is None:
        return []
    strips = editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all  # 5.0 / 4.x
    return [s for s in strips if s.type == 'SOUND' and not s.mute and s.sound is not None]


def _strip_audio(strip):
    import aud

    path = bpy.path.abspath(strip.sound.filepath, library=strip.sound.library)
    if not os.path.isfile(path):
        raise ValueError(f"the sound file of strip '{strip.name}' is missing: {path}")
    sound = aud.Sound(path).rechannel(1).resample(mixdown.RATE, False)
    samples = sound.data()[:, 0]  # (N,)
    return mixdown.StripAudio(samples, mixdown.RATE, strip.frame_start, strip.frame_final_start,
                              strip.frame_final_end, strip.volume, getattr(strip, "sound_offset", 0.0))


def _clip_path(scene) -> str:
    folder = os.path.join(tempfile.gettempdir(), "avitalk_audio")
    os.makedirs(folder, exist_ok=True)
    name = bpy.path.clean_name(bpy.path.basename(bpy.data.filepath) or "untitled")
    return os.path.join(folder, f"{name}_{bpy.path.clean_name(scene.name)}_{os.getpid()}.wav")


def audio_clip(scene, settings) -> tuple:
    """(path of the clip for the backend, first frame, one past the last frame) at the scene's fps."""
    fps = timing.scene_fps(scene.render.fps, scene.render.fps_base)
    if settings.audio_source == 'FILE':
        import aud

        path = bpy.path.abspath(settings.audio_file)
        if not settings.audio_file or not os.path.isfile(path):
            raise ValueError(f"choose an audio file (not found: '{path}')" if settings.audio_file else "choose an audio file")
        sound = aud.Sound(path)
        seconds = sound.length / sound.specs[0]
        start = settings.frame_start
        return path, start, start + max(1, int(round(seconds * fps)))
    strips = [_strip_audio(s) for s in sound_strips(scene)]
    start, end = (settings.range_start, settings.range_end) if settings.use_range else mixdown.strips_extent(strips)
    path = _clip_path(scene)
    mixdown.write_wav(path, mixdown.mix(strips, start, end, fps))
    return path, start, end


# ---- start / tick / apply ---------------------------------------------------------------------


def _segments(scene, settings, start: int, end: int) -> tuple:
    """(segment instructions, join times in seconds from the clip start)."""
    if not settings.use_segments:
        return [""], []
    bounds = segments.segment_bounds([m.frame for m in scene.timeline_markers], start, end)
    by_frame = {item.frame: item.instruction for item in settings.segments}
    fps = timing.scene_fps(scene.render.fps, scene.render.fps_base)
    return [by_frame.get(a, "") for a, _ in bounds], [(a - start) / fps for a, _ in bounds[1:]]


def start(context, kind: str, new_variation: bool = False) -> Batch:
    """Check the inputs, mix the audio and send the first requests. ValueError / BackendError on bad input."""
    if RUNNER.busy:
        raise ValueError("AVI-Talk is already generating; wait, or press Cancel")
    scene = context.scene
    settings = scene.avitalk
    mesh_obj, arm_obj = rig.find_rig(context.active_object)
    bake.check_editable(mesh_obj, arm_obj)
    if kind == REGENERATE and new_variation:
        settings.seed = (settings.seed + 1) % (2 ** 31)
    instruction = None if kind == GENERATE else settings.instruction.strip()
    path, frame_start, frame_end = audio_clip(scene, settings)
    segment_texts, joins = _segments(scene, settings, frame_start, frame_end)
    batch = Batch(kind, path, int(settings.seed), settings.controls(), instruction, segment_texts,
                  tag={"scene": scene.name, "rig": arm_obj.name, "frame_start": frame_start, "frame_end": frame_end,
                       "joins": joins, "blend_seconds": settings.blend_seconds},
                  dialogue=settings.dialogue, language=settings.dialogue_language)
    RUNNER.session.configure(config_from(context))
    RUNNER.message = ""
    RUNNER.batch = batch
    try:
        _send(batch, batch.first_requests())
    except BackendError:
        RUNNER.drop()
        raise
    return batch


def _send(batch: Batch, requests) -> None:
    for kind, fields in requests:
        job = RUNNER.session.submit(kind, fields)
        batch.sent(job.id, fields)


def _take_in(batch: Batch, job) -> str:
    """One ended job of ``batch``; returns RUNNING, FINISHED, FAILED_STATE or CANCELLED."""
    if job.id not in batch.pending:
        return RUNNING  # a job of earlier, dropped work
    if job.state == DONE:
        _send(batch, batch.on_result(job.id, job.result))
        return FINISHED if batch.done else RUNNING
    RUNNER.drop()
    if job.state == FAILED:
        RUNNER.message = f"Generation failed: {job.error}"
        return FAILED_STATE
    RUNNER.message = "Generation cancelled"
    return CANCELLED


def tick(max_messages: int = MAX_MESSAGES_PER_TICK) -> str:
    """Drain at most ``max_messages`` backend messages; apply a finished batch. Never blocks on the backend."""
    batch = RUNNER.batch
    ended = RUNNER.session.poll(max_messages)
    if batch is None:
        return IDLE
    for job in ended:
        state = _take_in(batch, job)
        if state != RUNNING:
            return _finish(batch, state)
    if not batch.pending and not batch.done:  # jobs were lost without a message (never expected)
        RUNNER.drop("Generation stopped: the backend lost the request")
        return FAILED_STATE
    return RUNNING


def _finish(batch: Batch, state: str) -> str:
    if state != FINISHED:
        return state
    RUNNER.batch = None
    try:
        RUNNER.message = apply(batch)
    except (backend_ref.user_errors() + (KeyError,)) as exc:
        RUNNER.message = f"Generation finished but the take could not be made: {exc}"
        return FAILED_STATE
    return FINISHED


def apply(batch: Batch) -> str:
    """Blend the segments' motions, bake them as a new take on the rig and play it."""
    scene = bpy.data.scenes.get(batch.tag["scene"])
    arm_obj = bpy.data.objects.get(batch.tag["rig"])
    if scene is None or arm_obj is None:
        raise ValueError(f"the scene '{batch.tag['scene']}' or rig '{batch.tag['rig']}' is gone; the result was dropped")
    load = backend_ref.motion().load_motion
    motion = segments.blend_motions([load(p) for p in batch.motion_paths()], batch.tag["joins"],
                                    batch.tag["blend_seconds"])
    if len(batch.segment_instructions) == 1:
        motion.instruction = batch.instruction
    motion.seed = batch.seed
    settings = scene.avitalk
    settings.instruction = batch.instruction
    name = takes.make_take(scene, arm_obj, motion, batch.tag["frame_start"], {
        "avitalk_seed": batch.seed,
        "avitalk_clip_instruction": batch.instruction,
        "avitalk_segment_instructions": list(batch.effective_instructions()),
        "avitalk_segment_joins": list(batch.tag["joins"]),
        "avitalk_frame_end": batch.tag["frame_end"],
        "avitalk_stage1_ran": batch.stage1_ran,
        "avitalk_features_cached": all(batch.features_cached),
        "avitalk_dialogue": batch.dialogue,
        "avitalk_lips": batch.lips.get("source", ""),
        **{f"avitalk_{k}": v for k, v in batch.controls.items()},
    })
    lips = batch.lips_summary()
    return f"New take '{name}'" + (f"; {lips}" if lips else "")


def run_sync(context, kind: str, new_variation: bool = False, timeout: float | None = None) -> str:
    """Generate or Regenerate in one blocking call (background mode, scripts); returns the message."""
    batch = start(context, kind, new_variation)
    while RUNNER.batch is batch:
        job = next(iter(RUNNER.session.jobs.values()), None)
        if job is None:
            state = tick()
        else:
            RUNNER.session.wait(job, timeout)
            state = _take_in(batch, job)
            if state != RUNNING:
                state = _finish(batch, state)
        if state in (FAILED_STATE, CANCELLED):
            raise BackendError(RUNNER.message)
    return RUNNER.message
