"""SAC's n-step returns and its flat, small initial noise: real models on a real tiny env."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.save_util import load_from_pkl

from stairbot.errors import ConfigError
from stairbot.training import trainer
from stairbot.training.algorithms import build_model
from stairbot.training.checkpoints import list_checkpoints
from stairbot.training.recipe import Recipe, load_recipe
from stairbot.training.trainer import normalized_vec_env
from stairbot.training.vec import make_vec_env

from .helpers import SAC_TINY


@contextmanager
def _model(*overrides: str) -> Iterator[SAC]:
    """A fresh SAC model of the tiny recipe with `overrides`, on a real one-env stairs_up."""
    recipe = load_recipe("sac_stairs", [*SAC_TINY, *overrides])
    env = normalized_vec_env(recipe, make_vec_env("stairs_up", 1, recipe.seed))
    try:
        model = build_model(recipe, env, tensorboard_dir=None)
        assert isinstance(model, SAC)
        yield model
    finally:
        env.close()


def _log_stds(model: SAC, observations: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        _, log_std, _ = model.actor.get_action_dist_params(torch.as_tensor(observations))
    return log_std


def test_initial_log_std_makes_the_first_noise_flat_and_small() -> None:
    rng = np.random.default_rng(0)
    with _model("sac.initial_log_std=-2.5") as model:
        observations = rng.normal(size=(8, *model.observation_space.shape)).astype(np.float32)
        log_std = _log_stds(model, observations)
        obs = torch.as_tensor(observations[:1]).repeat(4000, 1)
        with torch.no_grad():
            mean, _, _ = model.actor.get_action_dist_params(obs)
            actions = model.actor(obs, deterministic=False)
    assert log_std.shape == (8, 12)
    torch.testing.assert_close(log_std, torch.full_like(log_std, -2.5))
    # The samples spread as that std says: undo the tanh and measure around the mean.
    pre_tanh = torch.atanh(actions.clamp(-0.999999, 0.999999)) - mean
    assert float(pre_tanh.std()) == pytest.approx(np.exp(-2.5), rel=0.1)


def test_without_it_sac_keeps_its_own_state_dependent_init() -> None:
    rng = np.random.default_rng(0)
    with _model() as model:
        observations = rng.normal(size=(8, *model.observation_space.shape)).astype(np.float32)
        log_std = _log_stds(model, observations)
    # PyTorch's default init: log stds near 0 that differ from one observation to the next.
    assert float(log_std.abs().mean()) < 1.0
    assert float(log_std.std(dim=0).mean()) > 1e-3


@pytest.mark.parametrize("n_steps", [1, 3])
def test_n_steps_picks_the_replay_buffer(n_steps: int) -> None:
    with _model(f"sac.n_steps={n_steps}", "sac.gamma=0.98") as model:
        buffer = model.replay_buffer
    if n_steps == 1:
        assert type(buffer) is ReplayBuffer
    else:
        assert isinstance(buffer, NStepReplayBuffer)
        assert (buffer.n_steps, buffer.gamma) == (3, 0.98)


def test_an_n_step_run_trains_and_resumes_with_its_n_step_buffer(tmp_path: Path) -> None:
    recipe: Recipe = load_recipe("sac_stairs", [*SAC_TINY, "sac.n_steps=3", "sac.initial_log_std=-2"])
    path = tmp_path / "run"
    trainer.train(recipe, path)
    saved = load_from_pkl(list_checkpoints(path)[-1] / "replay_buffer.pkl")
    assert isinstance(saved, NStepReplayBuffer) and saved.n_steps == 3
    # Returns over 3 steps: a sample's discount is gamma^k with k the steps summed (3 unless the
    # episode ended sooner), never the 1-step gamma alone for every sample.
    samples = saved.sample(256)
    discounts = samples.discounts.numpy().ravel()
    powers = np.array([0.99**k for k in (1, 2, 3)])
    assert np.isclose(discounts[:, None], powers[None, :]).any(axis=1).all()
    assert np.isclose(discounts, 0.99**3).mean() > 0.5
    result = trainer.resume(path, 400)
    assert result.num_timesteps == 400
    resumed = load_from_pkl(list_checkpoints(path)[-1] / "replay_buffer.pkl")
    assert isinstance(resumed, NStepReplayBuffer) and resumed.n_steps == 3 and resumed.size() == 400


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("sac.n_steps=0",), r"n_steps must be in \[1, 100\], got 0"),
        (("sac.initial_log_std=3",), r"initial_log_std must be in \[-20, 2\], got 3"),
        (
            ("sac.use_sde=true", "sac.initial_log_std=-2"),
            r"initial_log_std sets the log-std layer of SAC without gSDE.*policy\.log_std_init",
        ),
    ],
)
def test_bad_sac_options_say_what_is_allowed(overrides: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_recipe("sac_stairs", [*SAC_TINY, *overrides])
