"""Generate / Regenerate: timeline audio -> backend requests -> a take on the rig; Cancel; segments.

``start`` mixes the audio, makes the ``Job`` and sends its first requests;
``tick`` (main thread, from the modal operator) drains the session without
blocking and, when the job is complete, ``apply`` makes the take; ``run_sync``
does the same in one call for background mode and scripts. Between ticks only
names and plain data are kept; the scene and rig are looked up again by name.

In the UI, Generate and Regenerate are modal: a window timer calls ``tick``
and Esc cancels. In background mode (``blender -b``, the ``bpy`` module) and
from ``execute`` they run synchronously, so a script can dub a folder of lines.
"""

from __future__ import annotations

import bpy

from . import audio, bake, character, flame_map, preferences, takes
from .core import backend_ref, segments, timing
from .core.client import BackendError
from .core.errors import AviTalkError, InputError
from .core.job import GENERATE, REGENERATE, Job
from .core.session import DONE, FAILED
from .ops_common import redraw, redraw_sidebars, rig_poll, run
from .session import SESSION

protocol = backend_ref.protocol()
MAX_MESSAGES_PER_TICK = 20
TIMER_STEP = 0.1
IDLE, RUNNING, FINISHED, FAILED_STATE, CANCELLED = "idle", "running", "finished", "failed", "cancelled"


# ---- start / tick / apply ---------------------------------------------------------------------


def _segments(scene, settings, start: int, end: int) -> tuple:
    """(segment instructions, join times in seconds from the clip start)."""
    if not settings.use_segments:
        return [""], []
    bounds = segments.segment_bounds([m.frame for m in scene.timeline_markers], start, end)
    by_frame = {item.frame: item.instruction for item in settings.segments}
    fps = timing.scene_fps(scene.render.fps, scene.render.fps_base)
    return [by_frame.get(a, "") for a, _ in bounds], [(a - start) / fps for a, _ in bounds[1:]]


def start(context, kind: str, new_variation: bool = False) -> Job:
    """Check the inputs, mix the audio and send the first requests. A project error on bad input.

    Nothing in the scene changes before every check has passed (the new seed included).
    """
    if SESSION.working:
        raise InputError("AVI-Talk is already generating; wait, or press Cancel")
    scene = context.scene
    settings = scene.avitalk
    target = character.checked(context.active_object)
    bake.check_editable(target.mesh, target.armature)
    seed = int(settings.seed)
    if kind == REGENERATE and new_variation:
        seed = (seed + 1) % (protocol.MAX_SEED + 1)
    instruction = None if kind == GENERATE else settings.instruction.strip()
    path, frame_start, frame_end = audio.audio_clip(scene, settings)
    segment_texts, joins = _segments(scene, settings, frame_start, frame_end)
    job = Job(kind, path, seed, settings.controls(), instruction, segment_texts,
              tag={"scene": scene.name, "rig": target.name, "frame_start": frame_start, "frame_end": frame_end,
                   "joins": joins, "blend_seconds": settings.blend_seconds},
              dialogue=settings.dialogue, language=settings.dialogue_language)
    SESSION.configure(preferences.config_from(context))
    SESSION.message = ""
    SESSION.warnings = []
    SESSION.job = job
    try:
        _send(job, job.first_requests())
    except BackendError:
        SESSION.drop()
        raise
    settings.seed = seed
    return job


def _send(job: Job, requests) -> None:
    for kind, fields in requests:
        request = SESSION.submit(kind, fields)
        job.sent(request.id, fields)


def _take_in(job: Job, request) -> str:
    """One ended request of ``job``; returns RUNNING, FINISHED, FAILED_STATE or CANCELLED."""
    if request.id not in job.pending:
        return RUNNING  # a request of earlier, dropped work
    if request.state == DONE:
        _send(job, job.on_result(request.id, request.result))
        return FINISHED if job.done else RUNNING
    SESSION.drop()
    if request.state == FAILED:
        SESSION.message = f"Generation failed: {request.error}"
        return FAILED_STATE
    SESSION.message = "Generation cancelled"
    return CANCELLED


