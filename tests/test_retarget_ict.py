"""Our motion on ICT-FaceKit's head, measured on its own vertices (skipped when the folder is absent)."""

import os
from pathlib import Path

import numpy as np
import pytest

from backend.head.components import EXPRESSION_INDEX, EXPRESSION_NAMES
from backend.head.visemes import articulation
from backend.phones import Segment
from backend.retarget.arkit import ARKIT_INDEX, ARKIT_NAMES, arkit_weights
from backend.retarget.ict import IctFolderError, load_ict

ROOT = Path(__file__).resolve().parents[1]
ICT = Path(os.environ.get("AVITALK_ICT_FACEKIT", ROOT.parent / "shared" / "ict-facekit" / "FaceXModel"))
needs_ict = pytest.mark.skipif(not (ICT / "generic_neutral_mesh.obj").is_file(),
                               reason=f"ICT-FaceKit's FaceXModel folder is not at {ICT} (set AVITALK_ICT_FACEKIT)")
FPS = 25.0
# Multi-PIE inner-lip landmarks: (upper, lower) pairs across the mouth's middle.
INNER_LIPS = ((61, 67), (62, 66), (63, 65))


@pytest.fixture(scope="module")
def head():
    return load_ict(ICT)


def _motion(phones, n_frames, extra=None):
    """Our head's articulation of ``phones`` as motion arrays (expression, jaw_pose, eye_pose)."""
    channels, _ = articulation(phones, n_frames, FPS)
    expression = np.zeros((n_frames, len(EXPRESSION_NAMES)))
    for name, value in {**channels, **(extra or {})}.items():
        if name != "jaw":
            expression[:, EXPRESSION_INDEX[name]] = value
    jaw = np.zeros((n_frames, 3))
    jaw[:, 0] = channels["jaw"]
    return expression, jaw, np.zeros((n_frames, 6))


def _posed(head, weights, vertices):
    """ICT's vertices (T, n, 3) under ARKit weights (T, 52)."""
    names = [n for n in ARKIT_NAMES if n in head.deltas]
    deltas = np.stack([head.deltas[n][vertices] for n in names])                # (K, n, 3)
    w = weights[:, [ARKIT_INDEX[n] for n in names]]
    return head.vertices[vertices][None] + np.einsum("tk,kvc->tvc", w, deltas)


def _inner_gap_mm(head, weights):
    """(T,) largest vertical opening between ICT's inner-lip landmarks; lips pressed past each other count 0."""
    ids = np.array([head.landmarks[list(p)] for p in INNER_LIPS])              # (3, 2)
    posed = _posed(head, weights, ids.ravel()).reshape(len(weights), len(ids), 2, 3)
    gap = posed[:, :, 0, 1] - posed[:, :, 1, 1]
    return 1000.0 * np.clip(gap, 0.0, None).max(axis=1)


@needs_ict
def test_folder_reads_as_a_head(head):
    assert head.vertices.shape == (26719, 3) and head.face_sizes.sum() == len(head.face_vertices)
    assert head.corner_uvs.shape == (len(head.face_vertices), 2)
    assert set(head.deltas) == set(ARKIT_NAMES) - {"tongueOut"} and head.missing == ("tongueOut",)
    assert 0.15 < np.ptp(head.vertices[:, 1]) < 0.4                          # metres, a human head
    left, right = head.eye_centers
    assert left[0] > 0.02 and right[0] < -0.02 and abs(left[1] - right[1]) < 1e-3
    assert 0.3 < head.jaw_open_angle < 0.6 and head.jaw_axis[0] > 0.99
    # the jaw pivot sits behind and below the eyes
    assert head.jaw_pivot[1] < left[1] and head.jaw_pivot[2] < left[2]


PHONES = [Segment("SIL", 0.0, 0.2), Segment("M", 0.2, 0.32), Segment("AA", 0.32, 0.6), Segment("P", 0.6, 0.7),
          Segment("AA", 0.7, 1.0), Segment("SIL", 1.0, 1.2)]


def _check_seal_and_opening(gap, phones=PHONES):
    for p in (phones[1], phones[3]):
        frame = int(round((p.start + p.end) / 2 * FPS))
        assert gap[frame] < 1.0, (p.label, gap[frame])
    for p in (phones[2], phones[4]):
        frame = int(round((p.start + p.end) / 2 * FPS))
        assert gap[frame] > 3.0, (p.label, gap[frame])


@needs_ict
def test_lips_seal_on_a_bilabial_and_open_on_a_vowel(head):
    weights = arkit_weights(*_motion(PHONES, 30), EXPRESSION_NAMES)
    _check_seal_and_opening(_inner_gap_mm(head, weights))


@needs_ict
def test_smile_raises_the_mouth_corners(head):
    n = 10
    rest = _motion([Segment("SIL", 0.0, 0.4)], n)
    ramp = np.linspace(0, 0.8, n)
    smile = _motion([Segment("SIL", 0.0, 0.4)], n, {"smile_L": ramp, "smile_R": ramp})
    corners = head.landmarks[[48, 54]]
    lift = {}
    for key, arrays in (("rest", rest), ("smile", smile)):
        weights = arkit_weights(*arrays, EXPRESSION_NAMES)
        lift[key] = 1000.0 * (_posed(head, weights, corners)[:, :, 1] - head.vertices[corners, 1])   # (T, 2) mm
    assert np.all(np.abs(lift["rest"]) < 0.5)
    assert np.all(lift["smile"][-1] > 3.0)                                     # both corners, clearly up
    assert np.all(np.diff(lift["smile"], axis=0) > -1e-9)                      # and more as the smile grows


