"""`stairbot bench train`: PPO training steps/s beside env-only collection on the same cores.

Env-only collection steps the very VecEnv stack training uses (subprocess workers, VecMonitor,
VecNormalize) with random actions and no learner. Each env count is measured with one worker process
per env (SB3's `SubprocVecEnv` layout) and, where different, with the default of one worker per core
stepping a block of envs (`BlockSubprocVecEnv`). PPO end to end is `model.learn` on a fresh model of
the recipe: collection with policy inference in the main process, plus the gradient updates. Periodic
evaluation and checkpoints are left out (they are the run's choice, not the learner's cost).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO

from stairbot.config import dump_yaml
from stairbot.errors import ConfigError
from stairbot.training.algorithms import build_model
from stairbot.training.recipe import Algorithm, Recipe, load_recipe
from stairbot.training.trainer import normalized_vec_env
from stairbot.training.vec import default_workers, make_vec_env


@dataclass(frozen=True)
class TrainBenchRow:
    n_envs: int
    workers: int  # env worker processes (n_envs: one per env)
    env_only_steps_per_s: float
    ppo_steps_per_s: float
    update_share: float  # fraction of PPO wall time spent in gradient updates

    @property
    def ratio(self) -> float:
        return self.ppo_steps_per_s / self.env_only_steps_per_s


def _env_only(recipe: Recipe, preset: Path, steps: int) -> float:
    env = normalized_vec_env(
        recipe, make_vec_env(preset, recipe.n_envs, recipe.seed, workers=recipe.env_workers)
    )
    try:
        rng = np.random.default_rng(0)
        env.reset()
        vec_steps = steps // recipe.n_envs
        action_shape = env.action_space.shape
        assert action_shape is not None  # a Box
        actions = rng.uniform(-1, 1, (vec_steps, recipe.n_envs, *action_shape))
        start = time.perf_counter()
        for action in actions:
            env.step(action.astype(np.float32))
        return vec_steps * recipe.n_envs / (time.perf_counter() - start)
    finally:
        env.close()


def _ppo(recipe: Recipe, preset: Path, steps: int) -> tuple[float, float]:
    env = normalized_vec_env(
        recipe, make_vec_env(preset, recipe.n_envs, recipe.seed, workers=recipe.env_workers)
    )
    try:
        model = build_model(recipe, env, tensorboard_dir=None)
        assert isinstance(model, PPO)  # run() only takes PPO recipes
        model.learn(recipe.ppo.n_steps * recipe.n_envs)  # warm-up rollout and update, not timed
        train = model.train
        update_time = 0.0

        def timed_train() -> None:
            nonlocal update_time
            t = time.perf_counter()
            train()
            update_time += time.perf_counter() - t

        model.train = timed_train  # type: ignore[method-assign]  # time the updates alone
        start = time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)
        elapsed = time.perf_counter() - start
        return steps / elapsed, update_time / elapsed
    finally:
        env.close()


def run(
    recipe_name: str = "ppo_stairs", rollouts: int = 3, n_envs: list[int] | None = None, repeats: int = 1
) -> list[TrainBenchRow]:
    """Measure for each env count (default 1, 2, one and two per core) and worker layout; print a table."""
    cores = os.cpu_count() or 1
    counts = n_envs or sorted({1, min(2, cores), cores, 2 * cores})
    rows = []
    workdir = tempfile.TemporaryDirectory(prefix="stairbot-bench-")
    preset = Path(workdir.name) / "env.yaml"  # workers build their envs from a preset file
    dump_yaml(load_recipe(recipe_name).env, preset)
    print(f"recipe {recipe_name}, {rollouts} PPO rollouts per measurement, learner torch threads as recipe")
    print(
        f"{'envs':>5}{'workers':>8}{'env-only steps/s':>18}{'PPO steps/s':>13}{'PPO/env':>9}"
        f"{'update share':>14}"
    )
    layouts = [(n, w) for n in counts for w in sorted({n, default_workers(n)}, reverse=True)]
    for n, workers in layouts:
        recipe = load_recipe(recipe_name, [f"n_envs={n}", f"env_workers={workers}"])
        if recipe.algorithm is not Algorithm.PPO:
            raise ConfigError(f"bench train measures PPO; recipe {recipe_name} is {recipe.algorithm.value}")
        torch.set_num_threads(recipe.torch_threads)
        steps = recipe.ppo.n_steps * n * rollouts
        env_rates, ppo_rates, shares = [], [], []
        for _ in range(repeats):
            env_rates.append(_env_only(recipe, preset, steps))
            rate, share = _ppo(recipe, preset, steps)
            ppo_rates.append(rate)
            shares.append(share)
        row = TrainBenchRow(
            n, workers, statistics.median(env_rates), statistics.median(ppo_rates), statistics.median(shares)
        )
        rows.append(row)
        print(
            f"{n:>5}{workers:>8}{row.env_only_steps_per_s:>18.0f}{row.ppo_steps_per_s:>13.0f}"
            f"{row.ratio:>9.2f}{row.update_share:>14.0%}"
        )
    workdir.cleanup()
    return rows
