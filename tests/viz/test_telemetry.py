"""Episode telemetry of a real (tiny) policy: consistent arrays, plausible values, plain files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from stairbot.policy_source import load_policy_source
from stairbot.viz.telemetry import EpisodeTelemetry, load_telemetry, policy_env, record_episode

REASONS = {"fall", "base_contact", "thigh_contact", "out_of_bounds", "success", "time_limit"}


@pytest.fixture(scope="module")
def telemetry(tiny_run: Path) -> EpisodeTelemetry:
    return record_episode(load_policy_source(tiny_run), seed=2, riser_m=0.06, max_steps=40)


def test_arrays_have_one_row_per_control_step(telemetry: EpisodeTelemetry) -> None:
    tm = telemetry
    t, joints, feet, terms = tm.length, len(tm.joint_names), len(tm.foot_names), len(tm.term_names)
    assert 1 <= t <= 40
    assert tm.joint_names[0] == "FR_hip_joint" and joints == 12 and feet == 4 and terms > 5
    shapes = {
        "time_s": (t,),
        "base_pos_m": (t, 3),
        "base_quat_xyzw": (t, 4),
        "base_lin_vel_mps": (t, 3),
        "terrain_height_m": (t,),
        "joint_pos_rad": (t, joints),
        "joint_vel_radps": (t, joints),
        "action": (t, joints),
        "torques_nm": (t, joints),
        "foot_contact": (t, feet),
        "reward": (t,),
        "reward_terms": (t, terms),
        "steps_climbed": (t,),
    }
    for name, shape in shapes.items():
        array = getattr(tm, name)
        assert array.shape == shape, name
        assert np.all(np.isfinite(array)), name
    np.testing.assert_allclose(tm.time_s, tm.dt_s * np.arange(1, t + 1))
    assert tm.dt_s == pytest.approx(0.02)
    assert tm.profile_x_m.shape == tm.profile_z_m.shape and len(tm.edges_x_m) == tm.num_steps


def test_values_are_physical(telemetry: EpisodeTelemetry) -> None:
    tm = telemetry
    assert tm.riser_m == pytest.approx(0.06) and tm.direction == "up"
    assert tm.termination_reason in REASONS
    assert tm.termination_reason == "time_limit" or tm.length < 40
    assert np.all(tm.base_height_above_terrain_m > 0.0)
    assert np.all(tm.terrain_height_m >= 0.0) and np.all(tm.terrain_height_m <= tm.num_steps * tm.riser_m)
    assert tm.foot_contact.dtype == np.bool_ and tm.foot_contact.any()  # it stands on something
    assert np.all(np.abs(tm.action) <= 1.0)
    # The last substep's PD torques: within the actuator limits, and not all zero.
    assert np.all(np.abs(tm.torques_nm) <= tm.torque_limit_nm + 1e-9)
    assert np.abs(tm.torques_nm).max() > 0.1
    np.testing.assert_allclose(tm.reward_terms.sum(axis=1), tm.reward, atol=1e-9)
    assert np.all(np.diff(tm.steps_climbed) >= 0)


def test_a_seed_replays_the_same_episode(tiny_run: Path, telemetry: EpisodeTelemetry) -> None:
    again = record_episode(load_policy_source(tiny_run), seed=2, riser_m=0.06, max_steps=40)
    assert again.length == telemetry.length
    np.testing.assert_array_equal(again.base_pos_m, telemetry.base_pos_m)
    np.testing.assert_array_equal(again.torques_nm, telemetry.torques_nm)


def test_npz_and_csv_are_plain_files(telemetry: EpisodeTelemetry, tmp_path: Path) -> None:
    npz = telemetry.save_npz(tmp_path / "ep.npz")
    with np.load(npz, allow_pickle=False) as data:  # no pickled objects inside
        assert data["joint_pos_rad"].shape == telemetry.joint_pos_rad.shape
        assert str(data["termination_reason"]) == telemetry.termination_reason
    back = load_telemetry(npz)
    assert back.joint_names == telemetry.joint_names and back.seed == 2 and back.success == telemetry.success
    np.testing.assert_array_equal(back.foot_contact, telemetry.foot_contact)
    np.testing.assert_array_equal(back.reward_terms, telemetry.reward_terms)

    path = telemetry.save_csv(tmp_path / "ep.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == telemetry.length
    first = rows[0]
    for column in (
        "time_s",
        "base_z_m",
        "terrain_height_m",
        "torque_nm/FR_calf_joint",
        "term/forward_progress",
        "reward",
    ):
        assert column in first
    assert {row["contact/RL_foot"] for row in rows} <= {"0", "1"}
    assert float(rows[-1]["base_x_m"]) == pytest.approx(telemetry.base_pos_m[-1, 0], rel=1e-5)


def test_env_exposes_the_torques_of_its_last_step() -> None:
    env = policy_env("stairs_up", max_steps=5)
    try:
        env.reset(seed=0)
        base = env.unwrapped
        assert base.last_torques is None
        env.step(np.zeros(12, np.float32))
        torques = base.last_torques
        assert torques is not None and torques.torques_nm.shape == (10, 12)  # 10 substeps
        assert np.all(np.abs(torques.last_nm) <= base.robot_spec.torque_limits_nm + 1e-9)
        assert np.abs(torques.last_nm).max() > 0  # holding the stand pose takes torque
    finally:
        env.close()
