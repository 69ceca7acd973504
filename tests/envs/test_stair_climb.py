"""The StairClimb env: API conformance, reward bookkeeping, physics sanity, termination, leaks."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import SubprocVecEnv

import stairbot
from stairbot.envs.stair_climb import StairClimbEnv
from stairbot.errors import ConfigError
from stairbot.robots.spec import available_robots

ENV_IDS = sorted(stairbot.ENV_PRESETS)


def rollout(env: gym.Env, seed: int, steps: int, action_seed: int = 0) -> list[tuple]:
    """(obs, reward, terminated, info) for `steps` random-action steps, resetting on episode end."""
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    out = [(obs, 0.0, False, {})]
    for _ in range(steps):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs, reward, terminated, info))
        if terminated or truncated:
            obs, _ = env.reset()
    return out


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_and_sb3_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    try:
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reward_equals_sum_of_weighted_terms(env_id: str) -> None:
    env = gym.make(env_id)
    seen_terms: set[str] = set()
    for _, reward, _, info in rollout(env, seed=1, steps=150)[1:]:
        terms = info["reward_terms"]
        assert reward == pytest.approx(sum(terms.values()), abs=1e-9)
        seen_terms |= set(terms)
    env.close()
    weights = env.unwrapped.config.rewards
    assert seen_terms == {name for name, w in weights.items() if w != 0.0}


def test_same_seed_and_actions_give_identical_trajectories() -> None:
    first = rollout(gym.make("stairbot/StairClimb-v0"), seed=7, steps=120)
    second = rollout(gym.make("stairbot/StairClimb-v0"), seed=7, steps=120)
    for (o1, r1, t1, _), (o2, r2, t2, _) in zip(first, second, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2 and t1 == t2
    other_seed = rollout(gym.make("stairbot/StairClimb-v0"), seed=8, steps=5)
    assert not np.array_equal(first[0][0], other_seed[0][0])


def test_reset_with_the_same_seed_replays_the_episode_in_the_same_env() -> None:
    env = gym.make("stairbot/StairClimb-v0")
    first = rollout(env, seed=3, steps=60)
    rollout(env, seed=99, steps=30)  # disturb the world in between
    again = rollout(env, seed=3, steps=60)
    for (o1, r1, _, _), (o2, r2, _, _) in zip(first, again, strict=True):
        np.testing.assert_allclose(o1, o2, atol=1e-6)
        assert r1 == pytest.approx(r2, abs=1e-6)


@pytest.mark.parametrize("robot", available_robots())
def test_zero_action_stands_on_flat_ground_for_5_seconds(robot: str) -> None:
    env = gym.make("stairbot/StairClimb-v0", difficulty=0.0, robot=robot)
    env.reset(seed=0)
    base = env.unwrapped
    nominal = base.robot_spec.nominal_base_height_m
    steps = round(5.0 / base.dt)
    zero = np.zeros(env.action_space.shape, np.float32)
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(zero)
        assert not terminated, info["termination_reason"]
        assert not truncated
    # Standing in the default pose is well inside every joint's limits.
    assert info["reward_terms"]["joint_limit"] == 0.0
    state = base.world.read_state()
    assert state.base_pos_m[2] == pytest.approx(nominal, abs=0.03)
    # Level within 5 degrees (a PD stand sags a little: the static error of kp under the load).
    assert np.linalg.norm(state.projected_gravity[:2]) < np.sin(np.radians(5.0))
    assert np.abs(state.base_lin_vel_mps).max() < 0.02  # at rest
    assert base.world.contacts().foot_contact.all()
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_tipped_over_robot_terminates_with_fall_and_pays_the_penalty(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    base = env.unwrapped
    world = base.world
    state = world.read_state()
    rolled = world.client.getQuaternionFromEuler((np.pi / 2, 0.0, 0.0))
    world.client.resetBasePositionAndOrientation(world.robot_id, state.base_pos_m.tolist(), rolled)
    world.read_state()
    _, reward, terminated, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
    assert terminated
    assert info["termination_reason"] == "fall"
    assert info["reward_terms"]["fall"] == base.config.rewards["fall"]
    assert reward < 0
    env.close()


def test_reaching_the_top_landing_is_a_success() -> None:
    env = gym.make("stairbot/StairClimb-v0", riser_m=0.12)
    env.reset(seed=0)
    base = env.unwrapped
    flight = base.flight
    x = float(flight.goal_x_m + base.config.termination.success_margin_m + 0.1)
    z = float(flight.height_at(np.array([x]))[0]) + base.robot_spec.nominal_base_height_m + 0.02
    base.world.reset_robot(np.array([x, 0.0, z]), 0.0, base.robot_spec.default_pose_rad)
    base._state = base.world.read_state()
    _, _, terminated, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
    assert terminated and info["success"] and info["termination_reason"] == "success"
    assert info["reward_terms"]["success"] == base.config.rewards["success"]
    assert info["steps_climbed"] == flight.num_steps
    assert info["reward_terms"]["new_steps"] == base.config.rewards["new_steps"] * flight.num_steps
    env.close()


def test_keyword_overrides_reach_the_world() -> None:
    env = gym.make("stairbot/StairClimb-v0", riser_m=0.17, tread_m=0.28, num_steps=4, direction="down")
    _, info = env.reset(seed=0)
    assert info["riser_m"] == pytest.approx(0.17)
    assert info["tread_m"] == pytest.approx(0.28)
    assert info["num_steps"] == 4
    assert info["direction"] == "down"
    # The robot spawns on the top platform going down.
    z = env.unwrapped.world.read_state().base_pos_m[2]
    assert z > 4 * 0.17
    env.close()


def test_difficulty_maps_to_riser_and_can_change_at_reset() -> None:
    env = gym.make("stairbot/StairClimb-v0", difficulty=0.5)
    _, info = env.reset(seed=0)
    assert info["riser_m"] == pytest.approx(0.10)
    _, info = env.reset(seed=0, options={"difficulty": 1.0})
    assert info["riser_m"] == pytest.approx(0.20)
    assert info["difficulty"] == 1.0
    env.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"riser_m": -0.05}, r"stairs\.riser_m must be in \(0"),
        ({"direction": "sideways"}, r"stairs\.direction must be one of"),
        ({"overrides": {"rewards.jump_high": 1.0}}, r"unknown reward term.*jump_high.*valid terms"),
        ({"overrides": {"stairs.colour": "red"}}, r"stairs\.colour"),
        ({"robot": "hexapod9000"}, r"hexapod9000"),
        ({"preset": "no_such_preset"}, r"no envs preset named 'no_such_preset'"),
        (
            {"overrides": {"control.action_scale_rad": [0.5, 0.8, 0.8]}},
            r"action_scale_rad lists 3 scales; the robot has 12 joints",
        ),
    ],
)
def test_bad_arguments_raise_errors_naming_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StairClimbEnv(**kwargs)


def test_a_per_joint_action_scale_sets_each_joints_reach() -> None:
    """Scales s_j with actions a_j * 0.5 / s_j command what 0.5 with a_j does: the same episode,
    bit for bit (last_action in the observation aside, which is the action itself)."""
    scales = np.array([0.5, 0.8, 1.0] * 4)
    rng = np.random.default_rng(3)
    actions = rng.uniform(-1, 1, (40, 12))
    plain = StairClimbEnv()
    per_joint = StairClimbEnv(overrides={"control.action_scale_rad": scales.tolist()})
    try:
        plain.reset(seed=1)
        per_joint.reset(seed=1)
        last_action = per_joint.obs_layout.slice("last_action")
        for action in actions:
            obs_a, *_ = plain.step(action.astype(np.float32))
            obs_b, *_ = per_joint.step((action * 0.5 / scales).astype(np.float32))
            keep = np.ones(obs_a.shape, bool)
            keep[last_action] = False
            np.testing.assert_allclose(obs_b[keep], obs_a[keep], rtol=0, atol=1e-5)
        joint_pos = per_joint.obs_layout.slice("joint_pos")
        assert np.abs(obs_b[joint_pos]).max() > 0.05  # the joints did move
    finally:
        plain.close()
        per_joint.close()


def test_observation_size_derives_from_the_layout() -> None:
    env = StairClimbEnv()
    assert env.observation_space.shape == (sum(term.size for term in env.obs_layout),)
    names = [term.name for term in env.obs_layout]
    assert names[-1] == "height_scan"
    assert env.obs_layout.slice("height_scan").stop == env.obs_layout.size
    blind = StairClimbEnv(overrides={"observation.height_scan.enabled": False})
    scan_size = env.obs_layout["height_scan"].size
    assert blind.observation_space.shape[0] == env.observation_space.shape[0] - scan_size
    assert blind.observation_space.shape == (3 + 3 + 3 + 3 * 12,)


def test_height_scan_sees_the_first_step_ahead() -> None:
    env = StairClimbEnv(riser_m=0.15)
    obs, _ = env.reset(seed=0)
    scan = env.obs_layout["height_scan"]
    values = obs[env.obs_layout.slice("height_scan")] / scan.scale
    grid = values.reshape(len(env.config.observation.height_scan.x_points_m), -1)
    # Points under the robot see the floor (~0 m below the stance floor); points 0.75 m ahead are
    # past the first riser (0.6 m ahead, +-jitter) and see it 0.15 m higher.
    assert np.abs(grid[2]).max() < 0.03
    assert grid[-1] == pytest.approx(np.full(grid.shape[1], 0.15), abs=0.03)
    env.close()


def test_height_scan_from_rays_equals_the_flight_profile() -> None:
    kwargs = {"riser_m": 0.16, "num_steps": 5, "direction": "down"}
    profile = StairClimbEnv(**kwargs)
    rays = StairClimbEnv(**kwargs, overrides={"observation.height_scan.source": "rays"})
    actions = np.random.default_rng(0).uniform(-1, 1, (60, 12)).astype(np.float32)
    scan_size = profile.obs_layout["height_scan"].size
    near_edge_points = 0
    for env in (profile, rays):
        env.reset(seed=4)
    for action in actions:
        obs_profile, *_ = profile.step(action)
        obs_rays, *_ = rays.step(action)
        # Same physics: everything but the scan is identical.
        np.testing.assert_array_equal(obs_profile[:-scan_size], obs_rays[:-scan_size])
        # Rays see Bullet's rounded box edges within ~1 mm of a riser; elsewhere they agree exactly.
        state = profile.world.read_state()
        yaw = state.yaw_rad
        rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
        scan_x = state.base_pos_m[0] + (profile._scan_offsets @ rot.T)[:, 0]
        far = np.abs(scan_x[:, None] - profile.flight.edges_x_m[None, :]).min(axis=1) > 2e-3
        near_edge_points += int((~far).sum())
        np.testing.assert_allclose(obs_profile[-scan_size:][far], obs_rays[-scan_size:][far], atol=1e-4)
    assert near_edge_points < 0.02 * len(actions) * scan_size
    profile.close()
    rays.close()


def test_env_pickles_and_runs_under_subproc_vec_env() -> None:
    env = gym.make("stairbot/StairClimb-v0", riser_m=0.12)
    env.reset(seed=0)
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    assert clone.config == env.unwrapped.config
    _, info = clone.reset(seed=0)
    assert info["riser_m"] == pytest.approx(0.12)
    clone.close()
    env.close()

    # Workers are fresh interpreters: the "stairbot:" prefix makes Gymnasium import the package there.
    vec = SubprocVecEnv([lambda: gym.make("stairbot:stairbot/StairClimb-v0", riser_m=0.12)] * 2)
    try:
        vec.seed(0)
        obs = vec.reset()
        assert obs.shape == (2, *env.observation_space.shape)
        for _ in range(20):
            obs, rewards, _, infos = vec.step(np.zeros((2, 12), np.float32))
        assert np.isfinite(obs).all() and np.isfinite(rewards).all()
        assert all("reward_terms" in info for info in infos)
        assert vec.env_method("set_difficulty", 0.3) == [None, None]
    finally:
        vec.close()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_1000_resets_leak_neither_bodies_nor_memory() -> None:
    env = gym.make("stairbot/StairClimb-v0")
    base = env.unwrapped
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    num_bodies = base.world.client.getNumBodies()
    for i in range(100):  # warm up allocator caches
        env.reset(seed=i, options={"difficulty": float(rng.uniform())})
    rss = _rss_bytes()
    for i in range(1000):
        env.reset(seed=i, options={"difficulty": float(rng.uniform())})
        if i % 100 == 0:
            env.step(np.zeros(12, np.float32))
    assert base.world.client.getNumBodies() == num_bodies
    growth_mb = (_rss_bytes() - rss) / 2**20
    assert growth_mb < 5.0, f"RSS grew by {growth_mb:.1f} MB over 1000 resets"
    env.close()


def test_rgb_array_render_shows_something() -> None:
    env = gym.make("stairbot/StairClimb-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (360, 480, 3) and frame.dtype == np.uint8
    assert frame.std() > 10  # not a blank image
    env.close()


def test_adaptive_curriculum_promotes_after_a_climb_and_demotes_after_a_fall() -> None:
    env = StairClimbEnv(overrides={"curriculum.adaptive": True, "curriculum.difficulty": 0.5})
    _, info = env.reset(seed=0)
    assert info["difficulty"] == 0.5 and info["riser_m"] == pytest.approx(0.10)
    # Teleport onto the top landing: all risers crossed -> next episode is harder.
    flight = env.flight
    x = float(flight.goal_x_m + 0.5)
    env.world.reset_robot(
        np.array([x, 0.0, flight.total_rise_m + env.robot_spec.nominal_base_height_m]),
        0.0,
        env.robot_spec.default_pose_rad,
    )
    env._state = env.world.read_state()
    _, _, terminated, _, info = env.step(np.zeros(12, np.float32))
    assert terminated and info["success"]
    _, info = env.reset()
    assert info["difficulty"] == pytest.approx(0.6)
    assert info["riser_m"] == pytest.approx(0.12)
    # Tip over at the start: nothing crossed -> easier.
    state = env.world.read_state()
    quat = env.world.client.getQuaternionFromEuler((np.pi / 2, 0.0, 0.0))
    env.world.client.resetBasePositionAndOrientation(env.world.robot_id, state.base_pos_m.tolist(), quat)
    _, _, terminated, _, info = env.step(np.zeros(12, np.float32))
    assert terminated and info["termination_reason"] == "fall"
    _, info = env.reset()
    assert info["difficulty"] == pytest.approx(0.5)
    # A reset with no step in between changes nothing.
    _, info = env.reset()
    assert info["difficulty"] == pytest.approx(0.5)
    env.close()


def test_down_fraction_mixes_directions_in_curriculum_episodes() -> None:
    env = StairClimbEnv(
        overrides={"curriculum.adaptive": True, "curriculum.difficulty": 0.5, "curriculum.down_fraction": 0.5}
    )
    directions = []
    for seed in range(40):
        _, info = env.reset(seed=seed)
        directions.append(info["direction"])
        flight = env.flight
        assert flight.direction.value == info["direction"]
        # The terrain the robot sees goes the drawn way: 6 risers of 0.10 m from the start platform.
        start, end = flight.height_at(np.array([0.0, flight.end_x_m - 0.1]), np.zeros(2))
        assert end - start == pytest.approx(0.6 if info["direction"] == "up" else -0.6)
    assert 10 <= directions.count("down") <= 30, directions  # Binomial(40, 0.5): P(outside) < 1e-3
    # The draw is the env's RNG: the same seed, the same direction.
    assert [env.reset(seed=seed)[1]["direction"] for seed in range(40)] == directions
    env.close()


def test_every_step_says_which_way_the_episode_goes() -> None:
    """Training episode records read the direction from the last step's info."""
    env = StairClimbEnv(overrides={"curriculum.adaptive": True, "curriculum.down_fraction": 0.5})
    seen = set()
    for seed in range(12):
        _, info = env.reset(seed=seed)
        step_info = env.step(np.zeros(12, np.float32))[4]
        assert step_info["direction"] == info["direction"]
        seen.add(info["direction"])
    assert seen == {"up", "down"}
    env.close()


