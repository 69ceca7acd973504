"""Evaluation under action noise: the policy as its own PPO training explores it.

A real stairs env, wrapped to record the actions that reach it: the noise has the std asked for, is
clipped to the action box, repeats for the same episode seed, and is absent at sigma 0.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from stairbot.errors import ConfigError
from stairbot.evaluation import evaluate
from stairbot.training.vec import env_factory

JOINTS = 12
STEPS = 60  # control steps per episode: enough actions for the std, short enough to be quick


class _Constant:
    """A policy that always returns the same action."""

    def __init__(self, value: float) -> None:
        self.action = np.full(JOINTS, value, np.float32)

    def act(self, observation: np.ndarray) -> np.ndarray:
        return self.action.copy()


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


@pytest.mark.parametrize("sigma", [-0.1, float("nan"), float("inf")])
def test_bad_noise_is_a_clear_error(sigma: float) -> None:
    with pytest.raises(ConfigError, match="action noise must be a finite standard deviation >= 0"):
        evaluate(_Constant(0.0), lambda: pytest.fail("no env before the noise is checked"), 1, 0, sigma)
