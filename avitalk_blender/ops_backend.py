"""Operators for the backend: create its environment, check it, restart it.

The environment set-up in progress lives on ``SESSION.setup`` so the
preferences can draw it; the last check result on ``SESSION.check``.
"""

import os

import bpy

from . import compat, preferences, session
from .core import backend_ref
from .core.errors import AviTalkError, InputError
from .core.session import DONE, RUNNING, check_summary
from .core.setup_env import EnvSetup
from .ops_common import redraw, redraw_all, run
from .session import SESSION

protocol = backend_ref.protocol()
CHECK_STEP = 0.2
SETUP_STEP = 0.25
MAX_MESSAGES_PER_TICK = 20


def _store_check(request) -> None:
    if request.state == DONE:
        SESSION.check = request.result
    else:
        SESSION.check = {"models_ok": False, "models_error": request.error or f"the check was {request.state}"}


LOG_TEXT = "avitalk_backend.log"
LOG_TAIL_BYTES = 200_000  # the end of a long log is what explains the last failure


class AVITALK_OT_open_log(bpy.types.Operator):
    """Open the backend's log (its last part) in a Text Editor, to see why it failed"""
    bl_idname = "avitalk.open_log"
    bl_label = "Open Log"

    def execute(self, context):
        def work():
            path = SESSION.config.log or session.log_path()
            if not os.path.isfile(path):
                raise InputError(f"the backend has written no log yet ({path})")
            with open(path, "rb") as fh:
                fh.seek(max(0, os.path.getsize(path) - LOG_TAIL_BYTES))
                text = fh.read().decode("utf-8", errors="replace")
            block = bpy.data.texts.get(LOG_TEXT) or bpy.data.texts.new(LOG_TEXT)
            block.from_string(text)
            if hasattr(block, "cursor_set"):  # Blender 3.4 has no cursor_set
                block.cursor_set(len(block.lines) - 1)
            editors = [a for a in (context.screen.areas if context.screen else ()) if a.type == 'TEXT_EDITOR']
            if editors:
                editors[0].spaces.active.text = block
                return f"the backend's log is in the Text Editor ({path})"
            return f"the backend's log is in the text '{LOG_TEXT}': open it in a Text Editor ({path})"
        return run(self, work)


class AVITALK_OT_check_backend(bpy.types.Operator):
    """Start the backend and report its versions, device and which models load"""
    bl_idname = "avitalk.check_backend"
    bl_label = "Check Backend"

    @classmethod
    def poll(cls, context):
        return not SESSION.working

    def _submit(self, context):
        """Send a check request; a failure to start is kept as the check result, then raised."""
        SESSION.configure(preferences.config_from(context))
        try:
            request = SESSION.submit(protocol.CHECK)
        except AviTalkError as exc:
            SESSION.check = {"models_ok": False, "models_error": str(exc)}
            raise
        SESSION.check = {"pending": True}
        return request

    def execute(self, context):
        def work():
            request = self._submit(context)
            try:
                SESSION.wait(request)
            except AviTalkError as exc:
                SESSION.check = {"models_ok": False, "models_error": str(exc)}
                raise
            _store_check(request)
            level = {'INFO'} if SESSION.check.get("models_ok") else {'WARNING'}
            self.report(level, check_summary(SESSION.check))
            return None
        return run(self, work)

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)

        def work():
            request = self._submit(context)

            def poll_check():  # a bpy.app.timers callback: bounded work, never blocks
                SESSION.poll(MAX_MESSAGES_PER_TICK)
                if request.state == RUNNING:
                    return CHECK_STEP
                _store_check(request)
                redraw_all()
                return None

            bpy.app.timers.register(poll_check, first_interval=CHECK_STEP)
            return "checking the backend (the first start loads the models)"
        return run(self, work)


class AVITALK_OT_restart_backend(bpy.types.Operator):
    """Stop the backend process; it starts again with the current settings on the next request"""
    bl_idname = "avitalk.restart_backend"
    bl_label = "Restart Backend"

    @classmethod
    def poll(cls, context):
        return True

    def execute(self, context):
        SESSION.shutdown()
        SESSION.check = None
        return {'FINISHED'}


class AVITALK_OT_setup_backend(bpy.types.Operator):
    """Create the backend's own Python environment (a venv with torch and the backend packages) in a user folder"""
    bl_idname = "avitalk.setup_backend"
    bl_label = "Create Backend Environment"

    torch_build: bpy.props.EnumProperty(
        name="Torch", description="Which build of torch to install",
        items=(('CUDA', "CUDA", "torch from your package index (PyPI's Linux wheels use CUDA)"),
               ('CPU', "CPU", "torch from the CPU index set in the preferences, when set")),
        default='CUDA',
    )

    @classmethod
    def poll(cls, context):
        return preferences.get(context) is not None and not SESSION.setting_up()

    def _start(self, context):
        if not compat.online_access():
            raise InputError("Blender is set to work offline (Preferences > System > Network): "
                             "allow online access to download the backend's packages")
        prefs = preferences.get(context)
        folder = bpy.path.abspath(prefs.env_dir) if prefs.env_dir else preferences.default_env_dir()
        base = bpy.path.abspath(prefs.base_python) if prefs.base_python else preferences.default_base_python()
        if not os.path.isfile(base):
            raise InputError(f"the Python that creates the environment was not found: {base}")
        index = prefs.torch_cpu_index if self.torch_build == 'CPU' else ""
        SESSION.setup = EnvSetup(folder, base, index)
        return SESSION.setup

    def _finish(self, context, setup):
        if setup.state == "done":
            preferences.get(context).backend_python = setup.python
            SESSION.shutdown()
            self.report({'INFO'}, f"backend environment ready: {setup.python}")
            return {'FINISHED'}
        self.report({'ERROR'}, f"backend set-up {setup.state}: {setup.error}")
        return {'CANCELLED'}

    def execute(self, context):
        def work():
            setup = self._start(context)
            setup.wait()
            return self._finish(context, setup)
        return run(self, work)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)

        def work():
            self._start(context)
            self._timer = context.window_manager.event_timer_add(SETUP_STEP, window=context.window)
            context.window_manager.modal_handler_add(self)
            return {'RUNNING_MODAL'}
        return run(self, work)

    def modal(self, context, event):
        setup = SESSION.setup
        if event.type == 'ESC' and event.value == 'PRESS':
            setup.cancel()
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        state = setup.poll()
        redraw(context)
        if state == "running":
            return {'PASS_THROUGH'}
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context, setup)
