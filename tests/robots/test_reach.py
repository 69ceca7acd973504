"""`stairbot reach`: how high a foot can rise under an action scale (PyBullet forward kinematics)."""

from __future__ import annotations

import numpy as np
import pytest

from stairbot.cli import main
from stairbot.robots.reach import foot_reach
from stairbot.robots.spec import load_robot_spec


def test_the_action_scale_bounds_the_foot_lift() -> None:
    spec = load_robot_spec("stairdog")
    narrow = foot_reach(spec, np.full(12, 0.3))
    plain = foot_reach(spec, np.full(12, 0.5))
    wide = foot_reach(spec, np.array([0.5, 0.8, 0.8] * 4))
    assert [r.foot_link for r in plain] == list(spec.foot_links)
    # the figures the recipes cite: 7.4 cm at 0.3 rad (the plateau at 7.6 cm risers), 14.0 at 0.5
    assert narrow[0].lift_m == pytest.approx(0.074, abs=0.002)
    assert plain[0].lift_m == pytest.approx(0.140, abs=0.002)
    assert wide[0].lift_m == pytest.approx(0.232, abs=0.002)
    for reach in plain:  # found at the edge of the box: thigh fully forward, calf fully folded
        assert reach.ahead_m > 0.0
        assert reach.thigh_rad == pytest.approx(0.85 - 0.5) and reach.calf_rad == pytest.approx(-1.7 - 0.5)


def test_urdf_limits_clip_the_sweep() -> None:
    """Past the calf's URDF limit (-2.8 rad) a wider scale buys nothing more for the calf."""
    spec = load_robot_spec("stairdog")
    at_limit = foot_reach(spec, np.array([0.5, 0.8, 1.1] * 4))
    beyond = foot_reach(spec, np.array([0.5, 0.8, 1.5] * 4))
    assert at_limit[0].calf_rad == pytest.approx(-2.8) and beyond[0].calf_rad == pytest.approx(-2.8)
    assert beyond[0].lift_m == pytest.approx(at_limit[0].lift_m)


def test_cli_reads_a_recipes_scale_or_a_given_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reach", "--recipe", "ppo_stairs_pretrained_finetune"]) == 0
    assert "FR_foot: rises 14.0 cm" in capsys.readouterr().out  # the recipe's 0.5 rad
    assert main(["reach", "--action-scale", *["0.5", "0.8", "0.8"] * 4]) == 0
    assert "RL_foot: rises 23.2 cm" in capsys.readouterr().out
    assert main(["reach", "--action-scale", "0.5", "0.8"]) == 2
    assert "lists 2 scales; the robot has 12 joints" in capsys.readouterr().err