@pytest.mark.parametrize("adaptive, down_fraction", [(False, 0.5), (True, 0.0)])
def test_no_direction_draw_without_a_mix_in_a_curriculum(adaptive: bool, down_fraction: float) -> None:
    """Fixed stairs (evaluation, benchmark) keep stairs.direction; a zero mix changes no episode."""
    plain = StairClimbEnv(overrides={"curriculum.adaptive": adaptive})
    mixed = StairClimbEnv(
        overrides={"curriculum.adaptive": adaptive, "curriculum.down_fraction": down_fraction}
    )
    for seed in range(5):
        obs_plain, info_plain = plain.reset(seed=seed)
        obs_mixed, info_mixed = mixed.reset(seed=seed)
        assert info_mixed["direction"] == "up"
        np.testing.assert_array_equal(obs_mixed, obs_plain)
        np.testing.assert_array_equal(info_mixed["command"], info_plain["command"])
    plain.close()
    mixed.close()


def _fall_at_once(env: StairClimbEnv) -> None:
    """Tip the robot over so that its episode ends in a fall with nothing crossed."""
    state = env.world.read_state()
    quat = env.world.client.getQuaternionFromEuler((np.pi / 2, 0.0, 0.0))
    env.world.client.resetBasePositionAndOrientation(env.world.robot_id, state.base_pos_m.tolist(), quat)
    _, _, terminated, _, info = env.step(np.zeros(12, np.float32))
    assert terminated and info["termination_reason"] == "fall"


