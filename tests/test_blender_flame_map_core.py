"""The FLAME map's fit task and the choice of motion for a FLAME file's rig, without Blender (bpy-free core)."""

import numpy as np
import pytest

from avitalk_blender.core import flame_maps
from avitalk_blender.core.errors import InputError
from backend.errors import AviTalkError
from backend.motion import Motion
from backend.retarget.flame_fit import FlameMap


def _map():
    rng = np.random.default_rng(0)
    k = 6
    matrix = rng.normal(size=(3, k))
    matrix[-1, -1] = 1.0
    return FlameMap(("smile_L", "smile_R", "jaw_open"), matrix, np.eye(k), matrix.copy(),
                    {"smile_L": (0.1, 1.0), "smile_R": (0.2, 2.0), "jaw_open": (0.05, 0.5)})


def _motion(n=5):
    z = np.zeros((n, 3))
    expression = np.zeros((n, 2))
    expression[:, 0] = np.linspace(0, 1, n)
    return Motion(fps=25.0, expression=expression, jaw_pose=z.copy(), neck_pose=z, global_pose=z,
                  eye_pose=np.zeros((n, 6)))


def test_task_reports_progress_and_its_result():
    seen = []

    def fit(path, progress):
        progress(0.5)
        seen.append(path)
        return _map()

    task = flame_maps.FitTask("/x/flame.pkl", fit=fit).start()
    task.thread.join(10)
    assert task.state == flame_maps.DONE and task.fraction == 1.0 and seen == ["/x/flame.pkl"]
    assert not task.running and task.elapsed() == task.seconds


def test_task_failures_become_messages():
    def refused(path, progress):
        raise AviTalkError("not a head")

    def bug(path, progress):
        raise KeyError("oops")

    task = flame_maps.FitTask("f", fit=refused).run()
    assert task.state == flame_maps.FAILED and task.error == "not a head" and task.result is None
    task = flame_maps.FitTask("f", fit=bug).run()
    assert task.state == flame_maps.FAILED and task.error.startswith("internal error KeyError") and task.traceback


def test_choose_maps_waits_or_copies():
    fmap, motion = _map(), _motion()
    mapped, note = flame_maps.choose(motion, fmap.as_dict(), "", None, False, "rig", "f.pkl")
    assert note == "fitted map"
    np.testing.assert_allclose(mapped.expression, fmap.apply(motion).expression)
    assert flame_maps.choose(motion, fmap.as_dict(), "", None, True, "rig", "f.pkl")[1] == "per-frame solve"

    running = flame_maps.FitTask("f.pkl", fit=lambda p, progress: None)
    running.fraction = 0.42
    with pytest.raises(InputError, match=r"'rig' \(f.pkl\) is still being fitted \(42 %"):
        flame_maps.choose(motion, None, "", running, False, "rig", "f.pkl")
    copied, note = flame_maps.choose(motion, None, "not a head", None, False, "rig", "f.pkl")
    assert copied is motion and note == "expressions copied unmapped: not a head"
    with pytest.raises(InputError, match="has no expression map for f.pkl; import the file again"):
        flame_maps.choose(motion, None, "", None, False, "rig", "f.pkl")


def test_our_heads_file_speaks_our_channels():
    from backend.flame.pickle_io import load_flame
    from backend.flame.synthetic import make_tiny_model
    from backend.flame.pickle_io import model_from_raw
    from backend.head import default_head_path

    assert flame_maps.speaks_our_channels(load_flame(default_head_path()))
    assert not flame_maps.speaks_our_channels(model_from_raw(make_tiny_model(n_verts=60, n_expr=10)))
