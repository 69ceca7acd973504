"""Tiny real training runs, built once per test session and shared by the tests that only read them.

Under pytest-xdist the first worker to need a run trains it and the others wait for it and reuse it
(two cores should not train the same run twice). A test that changes a run (resume, corrupt a file)
works on `copy_run(...)`, never on the original.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from stairbot.training import trainer
from stairbot.training.trainer import TrainResult

from .helpers import PPO_TINY, PPO_TWO_ENVS, SAC_TINY, CopyRun, TrainedRun, tiny_recipe

_WAIT_S = 600.0


def _result_to_json(result: TrainResult) -> str:
    return json.dumps(
        {
            "run_dir": str(result.run_dir),
            "num_timesteps": result.num_timesteps,
            "interrupted": result.interrupted,
            "last_checkpoint": str(result.last_checkpoint),
        }
    )


def _result_from_json(text: str) -> TrainResult:
    data = json.loads(text)
    if "error" in data:
        raise RuntimeError(f"the worker that trained this shared run failed: {data['error']}")
    return TrainResult(
        Path(data["run_dir"]), data["num_timesteps"], data["interrupted"], Path(data["last_checkpoint"])
    )


def _shared_run(
    tmp_path_factory: pytest.TempPathFactory, key: str, name: str, overrides: tuple[str, ...]
) -> TrainedRun:
    recipe = tiny_recipe(name, overrides)
    if os.environ.get("PYTEST_XDIST_WORKER") is None:  # a single process: nothing to share
        path = tmp_path_factory.mktemp(key) / "run"
        return TrainedRun(path, recipe, trainer.train(recipe, path))
    root = tmp_path_factory.getbasetemp().parent  # this session's folder, common to its workers
    path = root / f"shared-{key}" / "run"
    done = root / f"shared-{key}.json"
    try:
        (root / f"shared-{key}.claim").open("x").close()  # exclusive create: one worker trains
    except FileExistsError:
        deadline = time.monotonic() + _WAIT_S
        while not done.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"shared run {key} not ready after {_WAIT_S} s") from None
            time.sleep(0.1)
        return TrainedRun(path, recipe, _result_from_json(done.read_text()))
    partial = done.with_suffix(".partial")
    try:
        result = trainer.train(recipe, path)
        partial.write_text(_result_to_json(result))
    except BaseException as exc:
        partial.write_text(json.dumps({"error": repr(exc)}))
        raise
    finally:
        partial.replace(done)  # readers see the whole file or none
    return TrainedRun(path, recipe, result)


@pytest.fixture(scope="session")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """PPO, 1 env, 256 steps: checkpoints every 64 (keep 2), evaluations at 128 and 256."""
    return _shared_run(tmp_path_factory, "ppo", "ppo_stairs", PPO_TINY)


@pytest.fixture(scope="session")
def sac_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """SAC, 1 env, 300 steps: checkpoints every 100 (keep 2), evaluations at 150 and 300."""
    return _shared_run(tmp_path_factory, "sac", "sac_stairs", SAC_TINY)


@pytest.fixture(scope="session")
def ppo_run_two_envs(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """PPO on 2 SubprocVecEnv workers, 128 steps."""
    return _shared_run(tmp_path_factory, "ppo-two-envs", "ppo_stairs", PPO_TWO_ENVS)


@pytest.fixture
def copy_run(tmp_path: Path) -> CopyRun:
    """A private copy of a shared run directory, for tests that modify it."""

    def copy(run: TrainedRun) -> Path:
        target = tmp_path / f"copy-{run.path.parent.name}"
        shutil.copytree(run.path, target)
        return target

    return copy