def test_replay_episodes_play_easier_levels_and_leave_the_level_alone() -> None:
    curriculum = {"curriculum.adaptive": True, "curriculum.difficulty": 0.8}
    env = StairClimbEnv(overrides={**curriculum, "curriculum.replay_fraction": 1.0})
    risers = []
    _, info = env.reset(seed=0)
    for _ in range(8):
        assert info["replay"] and info["difficulty"] == pytest.approx(0.8)  # falls do not demote
        assert info["riser_m"] <= 0.16 + 1e-9  # at most the level's riser: 0.8 x 0.20 m
        risers.append(info["riser_m"])
        _fall_at_once(env)
        _, info = env.reset()
    assert len(set(risers)) == len(risers)  # drawn, not one fixed easier level
    env.close()
    plain = StairClimbEnv(overrides=curriculum)
    _, info = plain.reset(seed=0)
    assert "replay" not in info  # no draw, no key: seeds keep their episodes
    _fall_at_once(plain)
    assert plain.reset()[1]["difficulty"] == pytest.approx(0.7)  # an episode at the level demotes
    plain.close()
    mixed = StairClimbEnv(overrides={**curriculum, "curriculum.replay_fraction": 0.5})
    replays = [mixed.reset(seed=seed)[1]["replay"] for seed in range(40)]
    assert 10 <= sum(replays) <= 30  # Binomial(40, 0.5): P(outside) < 1e-3
    mixed.close()


