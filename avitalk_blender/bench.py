"""Blender-side benchmarks (measurements, not tests): keyframe writing, and Regenerate through the server.

    python -m avitalk_blender.bench [--json]                prints seconds per bake (one JSON line with --json)
    python -m avitalk_blender.bench regenerate [CKPT_DIR]   Regenerate round trip and timer tick durations
    python -m avitalk_blender.bench ict FACEXMODEL_DIR      baking onto ICT-FaceKit's head
    python -m avitalk_blender.bench flame FLAME_FILE [--no-scipy]   a FLAME file's map: fit, cached, bakes
    python -m avitalk_blender.bench measure-ict MOTION FACEXMODEL_DIR   a take's closures and smile on ICT's mesh

``bench_bake()``, ``bench_regenerate()``, ``bench_ict()``, ``bench_flame()`` and ``measure_ict()`` are
importable; they need the ``bpy`` module.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import bpy
import numpy as np

from . import bake, character, ops_generate, register, rig, session, takes, unregister
from .core import backend_ref, mixdown, naming


def bench_bake(n_frames: int = 750, n_expr: int = 100, repeats: int = 3, n_verts: int = 500) -> dict:
    """Seconds to bake ``n_frames`` x (``n_expr`` shape keys + 5 bones) onto a synthetic rig.

    Returns ``{"prepare_s", "bake_s", "n_fcurves", "n_keys"}`` (best of ``repeats``):
    ``prepare_s`` checks the motion against the rig, ``bake_s`` computes the bone
    values and writes every F-curve. Resets Blender to an empty factory scene.
    """
    bpy.ops.wm.read_factory_settings(use_empty=True)
    synthetic = backend_ref.module("flame.synthetic")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench_flame.pkl"
        synthetic.write_tiny_model(path, n_verts=n_verts, n_expr=n_expr)
        model = backend_ref.pickle_io().load_flame(path)
    mesh_obj, arm_obj = rig.build_rig(bpy.context.scene.collection, model, "bench_head")

    rng = np.random.default_rng(0)
    motion = backend_ref.motion().Motion(
        fps=25.0, expression=rng.normal(size=(n_frames, n_expr)).astype(np.float32),
        jaw_pose=rng.normal(scale=0.1, size=(n_frames, 3)).astype(np.float32),
        neck_pose=rng.normal(scale=0.1, size=(n_frames, 3)).astype(np.float32),
        global_pose=rng.normal(scale=0.1, size=(n_frames, 3)).astype(np.float32),
        eye_pose=rng.normal(scale=0.1, size=(n_frames, 6)).astype(np.float32))
    prepare_s, bake_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        data = bake.prepare(arm_obj, motion, 25.0, 1)
        t1 = time.perf_counter()
        take = naming.unique_take_name("bench", bake.existing_action_names())
        bake.bake(mesh_obj, arm_obj, data, take)
        t2 = time.perf_counter()
        prepare_s.append(t1 - t0)
        bake_s.append(t2 - t1)
    n_fcurves = n_expr + 5 * 7
    return {"prepare_s": min(prepare_s), "bake_s": min(bake_s), "n_fcurves": n_fcurves,
            "n_keys": n_fcurves * n_frames}


def bench_ict(folder: str, n_frames: int = 750, repeats: int = 3) -> dict:
    """Seconds to import ICT-FaceKit's head from ``folder`` (``avitalk.import_head``) and to bake ``n_frames``
    onto it as a take, by the ARKit table and by the per-frame solve.

    Returns ``{"import_s", "bake_s", "bake_solve_s", "n_vertices", "n_fcurves"}`` (bakes: best of ``repeats``,
    the whole ``takes.make_take``). Resets Blender to an empty scene with the add-on registered.
    """
    bpy.ops.wm.read_factory_settings(use_empty=True)
    register()
    try:
        t0 = time.perf_counter()
        assert bpy.ops.avitalk.import_head(ict_folder=folder) == {'FINISHED'}
        import_s = time.perf_counter() - t0
        arm_obj = bpy.context.view_layer.objects.active
        mesh_obj = character.find(arm_obj).mesh
        names = backend_ref.module("head.components").EXPRESSION_NAMES
        rng = np.random.default_rng(0)
        motion = backend_ref.motion().Motion(
            fps=25.0, expression=rng.uniform(0.0, 0.5, size=(n_frames, len(names))).astype(np.float32),
            jaw_pose=rng.normal(scale=0.1, size=(n_frames, 3)).astype(np.float32),
            neck_pose=rng.normal(scale=0.1, size=(n_frames, 3)).astype(np.float32),
            global_pose=rng.normal(scale=0.1, size=(n_frames, 3)).astype(np.float32),
            eye_pose=rng.normal(scale=0.1, size=(n_frames, 6)).astype(np.float32))
        bakes = _time_bakes(bpy.context.scene, arm_obj, motion, repeats)
        channel_map = character.find(arm_obj).channel_map()
        n_fcurves = len(channel_map.driven_keys()) + 4 * len(channel_map.bones)
        return {"import_s": import_s, "bake_s": bakes[False], "bake_solve_s": bakes[True],
                "n_vertices": len(mesh_obj.data.vertices), "n_fcurves": n_fcurves}
    finally:
        unregister()


def bench_flame(path: str, n_frames: int = 750, repeats: int = 3) -> dict:
    """Seconds to import a FLAME file as a rig, to fit its expression map (a fresh cache, then the cached map),
    and to bake ``n_frames`` onto it through the map and through the per-frame solve.

    Returns ``{"build_s", "fit_s", "cached_s", "neighbours", "bake_map_s", "bake_solve_s", "n_vertices",
    "fit_error"}`` (bakes: best of ``repeats``, the whole ``takes.make_take``). The fit runs here, as in
    background mode (``flame_map.begin``); in the UI a worker thread runs the same code.
    """
    from . import flame_map
    from .core import flame_maps

    bpy.ops.wm.read_factory_settings(use_empty=True)
    register()
    fit = backend_ref.module("retarget.flame_fit")
    try:
        with tempfile.TemporaryDirectory() as cache:     # a fresh map cache; our head stays where it is
            def fit_into(p, progress):
                return fit.flame_map_for_file(p, cache_dir=cache, progress=progress)

            t0 = time.perf_counter()
            model = backend_ref.pickle_io().load_flame(path)
            mesh_obj, arm_obj = rig.build_rig(bpy.context.scene.collection, model, "bench_flame")
            arm_obj["avitalk_flame_file"] = str(Path(path).resolve())
            t1 = time.perf_counter()
            task = flame_maps.FitTask(path, fit=fit_into).run()
            flame_map.store(arm_obj, task)
            t2 = time.perf_counter()
            if task.result is None:
                raise RuntimeError(f"the fit failed: {task.error}")
            flame_map.store(arm_obj, flame_maps.FitTask(path, fit=fit_into).run())
            t3 = time.perf_counter()
        names = backend_ref.module("head.components").EXPRESSION_NAMES
        rng = np.random.default_rng(0)
        expression = np.zeros((n_frames, 100), dtype=np.float32)
        expression[:, :len(names)] = rng.uniform(0.0, 0.5, size=(n_frames, len(names)))
        motion = backend_ref.motion().Motion(
            fps=25.0, expression=expression, jaw_pose=rng.uniform(0.0, 0.3, size=(n_frames, 3)).astype(np.float32),
            neck_pose=np.zeros((n_frames, 3), np.float32), global_pose=np.zeros((n_frames, 3), np.float32),
            eye_pose=np.zeros((n_frames, 6), np.float32))
        bakes = _time_bakes(bpy.context.scene, arm_obj, motion, repeats)
        return {"build_s": t1 - t0, "fit_s": t2 - t1, "cached_s": t3 - t2,
                "neighbours": fit.neighbour_search(),
                "bake_map_s": bakes[False], "bake_solve_s": bakes[True], "n_vertices": model.n_verts,
                "fit_error": task.result.summary()}
    finally:
        unregister()


def measure_ict(motion_path: str, folder: str) -> dict:
    """A motion file applied to ICT-FaceKit's head by the table and by the per-frame solve, measured on the mesh
    Blender evaluates against our head under the same motion.

    Closures: runs of frames where our inner-lip gap (``evaluate.geometry``) is at most 1 mm; for each, ICT's
    smallest inner-lip gap (Multi-PIE points 61/67, 62/66, 63/65) over the run. Vowels: our gap's local maxima
    over 8 mm. Smile: the mouthSmile keys' values and the mouth corners' (points 48, 54) lift over the take.
    The head's turns are set to zero first (as ``evaluate.geometry`` does): they are no lip or smile motion.
    """
    geometry = backend_ref.module("evaluate.geometry").default_geometry()
    motion = backend_ref.motion().load_motion(motion_path)
    motion.neck_pose[:] = 0.0
    motion.global_pose[:] = 0.0
    scratch = tempfile.TemporaryDirectory()
    motion_path = str(Path(scratch.name) / "motion.npz")
    backend_ref.motion().save_motion(motion_path, motion)
    ours = geometry.lip_gap(geometry.vertices(motion))                                   # (T,) mm
    closed = np.flatnonzero(ours <= 1.0)
    runs = np.split(closed, np.flatnonzero(np.diff(closed) > 1) + 1) if len(closed) else []
    peaks = [t for t in range(1, len(ours) - 1) if ours[t] >= max(ours[t - 1], ours[t + 1]) and ours[t] > 8.0]
    marks = backend_ref.module("retarget.ict")._json_landmarks(Path(folder))
    upper, lower = marks[[61, 62, 63]], marks[[67, 66, 65]]
    corners = marks[[48, 54]]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    register()
    try:
        scene = bpy.context.scene
        scene.render.fps, scene.render.fps_base = int(round(motion.fps)), 1.0
        assert bpy.ops.avitalk.import_head(ict_folder=folder) == {'FINISHED'}
        mesh_obj = character.find(bpy.context.view_layer.objects.active).mesh
        keys = mesh_obj.data.shape_keys.key_blocks
        rest = np.array([v.co[1] for v in mesh_obj.data.vertices])[corners]
        out = {"frames": len(ours), "our_closures": len(runs), "our_vowel_peaks": len(peaks),
               "our_vowel_gap_median_mm": float(np.median(ours[peaks])) if peaks else None}
        for per_frame in (False, True):
            scene.avitalk.per_frame_solve = per_frame
            assert bpy.ops.avitalk.apply_motion(filepath=motion_path, auto_start=False, frame_start=1) == {'FINISHED'}
            gap, smile, lift = np.zeros(len(ours)), np.zeros((len(ours), 2)), np.zeros((len(ours), 2))
            for t in range(len(ours)):
                scene.frame_set(t + 1)
                data = mesh_obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
                co = np.empty(len(data.vertices) * 3, dtype=np.float32)
                data.vertices.foreach_get("co", co)
                co = co.reshape(-1, 3)
                gap[t] = 1000.0 * max(0.0, float((co[upper, 1] - co[lower, 1]).max()))
                smile[t] = keys["mouthSmileLeft"].value, keys["mouthSmileRight"].value
                lift[t] = 1000.0 * (co[corners, 1] - rest)
            sealed = [float(gap[run].min()) for run in runs]
            out["solve" if per_frame else "table"] = {
                "closures_under_1mm": sum(g < 1.0 for g in sealed), "closure_gap_max_mm": max(sealed, default=None),
                "vowel_gap_min_mm": float(gap[peaks].min()) if peaks else None,
                "vowel_gap_median_mm": float(np.median(gap[peaks])) if peaks else None,
                "smile_keys_mean": smile.mean(axis=0).round(2).tolist(),
                "corner_lift_mean_mm": lift.mean(axis=0).round(2).tolist()}
        return out
    finally:
        unregister()
        scratch.cleanup()


def bench_regenerate(checkpoint: str = "", seconds: float = 10.0, repeats: int = 3, device: str = "cpu",
                     max_messages: int = 20) -> dict:
    """Regenerate after an instruction edit for ``seconds`` of speech, measured from Blender's side.

    Runs the UI path (``ops_generate.start`` + ``ops_generate.tick`` as the modal timer
    does, every 10 ms). Returns ``regenerate_s`` (best and all round trips:
    mixdown, request, stage 2 in the server, motion file, bake of the take),
    ``tick_ms_max`` / ``tick_ms_mean`` (one timer callback while the request
    runs), ``n_ticks``, and ``apply_ms_max`` (the last callback, which loads the
    motion and bakes the take). The first
    Generate (stage 1, model loading) is not timed. Resets Blender to an empty scene.
    """
    bpy.ops.wm.read_factory_settings(use_empty=True)
    register()
    session.configure(python=sys.executable, checkpoint=checkpoint, device=device)
    try:
        synthetic = backend_ref.module("flame.synthetic")
        folder = tempfile.mkdtemp(prefix="avitalk-bench-")
        flame = Path(folder) / "bench_flame.pkl"
        synthetic.write_tiny_model(flame, n_verts=200, n_expr=100)
        rig.build_rig(bpy.context.scene.collection, backend_ref.pickle_io().load_flame(flame), "bench_head")
        bpy.context.view_layer.objects.active = bpy.data.objects["bench_head_rig"]
        rng = np.random.default_rng(0)
        t = np.arange(int(seconds * mixdown.RATE)) / mixdown.RATE
        wave_ = 0.3 * np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)
        wav = Path(folder) / "line.wav"
        mixdown.write_wav(wav, wave_)
        scene = bpy.context.scene
        scene.sequence_editor_create().strips.new_sound("line", str(wav), 1, 1)
        ops_generate.run_sync(bpy.context, "generate")  # warm-up: loads models, caches features
        rounds, ticks, applies = [], [], []
        for i in range(repeats):
            scene.avitalk.instruction = f"A calm speaker, variation {i}, slight smile."
            t0 = time.perf_counter()
            ops_generate.start(bpy.context, "regenerate")
            state = ops_generate.RUNNING
            while state == ops_generate.RUNNING:
                time.sleep(0.01)
                t1 = time.perf_counter()
                state = ops_generate.tick(max_messages)
                (ticks if state == ops_generate.RUNNING else applies).append(time.perf_counter() - t1)
            rounds.append(time.perf_counter() - t0)
            if state != ops_generate.FINISHED:
                raise RuntimeError(session.SESSION.message)
            action = bpy.data.actions[scene.avitalk.takes[-1].name + "_shapes"]
            if action["avitalk_stage1_ran"]:
                raise RuntimeError("Regenerate ran stage 1")
        return {"regenerate_s": min(rounds), "regenerate_all_s": rounds, "tick_ms_max": 1000 * max(ticks),
                "tick_ms_mean": 1000 * float(np.mean(ticks)), "n_ticks": len(ticks),
                "apply_ms_max": 1000 * max(applies), "seconds_of_speech": seconds}
    finally:
        unregister()
        session.configure()



def _time_bakes(scene, arm_obj, motion, repeats: int) -> dict:
    """Fastest of ``repeats`` takes of ``motion`` on ``arm_obj``, through the map (False) and the per-frame solve (True)."""
    scene.render.fps = 25
    bakes = {}
    for per_frame in (False, True):
        scene.avitalk.per_frame_solve = per_frame
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            takes.make_take(scene, arm_obj, motion, 1, {})
            times.append(time.perf_counter() - start)
        bakes[per_frame] = min(times)
    return bakes


if __name__ == "__main__":
    if sys.argv[1:2] == ["ict"]:
        print(bench_ict(sys.argv[2]))
    elif sys.argv[1:2] == ["measure-ict"]:
        print(json.dumps(measure_ict(sys.argv[2], sys.argv[3])))
    elif sys.argv[1:2] == ["flame"]:
        if "--no-scipy" in sys.argv:
            sys.modules["scipy.spatial"] = None       # as in Blender's own Python: Blender's k-d tree instead
        print(bench_flame(sys.argv[2]))
    elif sys.argv[1:2] == ["regenerate"]:
        print(bench_regenerate(sys.argv[2] if len(sys.argv) > 2 else ""))
    elif sys.argv[1:2] == ["--json"]:
        print(json.dumps(bench_bake()))
    else:
        print(bench_bake())
