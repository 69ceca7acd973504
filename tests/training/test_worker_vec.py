"""BlockSubprocVecEnv: several real PyBullet envs per worker process behave as SB3's one-per-process."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import SubprocVecEnv

from stairbot.errors import ConfigError
from stairbot.training.recipe import load_recipe
from stairbot.training.vec import ENV_ID
from stairbot.training.worker_vec import BlockSubprocVecEnv, WorkerError, blocks

# Short episodes so that truncations (and, with random joint targets, falls) happen within the test.
_SHORT = functools.partial(gym.make, ENV_ID, preset="stairs_up", max_episode_steps=20)


def _bad_factory() -> gym.Env:
    return gym.make(ENV_ID, preset="no_such_preset")


def test_blocks_split_envs_contiguously_and_evenly() -> None:
    assert blocks(5, 2) == [range(0, 2), range(2, 5)]
    assert blocks(4, 4) == [range(i, i + 1) for i in range(4)]
    assert [len(b) for b in blocks(7, 3)] == [2, 2, 3]
    with pytest.raises(ValueError, match="workers"):
        blocks(2, 3)


def test_steps_match_sb3_one_env_per_process() -> None:
    """Same seeds, same actions: the same observations, rewards, dones and terminal observations."""
    n_envs, steps = 3, 45
    reference = SubprocVecEnv([_SHORT] * n_envs)
    blocked = BlockSubprocVecEnv([_SHORT] * n_envs, n_workers=2)
    try:
        for vec in (reference, blocked):
            vec.seed(11)
        obs_ref, obs_blk = reference.reset(), blocked.reset()
        np.testing.assert_array_equal(obs_blk, obs_ref)
        actions = np.random.default_rng(0).uniform(-1, 1, (steps, n_envs, *blocked.action_space.shape))
        ended = 0
        for action in actions.astype(np.float32):
            obs_ref, rew_ref, done_ref, infos_ref = reference.step(action)
            obs_blk, rew_blk, done_blk, infos_blk = blocked.step(action)
            np.testing.assert_array_equal(obs_blk, obs_ref)
            np.testing.assert_array_equal(rew_blk, rew_ref)
            np.testing.assert_array_equal(done_blk, done_ref)
            for info_ref, info_blk in zip(infos_ref, infos_blk, strict=True):
                assert info_blk["TimeLimit.truncated"] == info_ref["TimeLimit.truncated"]
                assert ("terminal_observation" in info_blk) == ("terminal_observation" in info_ref)
                if "terminal_observation" in info_ref:
                    np.testing.assert_array_equal(
                        info_blk["terminal_observation"], info_ref["terminal_observation"]
                    )
            ended += int(done_ref.sum())
        assert ended >= n_envs * 2  # every env ended (and was reset in its worker) at least twice
        assert len(blocked.reset_infos) == n_envs  # one reset info per env, from the last step
    finally:
        reference.close()
        blocked.close()


def test_attributes_and_methods_reach_the_indexed_envs() -> None:
    vec = BlockSubprocVecEnv([_SHORT] * 3, n_workers=2)  # envs 0 | 1, 2
    try:
        before = vec.get_attr("difficulty")
        assert vec.env_method("set_difficulty", 0.9, indices=[2]) == [None]
        vec.env_method("set_difficulty", 0.1, indices=[0])
        assert vec.get_attr("difficulty") == [0.1, before[1], 0.9]
        assert vec.get_attr("difficulty", indices=[2, 0]) == [0.9, 0.1]  # in the order asked
        vec.set_attr("marker", "x", indices=[1])
        assert vec.get_attr("marker", indices=[1]) == ["x"]
        assert vec.env_is_wrapped(gym.wrappers.TimeLimit) == [True, True, True]
    finally:
        vec.close()


def test_an_env_error_comes_back_with_its_traceback_and_the_vec_env_survives() -> None:
    vec = BlockSubprocVecEnv([_SHORT] * 2, n_workers=1)
    try:
        vec.reset()
        with pytest.raises(WorkerError, match=r"env worker 0 \(envs 0-1\) failed:(.|\n)*no_such_method"):
            vec.env_method("no_such_method")
        obs, *_ = vec.step(np.zeros((2, *vec.action_space.shape), dtype=np.float32))
        assert obs.shape == (2, *vec.observation_space.shape)
    finally:
        vec.close()


def test_a_worker_that_cannot_build_its_envs_is_a_clear_error() -> None:
    with pytest.raises(WorkerError, match="no_such_preset"):
        BlockSubprocVecEnv([_SHORT, _bad_factory], n_workers=2)


def test_recipe_env_workers_must_fit_the_env_count() -> None:
    assert load_recipe("ppo_stairs", ["n_envs=4", "env_workers=2"]).env_workers == 2
    with pytest.raises(ConfigError, match=r"env_workers must be between 1 and n_envs \(2\), got 3"):
        load_recipe("ppo_stairs", ["n_envs=2", "env_workers=3"])