def test_replays_draw_from_their_floor_up_to_the_level() -> None:
    curriculum = {"curriculum.adaptive": True, "curriculum.replay_fraction": 1.0}
    floored = {**curriculum, "curriculum.difficulty": 0.8, "curriculum.replay_min_difficulty": 0.6}
    env = StairClimbEnv(overrides=floored)
    risers = [env.reset(seed=seed)[1]["riser_m"] for seed in range(12)]
    env.close()
    assert all(0.12 - 1e-9 <= riser <= 0.16 + 1e-9 for riser in risers)  # 0.6 and 0.8 x 0.20 m
    assert len(set(risers)) == len(risers)
    below = StairClimbEnv(overrides={**floored, "curriculum.difficulty": 0.4})
    assert below.reset(seed=0)[1]["riser_m"] == pytest.approx(0.08)  # level under the floor: its own
    below.close()
    with pytest.raises(ConfigError, match="replay_min_difficulty"):
        StairClimbEnv(overrides={**curriculum, "curriculum.replay_min_difficulty": 1.5})


def _climb_at_once(env: StairClimbEnv) -> None:
    """Put the robot on the top landing so that its episode ends in success, all risers crossed."""
    flight = env.flight
    top_m = flight.total_rise_m if flight.direction.value == "up" else 0.0
    env.world.reset_robot(
        np.array([float(flight.goal_x_m + 0.5), 0.0, top_m + env.robot_spec.nominal_base_height_m]),
        0.0,
        env.robot_spec.default_pose_rad,
    )
    env._state = env.world.read_state()
    _, _, terminated, _, info = env.step(np.zeros(12, np.float32))
    assert terminated and info["success"]


