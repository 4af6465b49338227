"""Drive AVI-Talk in a real Blender window and write a JSON report of what happened.

Run inside Blender (3.4+) with the add-on installable as ``avitalk_blender``:

    blender --factory-startup --enable-event-simulate start.blend --python tests/gui/drive.py -- \
        --report report.json --shots DIR --backend-python .venv/bin/python --audio line.wav

The steps run from a ``bpy.app.timers`` callback, one small piece at a time,
so the window keeps redrawing between them. Operators are called as the UI
calls them (in the window's context; Generate and Regenerate with
``INVOKE_DEFAULT``, so they run modal). The sidebar is widened and its tab
chosen with simulated mouse events (``--enable-event-simulate``). The report
records facts; the pytest test (``tests/test_gui_window.py``) asserts on them.
"""

import argparse
import json
import os
import sys
import time
import traceback

import addon_utils
import bpy

ADDON = "avitalk_blender"
EDITED = "A cheerful woman speaks warmly, smiling with raised brows."
SEGMENT_TEXTS = ("calm and attentive", "surprised, eyebrows up")
LIMIT_S = 600  # guards a hung step; not a timing assertion


def _args():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", required=True)
    parser.add_argument("--shots", default="")
    parser.add_argument("--backend-python", required=True)
    parser.add_argument("--audio", required=True)
    parser.add_argument("--checkpoint", default="")
    return parser.parse_args(argv)


ARGS = _args()
REPORT = {"blender": list(bpy.app.version), "steps": [], "shots": [], "draws": []}


# ---- the window ----------------------------------------------------------------------------------


def window():
    return bpy.context.window_manager.windows[0]


def view3d():
    """(area, sidebar region, main region) of the first 3D viewport."""
    area = next(a for a in window().screen.areas if a.type == 'VIEW_3D')
    regions = {r.type: r for r in area.regions}
    return area, regions['UI'], regions['WINDOW']


def override(win=None, region_type='WINDOW'):
    win = win or window()
    area = next((a for a in win.screen.areas if a.type == 'VIEW_3D'), win.screen.areas[0])
    region = next(r for r in area.regions if r.type == region_type)
    return bpy.context.temp_override(window=win, screen=win.screen, area=area, region=region)


def redraw_all():
    for win in bpy.context.window_manager.windows:
        for area in win.screen.areas:
            area.tag_redraw()


def settle(seconds=1.0):
    """Let the window redraw a few times."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        redraw_all()
        yield 0.1


def shot(name, win=None):
    """Screenshot of the whole window into --shots (after a redraw)."""
    yield from settle(0.8)
    if not ARGS.shots:
        return
    path = os.path.join(ARGS.shots, f"{name}.png")
    win = win or window()
    with bpy.context.temp_override(window=win, screen=win.screen, area=win.screen.areas[0]):
        bpy.ops.screen.screenshot(filepath=path)
    REPORT["shots"].append(path)


def wait_for(condition, what, limit=LIMIT_S):
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > limit:
            raise TimeoutError(f"waited {limit} s for {what}")
        yield 0.2


def simulate(events, pause=0.15, win=None):
    """Simulated events on a window (the main one), (type, value, x, y) in window pixels, one per redraw."""
    for type_, value, x, y in events:
        (win or window()).event_simulate(type=type_, value=value, x=int(x), y=int(y))
        yield pause


def click(x, y):
    yield from simulate([('MOUSEMOVE', 'NOTHING', x, y), ('LEFTMOUSE', 'PRESS', x, y), ('LEFTMOUSE', 'RELEASE', x, y)], 0.05)


def scroll_sidebar(notches):
    """Scroll the sidebar with the mouse wheel (positive: down)."""
    area, sidebar, main = view3d()
    x, y = sidebar.x + sidebar.width // 2, sidebar.y + sidebar.height // 2
    wheel = 'WHEELDOWNMOUSE' if notches > 0 else 'WHEELUPMOUSE'
    yield from simulate([('MOUSEMOVE', 'NOTHING', x, y)] + [(wheel, 'PRESS', x, y)] * abs(notches), 0.1)


def note(name, **facts):
    REPORT["steps"].append({"step": name, **facts})
    print(f"drive: {name} {facts}", flush=True)


# ---- the add-on ------------------------------------------------------------------------------------


def addon():
    return sys.modules[ADDON]


def session():
    return sys.modules[ADDON + ".session"].SESSION


def settings():
    return bpy.context.scene.avitalk


def rig_actions():
    """Names of the actions on the rig's armature and shape keys (None where unset)."""
    def name(id_data):
        anim = id_data.animation_data
        return anim.action.name if anim is not None and anim.action is not None else None

    return {"pose": name(bpy.data.objects["flame_head_rig"]), "shapes": name(bpy.data.objects["flame_head"].data.shape_keys)}


