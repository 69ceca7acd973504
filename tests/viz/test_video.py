"""`stairbot record`: real headless episodes written to .gif and .mp4 and read back."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from stairbot.cli import main
from stairbot.viz.video import FollowCamera


def _frames(path: Path) -> np.ndarray:
    plugin = "FFMPEG" if path.suffix == ".mp4" else None
    return np.asarray(iio.imread(path, index=None, plugin=plugin))


def _check_frames(frames: np.ndarray, width: int, height: int) -> None:
    assert frames.ndim == 4 and frames.shape[1:] == (height, width, 3)
    assert frames.dtype == np.uint8
    # A picture, not one colour: ground, stairs and robot.
    assert all(float(frame.std()) > 10.0 for frame in frames)
    # The robot moves (and the camera with it): consecutive frames differ.
    diffs = [float(np.abs(b.astype(np.int16) - a).mean()) for a, b in itertools.pairwise(frames)]
    assert sum(d > 0.0 for d in diffs) >= 0.8 * len(diffs)


def test_record_gif_of_the_zero_action_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clips" / "stand.gif"  # the folder is created
    args = [
        "record",
        "--out",
        str(out),
        "--width",
        "96",
        "--height",
        "72",
        "--max-steps",
        "16",
        "--fps",
        "50",
    ]
    assert main([*args, "--episodes", "1"]) == 0
    printed = capsys.readouterr().out
    assert "ended by time_limit" in printed
    assert re.search(rf"wrote {re.escape(str(out))}: 17 frames, 0\.3 s at 50 fps, 96x72", printed)
    frames = _frames(out)
    # Pillow merges identical consecutive GIF frames (adding their delays); a settling robot has few.
    assert 12 <= len(frames) <= 17
    _check_frames(frames, 96, 72)
    assert iio.immeta(out)["duration"] == 20  # ms per frame at 50 fps
    assert not list(out.parent.glob(".*partial*"))


def test_record_mp4_of_a_trained_run_concatenates_episodes(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.mp4"
    args = ["record", str(tiny_run), "--out", str(out), "--width", "96", "--height", "64"]
    assert main([*args, "--episodes", "2", "--seed", "3", "--fps", "25", "--riser-m", "0.08"]) == 0
    printed = capsys.readouterr().out
    episodes = re.findall(r"episode seed (\d+): (\d+) steps .* of 0\.080 m", printed)
    assert [seed for seed, _ in episodes] == ["3", "4"]
    # Frame 0 of each episode plus one every second control step (25 fps of 50 Hz control).
    expected = sum(1 + int(steps) // 2 for _, steps in episodes)
    assert f"wrote {out}: {expected} frames" in printed
    frames = _frames(out)
    assert len(frames) == expected
    _check_frames(frames, 96, 64)
    meta = iio.immeta(out, plugin="FFMPEG")
    assert meta["fps"] == 25.0 and meta["codec"] == "h264"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "clip.avi"], "--out must end in .mp4 or .gif"),
        (["--out", "clip"], "--out must end in .mp4 or .gif"),
        (["--out", "clip.mp4", "--width", "95"], "--width must be even for .mp4"),
        (["--out", "clip.gif", "--height", "8"], r"--height must be in \[16, 4096\] px"),
        (["--out", "clip.gif", "--episodes", "0"], "--episodes must be >= 1"),
        (["--out", "clip.gif", "--fps", "0"], "--fps must be a positive number"),
        (["--out", "clip.gif", "--fps", "60"], "--fps must be at most the control rate, 50 Hz"),
        (["--out", "clip.gif", "--max-steps", "0"], "max steps must be >= 1"),
        (["--out", "clip.gif", "--riser-m", "0.5"], "riser_m"),
        (["no-such-run", "--out", "clip.gif"], "no-such-run is not a policy"),
    ],
)
def test_bad_record_arguments_are_clear_errors(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["record", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stairbot: error:")
    assert re.search(message, err), err
    assert not list(tmp_path.iterdir())  # no video, no partial file


def test_follow_camera_trails_the_base_with_a_time_constant() -> None:
    camera = FollowCamera(time_constant_s=0.5)
    assert np.array_equal(camera.reset(np.zeros(3)), np.zeros(3))
    target = camera.update(np.array([1.0, 0.0, 0.0]), 0.5)  # one time constant: 63 % of the way
    assert target[0] == pytest.approx(1.0 - math.exp(-1.0))
    for _ in range(100):
        target = camera.update(np.array([1.0, 0.0, 0.0]), 0.02)
    assert target[0] == pytest.approx(1.0, abs=0.02)
    assert np.array_equal(camera.reset(np.array([5.0, 1.0, 0.3])), [5.0, 1.0, 0.3])  # a reset snaps
