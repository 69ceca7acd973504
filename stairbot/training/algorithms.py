"""Recipes -> Stable-Baselines3 models (PPO and SAC on the CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from stairbot.errors import ConfigError
from stairbot.training.bounded_policy import BoundedMeanPolicy
from stairbot.training.recipe import Activation, Algorithm, Recipe

_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {Algorithm.PPO.value: PPO, Algorithm.SAC.value: SAC}
_ACTIVATIONS: dict[Activation, type[nn.Module]] = {
    Activation.ELU: nn.ELU,
    Activation.RELU: nn.ReLU,
    Activation.TANH: nn.Tanh,
}


def algorithm_class(name: str) -> type[BaseAlgorithm]:
    try:
        return _ALGORITHMS[name]
    except KeyError:
        raise ConfigError(f"unknown algorithm {name!r}; known: {sorted(_ALGORITHMS)}") from None


def build_model(recipe: Recipe, env: VecEnv, tensorboard_dir: Path | None) -> BaseAlgorithm:
    """A fresh PPO or SAC model for `env`, configured by the recipe."""
    arch = list(recipe.policy.net_arch)
    activation = _ACTIVATIONS[recipe.policy.activation]
    common: dict[str, Any] = {
        "env": env,
        "seed": recipe.seed,
        "device": "cpu",
        "verbose": 0,
        "tensorboard_log": None if tensorboard_dir is None else str(tensorboard_dir),
    }
    if recipe.algorithm is Algorithm.PPO:
        p = recipe.ppo
        # The plain policy unless the bound loss is on: checkpoints of runs without it stay loadable
        # by SB3 alone.
        bounded = p.bound_loss_coef > 0
        return PPO(
            BoundedMeanPolicy if bounded else "MlpPolicy",
            learning_rate=(
                p.learning_rate
                if p.learning_rate_end is None
                else LinearSchedule(p.learning_rate, p.learning_rate_end, end_fraction=1.0)
            ),
            n_steps=p.n_steps,
            batch_size=p.batch_size,
            n_epochs=p.n_epochs,
            gamma=p.gamma,
            gae_lambda=p.gae_lambda,
            clip_range=p.clip_range,
            ent_coef=p.ent_coef,
            vf_coef=p.vf_coef,
            max_grad_norm=p.max_grad_norm,
            target_kl=p.target_kl,
            policy_kwargs={
                "net_arch": {"pi": arch, "vf": arch},
                "activation_fn": activation,
                "log_std_init": recipe.policy.log_std_init,
                **({"action_bound": p.action_bound, "bound_loss_coef": p.bound_loss_coef} if bounded else {}),
            },
            **common,
        )
    s = recipe.sac
    model = SAC(
        "MlpPolicy",
        learning_rate=s.learning_rate,
        buffer_size=s.buffer_size,
        learning_starts=s.learning_starts,
        batch_size=s.batch_size,
        tau=s.tau,
        gamma=s.gamma,
        train_freq=s.train_freq,
        gradient_steps=s.gradient_steps,
        ent_coef=s.ent_coef if str(s.ent_coef).startswith("auto") else float(s.ent_coef),
        target_entropy="auto" if s.target_entropy is None else s.target_entropy,
        use_sde=s.use_sde,
        sde_sample_freq=s.sde_sample_freq,
        n_steps=s.n_steps,
        policy_kwargs={
            "net_arch": {"pi": arch, "qf": arch},
            "activation_fn": activation,
            **({"log_std_init": recipe.policy.log_std_init} if s.use_sde else {}),
        },
        **common,
    )
    if s.initial_log_std is not None:
        start_log_std_at(model, s.initial_log_std)
    return model


def start_log_std_at(model: SAC, log_std: float) -> None:
    """Make a fresh SAC actor's (non-gSDE) log-std head output `log_std` for every observation.

    Zero weights and a constant bias: the head only starts flat; its weights still get gradients
    (the features times the log std's), so it goes on to learn a state-dependent log std. Called on
    a fresh model, before any update, so the optimizer holds no moments for the old values.
    """
    head = model.actor.log_std
    if not isinstance(head, nn.Linear):
        raise ConfigError("sac.initial_log_std needs SAC without gSDE (its log std is then a layer)")
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(log_std)
