"""Evaluation under action noise: the policy as its own PPO training explores it.

A real stairs env, wrapped to record the actions that reach it: the noise has the std asked for, is
clipped to the action box, repeats for the same episode seed, and is absent at sigma 0. A real tiny
PPO checkpoint: its `sample` draws what SB3's own stochastic `predict` draws, also where the mean
lies past the clip; the shipped bundle's `sample` with zero noise is its action.
"""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from training.helpers import PPO_TINY, SAC_TINY

from stairbot.errors import ConfigError
from stairbot.evaluation import evaluate
from stairbot.policy_source import load_policy_source
from stairbot.training import trainer
from stairbot.training.policy import load_policy, policy_checkpoint
from stairbot.training.recipe import load_recipe
from stairbot.training.vec import env_factory

JOINTS = 12
STEPS = 60  # control steps per episode: enough actions for the std, short enough to be quick


class _Constant:
    """A policy whose Gaussian mean is always the same, clipped like PPO's."""

    def __init__(self, value: float) -> None:
        self.action = np.full(JOINTS, value, np.float32)

    def act(self, observation: np.ndarray) -> np.ndarray:
        return self.action.copy()

    def sample(self, observation: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return np.clip(self.action + noise, -1.0, 1.0).astype(np.float32)


class _RecordActions(gym.Wrapper):
    """Keeps every action the env is stepped with."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.actions: list[np.ndarray] = []

    def step(self, action: np.ndarray):  # type: ignore[no-untyped-def]
        self.actions.append(np.array(action, copy=True))
        return self.env.step(action)


def _recorded(value: float, sigma: float, seed: int = 0, episodes: int = 1) -> np.ndarray:
    """Actions (steps, joints) that reached a flat-ground env over `episodes` short episodes."""
    recorders: list[_RecordActions] = []

    def make_env() -> gym.Env:
        flat = env_factory("stairs_up", {"curriculum.adaptive": False, "curriculum.difficulty": 0.0})()
        recorders.append(_RecordActions(flat))
        return gym.wrappers.TimeLimit(recorders[-1], STEPS)

    evaluate(_Constant(value), make_env, episodes=episodes, seed=seed, action_noise=sigma)
    return np.stack(recorders[0].actions)


def test_noise_has_the_std_asked_for_and_repeats_for_the_same_seed() -> None:
    actions = _recorded(0.0, 0.1, episodes=2)
    assert actions.shape[1] == JOINTS and len(actions) > STEPS  # the robot stood both episodes out
    assert np.abs(actions.mean()) < 0.01
    assert actions.std() == pytest.approx(0.1, rel=0.1)
    assert actions.dtype == np.float32
    again = _recorded(0.0, 0.1, episodes=2)
    np.testing.assert_array_equal(actions, again)
    other_seed = _recorded(0.0, 0.1, seed=5, episodes=2)
    assert not np.array_equal(actions[:STEPS], other_seed[:STEPS])
    # Episodes are seeded one by one: the second draws other noise than the first.
    assert not np.array_equal(actions[:10], actions[len(actions) // 2 : len(actions) // 2 + 10])


def test_noisy_actions_stay_in_the_box() -> None:
    actions = _recorded(0.9, 0.5)
    assert actions.max() == 1.0 and actions.min() >= -1.0
    assert (actions == 1.0).mean() > 0.3  # 0.9 + N(0, 0.5) is above 1 about 42% of the time


def test_no_noise_is_the_policys_action() -> None:
    actions = _recorded(0.3, 0.0)
    np.testing.assert_array_equal(actions, np.full_like(actions, 0.3))


def test_a_policy_that_cannot_be_sampled_is_a_clear_error() -> None:
    class ActOnly:
        def act(self, observation: np.ndarray) -> np.ndarray:
            return np.zeros(JOINTS, np.float32)

    with pytest.raises(ConfigError, match="action noise needs a policy that can be sampled"):
        evaluate(ActOnly(), lambda: pytest.fail("no env for a policy without sample"), 1, 0, 0.2)


@pytest.mark.parametrize("sigma", [-0.1, float("nan"), float("inf")])
def test_bad_noise_is_a_clear_error(sigma: float) -> None:
    with pytest.raises(ConfigError, match="action noise must be a finite standard deviation >= 0"):
        evaluate(_Constant(0.0), lambda: pytest.fail("no env before the noise is checked"), 1, 0, sigma)


# ---- sampling a real policy as SB3 does ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("noise-ppo") / "run"
    trainer.train(load_recipe("ppo_stairs", list(PPO_TINY)), run)
    return policy_checkpoint(run, "latest")


def _observation(preset: str) -> np.ndarray:
    env = env_factory(preset, {})()
    try:
        return env.reset(seed=3)[0]
    finally:
        env.close()


def test_sampling_a_checkpoint_draws_what_sb3_draws(tiny_checkpoint: Path) -> None:
    policy = load_policy(tiny_checkpoint)
    obs = _observation(str(tiny_checkpoint.parent.parent / "env.yaml"))
    np.testing.assert_allclose(policy.sample(obs, np.zeros(JOINTS)), policy.act(obs), atol=1e-6)
    # Push two joints' means past the clip, where noise after the clip would move them and SB3's
    # sampling mostly does not: mean 1.3 at std 0.3 is clipped to 1 in 84 % of draws, not 50 %.
    sigma, draws = 0.3, 4000
    torch_policy = policy.model.policy
    with torch.no_grad():
        obs_tensor = torch_policy.obs_to_tensor(policy.normalize(obs))[0]
        before_clip = torch_policy.get_distribution(obs_tensor).distribution.mean[0]
        torch_policy.action_net.bias[:2] += 1.3 - before_clip[:2]
        torch_policy.log_std.fill_(math.log(sigma))
    mean = policy.sample(obs, np.zeros(JOINTS))
    assert mean[0] == 1.0 and mean[1] == 1.0
    np.testing.assert_allclose(policy.sample(obs, np.full(JOINTS, -0.5))[:2], 0.8, atol=1e-5)
    torch.manual_seed(0)
    batch = np.repeat(policy.normalize(obs)[None], draws, axis=0)
    theirs = policy.model.predict(batch, deterministic=False)[0]
    rng = np.random.default_rng(0)
    ours = np.stack([policy.sample(obs, sigma * rng.standard_normal(JOINTS)) for _ in range(draws)])
    np.testing.assert_allclose(ours.mean(axis=0), theirs.mean(axis=0), atol=0.03)
    np.testing.assert_allclose(ours.std(axis=0), theirs.std(axis=0), atol=0.03)
    at_bound = (ours[:, :2] == 1.0).mean()
    assert abs(at_bound - (theirs[:, :2] == 1.0).mean()) < 0.03
    assert 0.8 < at_bound < 0.88


def test_sampling_a_sac_checkpoint_squashes_with_tanh(tmp_path: Path) -> None:
    run = tmp_path / "sac"
    trainer.train(load_recipe("sac_stairs", list(SAC_TINY)), run)
    policy = load_policy(policy_checkpoint(run, "latest"))
    obs = _observation(str(run / "env.yaml"))
    np.testing.assert_allclose(policy.sample(obs, np.zeros(JOINTS)), policy.act(obs), atol=1e-6)
    # tanh, not a clip: far past the bound it nears 1 without reaching the clip's corner exactly.
    pushed = policy.sample(obs, np.full(JOINTS, 2.0))
    assert np.all(pushed < 1.0) and np.all(pushed > np.tanh(1.0))


def test_sampling_the_shipped_bundle_without_noise_is_its_action() -> None:
    source = load_policy_source("pretrained")
    obs = _observation(source.env_preset)
    np.testing.assert_allclose(source.sample(obs, np.zeros(JOINTS)), source.act(obs), atol=1e-5)
    noisy = source.sample(obs, np.full(JOINTS, 5.0))
    np.testing.assert_array_equal(noisy, np.ones(JOINTS, np.float32))  # clipped like the training draws
