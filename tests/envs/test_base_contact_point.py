"""Where the trunk struck: a base-contact ending says where along the trunk it hit the stairs, in a
real PyBullet world where the robot is put down with its nose 2 cm over a tall step."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from stairbot.evaluation import evaluate, run_episode
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
    assert "trunk struck at" in report.table() and "off the slope" in report.table()


def test_other_endings_record_no_contact_point() -> None:
    flat = {"curriculum.adaptive": False, "curriculum.difficulty": 0.0}
    report = evaluate(_Stand(), env_factory("stairs_up", flat), episodes=1)
    assert report.results[0].termination_reason == "time_limit"
    assert math.isnan(report.results[0].base_contact_x_m) and report.base_contact_x_m is None
    assert math.isnan(report.results[0].base_contact_pitch_to_slope_deg)
    assert report.base_contact_pitch_to_slope_deg is None


def test_a_strike_records_how_far_the_trunk_was_pitched_off_the_stairs_slope() -> None:
    """The figure is the trunk's nose-up angle (from PyBullet's base orientation) minus the slope the
    flight reads under the base (`Flight.pitch_at`) on the step it struck: a robot standing level in
    front of a tall step reads the negative of that step's slope."""
    env = _NoseOverTheStep(env_factory("stairs_up", TALL_STEP)())
    try:
        result, _ = run_episode(_Stand(), env, seed=0)
        stairs = env.unwrapped
        client, robot = stairs.world.client, stairs.world.robot_id  # type: ignore[attr-defined]
        position, orientation = client.getBasePositionAndOrientation(robot)
        nose = np.array(client.getMatrixFromQuaternion(orientation)).reshape(3, 3)[:, 0]
        nose_up_rad = math.atan2(nose[2], math.hypot(nose[0], nose[1]))
        slope_rad = stairs.flight.pitch_at(position[0])  # type: ignore[attr-defined]
    finally:
        env.close()
    assert result.termination_reason == "base_contact" and slope_rad > 0.1
    assert result.base_contact_pitch_to_slope_deg == pytest.approx(
        math.degrees(nose_up_rad - slope_rad), abs=0.1
    )
    assert result.base_contact_pitch_to_slope_deg < 0.0  # level trunk, rising stairs


@pytest.mark.parametrize(
    ("roll_rad", "nose_up_rad", "kind"),
    [(1.3, 0.0, "sideways"), (0.0, 1.3, "backward"), (0.0, -1.3, "forward")],
)
def test_a_fall_ending_says_which_way_the_trunk_tipped(
    roll_rad: float, nose_up_rad: float, kind: str
) -> None:
    """A robot put down tipped 1.3 rad (past the 1 rad limit), 0.5 m up in the air, falls at once."""
    env = env_factory("stairs_up", {"spawn.xy_jitter_m": 0.0, "spawn.yaw_jitter_rad": 0.0})()
    try:
        env.reset(seed=0)
        world = env.unwrapped.world  # type: ignore[attr-defined]
        # PyBullet's pitch is about +y, which lowers the nose: nose up is a negative pitch.
        orientation = world.client.getQuaternionFromEuler([roll_rad, -nose_up_rad, 0.0])
        world.client.resetBasePositionAndOrientation(world.robot_id, [0.0, 0.0, 0.5], orientation)
        _, _, terminated, _, info = env.step(np.zeros(12, np.float32))
    finally:
        env.close()
    assert terminated and info["termination_reason"] == "fall"
    assert info["fall_kind"] == kind
