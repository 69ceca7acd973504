"""A short PPO and a short SAC training each leave a complete, readable run directory."""

from __future__ import annotations

import json
import math
import multiprocessing

import numpy as np
import pytest
from stable_baselines3 import PPO, SAC
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stairbot.envs.config import load_env_config
from stairbot.training.checkpoints import checkpoint_name, list_checkpoints, read_meta
from stairbot.training.run_dir import RunDir
from stairbot.training.trainer import expected_meta

from .helpers import (
    EPISODE_COLUMNS,
    EVALUATION_COLUMNS,
    TERMINATION_REASONS,
    TrainedRun,
    read_header,
    read_rows,
)

ALGORITHMS = {"ppo": PPO, "sac": SAC}


@pytest.fixture(params=["ppo", "sac"])
def run(request: pytest.FixtureRequest) -> TrainedRun:
    return request.getfixturevalue(f"{request.param}_run")


def _expected_checkpoint_steps(every: int, total: int, keep: int) -> list[int]:
    steps = list(range(every, total + 1, every))
    if steps[-1] != total:
        steps.append(total)  # the final checkpoint at the end of training
    return steps[-keep:]


def test_train_result_reports_the_budget(run: TrainedRun) -> None:
    assert run.result.num_timesteps == run.recipe.total_timesteps
    assert not run.result.interrupted
    assert run.result.run_dir == run.path
    assert run.result.last_checkpoint == run.path / "checkpoints" / checkpoint_name(run.result.num_timesteps)


def test_config_env_command_and_versions_are_recorded(run: TrainedRun) -> None:
    run_dir = RunDir(run.path)
    assert run_dir.recipe() == run.recipe
    # env.yaml is a complete env preset: loading it alone gives the recipe's env config.
    assert load_env_config(run_dir.env_preset) == run.recipe.env
    lines = (run.path / "command.txt").read_text().splitlines()
    assert len(lines) == 1 and lines[0].strip()
    versions = json.loads((run.path / "versions.json").read_text())
    for key in ("stairbot", "stable-baselines3", "torch", "pybullet", "git_commit"):
        assert isinstance(versions[key], str) and versions[key], key
    assert versions["stairbot"] != "not installed"