def tick(max_messages: int = MAX_MESSAGES_PER_TICK) -> str:
    """Drain at most ``max_messages`` backend messages; apply a finished job. Never blocks on the backend."""
    job = SESSION.job
    ended = SESSION.poll(max_messages)
    if job is None:
        return IDLE
    for request in ended:
        state = _take_in(job, request)
        if state not in (RUNNING, FINISHED):
            return _finish(job, state)
    if job.done:
        task = _rig_fitting(job)
        if task is not None:  # the take waits for the rig's expression map (a worker thread fits it)
            SESSION.waiting = f"Fitting the rig's expression map ({round(100 * task.fraction)}%)"
            return RUNNING
        return _finish(job, FINISHED)
    if not job.pending:  # requests were lost without a message (never expected)
        SESSION.drop("Generation stopped: the backend lost the request")
        return FAILED_STATE
    return RUNNING


def _rig_fitting(job: Job):
    """The fit still running for the job's rig (a FLAME file's rig whose expression map is being fitted), or None."""
    arm_obj = bpy.data.objects.get(job.tag["rig"])
    task = None if arm_obj is None else flame_map.task_for(arm_obj)
    return task if task is not None and task.running else None


def _finish(job: Job, state: str) -> str:
    SESSION.waiting = ""
    if state != FINISHED:
        return state
    SESSION.job = None
    SESSION.warnings = list(job.warnings)
    try:
        SESSION.message = apply(job)
    except AviTalkError as exc:
        SESSION.message = f"Generation finished but the take could not be made: {exc}"
        return FAILED_STATE
    return FINISHED


def apply(job: Job) -> str:
    """Blend the segments' motions, bake them as a new take on the rig and play it."""
    scene = bpy.data.scenes.get(job.tag["scene"])
    arm_obj = bpy.data.objects.get(job.tag["rig"])
    if scene is None or arm_obj is None:
        raise InputError(f"the scene '{job.tag['scene']}' or rig '{job.tag['rig']}' is gone; the result was dropped")
    load = backend_ref.motion().load_motion
    motion = segments.blend_motions([load(p) for p in job.motion_paths()], job.tag["joins"],
                                    job.tag["blend_seconds"])
    if len(job.segment_instructions) == 1:
        motion.instruction = job.instruction
    motion.seed = job.seed
    name = takes.make_take(scene, arm_obj, motion, job.tag["frame_start"], {
        "avitalk_seed": job.seed,
        "avitalk_clip_instruction": job.instruction,
        "avitalk_segment_instructions": list(job.effective_instructions()),
        "avitalk_segment_joins": list(job.tag["joins"]),
        "avitalk_frame_end": job.tag["frame_end"],
        "avitalk_stage1_ran": job.stage1_ran,
        "avitalk_features_cached": all(job.features_cached),
        "avitalk_dialogue": job.dialogue,
        "avitalk_lips": job.lips.get("source", ""),
        "avitalk_warnings": list(job.warnings),
        **{f"avitalk_{k}": v for k, v in job.controls.items()},
    })
    scene.avitalk.instruction = job.instruction
    lips = job.lips_summary()
    return f"New take '{name}'" + (f"; {lips}" if lips else "")


def run_sync(context, kind: str, new_variation: bool = False, timeout: float | None = None) -> str:
    """Generate or Regenerate in one blocking call (background mode, scripts); returns the message."""
    job = start(context, kind, new_variation)
    while SESSION.job is job:
        request = next(iter(SESSION.requests.values()), None)
        if request is None:
            state = tick()
        else:
            SESSION.wait(request, timeout)
            state = _take_in(job, request)
            if state == FINISHED:
                arm_obj = bpy.data.objects.get(job.tag["rig"])
                if arm_obj is not None:
                    flame_map.wait(arm_obj)   # a script waits for the rig's expression map too
            if state != RUNNING:
                state = _finish(job, state)
        if state in (FAILED_STATE, CANCELLED):
            raise BackendError(SESSION.message)
    return SESSION.message


