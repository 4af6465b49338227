"""Operators of the Generate / Regenerate / Bake workflow and the backend set-up.

In the UI, Generate and Regenerate are modal: a window timer drains the
backend session (at most ``workflow.MAX_MESSAGES_PER_TICK`` messages a tick,
no blocking reads) and Esc cancels. In background mode (``blender -b``, the
``bpy`` module) and from ``execute`` they run synchronously, so a script can
dub a folder of lines.
"""

import os

import bpy

from . import preferences, takes, workflow
from .operators import rig_poll
from .core import backend_ref
from .core.batch import GENERATE, REGENERATE
from .core.client import BackendError
from .core.session import DONE
from .runner import RUNNER, config_from

TIMER_STEP = 0.1


def _errors():
    return backend_ref.user_errors() + (BackendError,)


def _redraw(context) -> None:
    screen = context.screen
    if screen is not None:
        for area in screen.areas:
            area.tag_redraw()


def _rig_poll(cls, context) -> bool:
    if not rig_poll(cls, context):
        return False
    if RUNNER.busy:
        cls.poll_message_set("AVI-Talk is generating")
        return False
    return True


class _GenerateBase:
    bl_options = {'REGISTER', 'UNDO'}
    kind = GENERATE
    new_variation = False

    @classmethod
    def poll(cls, context):
        return _rig_poll(cls, context)

    def execute(self, context):
        try:
            message = workflow.run_sync(context, self.kind, self.new_variation)
        except _errors() as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, message)
        return {'FINISHED'}

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            workflow.start(context, self.kind, self.new_variation)
        except _errors() as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_STEP, window=context.window)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type == 'ESC' and event.value == 'PRESS':
            RUNNER.drop("Generation cancelled")
            return self._end(context, {'CANCELLED'})
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        state = workflow.tick()
        _redraw(context)
        if state == workflow.RUNNING:
            return {'PASS_THROUGH'}
        if state == workflow.FINISHED:
            self.report({'INFO'}, RUNNER.message)
            return self._end(context, {'FINISHED'})
        if state == workflow.FAILED_STATE:
            self.report({'ERROR'}, RUNNER.message)
        return self._end(context, {'CANCELLED'})

    def _end(self, context, result):
        context.window_manager.event_timer_remove(self._timer)
        _redraw(context)
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
        return RUNNER.busy

    def execute(self, context):
        RUNNER.drop("Generation cancelled")
        self.report({'INFO'}, "Generation cancelled")
        return {'FINISHED'}


class AVITALK_OT_bake(bpy.types.Operator):
    """Make the chosen take the rig's animation (its action, or NLA strips at the audio's start), optionally with fewer keys"""
    bl_idname = "avitalk.bake"
    bl_label = "Bake Keyframes"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        settings = context.scene.avitalk
        if not takes.chosen(settings):
            cls.poll_message_set("generate a take first")
            return False
        return True

    def execute(self, context):
        settings = context.scene.avitalk
        try:
            name = takes.bake_take(context.scene, settings.take_index, settings.push_to_nla,
                                   settings.tolerance if settings.decimate else None)
        except _errors() as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        where = "NLA strips" if settings.push_to_nla else "the active action"
        self.report({'INFO'}, f"baked '{name}' as {where}")
        return {'FINISHED'}


class AVITALK_OT_delete_take(bpy.types.Operator):
    """Delete the chosen take and its actions"""
    bl_idname = "avitalk.delete_take"
    bl_label = "Delete Take"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        settings = context.scene.avitalk
        return takes.chosen(settings)

    def execute(self, context):
        try:
            name = takes.delete(context.scene, context.scene.avitalk.take_index)
        except ValueError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, f"deleted take '{name}'")
        return {'FINISHED'}


class AVITALK_OT_sync_segments(bpy.types.Operator):
    """List one segment per timeline marker inside the audio (instructions of unchanged segments are kept)"""
    bl_idname = "avitalk.sync_segments"
    bl_label = "Segments from Markers"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        from .core import segments

        scene = context.scene
        settings = scene.avitalk
        try:
            if settings.audio_source == 'STRIPS' and not settings.use_range:
                start, end = _strips_extent(scene)
            elif settings.audio_source == 'FILE':
                _, start, end = workflow.audio_clip(scene, settings)
            else:
                start, end = settings.range_start, settings.range_end
            bounds = segments.segment_bounds([m.frame for m in scene.timeline_markers], start, end)
        except _errors() as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        kept = {item.frame: item.instruction for item in settings.segments}
        settings.segments.clear()
        for a, _ in bounds:
            item = settings.segments.add()
            item.frame = a
            item.instruction = kept.get(a, "")
        self.report({'INFO'}, f"{len(bounds)} segments")
        return {'FINISHED'}


def _strips_extent(scene):
    strips = workflow.sound_strips(scene)
    if not strips:
        raise ValueError("the scene has no sound strips")
    return min(s.frame_final_start for s in strips), max(s.frame_final_end for s in strips)


