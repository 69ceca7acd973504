"""`stairbot saturation`: each joint's share of flight steps with its action at +-1 and of substeps
with its torque at the motor's limit, for real.

The shipped policy walks onto a real PyBullet flight; the test replays the same seeded episode itself
and counts the bounds (and the torques at the spec's limits) over the steps with the base between
the first and the last riser, and the command must give exactly those shares. The zero-action robot
stands at its spawn, before the first riser, so nothing is counted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stairbot import saturation
from stairbot.benchmark import CLEAN, grid_cells
from stairbot.cli import main
from stairbot.conditions import condition_overrides
from stairbot.policy_source import load_policy_source
from stairbot.sim.actuators import AppliedTorques, MotorActuator, PDActuator
from stairbot.training.vec import env_factory

SEED = 3


def _replayed_shares(
    policy: str, riser_m: float, tread_m: float
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Steps on the flight, each joint's share at +1 / -1 and its share of substeps with the torque at
    the spec's limit, counted here from one seeded episode (clean: the plain PD law's fixed limit)."""
    source = load_policy_source(policy)
    clean = condition_overrides(source.env_preset, None)
    (cell,) = grid_cells([riser_m], [tread_m], ["up"], CLEAN, {"up": clean})
    env = env_factory(source.env_preset, cell.overrides())()
    actions, torques = [], []
    limits = env.unwrapped.robot_spec.torque_limits_nm
    try:
        obs, _ = env.reset(seed=SEED)
        first, last = env.unwrapped.flight.edges_x_m[[0, -1]]
        while True:
            action = np.clip(source.act(obs), -1.0, 1.0)
            obs, _, terminated, truncated, _ = env.step(action)
            if first <= env.unwrapped.world.read_state().base_pos_m[0] <= last:
                actions.append(action)
                torques.append(np.isclose(np.abs(env.unwrapped.last_torques.torques_nm), limits))
            if terminated or truncated:
                break
    finally:
        env.close()
    on_flight = np.array(actions)
    at_limit = np.concatenate(torques)
    return len(on_flight), (on_flight >= 1.0).mean(0), (on_flight <= -1.0).mean(0), at_limit.mean(0)


def test_shares_are_the_replayed_episodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sat.json"
    argv = ["saturation", "pretrained", "--risers", "0.1", "--treads", "0.3", "--episodes", "1"]
    assert main([*argv, "--seed", str(SEED), "--processes", "1", "--json", str(out)]) == 0
    (cell,) = json.loads(out.read_text())["cells"]
    steps, upper, lower, torque = _replayed_shares("pretrained", 0.1, 0.3)
    assert steps > 50  # it walked onto the flight
    assert cell["steps_on_flight"] == steps
    joints = cell["joints"]
    assert len(joints) == 12 and next(iter(joints)) == "FR_hip_joint"
    assert [j["at_upper"] for j in joints.values()] == pytest.approx(upper.tolist())
    assert [j["at_lower"] for j in joints.values()] == pytest.approx(lower.tolist())
    assert [j["at_torque_limit"] for j in joints.values()] == pytest.approx(torque.tolist())
    assert any(j["at_upper"] + j["at_lower"] > 0 for j in joints.values())  # the release does use its bounds
    assert all(-1.0 <= j["mean_action"] <= 1.0 for j in joints.values())
    printed = capsys.readouterr().out
    assert f"{steps} control steps on the flight" in printed and "most often at a bound:" in printed
    assert "most often at its torque limit:" in printed


def test_torque_at_limit_counts_substeps_on_either_bound() -> None:
    limit = np.array([10.0, 20.0, 5.0])
    pd = PDActuator(np.ones(3), np.zeros(3), limit)
    applied = AppliedTorques(
        torques_nm=np.array([[10.0, -20.0, 4.9], [9.99, 0.0, -5.0]]), joint_vel_radps=np.zeros((2, 3))
    )
    np.testing.assert_array_equal(
        saturation.torque_at_limit(applied, pd), [[True, True, False], [False, False, True]]
    )
    # with a torque-speed curve, 5 N m at half the no-load speed is the whole of what remains
    motor = MotorActuator(pd, physics_dt_s=0.002, no_load_speed_radps=np.full(3, 20.0))
    moving = AppliedTorques(torques_nm=np.array([[5.0, 10.0, -5.0]]), joint_vel_radps=np.full((1, 3), 10.0))
    np.testing.assert_array_equal(saturation.torque_at_limit(moving, motor), [[True, True, True]])


def test_zero_action_never_reaches_the_flight_and_parallel_equals_serial() -> None:
    axes = {"risers_m": [0.05, 0.1], "treads_m": [0.3], "directions": ["up"], "episodes": 1, "seed": 0}
    serial = saturation.measure(None, processes=1, **axes)
    parallel = saturation.measure(None, processes=2, **axes)
    assert [r.to_dict() for r in serial] == [r.to_dict() for r in parallel]
    for result in serial:
        assert result.steps == 0 and result.successes == 0
        assert result.at_bound == (0.0,) * 12 and result.mean_action == (0.0,) * 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--risers", "-0.1"), "outside (0, 0.3]"),
        (("--episodes", "0"), "--episodes must be at least 1"),
        (("--directions", "left"), "unknown direction 'left'"),
        (("--command-mps", "0"), "--command-mps must be in (0, 2] m/s"),
    ],
)
def test_bad_input_is_a_clear_error(
    args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["saturation", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stairbot: error:") and message in err
