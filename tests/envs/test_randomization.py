"""Domain randomization in the StairClimb env: off = unchanged, sampled per reset, reproducible,
applied in PyBullet, restored between episodes, and validated."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stairbot.envs.config import load_env_config
from stairbot.envs.stair_climb import StairClimbEnv
from stairbot.errors import ConfigError
from stairbot.observations import HISTORY_TERM, history_frame_size
from stairbot.randomization import RandomizationConfig, sample

ALL_ON: dict[str, Any] = {
    "randomization.enabled": True,
    "randomization.ground_friction": [0.4, 1.2],
    "randomization.foot_friction_scale": [0.8, 1.2],
    "randomization.restitution": [0.0, 0.2],
    "randomization.payload_kg": [-1.0, 3.0],
    "randomization.com_offset_x_m": [-0.03, 0.03],
    "randomization.link_mass_scale": [0.9, 1.1],
    "randomization.motor_strength_scale": [0.9, 1.1],
    "randomization.kp_scale": [0.85, 1.15],
    "randomization.kd_scale": [0.85, 1.15],
    "randomization.joint_friction_nm": [0.0, 0.3],
    "randomization.joint_damping_nms_per_rad": [0.0, 0.05],
    "randomization.obs_latency_s": [0.0, 0.02],
    "randomization.action_latency_s": [0.0, 0.02],
}


def rollout(env: StairClimbEnv, seed: int, steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, *_ = env.step(rng.uniform(-1, 1, 12).astype(np.float32))
        out.append(np.append(obs, reward))
    return out


def dynamics(env: StairClimbEnv) -> dict[str, Any]:
    """What PyBullet holds: masses of every robot link, frictions, and the actuator's gains.

    (Joint damping set with changeDynamics acts, but PyBullet's getJointInfo keeps reporting the
    URDF value, so it cannot be read back here.)"""
    world = env.world
    c, robot = world.client, world.robot_id
    return {
        "masses": [c.getDynamicsInfo(robot, link)[0] for link in range(-1, c.getNumJoints(robot))],
        "ground": c.getDynamicsInfo(world.plane_id, -1)[1],
        "stairs": [c.getDynamicsInfo(body, -1)[1] for body in world.stairs.body_ids],
        "feet": [c.getDynamicsInfo(robot, link)[1] for link in world.foot_link_ids],
        "kp": world.actuator.kp_nm_per_rad.tolist(),  # type: ignore[union-attr]
        "torque_limit": world.actuator.torque_limit_nm.tolist(),
    }


@pytest.fixture
def clean() -> Any:
    env = StairClimbEnv()
    yield env
    env.close()


def test_disabled_randomization_is_bit_identical_to_the_clean_env(clean: StairClimbEnv) -> None:
    off = StairClimbEnv(overrides={**ALL_ON, "randomization.enabled": False})
    try:
        _, info = off.reset(seed=4)
        assert "randomization" not in info
        for a, b in zip(rollout(clean, 4, 60), rollout(off, 4, 60), strict=True):
            np.testing.assert_array_equal(a, b)
    finally:
        off.close()


def test_enabled_at_nominal_point_ranges_gives_the_clean_trajectory(clean: StairClimbEnv) -> None:
    nominal = StairClimbEnv(overrides={"randomization.enabled": True})
    try:
        for a, b in zip(rollout(clean, 5, 60), rollout(nominal, 5, 60), strict=True):
            np.testing.assert_array_equal(a, b)
    finally:
        nominal.close()


def test_episode_fraction_zero_runs_the_nominal_robot_under_wide_ranges(clean: StairClimbEnv) -> None:
    pushes = {"randomization.push_interval_s": [0.02, 0.02], "randomization.push_vel_mps": [0.5, 0.5]}
    never = StairClimbEnv(overrides={**ALL_ON, **pushes, "randomization.episode_fraction": 0.0})
    try:
        _, info = never.reset(seed=5)
        assert info["randomization"]["randomized"] is False
        assert info["randomization"]["payload_kg"] == 0.0 and info["randomization"]["first_push_s"] == np.inf
        # (Not the clean env's trajectory: the share's own draw shifts the spawn jitter after it.)
        never.step(np.zeros(12, np.float32))
        assert never._randomizer.last_push_mps is None  # type: ignore[union-attr]
        assert dynamics(never) == dynamics(clean)
    finally:
        never.close()


def test_episode_fraction_mixes_randomized_and_nominal_episodes() -> None:
    env = StairClimbEnv(overrides={**ALL_ON, "randomization.episode_fraction": 0.5})
    try:
        draws = [env.reset(seed=seed)[1]["randomization"] for seed in range(40)]
    finally:
        env.close()
    nominal = [d for d in draws if not d["randomized"]]
    randomized = [d for d in draws if d["randomized"]]
    assert 10 <= len(nominal) <= 30  # binomial(40, 0.5): outside this with p < 0.002
    assert all(d["payload_kg"] == 0.0 and d["kp_scale"] == 1.0 and d["obs_latency_s"] == 0.0 for d in nominal)
    assert all(d["payload_kg"] != 0.0 and d["kp_scale"] != 1.0 for d in randomized)


def test_samples_are_in_reset_info_differ_across_seeds_and_replay_for_the_same_seed() -> None:
    env, twin = StairClimbEnv(overrides=ALL_ON), StairClimbEnv(overrides=ALL_ON)
    try:
        first = env.reset(seed=1)[1]["randomization"]
        assert twin.reset(seed=1)[1]["randomization"] == first
        second = env.reset(seed=2)[1]["randomization"]
        assert second["payload_kg"] != first["payload_kg"]
        assert second["ground_friction"] != first["ground_friction"]
        assert all(isinstance(v, float | int | list) for v in first.values())
        assert -1.0 <= first["payload_kg"] <= 3.0 and 0.4 <= first["ground_friction"] <= 1.2
        assert first["action_latency_substeps"] == round(first["action_latency_s"] / 0.002)
    finally:
        env.close()
        twin.close()


def test_sampled_values_are_applied_in_pybullet(clean: StairClimbEnv) -> None:
    clean.reset(seed=0)
    nominal = dynamics(clean)
    env = StairClimbEnv(overrides=ALL_ON)
    try:
        drawn = env.reset(seed=3)[1]["randomization"]
        got = dynamics(env)
        assert got["masses"][0] == pytest.approx(nominal["masses"][0] + drawn["payload_kg"])
        np.testing.assert_allclose(
            got["masses"][1:], np.array(nominal["masses"][1:]) * drawn["link_mass_scale"]
        )
        assert got["ground"] == pytest.approx(drawn["ground_friction"])
        assert got["stairs"] == pytest.approx([drawn["ground_friction"]] * len(got["stairs"]))
        np.testing.assert_allclose(got["feet"], np.array(nominal["feet"]) * drawn["foot_friction_scale"])
        np.testing.assert_allclose(got["kp"], np.array(nominal["kp"]) * drawn["kp_scale"])
        np.testing.assert_allclose(
            got["torque_limit"], np.array(nominal["torque_limit"]) * drawn["motor_strength_scale"]
        )
    finally:
        env.close()


def test_nominal_values_are_restored_and_never_drift_across_resets(clean: StairClimbEnv) -> None:
    env = StairClimbEnv(overrides=ALL_ON)
    try:
        env.reset(seed=1)
        first = dynamics(env)
        for seed in range(2, 7):
            env.reset(seed=seed)
            assert dynamics(env) != first
        env.reset(seed=1)
        assert dynamics(env) == first
    finally:
        env.close()
    # A later config at the nominal values reads back exactly the clean world's dynamics.
    clean.reset(seed=0)
    nominal = StairClimbEnv(overrides={"randomization.enabled": True})
    try:
        nominal.reset(seed=0)
        assert dynamics(nominal) == dynamics(clean)
    finally:
        nominal.close()


def test_payload_makes_the_base_heavier_and_sit_lower(clean: StairClimbEnv) -> None:
    heavy = StairClimbEnv(overrides={"randomization.enabled": True, "randomization.payload_kg": [5.0, 5.0]})
    try:
        for env in (clean, heavy):
            env.reset(seed=0)
            for _ in range(50):
                env.step(np.zeros(12, np.float32))
        assert dynamics(heavy)["masses"][0] == pytest.approx(dynamics(clean)["masses"][0] + 5.0)
        assert heavy._state.base_pos_m[2] < clean._state.base_pos_m[2] - 0.005  # type: ignore[union-attr]
        for _ in range(3):  # a fixed payload does not accumulate
            heavy.reset()
        assert dynamics(heavy)["masses"][0] == pytest.approx(dynamics(clean)["masses"][0] + 5.0)
    finally:
        heavy.close()


def test_com_offset_tips_the_robot_towards_it() -> None:
    pitch = {}
    for offset in (-0.05, 0.05):
        env = StairClimbEnv(
            overrides={"randomization.enabled": True, "randomization.com_offset_x_m": [offset, offset]}
        )
        env.reset(seed=0)
        for _ in range(50):
            env.step(np.zeros(12, np.float32))
        pitch[offset] = float(env._state.projected_gravity[0])  # type: ignore[union-attr]  # > 0: nose down
        env.close()
    assert pitch[0.05] > pitch[-0.05] + 0.01


def test_a_push_changes_the_base_velocity(clean: StairClimbEnv) -> None:
    pushed = StairClimbEnv(
        overrides={
            "randomization.enabled": True,
            "randomization.push_interval_s": [0.02, 0.02],  # at the first step, then every step
            "randomization.push_vel_mps": [0.5, 0.5],
        }
    )
    try:
        clean.reset(seed=0)
        pushed.reset(seed=0)
        clean.step(np.zeros(12, np.float32))
        pushed.step(np.zeros(12, np.float32))
        push = pushed._randomizer.last_push_mps  # type: ignore[union-attr]
        assert push is not None and np.hypot(push[0], push[1]) == pytest.approx(0.5)
        change = pushed._state.base_lin_vel_mps[:2] - clean._state.base_lin_vel_mps[:2]  # type: ignore[union-attr]
        assert np.linalg.norm(change) > 0.25  # the stance feet's friction takes some of it within 20 ms
        assert np.dot(change, push[:2]) > 0.9 * np.linalg.norm(change) * 0.5
    finally:
        pushed.close()


@pytest.mark.parametrize("latency_substeps", [4, 12])
def test_action_latency_delays_the_new_target_by_whole_substeps(latency_substeps: int) -> None:
    latency = latency_substeps * 0.002
    overrides = {"randomization.enabled": True, "randomization.action_latency_s": [latency, latency]}
    moved, held = StairClimbEnv(overrides=overrides), StairClimbEnv(overrides=overrides)
    try:
        rows = {}
        for env, action in ((moved, np.ones(12, np.float32)), (held, np.zeros(12, np.float32))):
            env.reset(seed=0)
            torques = []
            for _ in range(2):
                env.step(action)
                torques.append(env.last_torques.torques_nm)  # type: ignore[union-attr]
            rows[id(env)] = np.concatenate(torques)
        a, b = rows[id(moved)], rows[id(held)]
        np.testing.assert_array_equal(a[:latency_substeps], b[:latency_substeps])
        assert np.abs(a[latency_substeps] - b[latency_substeps]).max() > 1.0
    finally:
        moved.close()
        held.close()


def test_observation_latency_of_one_control_step_shows_the_previous_state(clean: StairClimbEnv) -> None:
    late = StairClimbEnv(
        overrides={"randomization.enabled": True, "randomization.obs_latency_s": [0.02, 0.02]}
    )
    try:
        ref, delayed = rollout(clean, 0, 6), rollout(late, 0, 6)
        sensors = [
            clean.obs_layout.slice(name) for name in ("base_ang_vel", "projected_gravity", "joint_pos")
        ]
        np.testing.assert_array_equal(delayed[0], ref[0])
        for t in range(1, 7):
            for block in sensors:
                np.testing.assert_array_equal(delayed[t][block], ref[t - 1][block])
        # sub-step latency: the state of 4 substeps before the end of the step, neither end
        sub = StairClimbEnv(
            overrides={"randomization.enabled": True, "randomization.obs_latency_s": [0.008, 0.008]}
        )
        mid = rollout(sub, 0, 3)
        sub.close()
        joint = clean.obs_layout.slice("joint_pos")
        assert not np.array_equal(mid[2][joint], ref[2][joint])
        assert not np.array_equal(mid[2][joint], ref[1][joint])
    finally:
        late.close()


def test_observation_noise_overrides_the_layout_per_term() -> None:
    env = StairClimbEnv(
        overrides={"randomization.enabled": True, "randomization.obs_noise": {"joint_pos": 0.5}}
    )
    try:
        assert env.obs_layout["joint_pos"].noise == 0.5 and env.obs_layout["joint_vel"].noise == 0.0
        obs, _ = env.reset(seed=0)
        again, _ = env.reset(seed=0)
        np.testing.assert_array_equal(obs, again)  # noise from np_random: reproducible
        assert np.abs(obs[env.obs_layout.slice("joint_pos")]).max() > 0.05
    finally:
        env.close()


def test_the_history_repeats_the_noisy_frames_and_takes_no_noise_of_its_own() -> None:
    noisy = {"randomization.enabled": True, "randomization.obs_noise": {"joint_pos": 0.5}}
    env = StairClimbEnv(overrides={**noisy, "observation.history_steps": 2})
    try:
        first, _ = env.reset(seed=0)
        second, *_ = env.step(np.zeros(12, np.float32))
        frame = history_frame_size(12)
        history = second[env.obs_layout.slice(HISTORY_TERM)].reshape(2, frame)
        np.testing.assert_array_equal(history[0], first[:frame])  # the noisy frame the policy saw
        np.testing.assert_array_equal(history[1], first[:frame])  # the first observation's own, again
    finally:
        env.close()
    with pytest.raises(ConfigError, match="proprio_history takes no noise of its own"):
        StairClimbEnv(
            overrides={
                "randomization.enabled": True,
                "randomization.obs_noise": {HISTORY_TERM: 0.1},
                "observation.history_steps": 2,
            }
        )


def test_obs_noise_scale_zero_gives_the_noise_free_observation(clean: StairClimbEnv) -> None:
    noisy = {"randomization.enabled": True, "randomization.obs_noise": {"joint_pos": 0.5}}
    env = StairClimbEnv(overrides={**noisy, "randomization.obs_noise_scale": [0.0, 0.0]})
    try:
        obs, info = env.reset(seed=0)
        assert info["randomization"]["obs_noise_scale"] == 0.0
        ref, _ = clean.reset(seed=0)
        np.testing.assert_allclose(obs, ref, atol=1e-6)  # the layout's noise, scaled to nothing
    finally:
        env.close()


def test_obs_noise_scale_range_is_drawn_per_episode_and_sets_the_noise_size() -> None:
    config = RandomizationConfig(enabled=True, obs_noise_scale=(0.0, 1.0))
    draws = [
        sample(config, np.random.default_rng(seed), nominal_ground_friction=1.0, physics_dt_s=0.002)
        for seed in range(50)
    ]
    scales = [drawn.obs_noise_scale for drawn in draws]
    assert 0.0 <= min(scales) < 0.1 and 0.9 < max(scales) <= 1.0
    overrides = {
        "randomization.enabled": True,
        "randomization.obs_noise": {"joint_pos": 0.5},
        "randomization.obs_noise_scale": [0.0, 1.0],
    }
    env = StairClimbEnv(overrides=overrides)
    try:
        joint = env.obs_layout.slice("joint_pos")
        for seed in range(5):
            obs, info = env.reset(seed=seed)
            scale = info["randomization"]["obs_noise_scale"]
            # at reset the joints sit at the default pose: the entries are the noise alone
            assert np.abs(obs[joint]).max() <= 0.5 * scale + 1e-3
    finally:
        env.close()


def test_a_point_obs_noise_scale_draws_no_random_number() -> None:
    """Presets without the key keep their random stream (and their seeded benchmark episodes)."""
    point = RandomizationConfig(enabled=True, payload_kg=(0.0, 2.0))
    ranged = RandomizationConfig(enabled=True, payload_kg=(0.0, 2.0), obs_noise_scale=(0.0, 1.0))
    rngs = [np.random.default_rng(3), np.random.default_rng(3)]
    sample(point, rngs[0], nominal_ground_friction=1.0, physics_dt_s=0.002)
    sample(ranged, rngs[1], nominal_ground_friction=1.0, physics_dt_s=0.002)
    reference = np.random.default_rng(3).uniform(size=18)  # sample() draws 16 before obs_noise_scale
    assert rngs[0].uniform() == reference[16]
    assert rngs[1].uniform() == reference[17]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"randomization.payload_kg": [3.0, 1.0]}, r"randomization\.payload_kg\[1\] must be in \[3, 50\]"),
        (
            {"randomization.ground_friction": [-0.1, 1.0]},
            r"randomization\.ground_friction\[0\] must be in \[0, 5\]",
        ),
        (
            {"randomization.obs_latency_s": [0.0, 0.5]},
            r"randomization\.obs_latency_s\[1\] must be in \[0, 0\.1\] s",
        ),
        ({"randomization.kp_scale": [1.0]}, r"randomization\.kp_scale must be a list of 2"),
        ({"randomization.push_vel": [0.0, 1.0]}, r"unknown key.*randomization\.push_vel"),
        (
            {"randomization.obs_noise_scale": [-0.5, 1.0]},
            r"randomization\.obs_noise_scale\[0\] must be in \[0, 10\]",
        ),
        (
            {"randomization.episode_fraction": 1.5},
            r"randomization\.episode_fraction must be in \[0, 1\]",
        ),
        (
            {"actuator.motor_time_constant_s": -0.01},
            r"actuator\.motor_time_constant_s must be in \[0, 0\.1\] s",
        ),
    ],
)
def test_bad_ranges_raise_config_errors_naming_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_env_config("stairs_up", overrides)


def test_unknown_obs_noise_term_lists_the_terms() -> None:
    with pytest.raises(ConfigError, match=r"obs_noise.*'joint_torque'.*terms: \['base_ang_vel'"):
        StairClimbEnv(
            overrides={"randomization.enabled": True, "randomization.obs_noise": {"joint_torque": 0.1}}
        )


def test_sampling_is_plain_numpy_and_point_ranges_fix_values() -> None:
    config = RandomizationConfig(enabled=True, ground_friction=(0.5, 0.5), payload_kg=(2.0, 2.0))
    drawn = sample(config, np.random.default_rng(0), nominal_ground_friction=1.0, physics_dt_s=0.002)
    assert drawn.ground_friction == 0.5 and drawn.payload_kg == 2.0 and drawn.kp_scale == 1.0


@pytest.mark.parametrize("preset", ["stairs_up_randomized", "stairs_down_randomized", "stairs_up_stress"])
def test_randomized_presets_run(preset: str) -> None:
    env = StairClimbEnv(preset)
    try:
        _, info = env.reset(seed=0)
        assert "randomization" in info
        for _ in range(10):
            obs, *_ = env.step(env.action_space.sample())
            assert np.all(np.isfinite(obs))
        if preset == "stairs_up_stress":
            assert (
                info["randomization"]["payload_kg"] == 2.0 and info["randomization"]["ground_friction"] == 0.5
            )
            assert info["randomization"]["action_latency_substeps"] == 5
    finally:
        env.close()
