"""A user's FLAME file in Blender: the map to its basis fitted on import and kept on the rig, takes baked in it.

The file is a FLAME-format head made from ours (``test_retarget_flame_heads.decimated_head``: some of our
vertices, scaled by 1.08 and moved, with an expression basis that is a random rotation of our shapes), so
the lip gap it should show is known: ours times 1.08. It is measured on the mesh Blender evaluates.
"""

import pickle
import threading

import numpy as np
import pytest

from backend.flame.pickle_io import load_flame, save_flame
from backend.head import default_head_path
from backend.head.components import EXPRESSION_INDEX
from backend.head.visemes import articulation
from backend.motion import Motion, save_motion
from backend.phones import Segment
from backend.flame.lbs_numpy import flame_forward

from test_retarget_flame_heads import decimated_head

FPS = 25.0
SCALE = 1.08
PHONES = [Segment("SIL", 0.0, 0.2), Segment("M", 0.2, 0.32), Segment("AA", 0.32, 0.6), Segment("P", 0.6, 0.7),
          Segment("AA", 0.7, 1.0), Segment("B", 1.0, 1.1), Segment("IY", 1.1, 1.4), Segment("SIL", 1.4, 1.6)]


def _centre(p):
    return int(round((p.start + p.end) / 2 * FPS))


CLOSURES = [_centre(p) for p in PHONES if p.label in ("M", "P", "B")]
VOWELS = [_centre(p) for p in PHONES if p.label in ("AA", "IY")]


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """One cache folder for these tests: the file's map is fitted once, then read from it."""
    from backend.retarget import flame_fit

    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(flame_fit, "cache_folder", lambda: folder)       # maps only: our head stays where it is
        yield folder


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    """(path of the FLAME file, our head, its lip vertices (upper, lower), our lip gap per frame in mm x 1.08)."""
    ours = load_flame(default_head_path())
    head, truth = decimated_head(ours, cell=4.0e-3, seed=2, keep_vertices=True, scale=SCALE,
                                 shift=(0.002, -0.01, 0.005))
    raw = head.to_raw()
    _, first = np.unique(np.sort(raw["f"], axis=1), axis=0, return_index=True)
    raw["f"] = raw["f"][np.sort(first)]                    # one face per vertex triple: a mesh Blender accepts
    raw["shapedirs"] = np.concatenate([np.zeros((head.n_verts, 3, 300), np.float32),
                                       head.exprdirs.astype(np.float32)], axis=2)
    path = tmp_path_factory.mktemp("flame") / "user_flame.pkl"
    save_flame(path, raw)
    groups = ours.extras["avitalk_vertex_groups"]
    up, lo = groups["upper_lip"], groups["lower_lip"]
    x = ours.v_template[up, 0]
    central = np.abs(x - (x.max() + x.min()) / 2) <= (x.max() - x.min()) / 6
    up, lo = up[central], lo[central]
    cu, cl = np.unique(truth.cluster[up]), np.unique(truth.cluster[lo])
    motion = _motion()
    posed = flame_forward(ours, expression=motion.expression, jaw_pose=motion.jaw_pose)[0]
    expected = SCALE * _gap_mm(posed, truth.picked[cu], truth.picked[cl])
    return path, (cu, cl), expected


def _gap_mm(verts, upper, lower):
    return 1000.0 * (verts[:, upper, 1].mean(axis=1) - verts[:, lower, 1].mean(axis=1))


def _motion():
    """SIL M AA P AA B IY SIL from our visemes, with a smile rising."""
    n = 40
    channels, _ = articulation(PHONES, n, FPS)
    expression = np.zeros((n, 100), dtype=np.float32)
    for name, value in channels.items():
        if name != "jaw":
            expression[:, EXPRESSION_INDEX[name]] = value
    t = np.arange(n) / n
    for side in "LR":
        expression[:, EXPRESSION_INDEX["smile_" + side]] += 0.6 * np.sin(np.pi * t)
    jaw = np.zeros((n, 3), dtype=np.float32)
    jaw[:, 0] = channels["jaw"]
    zeros = np.zeros((n, 3), dtype=np.float32)
    return Motion(fps=FPS, expression=expression, jaw_pose=jaw, neck_pose=zeros, global_pose=zeros,
                  eye_pose=np.zeros((n, 6), dtype=np.float32), instruction="talking")


def _import(bpy, path):
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 25, 1.0
    assert bpy.ops.avitalk.import_head(filepath=str(path)) == {'FINISHED'}
    arm = bpy.context.view_layer.objects.active
    return next(c for c in arm.children if c.type == 'MESH'), arm