def test_checkpoints_are_complete_and_pruned(run: TrainedRun) -> None:
    recipe = run.recipe
    algorithm = recipe.algorithm.value
    checkpoints = list_checkpoints(run.path)
    assert [c.name for c in checkpoints] == [
        checkpoint_name(s)
        for s in _expected_checkpoint_steps(
            recipe.checkpoint.every_steps, recipe.total_timesteps, recipe.checkpoint.keep
        )
    ]
    assert len(checkpoints) <= recipe.checkpoint.keep
    assert not [p.name for p in (run.path / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
    expected = expected_meta(recipe)
    for checkpoint in checkpoints:
        steps = int(checkpoint.name.removeprefix("step_"))
        meta = read_meta(checkpoint)
        assert meta.num_timesteps == steps
        assert (meta.algorithm, meta.robot) == (algorithm, "stairdog")
        assert meta.observation_size == expected.observation_size
        assert meta.observation_terms == expected.observation_terms

        model = ALGORITHMS[algorithm].load(checkpoint / "model.zip", device="cpu")
        assert model.num_timesteps == steps
        assert model.observation_space.shape == (meta.observation_size,)

        with np.load(checkpoint / "normalization.npz", allow_pickle=False) as data:
            stats = {key: data[key] for key in data.files}
        assert stats["obs_mean"].shape == stats["obs_var"].shape == (meta.observation_size,)
        assert np.all(np.isfinite(stats["obs_mean"])) and np.all(stats["obs_var"] > 0)
        # One observation per env per step, plus the first reset: these are the live statistics.
        assert steps <= float(stats["obs_count"]) <= steps + 2 * recipe.n_envs
        assert bool(stats["norm_obs"]) is True
        assert bool(stats["norm_reward"]) is (algorithm == "ppo")
        assert float(stats["clip_obs"]) == recipe.normalize.clip_obs

        difficulties = json.loads((checkpoint / "curriculum.json").read_text())["difficulties"]
        assert len(difficulties) == recipe.n_envs
        assert all(0.0 <= d <= 1.0 for d in difficulties)

        assert (checkpoint / "replay_buffer.pkl").is_file() is (algorithm == "sac")


def test_best_model_and_evaluations_are_recorded(run: TrainedRun) -> None:
    recipe = run.recipe
    assert tuple(read_header(run.path / "evaluations.csv")) == EVALUATION_COLUMNS
    rows = read_rows(run.path / "evaluations.csv")
    every = recipe.eval.every_steps
    assert [int(r["timesteps"]) for r in rows] == list(range(every, recipe.total_timesteps + 1, every))
    for row in rows:
        assert 0.0 <= float(row["success_rate"]) <= 1.0
        assert 0 <= int(row["falls"]) <= recipe.eval.episodes
        assert float(row["riser_m"]) == pytest.approx(recipe.eval.riser_m)
    assert rows[0]["best"] == "1"  # the first evaluation is always the best so far

    best = read_meta(run.path / "best")
    last_best = [int(r["timesteps"]) for r in rows if r["best"] == "1"][-1]
    assert best.num_timesteps == last_best
    key = json.loads((run.path / "best" / "eval_key.json").read_text())
    best_row = next(r for r in rows if int(r["timesteps"]) == last_best)
    assert key[0] == float(best_row["success_rate"])
    assert key[2] == pytest.approx(float(best_row["mean_return"]), abs=1e-3)


def test_episodes_csv_has_a_row_per_episode_with_reward_terms(run: TrainedRun) -> None:
    recipe = run.recipe
    header = read_header(run.path / "episodes.csv")
    nonzero_terms = {f"term/{name}" for name, weight in recipe.env.rewards.items() if weight != 0}
    assert header[: len(EPISODE_COLUMNS)] == list(EPISODE_COLUMNS)
    assert nonzero_terms <= set(header[len(EPISODE_COLUMNS) :])
    rows = read_rows(run.path / "episodes.csv")
    assert len(rows) >= 10  # episodes last about eight steps here
    steps = [int(r["timesteps"]) for r in rows]
    assert steps == sorted(steps) and 0 < steps[-1] <= recipe.total_timesteps
    for row in rows:
        assert int(row["length"]) > 0
        assert row["termination_reason"] in TERMINATION_REASONS
        assert 0.0 <= float(row["difficulty"]) <= 1.0  # the recipe's adaptive curriculum
        # The reward is the sum of its weighted terms, and so is the episode return.
        terms = sum(float(row[column]) for column in header if column.startswith("term/"))
        assert terms == pytest.approx(float(row["return"]), abs=1e-3)
    assert any(float(r["term/fall"]) == recipe.env.rewards["fall"] for r in rows)


def test_tensorboard_logs_training_and_stair_scalars(run: TrainedRun) -> None:
    files = sorted((run.path / "tb").rglob("events.out.tfevents.*"))
    assert files
    tags: set[str] = set()
    for file in files:
        events = EventAccumulator(str(file))
        events.Reload()
        tags |= set(events.Tags()["scalars"])
    assert {"stairs/success_rate", "stairs/difficulty", "rollout/ep_rew_mean", "eval/success_rate"} <= tags
    assert ("train/value_loss" if run.recipe.algorithm.value == "ppo" else "train/critic_loss") in tags


def test_two_subprocess_envs_record_one_curriculum_level_each(ppo_run_two_envs: TrainedRun) -> None:
    run = ppo_run_two_envs
    assert run.result.num_timesteps == 128
    assert [c.name for c in list_checkpoints(run.path)] == [checkpoint_name(64), checkpoint_name(128)]
    for checkpoint in list_checkpoints(run.path):
        difficulties = json.loads((checkpoint / "curriculum.json").read_text())["difficulties"]
        assert len(difficulties) == 2 and all(isinstance(d, float) for d in difficulties)
    rows = read_rows(run.path / "episodes.csv")
    assert len(rows) >= 10 and all(math.isfinite(float(r["return"])) for r in rows)
    assert multiprocessing.active_children() == []  # the workers were shut down