def count_draws():
    """Wrap the main panel's draw to record each redraw of the sidebar tab and the progress it showed."""
    panel = addon().panels.AVITALK_PT_main
    draw = panel.draw

    def counted(self, context):
        s = session()
        fraction, label = s.progress() if s.working else (None, "")
        REPORT["draws"].append({"t": time.monotonic(), "working": s.working, "fraction": fraction, "label": label})
        draw(self, context)

    panel.draw = counted


def open_closed_subpanels():
    """Register the closed-by-default sub-panels again as open, so the screenshots show them."""
    panels = addon().panels
    order = (panels.AVITALK_PT_instruction, panels.AVITALK_PT_segments, panels.AVITALK_PT_takes, panels.AVITALK_PT_motion_file)
    for cls in reversed(order):
        bpy.utils.unregister_class(cls)
    panels.AVITALK_PT_segments.bl_options = set()
    for cls in order:
        bpy.utils.register_class(cls)


def run_modal(kind, **props):
    """Invoke Generate / Regenerate as a button does; returns the operator's first result."""
    with override():
        return getattr(bpy.ops.avitalk, kind)('INVOKE_DEFAULT', **props)


def draws_since(start):
    return [d for d in REPORT["draws"] if d["t"] >= start]


# ---- the steps ----------------------------------------------------------------------------------