def test_incomplete_folder_names_what_is_missing(tmp_path):
    (tmp_path / "generic_neutral_mesh.obj").write_text("v 0 0 0\n")
    (tmp_path / "jawOpen.obj").write_text("v 0 0 0\n")
    with pytest.raises(IctFolderError) as err:
        load_ict(tmp_path)
    message = str(err.value)
    assert "browDown_L.obj" in message and "found 2 OBJ files" in message and "jawOpen.obj" in message
    with pytest.raises(IctFolderError, match="not a folder"):
        load_ict(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def matches(head):
    from backend.flame.pickle_io import load_flame
    from backend.head import default_head_path
    from backend.retarget.compare import compare

    return compare(load_flame(default_head_path()), head)


@needs_ict
def test_heads_align_on_their_landmarks(matches):
    _, pairing = matches
    assert 0.7 < pairing.scale < 1.1                                          # ICT's head is a little larger
    assert pairing.info["landmark_residual_mm"].max() < 8.0
    assert pairing.info["pairs"] > 0.5 * pairing.info["face_vertices"]


@needs_ict
@pytest.mark.parametrize("theirs, ours", [
    ("eyeBlinkLeft", "blink_L"), ("eyeBlinkRight", "blink_R"), ("eyeWideLeft", "eye_wide_L"),
    ("mouthSmileLeft", "smile_L"), ("mouthSmileRight", "smile_R"), ("mouthPucker", "pucker"),
    ("mouthFunnel", "funnel"), ("jawOpen", "jaw_open"), ("jawLeft", "jaw_left"), ("mouthLeft", "mouth_left"),
    ("mouthFrownLeft", "lip_corner_depress_L"), ("browOuterUpLeft", "brow_outer_raise_L"),
    ("mouthShrugLower", "chin_raise"), ("mouthRollUpper", "upper_lip_roll_in"),
])
def test_table_rows_match_icts_shapes_best(matches, theirs, ours):
    """The row's channel is the best-matching of all our channels for this ICT shape, and on the correct side."""
    found = {m.arkit: m for m in matches[0]}[theirs]
    assert found.best == ours and found.best_cosine > 0.6
    if ours.endswith(("_L", "_R")):
        other = ours[:-1] + ("R" if ours.endswith("L") else "L")
        assert found.cosines[other] < 0.5 * found.best_cosine


@needs_ict
def test_solve_reproduces_a_mix_of_icts_correlated_shapes(head):
    from backend.retarget.solve import SolveSettings, arkit_ties, solve_weights

    keys = [n for n in ARKIT_NAMES if n in head.deltas]
    face = head.part("face")
    basis = np.stack([head.deltas[k][face].ravel() for k in keys], axis=1)  # (3F, K)
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 1, size=(40, len(keys))) * (rng.uniform(size=(40, len(keys))) < 0.25)
    pairs, capped = arkit_ties(keys)
    close, jaw = capped[0]
    truth[:, close] = np.minimum(truth[:, close], truth[:, jaw])
    targets = truth @ basis.T
    w = solve_weights(basis, targets, pairs=pairs, capped=capped, settings=SolveSettings(ridge=1e-7, iterations=1500))
    error = np.linalg.norm((w @ basis.T - targets).reshape(40, -1, 3), axis=2)   # (T, F) metres
    assert error.max() < 1e-3                                                    # every vertex within 1 mm
    assert np.sqrt(np.mean(error ** 2)) < 1e-4


@needs_ict
def test_solve_path_seals_and_opens_the_lips_too(head, matches):
    from backend.flame.pickle_io import load_flame
    from backend.head import default_head_path
    from backend.retarget.transfer import solve_on_ict

    weights = solve_on_ict(load_flame(default_head_path()), head, *_motion(PHONES, 30), pairing=matches[1])
    assert weights.min() >= 0.0 and weights.max() <= 1.0
    assert np.all(weights[:, ARKIT_INDEX["mouthClose"]] <= weights[:, ARKIT_INDEX["jawOpen"]] + 1e-9)
    _check_seal_and_opening(_inner_gap_mm(head, weights))


@needs_ict
def test_reduced_solve_map_seals_opens_and_follows_the_exact_solve(head, matches):
    """The solve Blender keeps on ICT's head (linear in our channels, reduced by QR) against the exact one."""
    from backend.flame.pickle_io import load_flame
    from backend.head import default_head_path
    from backend.retarget.transfer import SolveMap, solve_map_for_ict, solve_on_ict

    model = load_flame(default_head_path())
    expression, jaw, eye = _motion(PHONES, 30)
    exact = solve_on_ict(model, head, expression, jaw, eye, pairing=matches[1])
    solve_map = SolveMap.from_dict(solve_map_for_ict(model, head, pairing=matches[1]).as_dict())
    weights = solve_map.weights(expression, jaw)
    assert weights.min() >= 0.0 and weights.max() <= 1.0
    unsolved = [ARKIT_INDEX[n] for n in ARKIT_NAMES if n.startswith("eyeLook") or n in ("jawLeft", "jawRight")]
    assert not weights[:, unsolved].any()
    gap = _inner_gap_mm(head, weights)
    _check_seal_and_opening(gap)
    assert np.abs(gap - _inner_gap_mm(head, exact)).max() < 1.5
    # the jaw bone turns so that its driver gives back the solved jawOpen
    np.testing.assert_allclose(solve_map.jaw_opening(weights) / head.jaw_open_angle, weights[:, ARKIT_INDEX["jawOpen"]])
