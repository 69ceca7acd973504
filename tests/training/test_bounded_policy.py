"""The bound loss: a charge on action means beyond the clip, added to PPO's gradient by a hook."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from stairbot.errors import ConfigError
from stairbot.training.algorithms import build_model
from stairbot.training.bounded_policy import BoundedMeanPolicy, bound_loss
from stairbot.training.recipe import load_recipe
from stairbot.training.vec import env_factory

from .helpers import PPO_TINY

OUTSIDE_BIAS = 3.0  # joint 0's mean, far past the env's clip at 1


def test_bound_loss_is_zero_inside_the_bound_and_quadratic_beyond() -> None:
    means = torch.tensor([[0.5, -1.0, 1.5, -3.0], [0.0, 0.0, 0.0, 0.0]])
    # Row 1: 0.5^2 + 2^2 = 4.25; row 2: 0. Mean over rows.
    assert bound_loss(means, 1.0).item() == pytest.approx(4.25 / 2)
    assert bound_loss(means, 3.0).item() == 0.0


def _policy(coef: float) -> BoundedMeanPolicy:
    torch.manual_seed(0)
    observation_space = gym.spaces.Box(-10.0, 10.0, (8,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    policy = BoundedMeanPolicy(
        observation_space, action_space, lambda _: 1e-3, net_arch=[16], bound_loss_coef=coef
    )
    with torch.no_grad():
        policy.action_net.bias.copy_(torch.tensor([0.0, 2.0, -3.0, 0.5]))
    return policy


def test_the_hook_adds_exactly_the_bound_loss_gradient() -> None:
    """PPO's loss through the hooked policy has the gradient of that loss plus coef x bound_loss."""
    coef = 0.7
    hooked, plain = _policy(coef), _policy(0.0)
    observations = torch.randn(32, 8)
    actions = torch.rand(32, 4) * 2 - 1
    _, log_prob, _ = hooked.evaluate_actions(observations, actions)
    (-log_prob.mean()).backward()

    _, log_prob, _ = plain.evaluate_actions(observations, actions)
    mean = plain.get_distribution(observations).distribution.mean
    (-log_prob.mean() + coef * bound_loss(mean, 1.0)).backward()

    compared = 0
    for (name, a), (_, b) in zip(hooked.named_parameters(), plain.named_parameters(), strict=True):
        assert (a.grad is None) == (b.grad is None), name  # the value net takes no part here
        if a.grad is not None and b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, msg=name)
            compared += 1
    assert compared >= 4  # the actor's layers, the action head and log_std
    # Only the two means beyond the bound (2.0 and -3.0) drew the extra gradient onto their biases.
    extra = hooked.action_net.bias.grad - _policy_grad_without_charge(observations, actions)
    assert extra[0].item() == pytest.approx(0.0, abs=1e-6) and extra[3].item() == pytest.approx(0.0, abs=1e-6)
    assert extra[1].item() > 0 > extra[2].item()  # descending it pulls 2.0 down and -3.0 up


def _policy_grad_without_charge(observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    policy = _policy(0.0)
    _, log_prob, _ = policy.evaluate_actions(observations, actions)
    (-log_prob.mean()).backward()
    assert policy.action_net.bias.grad is not None
    return policy.action_net.bias.grad


def _joint0_mean_after_training(coef: float) -> tuple[float, float, PPO]:
    """Joint 0's action mean on one observation before and after 256 steps of tiny PPO (16 updates)."""
    recipe = load_recipe(
        "ppo_stairs", [*PPO_TINY, "ppo.learning_rate=0.01", "ppo.n_epochs=4", f"ppo.bound_loss_coef={coef}"]
    )
    tiny_env = {"stairs.num_steps": 2, "termination.min_base_height_ratio": 0.9}  # as PPO_TINY's
    env = DummyVecEnv([env_factory(recipe.env_preset, tiny_env)])
    model = build_model(recipe, env, None)
    assert isinstance(model, PPO)
    with torch.no_grad():
        model.policy.action_net.bias[0] = OUTSIDE_BIAS
    observation = torch.as_tensor(env.reset())

    def joint0_mean() -> float:
        with torch.no_grad():
            return float(model.policy.get_distribution(observation).distribution.mean[0, 0])

    before = joint0_mean()
    model.learn(256)
    return before, joint0_mean(), model


@pytest.fixture(scope="module")
def trained_with_charge() -> tuple[float, float, PPO]:
    return _joint0_mean_after_training(1.0)


def test_training_with_the_charge_brings_a_clipped_mean_back_to_the_bound(
    trained_with_charge: tuple[float, float, PPO],
) -> None:
    before, after, model = trained_with_charge
    assert isinstance(model.policy, BoundedMeanPolicy)
    plain_before, plain_after, plain = _joint0_mean_after_training(0.0)
    assert type(plain.policy) is not BoundedMeanPolicy  # off: SB3's own policy class
    assert before == pytest.approx(plain_before, abs=0.3)
    assert before > 2.0
    # Every sample of a mean ~3 clips to 1: PPO alone barely moves it; the charge pulls it in.
    assert abs(plain_after - plain_before) < 0.1  # measured: 3.00 -> 2.98
    assert after < 2.0  # measured: 3.00 -> 1.55


def test_the_charge_survives_save_and_load(
    trained_with_charge: tuple[float, float, PPO], tmp_path: Path
) -> None:
    _, _, model = trained_with_charge
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", device="cpu")
    assert isinstance(loaded.policy, BoundedMeanPolicy)
    assert loaded.policy.bound_loss_coef == 1.0 and loaded.policy.action_bound == 1.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("ppo.bound_loss_coef=-1", r"ppo\.bound_loss_coef must be in \[0, 100\], got -1"),
        ("ppo.action_bound=0", r"ppo\.action_bound must be in \(0, 10\], got 0"),
    ],
)
def test_bad_bound_settings_are_refused(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_recipe("ppo_stairs", [override])
