"""Where the trunk struck: a base-contact ending says where along the trunk it hit the stairs, in a
real PyBullet world where the robot is put down with its nose 2 cm over a tall step."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from stairbot.evaluation import evaluate
from stairbot.training.vec import env_factory

# A 0.27 m first step: taller than the trunk's underside when standing (0.245 m), so a nose over it
# is in contact at once.
TALL_STEP = {
    "curriculum.max_riser_m": 0.3,
    "stairs.riser_m": 0.27,
    "spawn.xy_jitter_m": 0.0,
    "spawn.yaw_jitter_rad": 0.0,
}
TRUNK_HALF_LENGTH_M = 0.19


class _NoseOverTheStep(gym.Wrapper):
    """After each reset, stands the robot facing the stairs with its base 17 cm before the first
    riser: the trunk's front end 2 cm past it."""

    def reset(self, **kwargs: Any) -> Any:
        observation, info = self.env.reset(**kwargs)
        stairs = self.env.unwrapped
        edge_m = float(stairs._flight.edges_x_m[0])  # type: ignore[attr-defined]
        stairs.world.reset_robot(  # type: ignore[attr-defined]
            np.array([edge_m - 0.17, 0.0, 0.30]),
            0.0,  # facing the stairs
            stairs.robot_spec.default_pose_rad,  # type: ignore[attr-defined]
        )
        return observation, info


class _Stand:
    def act(self, observation: np.ndarray) -> np.ndarray:
        return np.zeros(12, np.float32)


def test_a_base_contact_ending_says_where_the_trunk_struck() -> None:
    env = _NoseOverTheStep(env_factory("stairs_up", TALL_STEP)())
    try:
        env.reset(seed=0)
        _, _, terminated, _, info = env.step(np.zeros(12, np.float32))
    finally:
        env.close()
    assert terminated and info["termination_reason"] == "base_contact"
    x_m, y_m, z_m = info["base_contact_at_m"]
    assert x_m == pytest.approx(TRUNK_HALF_LENGTH_M, abs=0.02)  # at the nose end of the box
    assert abs(y_m) < 0.02  # across its whole width (points on both sides average to the middle)
    assert z_m < 0.0  # on its underside's edge, not its top


def test_evaluation_reports_where_the_trunk_struck() -> None:
    report = evaluate(_Stand(), lambda: _NoseOverTheStep(env_factory("stairs_up", TALL_STEP)()), episodes=2)
    assert [r.termination_reason for r in report.results] == ["base_contact"] * 2
    assert report.base_contact_x_m == pytest.approx(TRUNK_HALF_LENGTH_M, abs=0.02)
    assert "trunk struck at" in report.table()


def test_other_endings_record_no_contact_point() -> None:
    flat = {"curriculum.adaptive": False, "curriculum.difficulty": 0.0}
    report = evaluate(_Stand(), env_factory("stairs_up", flat), episodes=1)
    assert report.results[0].termination_reason == "time_limit"
    assert math.isnan(report.results[0].base_contact_x_m) and report.base_contact_x_m is None
