"""Operators and properties inside Blender: one error path, refusals leave the scene alone,
bounded controls, a tooltip on every property, a private folder per Blender instance."""

import os
import tempfile

import numpy as np
import pytest


@pytest.fixture
def head(blender, tiny_flame):
    bpy = blender
    path, _ = tiny_flame
    assert bpy.ops.avitalk.import_head(filepath=str(path)) == {'FINISHED'}
    return bpy


class FakeOperator:
    def __init__(self):
        self.reports = []

    def report(self, level, message):
        self.reports.append((set(level), message))


def test_one_error_path_reports_the_family_and_lets_bugs_through(blender):
    from avitalk_blender import ops_common
    from avitalk_blender.core.client import BackendError
    from avitalk_blender.core.errors import RigError
    from backend.motion import MotionFileError

    for error in (RigError("select a head"), BackendError("the backend is gone"), MotionFileError("bad file")):
        op = FakeOperator()
        assert ops_common.run(op, lambda: (_ for _ in ()).throw(error)) == {'CANCELLED'}
        assert op.reports == [({'ERROR'}, str(error))]
    op = FakeOperator()
    assert ops_common.run(op, lambda: "done") == {'FINISHED'} and op.reports == [({'INFO'}, "done")]
    with pytest.raises(KeyError):  # a bug stays a traceback
        ops_common.run(FakeOperator(), lambda: {}["missing"])


def _scene_state(bpy):
    settings = bpy.context.scene.avitalk
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            len(settings.takes), settings.seed, settings.instruction)


def test_refused_operators_leave_the_scene_unchanged(head, tmp_path):
    bpy = head
    settings = bpy.context.scene.avitalk
    settings.seed = 41
    settings.instruction = "A calm man."
    before = _scene_state(bpy)
    with pytest.raises(RuntimeError, match="no sound strips"):  # refused after the new seed was chosen
        bpy.ops.avitalk.regenerate(new_variation=True)
    assert _scene_state(bpy) == before

    bad_shape = tmp_path / "shape.npy"
    bad_shape.write_bytes(b"not an array")
    with pytest.raises(RuntimeError, match="shape coefficients"):
        bpy.ops.avitalk.import_head(shape_path=str(bad_shape))
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.avitalk.import_head(filepath=str(tmp_path / "missing.pkl"))
    assert _scene_state(bpy) == before


def test_applying_a_motion_file_lists_it_as_a_take(head, tmp_path):
    bpy = head
    from backend.motion import Motion, save_motion

    n = 6
    save_motion(tmp_path / "line.npz", Motion(
        fps=25.0, expression=np.zeros((n, 12), np.float32), jaw_pose=np.zeros((n, 3), np.float32),
        neck_pose=np.zeros((n, 3), np.float32), global_pose=np.zeros((n, 3), np.float32),
        eye_pose=np.zeros((n, 6), np.float32), instruction="A calm man."))
    assert bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "line.npz")) == {'FINISHED'}
    settings = bpy.context.scene.avitalk
    assert len(settings.takes) == 1 and settings.take_index == 0
    shapes = bpy.data.actions[settings.takes[0].name + "_shapes"]
    assert shapes["avitalk_motion_file"] == str(tmp_path / "line.npz")


def test_controls_and_seed_are_hard_bounded_by_the_protocol(blender):
    bpy = blender
    from backend.protocol import CONTROL_RANGES, MAX_SEED

    settings = bpy.context.scene.avitalk
    props = settings.bl_rna.properties
    for name, (low, high, default) in CONTROL_RANGES.items():
        assert (props[name].hard_min, props[name].hard_max, props[name].default) == pytest.approx((low, high, default))
        setattr(settings, name, 1e7)
        assert getattr(settings, name) == pytest.approx(high)
        setattr(settings, name, -1e7)
        assert getattr(settings, name) == pytest.approx(low)
    assert props["seed"].hard_min == 0 and props["seed"].hard_max == MAX_SEED
    assert set(settings.controls()) >= set(CONTROL_RANGES)


def test_every_property_has_a_tooltip(blender):
    bpy = blender
    import avitalk_blender

    missing = []
    for cls in avitalk_blender.classes:
        rna = cls.bl_rna
        if issubclass(cls, bpy.types.Operator):
            module, name = cls.bl_idname.split(".")
            rna = getattr(getattr(bpy.ops, module), name).get_rna_type()
        for name in getattr(cls, "__annotations__", {}):  # the properties the extension defines
            if not rna.properties[name].description.strip():
                missing.append(f"{cls.__name__}.{name}")
    assert not missing, missing
    assert len(avitalk_blender.properties.AVITALK_SceneSettings.__annotations__) > 20


def test_backend_config_uses_a_private_motion_folder(blender):
    bpy = blender
    from avitalk_blender import preferences, session

    first = preferences.config_from(bpy.context)
    second = preferences.config_from(bpy.context)
    folder = first.motion_dir
    assert folder and folder == second.motion_dir and os.path.isdir(folder)
    assert os.path.basename(folder).startswith("avitalk_") and folder != os.path.join(tempfile.gettempdir(), "avitalk_motion")
    assert "--motion-dir" in first.command() and session.private_dir() == folder


def test_open_log_loads_the_backends_log_and_says_when_there_is_none(blender, tmp_path, monkeypatch):
    bpy = blender
    from avitalk_blender.session import SESSION

    log = tmp_path / "backend.log"
    monkeypatch.setattr(SESSION.config, "log", str(log))
    with pytest.raises(RuntimeError, match="no log yet"):
        bpy.ops.avitalk.open_log()
    assert "avitalk_backend.log" not in bpy.data.texts
    log.write_text("INFO start\nERROR request g-1 failed:\nTraceback (most recent call last):\nValueError: boom\n")
    assert bpy.ops.avitalk.open_log() == {'FINISHED'}
    text = bpy.data.texts["avitalk_backend.log"].as_string()
    assert "ValueError: boom" in text
    log.write_text("INFO later\n")
    assert bpy.ops.avitalk.open_log() == {'FINISHED'}
    assert bpy.data.texts["avitalk_backend.log"].as_string().startswith("INFO later")  # reloaded, not appended