def test_separate_down_level_moves_only_with_down_episodes() -> None:
    """Up episodes that climb and down episodes that fall: each direction's level goes its own way."""
    overrides = {
        "curriculum.adaptive": True,
        "curriculum.difficulty": 0.5,
        "curriculum.down_fraction": 0.5,
        "curriculum.separate_down_level": True,
    }
    env = StairClimbEnv(overrides=overrides)
    expected = {"up": 0.5, "down": 0.5}
    _, info = env.reset(seed=3)
    for _ in range(12):
        direction = info["direction"]
        assert info["difficulty"] == pytest.approx(expected[direction])
        assert info["riser_m"] == pytest.approx(expected[direction] * 0.20)
        if direction == "up":
            _climb_at_once(env)
            expected["up"] = min(1.0, expected["up"] + 0.1)
        else:
            _fall_at_once(env)
            expected["down"] = max(0.0, expected["down"] - 0.1)
        _, info = env.reset()
    assert expected["up"] > 0.5 and expected["down"] < 0.5  # both directions were drawn
    assert env.difficulty == pytest.approx(expected["up"])
    assert env.down_difficulty == pytest.approx(expected["down"])
    env.close()
    # Saved levels set before the first episode (a resumed run): each direction plays its own.
    restored = StairClimbEnv(overrides=overrides)
    restored.set_difficulty(0.3)
    restored.set_down_difficulty(0.9)
    played = {}
    for seed in range(8):
        info = restored.reset(seed=seed)[1]
        played[info["direction"]] = info
    assert played["up"]["difficulty"] == pytest.approx(0.3) and played["up"]["riser_m"] == pytest.approx(0.06)
    assert played["down"]["difficulty"] == pytest.approx(0.9)
    assert played["down"]["riser_m"] == pytest.approx(0.18)
    restored.close()