def _report_warnings(operator) -> None:
    for warning in SESSION.warnings:
        operator.report({'WARNING'}, warning)


# ---- operators ----------------------------------------------------------------------------------


class _GenerateBase:
    bl_options = {'REGISTER', 'UNDO'}
    kind = GENERATE
    new_variation = False

    @classmethod
    def poll(cls, context):
        if not rig_poll(cls, context):
            return False
        if SESSION.working:
            cls.poll_message_set("AVI-Talk is generating")
            return False
        return True

    def execute(self, context):
        def work():
            message = run_sync(context, self.kind, self.new_variation)
            _report_warnings(self)
            return message
        return run(self, work)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)

        def work():
            start(context, self.kind, self.new_variation)
            wm = context.window_manager
            self._timer = wm.event_timer_add(TIMER_STEP, window=context.window)
            wm.modal_handler_add(self)
            return {'RUNNING_MODAL'}
        return run(self, work)

    def modal(self, context, event):
        if event.type == 'ESC' and event.value == 'PRESS':
            SESSION.drop("Generation cancelled")
            return self._end(context, {'CANCELLED'})
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        state = tick()
        if state == RUNNING:
            redraw_sidebars(context)
            return {'PASS_THROUGH'}
        if state == FINISHED:
            self.report({'INFO'}, SESSION.message)
            _report_warnings(self)
            return self._end(context, {'FINISHED'})
        if state == FAILED_STATE:
            self.report({'ERROR'}, SESSION.message)
        return self._end(context, {'CANCELLED'})

    def _end(self, context, result):
        context.window_manager.event_timer_remove(self._timer)
        redraw(context)
        return result


class AVITALK_OT_generate(_GenerateBase, bpy.types.Operator):
    """Write an instruction from the audio (stage 1) and generate the face motion from it (stage 2) as a new take"""
    bl_idname = "avitalk.generate"
    bl_label = "Generate Talking Face"


class AVITALK_OT_regenerate(_GenerateBase, bpy.types.Operator):
    """Generate a new take from the edited instruction (stage 2 only: the speech features are cached)"""
    bl_idname = "avitalk.regenerate"
    bl_label = "Regenerate"
    kind = REGENERATE

    new_variation: bpy.props.BoolProperty(
        name="New Variation", description="Advance the seed first, for another take of the same instruction",
        default=False, options={'SKIP_SAVE'},
    )


class AVITALK_OT_cancel(bpy.types.Operator):
    """Stop the generation in flight"""
    bl_idname = "avitalk.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return SESSION.working

    def execute(self, context):
        SESSION.drop("Generation cancelled")
        self.report({'INFO'}, "Generation cancelled")
        return {'FINISHED'}


class AVITALK_OT_sync_segments(bpy.types.Operator):
    """List one segment per timeline marker inside the audio (instructions of unchanged segments are kept)"""
    bl_idname = "avitalk.sync_segments"
    bl_label = "Segments from Markers"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def execute(self, context):
        def work():
            scene = context.scene
            settings = scene.avitalk
            if settings.audio_source == 'STRIPS' and not settings.use_range:
                first, end = audio.strips_extent(scene)
            elif settings.audio_source == 'FILE':
                _, first, end = audio.audio_clip(scene, settings)
            else:
                first, end = settings.range_start, settings.range_end
            bounds = segments.segment_bounds([m.frame for m in scene.timeline_markers], first, end)
            kept = {item.frame: item.instruction for item in settings.segments}
            settings.segments.clear()
            for a, _ in bounds:
                item = settings.segments.add()
                item.frame = a
                item.instruction = kept.get(a, "")
            return f"{len(bounds)} segments"
        return run(self, work)
