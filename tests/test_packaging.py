"""An installed, non-editable stairbot (a real wheel) finds its robots and presets from any directory."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_data_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
    )
    (wheel,) = tmp_path.glob("stairbot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "urdf/stairdog.urdf",
        "urdf/a1.yaml",
        "envs/stairs_up.yaml",
        "envs/stairs_down.yaml",
        "pretrained/policy.json",
        "pretrained/policy.onnx",
    ):
        assert f"stairbot/_data/{shipped}" in names

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
    )
    script = (
        "import gymnasium as gym, stairbot, numpy as np\n"
        "from stairbot.paths import data_dir\n"
        "print('>', stairbot.__file__)\n"
        "print('>', data_dir('urdf'))\n"
        "env = gym.make('stairbot/StairClimbDown-v0', robot='a1')\n"
        "env.reset(seed=0)\n"
        "print('>', env.step(np.zeros(12, np.float32))[4]['termination_reason'])\n"
        "from stairbot.policy_source import load_policy_source\n"
        "print('>', load_policy_source('pretrained').env_preset)\n"
    )
    # PYTHONPATH comes before site-packages, so the wheel's copy shadows the editable checkout.
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    out = [line[2:] for line in out if line.startswith("> ")]  # pybullet prints to stdout too
    assert out[0].startswith(str(site))
    assert out[1] == str(site / "stairbot" / "_data" / "urdf")
    assert out[-2] == "none"
    assert out[-1] == str(site / "stairbot" / "_data" / "pretrained" / "env.yaml")  # the shipped policy