def test_a_shared_level_has_no_down_level_to_set() -> None:
    env = StairClimbEnv(overrides={"curriculum.adaptive": True, "curriculum.down_fraction": 0.5})
    env.set_difficulty(0.4)
    assert env.down_difficulty == 0.4  # one level, both directions
    with pytest.raises(ConfigError, match="share one level"):
        env.set_down_difficulty(0.2)
    env.close()
    # Fixed stairs (evaluation, the benchmark) keep one level even with the setting on: a down flight
    # plays what set_difficulty says.
    fixed = StairClimbEnv(
        direction="down",
        overrides={"curriculum.adaptive": False, "curriculum.separate_down_level": True},
    )
    fixed.set_difficulty(0.75)
    assert fixed.reset(seed=0)[1]["riser_m"] == pytest.approx(0.15)
    with pytest.raises(ConfigError, match="share one level"):
        fixed.set_down_difficulty(0.2)
    fixed.close()


def test_down_fraction_outside_0_1_is_refused() -> None:
    with pytest.raises(ConfigError, match="down_fraction"):
        StairClimbEnv(overrides={"curriculum.down_fraction": 1.5})


def test_episode_reward_terms_sum_the_step_terms() -> None:
    env = StairClimbEnv()
    env.reset(seed=0)
    totals: dict[str, float] = {}
    for _ in range(30):
        _, _, _, _, info = env.step(np.zeros(12, np.float32))
        for name, value in info["reward_terms"].items():
            totals[name] = totals.get(name, 0.0) + value
    assert info["episode_reward_terms"] == pytest.approx(totals)
    env.close()


def test_yaw_rate_command_steers_back_to_the_stairs() -> None:
    env = StairClimbEnv()
    obs, _ = env.reset(seed=0)
    yaw = env.world.read_state().yaw_rad
    command = obs[env.obs_layout.slice("command")]
    assert command[2] == pytest.approx(-env.config.command.heading_gain_per_s * yaw, abs=1e-6)
    # Turned 0.4 rad left: the command asks to turn right, and the heading term pays for the error.
    state = env.world.read_state()
    left = env.world.client.getQuaternionFromEuler((0.0, 0.0, 0.4))
    env.world.client.resetBasePositionAndOrientation(env.world.robot_id, state.base_pos_m.tolist(), left)
    obs, _, _, _, info = env.step(np.zeros(12, np.float32))
    yaw = env.world.read_state().yaw_rad
    assert obs[env.obs_layout.slice("command")][2] == pytest.approx(-yaw, abs=1e-6) and yaw > 0.3
    assert info["reward_terms"]["heading_l2"] == pytest.approx(env.config.rewards["heading_l2"] * yaw**2)
    env.close()


