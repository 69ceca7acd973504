"""Tiny training budgets and small helpers shared by the training tests.

Every run here is real (PyBullet envs, SB3 models, files on disk) but tiny: a 16-unit network, a
two-riser flight, and `min_base_height_ratio=0.9`, so the untrained robot "falls" within about eight
control steps. Episodes therefore end quickly, episodes.csv gets rows and evaluations take
milliseconds; the robot never reaches the stairs, so the adaptive curriculum demotes by one
`curriculum.step` (0.1) after every episode, which the curriculum tests rely on.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stairbot.training.checkpoints import list_checkpoints
from stairbot.training.recipe import Recipe, load_recipe
from stairbot.training.trainer import TrainResult

TINY = (
    "policy.net_arch=[16]",
    "torch_threads=1",  # the learner shares 2 cores with the envs and other tests
    "env.stairs.num_steps=2",
    "env.termination.min_base_height_ratio=0.9",
    "eval.episodes=1",
    "checkpoint.keep=2",
)
PPO_TINY = (
    *TINY,
    "ppo.n_steps=64",
    "ppo.batch_size=64",
    "ppo.n_epochs=1",
    "n_envs=1",
    "total_timesteps=256",
    "checkpoint.every_steps=64",
    "eval.every_steps=128",
)
SAC_TINY = (
    *TINY,
    "sac.learning_starts=100",
    "sac.batch_size=32",
    "sac.buffer_size=2000",
    "n_envs=1",
    "total_timesteps=300",
    "checkpoint.every_steps=100",
    "eval.every_steps=150",
)
# Two SubprocVecEnv workers: a rollout is 2 x 32 transitions.
PPO_TWO_ENVS = (*PPO_TINY, "n_envs=2", "ppo.n_steps=32", "total_timesteps=128")

EPISODE_COLUMNS = (
    "timesteps",
    "wall_s",
    "return",
    "length",
    "success",
    "steps_climbed",
    "direction",
    "difficulty",
    "termination_reason",
    "success_rate",
    "steps_per_s",
)
EVALUATION_COLUMNS = (
    "timesteps",
    "success_rate",
    "steps_climbed",
    "falls",
    "mean_return",
    "riser_m",
    "best",
    "wall_s",
)
TERMINATION_REASONS = {"fall", "base_contact", "thigh_contact", "out_of_bounds", "success", "time_limit"}


@dataclass(frozen=True)
class TrainedRun:
    """A finished run directory and what made it; tests that mutate it work on a copy."""

    path: Path
    recipe: Recipe
    result: TrainResult


CopyRun = Callable[[TrainedRun], Path]  # the `copy_run` fixture


def tiny_recipe(name: str, overrides: tuple[str, ...], *extra: str) -> Recipe:
    return load_recipe(name, [*overrides, *extra])


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f))


def steps_of(checkpoint: Path) -> int:
    return int(json.loads((checkpoint / "meta.json").read_text())["num_timesteps"])


def checkpoint_steps(run_dir: Path) -> list[int]:
    return [steps_of(c) for c in list_checkpoints(run_dir)]


def snapshot(root: Path, *, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file and folder under `root` with a hash of its bytes: equal snapshots, unchanged tree."""
    found = {}
    for item in sorted(root.rglob("*")):
        rel = item.relative_to(root).as_posix()
        if rel in ignore:
            continue
        found[rel] = hashlib.sha256(item.read_bytes()).hexdigest() if item.is_file() else "<dir>"
    return found
