"""`stairbot gradient-noise`: the estimator on gradients of known signal and noise, and the command
on a real tiny PPO run (its envs, its rollouts, its checkpoint left as it was)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from stairbot.cli import main
from stairbot.errors import StairbotError
from stairbot.training.checkpoints import list_checkpoints
from stairbot.training.gradient_noise import (
    GradientNoiseReport,
    gae_advantages,
    half_sample_noise_scale,
    measure_gradient_noise,
    signal_alignment,
    statistics_from_gram,
)

from .helpers import TrainedRun, snapshot


def _gram(gradients: np.ndarray) -> np.ndarray:
    return gradients @ gradients.T


def test_the_estimator_recovers_a_known_signal_and_noise() -> None:
    rng = np.random.default_rng(0)
    dims, rollouts = 2000, 400
    signal = np.zeros(dims)
    signal[:4] = 1.0  # |G|^2 = 4
    sigma = 0.3  # tr(Sigma) = dims * sigma^2 = 180, so B_noise = 45 rollouts
    gradients = signal + sigma * rng.standard_normal((rollouts, dims))
    stats = statistics_from_gram(_gram(gradients))
    assert stats.rollouts == rollouts
    assert stats.signal_sq_norm == pytest.approx(4.0, rel=0.15)
    assert stats.noise_trace == pytest.approx(180.0, rel=0.05)
    assert stats.noise_scale_rollouts == pytest.approx(45.0, rel=0.2)
    # E|g|^2 = |G|^2 + tr(Sigma); two gradients' cosine ~ |G|^2 / E|g|^2
    assert stats.mean_sq_norm == pytest.approx(184.0, rel=0.05)
    assert stats.mean_pairwise_cosine == pytest.approx(4.0 / 184.0, abs=0.01)
    # the estimate's standard error: sqrt(4 |G|^2 sigma^2 / M + 2 dims sigma^4 / M^2) = 0.062
    assert stats.signal_sq_norm_stderr == pytest.approx(0.062, rel=0.3)
    assert stats.signal_resolved
    assert stats.noise_scale_lower_bound_rollouts < stats.noise_scale_rollouts
    spread = half_sample_noise_scale(_gram(gradients))
    assert spread is not None
    low, mid, high = spread
    assert low < stats.noise_scale_rollouts < high
    assert mid == pytest.approx(45.0, rel=0.2)
    assert half_sample_noise_scale(_gram(gradients[:3])) is None  # halves of 1 rollout: no noise estimate


def test_pure_noise_and_pure_signal() -> None:
    rng = np.random.default_rng(1)
    noise_gram = _gram(rng.standard_normal((200, 500)))
    noise_only = statistics_from_gram(noise_gram)
    # |G|^2 = 0: the unbiased estimate scatters around zero by ~ tr(Sigma) / (M sqrt(dims / 2))
    assert abs(noise_only.signal_sq_norm) < 3 * 500 / (200 * np.sqrt(250))
    assert abs(noise_only.mean_pairwise_cosine) < 0.02
    assert not noise_only.signal_resolved
    # no signal: the bound says only that B_noise exceeds what 200 rollouts could resolve
    assert noise_only.noise_scale_lower_bound_rollouts > 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # halves without signal are infinite, not nan
        spread = half_sample_noise_scale(noise_gram)
    assert spread is not None and spread[2] == float("inf")

    same = statistics_from_gram(_gram(np.tile(np.arange(1.0, 6.0), (5, 1))))
    assert same.noise_trace == pytest.approx(0.0, abs=1e-9)
    assert same.signal_sq_norm == pytest.approx(55.0)
    assert same.noise_scale_rollouts == pytest.approx(0.0, abs=1e-9)
    assert same.mean_pairwise_cosine == pytest.approx(1.0)

    opposite = statistics_from_gram(_gram(np.array([[1.0, 0.0], [-1.0, 0.0]])))
    assert opposite.signal_sq_norm < 0 and opposite.noise_scale_rollouts == float("inf")
    with pytest.raises(StairbotError, match=">= 2 gradients"):
        statistics_from_gram(np.ones((1, 1)))


def test_the_signal_cosine_sees_through_the_noise_of_shared_rollouts() -> None:
    rng = np.random.default_rng(2)
    dims, rollouts = 1000, 300
    first_signal, second_signal = np.zeros(dims), np.zeros(dims)
    first_signal[:2] = 1.0
    second_signal[1:3] = 1.0  # cosine 1/2 between the two signals
    noise = 0.8 * rng.standard_normal((rollouts, dims))
    # the two estimators share each rollout's noise (as two lambdas on one rollout do): their
    # plain means' cosine is pulled towards 1, the i != j cross terms are not
    first = first_signal + noise
    second = second_signal + noise + 0.05 * rng.standard_normal((rollouts, dims))
    naive = first.mean(0) @ second.mean(0) / np.linalg.norm(first.mean(0)) / np.linalg.norm(second.mean(0))
    assert naive > 0.7
    alignment = signal_alignment(first, second)
    assert alignment.dot == pytest.approx(1.0, abs=0.15)  # G_a . G_b = 1
    assert alignment.resolved and alignment.cosine == pytest.approx(0.5, abs=0.1)
    assert 0 < alignment.cosine_lower_bound < alignment.cosine
    assert signal_alignment(first, first).cosine == pytest.approx(1.0, abs=1e-9)
    # an estimator with no signal: the dot scatters around zero within its standard error
    unresolved = signal_alignment(first, rng.standard_normal((rollouts, dims)))
    assert abs(unresolved.dot) < 3 * unresolved.dot_stderr
    assert np.isnan(unresolved.cosine) and np.isnan(unresolved.cosine_lower_bound)
    # the dot resolves where |G|^2 of the reference does not: a faint signal seen along a strong one
    clean = first_signal + 0.1 * rng.standard_normal((rollouts, dims))
    faint = 0.2 * first_signal + 1.2 * rng.standard_normal((rollouts, dims))
    assert not statistics_from_gram(faint @ faint.T).signal_resolved
    seen = signal_alignment(clean, faint)
    assert seen.resolved and np.isnan(seen.cosine) and 0 < seen.cosine_lower_bound <= 1
    with pytest.raises(StairbotError, match="two equal stacks"):
        signal_alignment(first[:2], second[:2])


def test_an_unresolved_signal_is_null_in_strict_json() -> None:
    stats = statistics_from_gram(_gram(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5]])))
    assert stats.signal_sq_norm < 0 and not stats.signal_resolved
    report = GradientNoiseReport(
        checkpoint="c",
        num_timesteps=1,
        rollouts=3,
        transitions_per_rollout=100,
        minibatch=50,
        statistics=stats,
        statistics_by_part={"log std": stats},
        half_sample_percentiles_rollouts=None,
        episodes=0,
        mean_episode_return=float("nan"),
    )
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert data["noise_scale_transitions"] is None and data["mean_episode_return"] is None
    assert data["signal_resolved"] is False and data["signal_share_rollout"] == 0.0
    assert data["noise_scale_lower_bound_transitions"] == pytest.approx(
        stats.noise_scale_lower_bound_rollouts * 100
    )


def test_measures_a_real_run_without_changing_it(
    ppo_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = list_checkpoints(ppo_run.path)[-1]
    before = snapshot(ppo_run.path)
    out = tmp_path / "noise.json"
    command = ["gradient-noise", str(checkpoint), "--rollouts", "3", "--seed", "5", "--json", str(out)]
    assert main([*command, "--gae-lambda", "0.5", "1"]) == 0
    text = capsys.readouterr().out
    assert "3 rollouts of 64 transitions" in text and "signal share" in text
    reports = json.loads(out.read_text())["reports"]
    # the run's own lambda first, then the others on the same rollouts
    assert [report["gae_lambda"] for report in reports] == [0.95, 0.5, 1.0]
    report = reports[0]
    assert report["rollouts"] == 3
    assert report["transitions_per_rollout"] == 64  # the tiny recipe: 1 env x n_steps 64
    assert report["minibatch"] == 64
    assert report["episodes"] > 0  # the tiny robot "falls" within about eight steps
    assert {other["episodes"] for other in reports} == {report["episodes"]}
    stats = report["statistics"]
    assert stats["noise_trace"] > 0 and stats["mean_sq_norm"] > 0
    assert -1.0 <= stats["mean_pairwise_cosine"] <= 1.0
    assert report["value_explained_variance"] <= 1.0
    # the lambdas weigh the same rewards differently: different gradients
    assert len({other["statistics"]["mean_sq_norm"] for other in reports}) == 3
    assert report["alignment_to_run_lambda"] is None
    assert all(other["alignment_to_run_lambda"]["dot_stderr"] > 0 for other in reports[1:])
    parts = report["statistics_by_part"]
    assert set(parts) == {"hidden layers", "action head", "log std"}
    # disjoint parameter sets: their squared norms and noise traces add up to the whole actor's
    for key in ("mean_sq_norm", "noise_trace", "signal_sq_norm"):
        assert sum(part[key] for part in parts.values()) == pytest.approx(stats[key], rel=1e-9)
    assert snapshot(ppo_run.path) == before  # a measurement: no statistics, logs or files written

    # seeded: the same rollouts and gradients again
    (again,) = measure_gradient_noise(checkpoint, rollouts=3, seed=5)
    assert again.statistics.mean_sq_norm == pytest.approx(stats["mean_sq_norm"], rel=1e-9)
    (other,) = measure_gradient_noise(checkpoint, rollouts=3, seed=6)
    assert other.statistics.mean_sq_norm != pytest.approx(stats["mean_sq_norm"], rel=1e-9)


def test_advantages_are_recomputed_as_sb3_computes_them(ppo_run: TrainedRun) -> None:
    from stable_baselines3 import PPO

    from stairbot.training.checkpoints import load_model
    from stairbot.training.run_dir import RunDir
    from stairbot.training.trainer import restored_env

    checkpoint = list_checkpoints(ppo_run.path)[-1]
    run = RunDir(ppo_run.path)
    env = restored_env(run, run.recipe(), checkpoint, 3)
    try:
        model = load_model(checkpoint, PPO, env=env, tensorboard_log=None)
        _, callback = model._setup_learn(model.n_steps, callback=None, reset_num_timesteps=True)
        buffer = model.rollout_buffer
        model.collect_rollouts(env, callback, buffer, n_rollout_steps=model.n_steps)
        last_values = model.policy.predict_values(torch.as_tensor(model._last_obs)).detach().numpy()
        dones = np.asarray(model._last_episode_starts, np.float32)
        args = (buffer.rewards, buffer.values, buffer.episode_starts, last_values.reshape(-1), dones)
        assert buffer.episode_starts[1:].any()  # episodes end inside the rollout: the masks matter
        own = gae_advantages(*args, gamma=model.gamma, gae_lambda=model.gae_lambda)
        np.testing.assert_allclose(own, buffer.advantages, atol=1e-5)
        # lambda 1: returns are the sampled rewards discounted to each episode's end (or the
        # bootstrap after the last step), whatever the critic says in between
        returns = gae_advantages(*args, gamma=model.gamma, gae_lambda=1.0) + buffer.values
        continuing = 1.0 - buffer.episode_starts[1:]
        np.testing.assert_allclose(
            returns[:-1], buffer.rewards[:-1] + model.gamma * continuing * returns[1:], atol=1e-4
        )
    finally:
        env.close()


def test_refuses_what_it_cannot_measure(ppo_run: TrainedRun, sac_run: TrainedRun, tmp_path: Path) -> None:
    with pytest.raises(StairbotError, match="at least 2 rollouts"):
        measure_gradient_noise(ppo_run.path, rollouts=1)
    with pytest.raises(StairbotError, match=r"lies in \[0, 1\], got 1.5"):
        measure_gradient_noise(ppo_run.path, rollouts=2, gae_lambdas=[0.9, 1.5])
    with pytest.raises(StairbotError, match="SAC learns from a replay buffer"):
        measure_gradient_noise(sac_run.path, rollouts=2)
    with pytest.raises(StairbotError, match="needs a training checkpoint"):
        measure_gradient_noise(tmp_path, rollouts=2)