def test_centreline_gain_steers_back_toward_the_middle_of_the_flight() -> None:
    """With `command.centreline_gain_rad_per_m` the heading target turns toward y = 0, capped at
    `max_centreline_heading_rad`, and heading_l2 charges the error from that target, not the yaw."""
    env = StairClimbEnv(overrides={"command.centreline_gain_rad_per_m": 1.0})
    env.reset(seed=0)
    client = env.world.client
    facing_stairs = client.getQuaternionFromEuler((0.0, 0.0, 0.0))
    for offset_m, target_rad in ((0.2, -0.2), (0.8, -0.3), (-0.1, 0.1)):
        position = env.world.read_state().base_pos_m.copy()
        position[1] = offset_m
        client.resetBasePositionAndOrientation(env.world.robot_id, position.tolist(), facing_stairs)
        obs, _, _, _, info = env.step(np.zeros(12, np.float32))
        state = env.world.read_state()
        target = -min(0.3, max(-0.3, float(state.base_pos_m[1])))
        assert target == pytest.approx(target_rad, abs=0.02)
        yaw_rate = obs[env.obs_layout.slice("command")][2]
        assert yaw_rate == pytest.approx(target - state.yaw_rad, abs=1e-6)
        assert np.sign(yaw_rate) == np.sign(target_rad)  # turns toward the centre line
        heading = info["reward_terms"]["heading_l2"]
        assert heading == pytest.approx(env.config.rewards["heading_l2"] * (state.yaw_rad - target) ** 2)
    env.close()
    with pytest.raises(ConfigError, match=r"centreline_gain_rad_per_m must be in \[0, 10\]"):
        StairClimbEnv(overrides={"command.centreline_gain_rad_per_m": -1.0})


def test_orientation_to_slope_pays_for_a_level_base_on_the_stairs_not_a_pitched_one() -> None:
    """orientation_to_slope_l2 measures the pitch against the flight's slope (orientation_l2 against
    gravity): mid-flight, a level base costs sin^2 of the slope and a base pitched with it ~0."""
    weights = {"rewards.orientation_l2": -1.0, "rewards.orientation_to_slope_l2": -1.0}
    env = gym.make("stairbot/StairClimb-v0", riser_m=0.15, overrides={"stairs.tread_m": 0.25, **weights})
    env.reset(seed=0)
    base = env.unwrapped
    flight = base.flight
    x = float(flight.edges_x_m[2] + 0.125)  # mid-tread, two risers up
    slope = flight.pitch_at(x)
    assert slope == pytest.approx(np.arctan(0.15 / 0.25), abs=0.05)
    z = float(flight.height_at(np.array([x]))[0]) + base.robot_spec.nominal_base_height_m + 0.05
    terms = {}
    for name, pitch in (("level", 0.0), ("with the stairs", slope)):
        base.world.reset_robot(np.array([x, 0.0, z]), 0.0, base.robot_spec.default_pose_rad)
        nose_up = base.world.client.getQuaternionFromEuler((0.0, -pitch, 0.0))  # -pitch about y: nose up
        base.world.client.resetBasePositionAndOrientation(base.world.robot_id, [x, 0.0, z], nose_up)
        base._state = base.world.read_state()
        _, _, _, _, info = env.step(np.zeros(12, np.float32))  # one 20 ms step: the pose barely moves
        terms[name] = info["reward_terms"]
    assert terms["level"]["orientation_to_slope_l2"] == pytest.approx(-(np.sin(slope) ** 2), abs=0.03)
    assert terms["level"]["orientation_l2"] == pytest.approx(0.0, abs=0.03)
    assert terms["with the stairs"]["orientation_to_slope_l2"] == pytest.approx(0.0, abs=0.03)
    assert terms["with the stairs"]["orientation_l2"] == pytest.approx(-(np.sin(slope) ** 2), abs=0.03)
    env.close()


def test_overspeed_is_charged_beyond_the_commanded_speed_only() -> None:
    env = gym.make("stairbot/StairClimb-v0", difficulty=0.0)  # flat ground
    obs, _ = env.reset(seed=0)
    base = env.unwrapped
    command = float(obs[base.obs_layout.slice("command")][0])
    terms = {}
    for name, vx in (("at the command", command), ("2 m/s", 2.0)):
        env.reset(seed=0)
        base.world.client.resetBaseVelocity(base.world.robot_id, [vx, 0.0, 0.0], [0.0, 0.0, 0.0])
        _, _, _, _, info = env.step(np.zeros(12, np.float32))
        terms[name] = info["reward_terms"]["forward_overspeed_l2"]
    weight = base.config.rewards["forward_overspeed_l2"]
    assert weight < 0
    assert terms["at the command"] == pytest.approx(0.0, abs=0.02)  # within what one step slows it
    assert terms["2 m/s"] == pytest.approx(weight * (2.0 - command) ** 2, rel=0.15)
    env.close()