class AVITALK_OT_check_backend(bpy.types.Operator):
    """Start the backend and report its versions, device and which models load"""
    bl_idname = "avitalk.check_backend"
    bl_label = "Check Backend"

    @classmethod
    def poll(cls, context):
        return not RUNNER.busy

    def _submit(self, context):
        RUNNER.check = {"pending": True}
        RUNNER.session.configure(config_from(context))
        return RUNNER.session.submit("check")

    def execute(self, context):
        try:
            job = RUNNER.session.wait(self._submit(context))
        except _errors() as exc:
            RUNNER.check = {"models_ok": False, "models_error": str(exc)}
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        _store_check(job)
        self.report({'INFO'} if RUNNER.check.get("models_ok") else {'WARNING'}, check_summary(RUNNER.check))
        return {'FINISHED'}

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        try:
            job = self._submit(context)
        except _errors() as exc:
            RUNNER.check = {"models_ok": False, "models_error": str(exc)}
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}

        def poll_check():  # a bpy.app.timers callback: bounded work, never blocks
            RUNNER.session.poll(workflow.MAX_MESSAGES_PER_TICK)
            if job.state == "running":
                return 0.2
            _store_check(job)
            for window in bpy.context.window_manager.windows:
                for area in window.screen.areas:
                    area.tag_redraw()
            return None

        bpy.app.timers.register(poll_check, first_interval=0.2)
        self.report({'INFO'}, "checking the backend (the first start loads the models)")
        return {'FINISHED'}


def _store_check(job) -> None:
    if job.state == DONE:
        RUNNER.check = job.result
    else:
        RUNNER.check = {"models_ok": False, "models_error": job.error or f"the check was {job.state}"}


def check_summary(result: dict) -> str:
    head = (f"AVI-Talk backend {result.get('version', '?')}, Python {result.get('python', '?')}, "
            f"torch {result.get('torch', '?')}, numpy {result.get('numpy', '?')}, device {result.get('device', '?')}")
    if result.get("cuda_device"):
        head += f" ({result['cuda_device']})"
    if result.get("pending"):
        return "checking the backend..."
    if "version" not in result:
        return f"the backend did not start: {result.get('models_error', '?')}"
    if result.get("models_ok"):
        return head + f"; models load (speech {result.get('speech_encoder', '?')}, content {result.get('content_encoder', '?')})"
    return head + f"; models do not load: {result.get('models_error', '?')}"


class AVITALK_OT_restart_backend(bpy.types.Operator):
    """Stop the backend process; it starts again with the current settings on the next request"""
    bl_idname = "avitalk.restart_backend"
    bl_label = "Restart Backend"

    def execute(self, context):
        RUNNER.shutdown()
        RUNNER.check = None
        return {'FINISHED'}


class AVITALK_OT_setup_backend(bpy.types.Operator):
    """Create the backend's own Python environment (a venv with torch and the backend packages) in a user folder"""
    bl_idname = "avitalk.setup_backend"
    bl_label = "Create Backend Environment"

    torch_build: bpy.props.EnumProperty(
        name="Torch", items=(('CUDA', "CUDA", "torch from your package index (PyPI's Linux wheels use CUDA)"),
                             ('CPU', "CPU", "torch from the CPU index set in the preferences, when set")),
        default='CUDA',
    )

    _setup = None  # the running EnvSetup, class-level so the preferences can draw its progress

    @classmethod
    def poll(cls, context):
        return preferences.get(context) is not None and not cls.running()

    @classmethod
    def running(cls) -> bool:
        return cls._setup is not None and cls._setup.state == "running"

    def _start(self, context):
        from .core.setup_env import EnvSetup

        if not bpy.app.online_access:
            raise ValueError("Blender is set to work offline (Preferences > System > Network): "
                             "allow online access to download the backend's packages")
        prefs = preferences.get(context)
        folder = bpy.path.abspath(prefs.env_dir) if prefs.env_dir else preferences.default_env_dir()
        base = bpy.path.abspath(prefs.base_python) if prefs.base_python else preferences.default_base_python()
        if not os.path.isfile(base):
            raise ValueError(f"the Python that creates the environment was not found: {base}")
        index = prefs.torch_cpu_index if self.torch_build == 'CPU' else ""
        AVITALK_OT_setup_backend._setup = EnvSetup(folder, base, index)
        return AVITALK_OT_setup_backend._setup

    def _finish(self, context, setup):
        if setup.state == "done":
            preferences.get(context).backend_python = setup.python
            RUNNER.shutdown()
            self.report({'INFO'}, f"backend environment ready: {setup.python}")
            return {'FINISHED'}
        self.report({'ERROR'}, f"backend set-up {setup.state}: {setup.error}")
        return {'CANCELLED'}

    def execute(self, context):
        try:
            setup = self._start(context)
        except (ValueError, OSError) as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        setup.wait()
        return self._finish(context, setup)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            self._start(context)
        except (ValueError, OSError) as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self._timer = context.window_manager.event_timer_add(0.25, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        setup = AVITALK_OT_setup_backend._setup
        if event.type == 'ESC' and event.value == 'PRESS':
            setup.cancel()
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        state = setup.poll()
        _redraw(context)
        if state == "running":
            return {'PASS_THROUGH'}
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context, setup)


def draw_status(self, context):
    """Status bar: a progress bar and Cancel while AVI-Talk generates."""
    if not RUNNER.busy:
        return
    fraction, label = RUNNER.progress()
    row = self.layout.row(align=True)
    row.progress(factor=fraction, type='BAR', text=f"AVI-Talk: {label}")
    row.operator("avitalk.cancel", text="", icon='CANCEL')


@bpy.app.handlers.persistent
def on_load_pre(*_args):
    """A file is being loaded or reverted: drop the work in flight; its results are never applied."""
    if RUNNER.busy:
        RUNNER.drop("The file changed; the generation in flight was dropped")
