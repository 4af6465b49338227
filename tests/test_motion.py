"""Motion files: round trips, clear errors, resampling against analytic signals."""

import os
import pickle
import zipfile

import numpy as np
import pytest

from backend.flame.lbs_numpy import rodrigues
from backend.motion import (Motion, MotionFileError, axis_angle_to_quat, load_motion, quat_to_axis_angle, resample,
                            save_motion)


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def random_motion(n_frames=20, n_expr=7, fps=25.0, seed=0, **meta):
    rng = np.random.default_rng(seed)
    return Motion(fps=fps, expression=rng.normal(size=(n_frames, n_expr)),
                  jaw_pose=rng.normal(scale=0.2, size=(n_frames, 3)), neck_pose=rng.normal(scale=0.2, size=(n_frames, 3)),
                  global_pose=rng.normal(scale=0.2, size=(n_frames, 3)), eye_pose=rng.normal(scale=0.2, size=(n_frames, 6)),
                  **meta)


def assert_same_motion(a: Motion, b: Motion):
    assert a.fps == b.fps and (a.instruction, a.seed, a.source) == (b.instruction, b.seed, b.source)
    for key in ("expression", "jaw_pose", "neck_pose", "global_pose", "eye_pose"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
        assert getattr(b, key).dtype == np.float32


# ---------------------------------------------------------------------------
# Round trips


def test_round_trip_with_metadata(tmp_path):
    motion = random_motion(instruction="speaks calmly, then smiles", seed=42, source="take1.wav")
    save_motion(tmp_path / "take.npz", motion)
    assert_same_motion(motion, load_motion(tmp_path / "take.npz"))


def test_round_trip_without_optional_keys_and_exact_file_name(tmp_path):
    motion = random_motion(fps=29.97)
    path = tmp_path / "take.motion"  # np.savez would append .npz to a name; we keep it
    save_motion(path, motion)
    assert sorted(os.listdir(tmp_path)) == ["take.motion"]
    loaded = load_motion(path)
    assert_same_motion(motion, loaded)
    assert loaded.seed is None and loaded.instruction == "" and loaded.fps == 29.97
    with np.load(path, allow_pickle=False) as archive:
        assert "seed" not in archive.files
        assert archive["expression"].dtype == np.float32 and archive["fps"].shape == ()


def test_save_overwrites_atomically_and_refuses_invalid(tmp_path):
    path = tmp_path / "take.npz"
    save_motion(path, random_motion(seed=1))
    save_motion(path, random_motion(seed=2))
    assert_same_motion(random_motion(seed=2), load_motion(path))
    bad = random_motion()
    bad.jaw_pose[3, 1] = np.nan
    with pytest.raises(MotionFileError, match="'jaw_pose' contains NaN"):
        save_motion(path, bad)
    assert sorted(os.listdir(tmp_path)) == ["take.npz"]  # no temp files left, old file intact
    assert_same_motion(random_motion(seed=2), load_motion(path))


def test_zeros_and_validate_expression_width():
    motion = Motion.zeros(10, 100, fps=25)
    motion.validate(n_expression=100)
    assert motion.n_frames == 10 and motion.n_expression == 100
    with pytest.raises(MotionFileError, match="the motion has 100 expression coefficients, the FLAME model has 50"):
        motion.validate(n_expression=50)


# ---------------------------------------------------------------------------
# Clear errors


def write_npz(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def good_arrays(n_frames=5):
    m = random_motion(n_frames=n_frames)
    return dict(fps=np.float64(25), expression=m.expression, jaw_pose=m.jaw_pose, neck_pose=m.neck_pose,
                global_pose=m.global_pose, eye_pose=m.eye_pose)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(MotionFileError, match="does not exist"):
        load_motion(tmp_path / "nope.npz")
    with pytest.raises(MotionFileError, match="is a folder"):
        load_motion(tmp_path)


def test_text_file_and_npy_file(tmp_path):
    (tmp_path / "a.npz").write_text("not a motion")
    with pytest.raises(MotionFileError, match="is not an .npz archive"):
        load_motion(tmp_path / "a.npz")
    np.save(tmp_path / "b.npy", np.zeros(3))
    with pytest.raises(MotionFileError, match="single .npy array"):
        load_motion(tmp_path / "b.npy")


def test_pickles_are_never_loaded(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (tmp_path / "p.npz").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(MotionFileError, match="not an .npz archive"):
        load_motion(tmp_path / "p.npz")
    arrays = good_arrays()
    arrays["expression"] = np.array([Evil()], dtype=object)
    with open(tmp_path / "o.npz", "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(MotionFileError, match="unreadable array"):
        load_motion(tmp_path / "o.npz")
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0.3, 0.8, 0.99])
def test_truncated_archive(tmp_path, keep):
    path = write_npz(tmp_path / "t.npz", **good_arrays(200))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(MotionFileError, match="truncated or a corrupt zip"):
        load_motion(path)


def test_corrupt_member(tmp_path):
    path = write_npz(tmp_path / "c.npz", **good_arrays(200))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("expression.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + 200  # inside the array data
    data[start:start + 16] = bytes(16)
    path.write_bytes(bytes(data))
    with pytest.raises(MotionFileError, match="truncated or a corrupt zip"):
        load_motion(path)


@pytest.mark.parametrize("change, message", [
    (dict(expression=None), "missing keys: expression"),
    (dict(fps=None, eye_pose=None), "missing keys: fps, eye_pose"),
    (dict(expression=np.zeros(5)), r"'expression' must be 2-D \(T, ...\), got shape \(5,\)"),
    (dict(jaw_pose=np.zeros((5, 3, 1))), r"'jaw_pose' must be 2-D"),
    (dict(eye_pose=np.zeros((5, 3))), r"'eye_pose' must be \(T, 6\), got shape \(5, 3\)"),
    (dict(neck_pose=np.zeros((4, 3))), "different frame counts: expression 5, jaw_pose 5, neck_pose 4"),
    (dict(expression=np.zeros((0, 7)), jaw_pose=np.zeros((0, 3)), neck_pose=np.zeros((0, 3)),
          global_pose=np.zeros((0, 3)), eye_pose=np.zeros((0, 6))), "no frames"),
    (dict(global_pose=np.full((5, 3), np.inf)), "'global_pose' contains NaN or infinite"),
    (dict(expression=np.full((5, 7), np.nan)), "'expression' contains NaN"),
    (dict(expression=np.array([["a"] * 7] * 5)), "'expression' must hold real numbers"),
    (dict(fps=np.float64(0)), r"fps must be in \(0, 1000\], got 0.0"),
    (dict(fps=np.float64(-25)), r"fps must be in \(0, 1000\]"),
    (dict(fps=np.float64(1e6)), r"fps must be in \(0, 1000\]"),
    (dict(fps=np.float64(np.nan)), r"fps must be in \(0, 1000\], got nan"),
    (dict(fps=np.array([25.0, 30.0])), "'fps' must be a scalar"),
    (dict(seed=np.float64(1.5)), "'seed' must be an integer"),
    (dict(instruction=np.float64(1)), "'instruction' must be a string"),
])
def test_malformed_contents(tmp_path, change, message):
    arrays = good_arrays()
    for key, value in change.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    path = write_npz(tmp_path / "m.npz", **arrays)
    with pytest.raises(MotionFileError, match=message):
        load_motion(path)


def npz_with_headers(path, declared: dict, compress=False, **arrays):
    """An .npz of ``arrays`` plus members whose .npy header declares a shape ``declared[key]`` (float32).

    A declared member's data is zeros streamed into the zip up to 20M values, else only a few bytes:
    the header alone must get it refused.
    """
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        for key, value in arrays.items():
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asanyarray(value))
        for key, shape in declared.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
                n_values = int(np.prod(shape, dtype=np.float64))
                n_bytes = 4 * n_values if n_values <= 20_000_000 else 64
                chunk = bytes(1 << 20)
                while n_bytes > 0:
                    fh.write(chunk[: min(n_bytes, len(chunk))])
                    n_bytes -= len(chunk)
    return path


@pytest.mark.parametrize("frames", [10**12, 2_500_000])
def test_declared_frame_counts_over_an_hour_are_refused(tmp_path, frames):
    arrays = good_arrays()
    del arrays["expression"]
    path = npz_with_headers(tmp_path / "big.npz", {"expression": (frames, 7)}, compress=True, **arrays)
    assert path.stat().st_size < 2_000_000  # 2.5M frames of zeros compress to about 1 MB
    with pytest.raises(MotionFileError, match=rf"'expression' declares {frames} frames; at most 90001 are accepted "
                                              r"\(60 minutes at 25 fps\)"):
        load_motion(path)


def test_declared_widths_and_sizes_are_refused(tmp_path):
    arrays = good_arrays()
    del arrays["expression"], arrays["jaw_pose"]
    path = npz_with_headers(tmp_path / "wide.npz", {"expression": (5, 10**9), "jaw_pose": (5, 3)}, **arrays)
    with pytest.raises(MotionFileError, match="'expression' declares 1000000000 values per frame; at most 400"):
        load_motion(path)
    arrays = good_arrays()
    del arrays["jaw_pose"]
    path = npz_with_headers(tmp_path / "jaw.npz", {"jaw_pose": (5, 3, 10**6)}, **arrays)
    with pytest.raises(MotionFileError, match="'jaw_pose' declares 3000000 values per frame; at most 3"):
        load_motion(path)
    arrays = good_arrays()
    del arrays["fps"]
    path = npz_with_headers(tmp_path / "fps.npz", {"fps": (10**9,)}, **arrays)
    with pytest.raises(MotionFileError, match=r"'fps' declares shape \(1000000000,\).*one short value"):
        load_motion(path)


def test_limits_follow_the_files_fps(tmp_path):
    arrays = good_arrays()
    arrays["fps"] = np.float64(1.0)
    del arrays["expression"]
    path = npz_with_headers(tmp_path / "slow.npz", {"expression": (3602, 7)}, **arrays)
    with pytest.raises(MotionFileError, match="declares 3602 frames; at most 3601 are accepted"):
        load_motion(path)


def test_unreadable_zip_members_are_motion_file_errors(tmp_path):
    path = write_npz(tmp_path / "m.npz", **good_arrays())
    data = bytearray(path.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # the compression method of every member: 99
        start = 0
        while (start := data.find(sig, start)) >= 0:
            offset = 8 if sig == b"PK\x03\x04" else 10
            data[start + offset: start + offset + 2] = (99).to_bytes(2, "little")
            start += 4
    path.write_bytes(bytes(data))
    with pytest.raises(MotionFileError, match="cannot be read"):
        load_motion(path)


def test_fortran_order_and_big_endian_arrays_load(tmp_path):
    arrays = good_arrays()
    arrays["expression"] = np.asfortranarray(arrays["expression"].astype(">f8"))
    path = write_npz(tmp_path / "f.npz", **arrays)
    np.testing.assert_allclose(load_motion(path).expression, arrays["expression"], rtol=1e-6)


# ---------------------------------------------------------------------------
# Resampling


TARGETS = [24.0, 30.0, 29.97, 60.0]


def ramp_motion(fps=25.0, n_frames=101):
    t = np.arange(n_frames) / fps
    expression = np.stack([0.5 + 0.25 * t, -1.0 + 0.1 * t, np.full_like(t, 0.3)], axis=1)
    jaw = np.tile([0.3, -0.2, 0.1], (n_frames, 1))                         # constant rotation
    neck = np.stack([np.zeros_like(t), np.zeros_like(t), 0.2 + 0.15 * t], axis=1)  # constant angular velocity
    eyes = np.tile([0.1, 0.2, 0.0, -0.1, 0.2, 0.05], (n_frames, 1))       # two constant eyes
    return Motion(fps=fps, expression=expression, jaw_pose=jaw, neck_pose=neck, global_pose=np.zeros((n_frames, 3)),
                  eye_pose=eyes, instruction="ramp", seed=7, source="analytic")


@pytest.mark.parametrize("target", TARGETS)
def test_resample_keeps_duration(target):
    motion = ramp_motion()
    out = resample(motion, target)
    duration = (motion.n_frames - 1) / motion.fps  # 4 s
    assert out.fps == target
    assert abs((out.n_frames - 1) / target - duration) <= 0.5 / target
    if target in (24.0, 30.0, 60.0):
        assert out.n_frames == int(duration * target) + 1
    assert (out.instruction, out.seed, out.source) == ("ramp", 7, "analytic")
    out.validate(n_expression=3)


@pytest.mark.parametrize("target", TARGETS)
def test_resample_linear_ramp_stays_a_ramp(target):
    motion = ramp_motion()
    out = resample(motion, target)
    t = np.minimum(np.arange(out.n_frames) / target, 4.0)  # past the end, the last value holds
    expected = np.stack([0.5 + 0.25 * t, -1.0 + 0.1 * t, np.full_like(t, 0.3)], axis=1)
    np.testing.assert_allclose(out.expression, expected, atol=1e-6)


@pytest.mark.parametrize("target", TARGETS)
def test_resample_rotations(target):
    motion = ramp_motion()
    out = resample(motion, target)
    # A constant rotation stays exact.
    np.testing.assert_allclose(out.jaw_pose, np.tile([0.3, -0.2, 0.1], (out.n_frames, 1)), atol=1e-6)
    np.testing.assert_allclose(out.eye_pose, np.tile([0.1, 0.2, 0.0, -0.1, 0.2, 0.05], (out.n_frames, 1)), atol=1e-6)
    # Slerp reproduces a rotation at constant angular velocity exactly between samples.
    t = np.minimum(np.arange(out.n_frames) / target, 4.0)
    np.testing.assert_allclose(out.neck_pose[:, 2], 0.2 + 0.15 * t, atol=1e-6)
    np.testing.assert_allclose(out.neck_pose[:, :2], 0.0, atol=1e-6)


def test_resample_takes_the_short_way_across_the_sign_flip():
    # Rotation about z from 2.9 to 3.5 rad, stored with angles in [0, pi] so the
    # axis flips (3.2 rad about +z is written as 2*pi - 3.2 rad about -z).
    fps, n = 25.0, 26
    angle = 2.9 + 0.6 * np.arange(n) / (n - 1)
    wrapped = np.where(angle > np.pi, angle - 2 * np.pi, angle)
    poses = np.stack([np.zeros(n), np.zeros(n), wrapped], axis=1)
    motion = Motion(fps=fps, expression=np.zeros((n, 1)), jaw_pose=poses, neck_pose=np.zeros((n, 3)),
                    global_pose=poses, eye_pose=np.zeros((n, 6)))
    out = resample(motion, 60.0)
    t = np.arange(out.n_frames) / 60.0
    expected = 2.9 + 0.6 * np.minimum(t, 1.0)
    got = rodrigues(out.jaw_pose.astype(np.float64))
    for k in range(out.n_frames):
        np.testing.assert_allclose(got[k], rot_z(expected[k]), atol=1e-5)


def test_resample_same_fps_single_frame_and_bad_fps():
    motion = random_motion(n_frames=9)
    assert_same_motion(motion, resample(motion, 25.0))
    single = random_motion(n_frames=1)
    out = resample(single, 60.0)
    assert out.n_frames == 1
    np.testing.assert_allclose(out.jaw_pose, single.jaw_pose, atol=1e-6)
    for bad in (0, -1, np.inf, 5000):
        with pytest.raises(MotionFileError, match="fps must be"):
            resample(motion, bad)


def test_resample_down_and_back_up():
    motion = ramp_motion(fps=60.0, n_frames=241)
    down = resample(motion, 25.0)
    assert down.n_frames == 101
    t = np.arange(101) / 25.0
    np.testing.assert_allclose(down.expression[:, 0], 0.5 + 0.25 * t, atol=1e-6)
    np.testing.assert_allclose(down.neck_pose[:, 2], 0.2 + 0.15 * t, atol=1e-6)


def test_quaternion_round_trip_near_zero_and_pi():
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(50, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    for angle in (0.0, 1e-9, 1e-4, 0.5, 2.0, np.pi - 1e-6):
        aa = axes * angle
        back = quat_to_axis_angle(axis_angle_to_quat(aa))
        np.testing.assert_allclose(back, aa, atol=1e-9)
    q = axis_angle_to_quat(axes * 1.3)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
