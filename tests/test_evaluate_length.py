"""evaluate refuses a motion whose length is not its audio's, with both lengths in the message."""

import numpy as np
import pytest

from backend.audio import load_audio
from backend.evaluate import run
from backend.motion import Motion, MotionFileError, save_motion


def test_a_motion_of_another_length_is_refused(tmp_path, monkeypatch):
    audio = load_audio((np.zeros(32000, np.float32), 16000))  # 2 s: 50 frames at 25 fps
    monkeypatch.setattr(run, "align_audio", lambda *args: (audio, []))
    monkeypatch.setattr(run, "default_geometry", lambda: pytest.fail("scored a motion of the wrong length"))
    path = tmp_path / "m.npz"
    save_motion(path, Motion.zeros(75, 10, 25.0))
    message = r"has 75 frames \(3.00 s at 25 fps\), the audio lasts 2.00 s \(50 frames\)"
    with pytest.raises(MotionFileError, match=message):
        run.score_motion(str(path), "a.wav", "hello")


@pytest.mark.parametrize("frames, ok", [(48, True), (50, True), (52, True), (47, False), (53, False), (1, False)])
def test_one_or_two_frames_of_rounding_are_accepted(frames, ok):
    motion = Motion.zeros(frames, 10, 25.0)
    if ok:
        run.check_length(motion, 2.0, "m.npz")
    else:
        with pytest.raises(MotionFileError, match="more than 2 frames apart"):
            run.check_length(motion, 2.0, "m.npz")
