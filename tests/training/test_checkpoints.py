"""save_checkpoint writes into a temporary directory and renames it: a target is never half-written."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from stairbot.training.checkpoints import (
    CheckpointError,
    CheckpointMeta,
    checkpoint_name,
    list_checkpoints,
    load_normalization,
    read_difficulties,
    read_down_difficulties,
    read_meta,
    save_checkpoint,
)
from stairbot.training.recipe import load_recipe
from stairbot.training.trainer import expected_meta
from stairbot.training.vec import env_factory

from .helpers import snapshot


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[PPO, VecNormalize]]:
    """A real (untrained) PPO model on a real, normalized StairClimb env."""
    env = VecNormalize(DummyVecEnv([env_factory("stairs_up")]))
    model = PPO("MlpPolicy", env, n_steps=16, batch_size=16, policy_kwargs={"net_arch": [8]}, device="cpu")
    yield model, env
    env.close()


@pytest.fixture(scope="module")
def meta() -> CheckpointMeta:
    return expected_meta(load_recipe("ppo_stairs"), num_timesteps=100)


class _FailingModel:
    """Writes part of a model file and then fails, like a full disk or a kill mid-save."""

    def __init__(self, fail_in: str) -> None:
        self.fail_in = fail_in

    def save(self, path: Path) -> None:
        Path(path).write_bytes(b"PK\x03\x04 half a zip")
        if self.fail_in == "save":
            raise OSError("No space left on device")

    def save_replay_buffer(self, path: Path) -> None:
        Path(path).write_bytes(b"half a pickle")
        raise OSError("No space left on device")


def _tmp_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


def test_save_writes_a_complete_checkpoint_and_no_temporary_dir(
    tmp_path: Path, live: tuple[PPO, VecNormalize], meta: CheckpointMeta
) -> None:
    model, env = live
    target = tmp_path / "checkpoints" / checkpoint_name(100)
    assert save_checkpoint(target, model, env, [0.25], meta) == target
    assert sorted(p.name for p in target.iterdir()) == [
        "curriculum.json",
        "meta.json",
        "model.zip",
        "normalization.npz",
    ]
    assert _tmp_dirs(target.parent) == []
    assert read_meta(target) == meta
    assert read_difficulties(target) == [0.25]
    assert load_normalization(target / "normalization.npz")["obs_mean"].shape == (meta.observation_size,)
    assert PPO.load(target / "model.zip", device="cpu").observation_space == model.observation_space
    assert list_checkpoints(tmp_path) == [target]


def test_save_over_an_existing_checkpoint_replaces_it_whole(
    tmp_path: Path, live: tuple[PPO, VecNormalize], meta: CheckpointMeta
) -> None:
    model, env = live
    target = tmp_path / "best"
    save_checkpoint(target, model, env, [0.1], meta)
    (target / "stale.txt").write_text("left by an older writer")
    newer = dataclasses.replace(meta, num_timesteps=200)
    save_checkpoint(target, model, env, [0.2], newer)
    assert read_meta(target) == newer and read_difficulties(target) == [0.2]
    assert not (target / "stale.txt").exists()
    assert _tmp_dirs(tmp_path) == []


def test_separate_down_levels_are_saved_beside_the_levels(
    tmp_path: Path, live: tuple[PPO, VecNormalize], meta: CheckpointMeta
) -> None:
    model, env = live
    shared = save_checkpoint(tmp_path / "shared", model, env, [0.25], meta)
    assert read_down_difficulties(shared) is None  # levels shared by both directions
    separate = save_checkpoint(tmp_path / "separate", model, env, [0.25], meta, down_difficulties=[0.5])
    assert read_difficulties(separate) == [0.25] and read_down_difficulties(separate) == [0.5]
    (separate / "curriculum.json").write_text('{"difficulties": [0.25], "down_difficulties": [1.5]}')
    with pytest.raises(CheckpointError, match="must be null or in"):
        read_down_difficulties(separate)


@pytest.mark.parametrize("fail_in", ["save", "save_replay_buffer"])
def test_failed_save_leaves_the_previous_checkpoint_untouched(
    tmp_path: Path, live: tuple[PPO, VecNormalize], meta: CheckpointMeta, fail_in: str
) -> None:
    model, env = live
    target = tmp_path / "checkpoints" / checkpoint_name(100)
    save_checkpoint(target, model, env, [0.3], meta)
    before = snapshot(target)
    later = dataclasses.replace(meta, num_timesteps=999)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(target, _FailingModel(fail_in), env, [0.9], later)
    assert snapshot(target) == before
    assert read_meta(target) == meta
    assert list_checkpoints(tmp_path) == [target]
    # A save that never completed is no checkpoint either, even under a new name.
    fresh = tmp_path / "checkpoints" / checkpoint_name(200)
    with pytest.raises(OSError):
        save_checkpoint(fresh, _FailingModel(fail_in), env, [0.9], meta)
    assert not fresh.exists()
    assert list_checkpoints(tmp_path) == [target]
    # The next successful save to that name clears what the failed one left behind.
    save_checkpoint(fresh, model, env, [0.4], dataclasses.replace(meta, num_timesteps=200))
    assert read_meta(fresh).num_timesteps == 200
    assert json.loads((fresh / "curriculum.json").read_text()) == {"difficulties": [0.4]}
    assert not (fresh / "replay_buffer.pkl").exists()
    assert f".tmp-{fresh.name}" not in " ".join(_tmp_dirs(fresh.parent))
