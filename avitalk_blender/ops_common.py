"""What every operator shares: the one error path, the rig poll, redraws.

``run`` is the one place where the project's error family (``AviTalkError``:
rig, input, file, backend errors) becomes ``report({'ERROR'})`` + CANCELLED.
Anything else is a bug and stays a traceback.
"""

import bpy

from . import character
from .core.errors import AviTalkError


def run(operator, work) -> set:
    """Call ``work()``; its message (if any) is reported as INFO, a project error as ERROR + CANCELLED.

    ``work`` may return a set (an operator result such as {'RUNNING_MODAL'}) to pass it through.
    """
    try:
        outcome = work()
    except AviTalkError as exc:
        operator.report({'ERROR'}, str(exc))
        return {'CANCELLED'}
    if isinstance(outcome, set):
        return outcome
    if outcome:
        operator.report({'INFO'}, outcome)
    return {'FINISHED'}


def rig_poll(cls, context) -> bool:
    """Object Mode with a character active (an AVI-Talk head, or a mesh with shape keys); says why not."""
    if context.mode != 'OBJECT':
        cls.poll_message_set("switch to Object Mode")
        return False
    if not character.candidate(context.active_object):
        cls.poll_message_set("select an AVI-Talk head or a character mesh with ARKit-named shape keys")
        return False
    return True


def redraw(context) -> None:
    """Redraw the areas of the current screen (progress bars, messages)."""
    screen = context.screen
    if screen is not None:
        for area in screen.areas:
            area.tag_redraw()


def redraw_sidebars(context) -> None:
    """Redraw only the sidebars of the current screen (the progress while generating):
    the 3D views themselves need no redraw, and on a software-rendered display that costs the backend CPU."""
    screen = context.screen
    if screen is not None:
        for area in screen.areas:
            for region in area.regions:
                if region.type == 'UI':
                    region.tag_redraw()


def redraw_all() -> None:
    """Redraw every window (from a timer, where there is no screen context)."""
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            area.tag_redraw()
