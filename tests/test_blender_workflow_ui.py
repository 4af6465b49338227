"""Panels, lists, status bar and preferences draw every path without errors.

The ``bpy`` module has no window to draw into, so draw functions run on a
recording layout that checks what they ask for: every ``prop`` names a real
property of its data, every ``operator`` a registered operator and only its
real properties are set, every ``template_list`` a registered UIList over a
real collection (whose ``draw_item`` then runs for each item).
"""

import numpy as np
import pytest


class RecordingLayout:
    def __init__(self, bpy, calls):
        self.bpy, self.calls = bpy, calls
        self.enabled = self.active = True
        self.alert = False

    def _child(self, *args, **kw):
        return RecordingLayout(self.bpy, self.calls)

    row = column = box = split = grid_flow = _child

    def label(self, text="", icon='NONE', **kw):
        assert isinstance(text, str)
        self.calls.append(("label", text))

    def prop(self, data, name, **kw):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.calls.append(("prop", name))

    def progress(self, factor=0.0, type='BAR', text=""):
        assert 0.0 <= factor <= 1.0
        self.calls.append(("progress", text))

    def operator(self, idname, **kw):
        module, name = idname.split(".")
        op = getattr(getattr(self.bpy.ops, module), name)
        rna = op.get_rna_type()  # raises for an operator that is not registered
        self.calls.append(("operator", idname))
        return OperatorProps(rna)

    def template_list(self, list_type, list_id, data, propname, active_data, active_propname, **kw):
        cls = getattr(self.bpy.types, list_type)
        assert propname in data.bl_rna.properties and active_propname in active_data.bl_rna.properties
        self.calls.append(("list", list_type))
        for index, item in enumerate(getattr(data, propname)):
            cls.draw_item(None, self.bpy.context, self._child(), data, item, 0, active_data, active_propname, index)


class OperatorProps:
    def __init__(self, rna):
        object.__setattr__(self, "_rna", rna)

    def __setattr__(self, name, value):
        assert name in self._rna.properties, f"operator has no property {name!r}"


class Host:
    """Stands in for a Panel / header / preferences instance: ``layout`` plus the real RNA."""

    def __init__(self, layout, rna=None):
        self.layout = layout
        if rna is not None:
            self.bl_rna = rna


@pytest.fixture
def drawn(blender, tiny_flame):
    bpy = blender
    path, _ = tiny_flame
    assert bpy.ops.avitalk.import_head(filepath=str(path)) == {'FINISHED'}
    return bpy


def _draw_all(bpy):
    from avitalk_blender import panels, preferences

    calls = []
    for panel in (panels.AVITALK_PT_main, panels.AVITALK_PT_instruction, panels.AVITALK_PT_segments,
                  panels.AVITALK_PT_takes, panels.AVITALK_PT_motion_file):
        host = Host(RecordingLayout(bpy, calls))
        if hasattr(panel, "draw_header"):
            panel.draw_header(host, bpy.context)
        panel.draw(host, bpy.context)
    panels.draw_status(Host(RecordingLayout(bpy, calls)), bpy.context)
    prefs = Host(RecordingLayout(bpy, calls), preferences.AVITALK_AddonPreferences.bl_rna)
    for prop in preferences.AVITALK_AddonPreferences.bl_rna.properties.keys():
        if prop != "rna_type":
            setattr(prefs, prop, "AUTO" if prop == "device" else "")
    preferences.AVITALK_AddonPreferences.draw(prefs, bpy.context)
    return calls


def test_panels_draw_idle_with_takes_and_segments(drawn, tmp_path):
    bpy = drawn
    from avitalk_blender import takes
    from backend.motion import Motion

    scene = bpy.context.scene
    settings = scene.avitalk
    calls = _draw_all(bpy)
    assert ("operator", "avitalk.generate") in calls and ("operator", "avitalk.bake") in calls
    assert ("label", "Select an AVI-Talk head") not in calls

    n = 5
    motion = Motion(fps=25.0, expression=np.zeros((n, 12), np.float32), jaw_pose=np.zeros((n, 3), np.float32),
                    neck_pose=np.zeros((n, 3), np.float32), global_pose=np.zeros((n, 3), np.float32),
                    eye_pose=np.zeros((n, 6), np.float32), instruction="A calm man.", seed=4)
    takes.make_take(scene, bpy.context.active_object, motion, 1, {"avitalk_seed": 4})
    settings.segments.add().instruction = "angry"
    settings.audio_source, settings.use_range, settings.decimate = 'FILE', True, True
    calls = _draw_all(bpy)
    assert ("list", "AVITALK_UL_takes") in calls and ("list", "AVITALK_UL_segments") in calls
    assert ("label", "A calm man.") in calls and ("label", "seed 4") in calls


def test_panels_draw_while_busy_and_after_a_check(drawn):
    bpy = drawn
    from avitalk_blender.core.job import Job
    from avitalk_blender.session import SESSION

    SESSION.job = Job("regenerate", "clip.wav", 0, {}, "calm", ["", "angry"])
    SESSION.check = {"version": "0.1", "torch": "2", "device": "cpu", "models_ok": False, "models_error": "no weights"}
    try:
        calls = _draw_all(bpy)
    finally:
        SESSION.job = None
        SESSION.check = None
    assert ("operator", "avitalk.cancel") in calls and ("operator", "avitalk.generate") not in calls
    assert sum(1 for c in calls if c[0] == "progress") == 2  # panel and status bar
    assert any(c[0] == "label" and "no weights" in c[1] for c in calls)


def test_panel_shows_the_backends_warnings_and_generate_reports_them(drawn):
    bpy = drawn
    from avitalk_blender import ops_generate
    from avitalk_blender.session import SESSION

    SESSION.message, SESSION.warnings = "New take 'calm'", ["the audio is silent: the instruction is neutral"]
    try:
        calls = _draw_all(bpy)

        class Operator:
            reports = []

            def report(self, level, message):
                self.reports.append((set(level), message))

        op = Operator()
        ops_generate._report_warnings(op)
    finally:
        SESSION.message, SESSION.warnings = "", []
    assert ("label", "the audio is silent: the instruction is neutral") in calls
    assert op.reports == [({'WARNING'}, "the audio is silent: the instruction is neutral")]
