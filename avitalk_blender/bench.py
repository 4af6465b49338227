"""Bake benchmark (a measurement, not a test): keyframe writing for a long take.

    python -m avitalk_blender.bench        prints seconds per bake

``bench_bake()`` is importable by the backend benchmark; it needs the ``bpy`` module.
"""

import tempfile
import time
from pathlib import Path

import bpy
import numpy as np

from . import bake, rig
from .core import backend_ref, naming


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


if __name__ == "__main__":
    print(bench_bake())
