"""Vectorized environments for training and evaluation.

Each env is created inside its worker process from the run's resolved env preset file (`env.yaml`),
so workers need nothing but a path and a few overrides. K > 1 envs run in W worker processes, each
stepping a block of K / W envs (`BlockSubprocVecEnv`), each env with its own PyBullet client, each
worker with a single torch thread; K = 1 runs in-process.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor

from stairbot.training.worker_vec import BlockSubprocVecEnv

# The "stairbot:" prefix makes Gymnasium import the package (registering the ids) in fresh workers.
ENV_ID = "stairbot:stairbot/StairClimb-v0"


def _make_env(preset: str, overrides: Mapping[str, Any]) -> gym.Env:
    import torch

    if multiprocessing.parent_process() is not None:
        # A subprocess worker: one torch thread (K workers on K cores, no oversubscription with the
        # learner), and Ctrl-C is the main process's to handle. The terminal sends SIGINT to the
        # whole process group; a worker that died of it could not answer the final checkpoint.
        torch.set_num_threads(1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return gym.make(ENV_ID, preset=preset, overrides=dict(overrides))


def env_factory(preset: Path | str, overrides: Mapping[str, Any] | None = None) -> Callable[[], gym.Env]:
    """A picklable function that builds one env from a preset path (or name) and overrides."""
    return functools.partial(_make_env, str(preset), dict(overrides or {}))


def default_workers(n_envs: int) -> int:
    """Worker processes for `n_envs` envs when the recipe does not say: one per core, at most one
    per env (more processes than cores only add context switches)."""
    return max(1, min(n_envs, os.cpu_count() or 1))


def make_vec_env(
    preset: Path | str,
    n_envs: int,
    seed: int,
    overrides: Mapping[str, Any] | None = None,
    workers: int | None = None,
) -> VecEnv:
    """`n_envs` monitored envs seeded `seed`, `seed + 1`, ...: in-process when there is one, else in
    `workers` subprocesses (default `default_workers`) that each step a block of them."""
    factories = [env_factory(preset, overrides)] * n_envs
    workers = default_workers(n_envs) if workers is None else min(workers, n_envs)
    vec: VecEnv = BlockSubprocVecEnv(factories, workers) if n_envs > 1 else DummyVecEnv(factories)
    vec.seed(seed)
    return VecMonitor(vec)