def test_regular_fraction_drops_the_jitter_in_that_share_of_episodes() -> None:
    jitter = {"stairs.riser_jitter_m": 0.01, "stairs.tread_jitter_m": 0.02}
    regular_counts = {}
    for fraction in (0.0, 0.5, 1.0):
        env = gym.make(
            "stairbot/StairClimb-v0", riser_m=0.12, overrides={**jitter, "stairs.regular_fraction": fraction}
        )
        regular = 0
        for seed in range(40):
            _, info = env.reset(seed=seed)
            risers, treads = np.array(info["risers_m"]), np.array(info["treads_m"])
            uniform = np.allclose(risers, 0.12) and np.allclose(treads, 0.30)
            regular += uniform
        regular_counts[fraction] = regular
        env.close()
    assert regular_counts[0.0] == 0 and regular_counts[1.0] == 40
    assert 10 <= regular_counts[0.5] <= 30  # ~20 of 40 (binomial sd ~3)


def test_tread_range_draws_each_episodes_tread_seeded_and_is_off_by_default() -> None:
    ranged = {"stairs.tread_range_m": [0.24, 0.34]}
    env = gym.make("stairbot/StairClimb-v0", overrides=ranged)
    treads = []
    for seed in range(30):
        _, info = env.reset(seed=seed)
        flight = env.unwrapped.flight
        treads.append(info["tread_m"])
        # The drawn tread is the flight's: its risers stand that far apart.
        np.testing.assert_allclose(np.diff(flight.edges_x_m), info["tread_m"])
    env.close()
    assert all(0.24 <= t <= 0.34 for t in treads)
    assert min(treads) < 0.26 and max(treads) > 0.32  # spread over the range (30 uniform draws)
    again = gym.make("stairbot/StairClimb-v0", overrides=ranged)
    assert again.reset(seed=3)[1]["tread_m"] == treads[3]  # seeded
    again.close()
    plain = gym.make("stairbot/StairClimb-v0")
    assert plain.reset(seed=3)[1]["tread_m"] == 0.30  # off by default: the preset's tread
    plain.close()


def test_regular_fraction_outside_0_1_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"regular_fraction must be in \[0, 1\]"):
        gym.make("stairbot/StairClimb-v0", overrides={"stairs.regular_fraction": 1.5})


def test_hip_abduction_charges_splayed_legs_not_the_default_pose() -> None:
    """hip_abduction_l2 reads the hip (first) joint of every leg against the default pose, rad^2."""
    env = gym.make("stairbot/StairClimb-v0", difficulty=0.0, overrides={"rewards.hip_abduction_l2": -1.0})
    env.reset(seed=0)
    base = env.unwrapped
    default = base.robot_spec.default_pose_rad
    splay = np.array([-0.4, 0.4, -0.2, 0.2])  # FR, FL out to the right and left; rear legs less
    terms = {}
    for name, offsets in (("default", np.zeros(4)), ("splayed", splay)):
        env.reset(seed=0)
        pose = default.copy()
        pose[0::3] += offsets
        state = base.world.read_state()
        base.world.reset_robot(state.base_pos_m, 0.0, pose)
        action = np.zeros(12, np.float32)
        action[0::3] = offsets / base.config.control.action_scale_rad  # hold the splay
        _, _, _, _, info = env.step(action)
        hips = base.world.read_state().joint_pos_rad[0::3]
        terms[name] = (info["reward_terms"]["hip_abduction_l2"], hips)
    assert terms["default"][0] == pytest.approx(0.0, abs=1e-3)
    charged, hips = terms["splayed"]
    assert hips == pytest.approx(splay, abs=0.05)  # it held the splay through the step
    assert charged == pytest.approx(-float(np.sum(hips**2)), rel=1e-6)
    assert charged == pytest.approx(-float(np.sum(splay**2)), rel=0.2)
    env.close()