def _gaps_in_blender(bpy, mesh, lips, frames):
    """The inner-lip gap (mm) of the evaluated mesh at each timeline frame (motion frame f is timeline f + 1)."""
    out = []
    for f in frames:
        bpy.context.scene.frame_set(f + 1)
        data = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
        co = np.empty(len(data.vertices) * 3, dtype=np.float32)
        data.vertices.foreach_get("co", co)
        out.append(_gap_mm(co.reshape(1, -1, 3).astype(np.float64), *lips)[0])
    return np.array(out)


def _scene_state(bpy):
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            sorted(m.name for m in bpy.data.meshes), len(bpy.context.scene.avitalk.takes))


@pytest.mark.parametrize("per_frame", [False, True])
def test_takes_on_a_flame_files_rig_close_and_open_the_lips_as_ours(blender, user_file, cache, tmp_path, per_frame):
    bpy = blender
    from avitalk_blender import flame_map

    path, lips, expected = user_file
    mesh, arm = _import(bpy, path)
    fmap = flame_map.stored_map(arm)
    assert fmap is not None and len(fmap.channels) == 53 and fmap.matrix.shape == (53, 101)
    assert max(rms for rms, _ in fmap.fit_error_mm.values()) < 0.5           # mm over the face
    assert len(list((cache / "flame_maps").glob("*.npz"))) == 1             # cached by the file's hash

    save_motion(tmp_path / "m.npz", _motion())
    bpy.context.scene.avitalk.per_frame_solve = per_frame
    assert bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "m.npz"), auto_start=False, frame_start=1) \
        == {'FINISHED'}
    action = mesh.data.shape_keys.animation_data.action
    assert action["avitalk_retarget"] == ("per-frame solve" if per_frame else "fitted map")
    frames = CLOSURES + VOWELS
    gap = _gaps_in_blender(bpy, mesh, lips, frames)
    assert np.abs(gap - expected[frames]).max() < 1.0, (gap, expected[frames])
    assert gap[:len(CLOSURES)].max() < 3.0 and gap[len(CLOSURES):].min() > 10.0


def test_unmapped_coefficients_fail_the_same_measure(blender, user_file, tmp_path):
    """The measure above can fail: our coefficients copied into the file's basis do not close its lips."""
    bpy = blender
    from avitalk_blender import flame_map

    path, lips, expected = user_file
    mesh, arm = _import(bpy, path)
    del arm["avitalk_flame_map"]
    arm["avitalk_flame_fit_error"] = "a test"
    save_motion(tmp_path / "m.npz", _motion())
    assert bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "m.npz"), auto_start=False, frame_start=1) \
        == {'FINISHED'}
    assert mesh.data.shape_keys.animation_data.action["avitalk_retarget"] == "expressions copied unmapped: a test"
    assert flame_map.status(arm)[0] == "failed"
    frames = CLOSURES + VOWELS
    assert np.abs(_gaps_in_blender(bpy, mesh, lips, frames) - expected[frames]).max() > 1.0


def test_fit_in_a_worker_thread_holds_takes_until_it_is_stored(blender, user_file, tmp_path, monkeypatch):
    bpy = blender
    from avitalk_blender import flame_map
    from avitalk_blender.core import flame_maps

    path, _, _ = user_file
    mesh, arm = _import(bpy, path)
    release = threading.Event()

    class Held(flame_maps.FitTask):
        def run(self):
            release.wait(30)
            return super().run()

    monkeypatch.setattr(flame_map.flame_maps, "FitTask", Held)
    task = flame_map.begin(arm, str(path), wait=False)
    assert task.running and "avitalk_flame_map" not in arm
    assert flame_map.status(arm)[0] == "fitting"
    save_motion(tmp_path / "m.npz", _motion())
    before = _scene_state(bpy)
    with pytest.raises(RuntimeError, match="is still being fitted"):
        bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "m.npz"), auto_start=False, frame_start=1)
    after = _scene_state(bpy)
    assert after == before, (before, after)
    assert mesh.data.shape_keys.animation_data.action is None
    release.set()
    task.thread.join(60)
    flame_map.collect()                                     # what the timer does on the main thread
    assert flame_map.status(arm)[0] == "fitted" and not flame_map.TASKS
    assert bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "m.npz"), auto_start=False, frame_start=1) \
        == {'FINISHED'}


def test_our_own_head_needs_no_map(blender, tmp_path):
    bpy = blender
    from avitalk_blender import flame_map

    assert bpy.ops.avitalk.import_head() == {'FINISHED'}
    arm = bpy.context.view_layer.objects.active
    assert "avitalk_flame_file" not in arm and flame_map.status(arm)[0] == "ours"


def test_flame_file_with_a_missing_key_is_named_and_the_scene_unchanged(blender, user_file, tmp_path):
    bpy = blender
    path, _, _ = user_file
    raw = pickle.loads(path.read_bytes())
    del raw["posedirs"]
    (tmp_path / "no_posedirs.pkl").write_bytes(pickle.dumps(raw, protocol=2))
    before = _scene_state(bpy)
    with pytest.raises(RuntimeError, match="missing.*posedirs"):
        bpy.ops.avitalk.import_head(filepath=str(tmp_path / "no_posedirs.pkl"))
    assert _scene_state(bpy) == before