def steps():
    prefs = bpy.context.preferences
    result = bpy.ops.preferences.addon_enable(module=ADDON)
    note("enable", result=sorted(result), enabled=ADDON in prefs.addons)
    addon_prefs = prefs.addons[ADDON].preferences
    addon_prefs.backend_python = ARGS.backend_python
    addon_prefs.device = 'CPU'
    addon_prefs.checkpoint_dir = ARGS.checkpoint
    addon_prefs.stall_timeout = LIMIT_S  # a busy shared CPU may be slow between progress messages
    count_draws()
    open_closed_subpanels()

    # Preferences window with the backend set up and checked.
    with override():
        bpy.ops.avitalk.check_backend('INVOKE_DEFAULT')
    yield from wait_for(lambda: session().check and not session().check.get("pending"), "the backend check")
    note("check", models_ok=bool(session().check.get("models_ok")), error=session().check.get("models_error", ""))
    prefs.active_section = 'ADDONS'
    bpy.context.window_manager.addon_search = "AVI-Talk"
    for module in addon_utils.modules(refresh=False):  # the list the preferences draw
        if module.__name__ == ADDON:
            addon_utils.module_bl_info(module)["show_expanded"] = True
    with override():
        bpy.ops.screen.userpref_show()
    yield from wait_for(lambda: len(bpy.context.window_manager.windows) > 1, "the preferences window", 30)
    prefs_window = bpy.context.window_manager.windows[-1]
    yield from settle(0.5)
    x, y = prefs_window.width * 2 // 3, prefs_window.height // 2  # scroll down to the backend's check result
    yield from simulate([('MOUSEMOVE', 'NOTHING', x, y)] + [('WHEELDOWNMOUSE', 'PRESS', x, y)] * 6, 0.1, prefs_window)
    yield from shot("preferences", prefs_window)
    with bpy.context.temp_override(window=prefs_window, screen=prefs_window.screen):
        bpy.ops.wm.window_close()
    yield from wait_for(lambda: len(bpy.context.window_manager.windows) == 1, "the preferences window to close", 30)

    # The head, a sound strip, the sidebar tab.
    scene = bpy.context.scene
    for name in ("Cube",):
        if name in bpy.data.objects:
            bpy.data.objects.remove(bpy.data.objects[name])
    with override():
        result = bpy.ops.avitalk.import_head()
    note("import_head", result=sorted(result), objects=sorted(o.name for o in scene.objects))
    editor = scene.sequence_editor_create()
    strip = addon().compat.top_strips(editor).new_sound("line", ARGS.audio, 1, 1)
    scene.frame_start, scene.frame_end = 1, int(strip.frame_final_end)
    note("sound_strip", start=strip.frame_final_start, end=strip.frame_final_end)
    prefs.system.use_region_overlap = False  # the sidebar beside the view, not over the head
    area, sidebar, main = view3d()
    area.spaces.active.show_region_ui = True
    with override():
        bpy.ops.view3d.view_axis(type='FRONT')
        bpy.ops.view3d.view_selected()
    yield from settle(0.5)
    area, sidebar, main = view3d()
    # Widen the sidebar: drag its left edge (again, a pixel further in, if the drag missed the edge).
    width = sidebar.width
    for inset in (1, 2, 0, 3):
        x, y = sidebar.x + inset, sidebar.y + sidebar.height // 2
        yield from simulate([('MOUSEMOVE', 'NOTHING', x + 40, y), ('MOUSEMOVE', 'NOTHING', x, y), ('LEFTMOUSE', 'PRESS', x, y)]
                            + [('MOUSEMOVE', 'NOTHING', x - 40 * k, y) for k in range(1, 6)]
                            + [('LEFTMOUSE', 'RELEASE', x - 200, y)])
        yield from settle(0.5)
        area, sidebar, main = view3d()
        if sidebar.width > width:
            break
    note("sidebar_width", before=width, after=sidebar.width)
    # Click down the sidebar's tab strip (its right edge) until AVI-Talk's panel draws.
    x = sidebar.x + sidebar.width - 10
    for y in range(sidebar.y + sidebar.height - 15, sidebar.y + 15, -15):
        start = time.monotonic()
        yield from click(x, y)
        yield from settle(0.4)
        if draws_since(start):
            break
    start = time.monotonic()
    yield from settle(0.6)
    note("sidebar_tab", panel_drawn=bool(draws_since(start)))
    with override():
        bpy.ops.view3d.view_selected()
    yield from shot("sidebar")

    # Generate: modal, the window redraws with the progress.
    start = time.monotonic()
    result = run_modal("generate")
    note("generate_invoked", result=sorted(result))
    yield from wait_for(lambda: session().working and session().progress()[0] > 0.3, "progress past 30%")
    yield from shot("progress")
    yield from wait_for(lambda: not session().working, "Generate to end")
    yield from settle(0.5)
    if not settings().takes:
        raise RuntimeError(f"Generate made no take: {session().message}")
    seen = [d for d in draws_since(start) if d["working"]]
    note("generate", message=session().message, takes=[t.name for t in settings().takes],
         instruction=settings().instruction, draws_while_working=len(seen),
         fractions=[d["fraction"] for d in seen], labels=sorted({d["label"] for d in seen}),
         actions=rig_actions())

    # Edit the instruction, Regenerate.
    settings().instruction = EDITED
    result = run_modal("regenerate")
    note("regenerate_invoked", result=sorted(result))
    yield from wait_for(lambda: not session().working, "Regenerate to end")
    if len(settings().takes) != 2:
        raise RuntimeError(f"Regenerate made no take: {session().message}")
    scene.frame_set((scene.frame_start + scene.frame_end) // 2)
    take = settings().takes[-1].name
    note("regenerate", message=session().message, takes=[t.name for t in settings().takes],
         instruction=settings().instruction,
         take_instruction=bpy.data.actions[take + "_shapes"].get("avitalk_instruction"), actions=rig_actions())
    yield from shot("instruction")

    # Switch takes (as clicking the list does: the property changes, an undo step is pushed).
    settings().take_index = 0
    with override():
        pushed = bpy.ops.ed.undo_push(message="Choose take")
    note("switch_take", chosen=settings().takes[0].name, actions=rig_actions(), undo_push=sorted(pushed))
    yield from scroll_sidebar(12)
    yield from shot("takes")

    # Bake, then undo it.
    before = rig_actions()
    n_actions = len(bpy.data.actions)
    with override():
        result = bpy.ops.avitalk.bake('EXEC_DEFAULT', True)  # undo=True: an undo step, as a button click makes
    baked = rig_actions()
    note("bake", result=sorted(result), before=before, after=baked, new_actions=len(bpy.data.actions) - n_actions)
    yield from settle(0.3)
    with override():
        result = bpy.ops.ed.undo()
    yield from settle(0.3)
    note("undo", result=sorted(result), after=rig_actions(), actions=len(bpy.data.actions) - n_actions,
         baked_left=[name for name in baked.values() if name in bpy.data.actions])

    # Cancel mid-generation.
    n_takes = len(settings().takes)
    run_modal("generate")
    yield from wait_for(lambda: session().working and session().progress()[0] > 0.05, "progress to start")
    fraction = session().progress()[0]
    with override():
        result = bpy.ops.avitalk.cancel()
    yield from settle(1.0)
    note("cancel", result=sorted(result), at_fraction=fraction, working=session().working,
         message=session().message, takes=len(settings().takes), takes_before=n_takes)

    # Segments from timeline markers (undo replaced the scene: look it up again).
    scene = bpy.context.scene
    s = settings()
    s.use_segments = True
    length = scene.frame_end - scene.frame_start
    for i, frame in enumerate((scene.frame_start + length // 3, scene.frame_start + 2 * length // 3)):
        scene.timeline_markers.new(f"F_{i}", frame=frame)
    with override():
        result = bpy.ops.avitalk.sync_segments()
    for item, text in zip(list(s.segments)[1:], SEGMENT_TEXTS):
        item.instruction = text
    note("segments", result=sorted(result), segments=[(item.frame, item.instruction) for item in s.segments])
    yield from shot("segments")


# ---- the timer --------------------------------------------------------------------------------


def finish():
    with open(ARGS.report, "w", encoding="utf-8") as out:
        json.dump(REPORT, out, indent=1)
    bpy.ops.wm.quit_blender()


GEN = steps()


def tick():
    try:
        return next(GEN)
    except StopIteration:
        REPORT["finished"] = True
    except Exception:  # the report carries the traceback to the test
        REPORT["error"] = traceback.format_exc()
        print(REPORT["error"], file=sys.stderr, flush=True)
    finish()
    return None


bpy.app.timers.register(tick, first_interval=1.0)