def test_a_finished_generation_waits_for_the_rigs_fit(blender, user_file, tmp_path, monkeypatch):
    """Generate's timer (ops_generate.tick) holds a finished job while the rig's map is fitted, then bakes it."""
    bpy = blender
    from avitalk_blender import flame_map, ops_generate
    from avitalk_blender.core import flame_maps
    from avitalk_blender.core.job import GENERATE, Job
    from avitalk_blender.session import SESSION

    path, _, _ = user_file
    mesh, arm = _import(bpy, path)
    release = threading.Event()

    class Held(flame_maps.FitTask):
        def run(self):
            release.wait(30)
            return super().run()

    monkeypatch.setattr(flame_map.flame_maps, "FitTask", Held)
    task = flame_map.begin(arm, str(path), wait=False)
    save_motion(tmp_path / "gen.npz", _motion())
    scene = bpy.context.scene
    job = Job(GENERATE, str(tmp_path / "clip.wav"), 3, scene.avitalk.controls(), None,
              tag={"scene": scene.name, "rig": arm.name, "frame_start": 1, "frame_end": 41, "joins": [],
                   "blend_seconds": 0.2})
    job.sent("j1", {"instruction": None})
    job.on_result("j1", {"instruction": "a delighted woman, beaming", "motion": str(tmp_path / "gen.npz")})
    SESSION.job = job
    try:
        assert ops_generate.tick() == ops_generate.RUNNING and len(scene.avitalk.takes) == 0
        assert SESSION.progress() == (1.0, "Fitting the rig's expression map (0%)")
        release.set()
        task.thread.join(60)
        assert ops_generate.tick() == ops_generate.FINISHED and SESSION.waiting == ""
    finally:
        release.set()
        SESSION.job = None
    assert len(scene.avitalk.takes) == 1
    assert mesh.data.shape_keys.animation_data.action["avitalk_retarget"] == "fitted map"


def test_character_panel_shows_the_fit_its_errors_and_its_progress(blender, user_file, monkeypatch):
    bpy = blender
    from avitalk_blender import flame_map, panels
    from avitalk_blender.core import flame_maps
    from test_blender_workflow_ui import Host, RecordingLayout

    path, _, _ = user_file
    _import(bpy, path)
    arm = bpy.context.view_layer.objects.active
    panel = panels.AVITALK_PT_character
    assert panel.poll(bpy.context)
    calls = []
    panel.draw(Host(RecordingLayout(bpy, calls)), bpy.context)
    labels = [text for kind, text in calls if kind == "label"]
    assert "Expression map fitted to user_flame.pkl" in labels and ("prop", "per_frame_solve") in calls
    assert any(text.startswith("fit error per channel") for text in labels)
    assert sum(text.startswith(("smile_L: ", "jaw_open: ", "blink_R: ")) for text in labels) == 3

    release = threading.Event()

    class Held(flame_maps.FitTask):
        def run(self):
            release.wait(30)
            return super().run()

    monkeypatch.setattr(flame_map.flame_maps, "FitTask", Held)
    task = flame_map.begin(arm, str(path), wait=False)
    calls = []
    try:
        panel.draw(Host(RecordingLayout(bpy, calls)), bpy.context)
    finally:
        release.set()
        task.thread.join(60)
    assert calls == [("progress", "Fitting the expression map to user_flame.pkl")]


def test_a_rig_saved_while_its_fit_ran_is_fitted_on_its_next_take(blender, user_file, tmp_path):
    bpy = blender
    from avitalk_blender import flame_map

    path, _, _ = user_file
    mesh, arm = _import(bpy, path)
    del arm["avitalk_flame_map"]                   # as a .blend saved before the thread had finished
    assert flame_map.status(arm)[0] == "failed"
    save_motion(tmp_path / "m.npz", _motion())
    assert bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "m.npz"), auto_start=False, frame_start=1) \
        == {'FINISHED'}
    assert "avitalk_flame_map" in arm and flame_map.status(arm)[0] == "fitted"
    assert mesh.data.shape_keys.animation_data.action["avitalk_retarget"] == "fitted map"

    arm["avitalk_flame_file"] = str(tmp_path / "gone.pkl")
    del arm["avitalk_flame_map"]
    actions = len(bpy.data.actions)
    with pytest.raises(RuntimeError, match=r"has no expression map for .*gone.pkl; import the file again"):
        bpy.ops.avitalk.apply_motion(filepath=str(tmp_path / "m.npz"), auto_start=False, frame_start=1)
    assert len(bpy.data.actions) == actions
