"""`--init-from`: a new run starts from another run's checkpoint (weights, normalization, curriculum)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from stairbot.cli import main
from stairbot.config import dump_yaml
from stairbot.training.algorithms import build_model
from stairbot.training.checkpoints import CheckpointError, list_checkpoints
from stairbot.training.recipe import load_recipe
from stairbot.training.trainer import expected_meta, normalized_vec_env, train
from stairbot.training.vec import make_vec_env
from stairbot.training.warm_start import WarmStart, resolve_init_checkpoint

from .helpers import PPO_TINY, CopyRun, TrainedRun, read_rows, snapshot

SOURCE_DIFFICULTY = 0.7  # written into the source's best/ checkpoint; the recipe starts at 0.0


@pytest.fixture
def source(ppo_run: TrainedRun, copy_run: CopyRun) -> Path:
    """A copy of the tiny PPO run whose best/ checkpoint says its env reached difficulty 0.7."""
    path = copy_run(ppo_run)
    (path / "best" / "curriculum.json").write_text(json.dumps({"difficulties": [SOURCE_DIFFICULTY]}))
    return path


def test_a_run_directory_resolves_to_its_best_checkpoint(source: Path) -> None:
    assert resolve_init_checkpoint(source) == source / "best"
    latest = list_checkpoints(source)[-1]
    assert resolve_init_checkpoint(latest) == latest


def test_apply_loads_weights_normalization_and_curriculum(source: Path, tmp_path: Path) -> None:
    recipe = load_recipe("ppo_stairs", PPO_TINY)
    init = WarmStart.read(source, expected_meta(recipe))
    dump_yaml(recipe.env, tmp_path / "env.yaml")
    env = normalized_vec_env(recipe, make_vec_env(tmp_path / "env.yaml", 1, seed=5))
    try:
        model = build_model(recipe, env, None)
        init.apply(model, env, adaptive_curriculum=True)
        reference = PPO.load(source / "best" / "model.zip", device="cpu")
        mine, theirs = model.policy.state_dict(), reference.policy.state_dict()
        assert mine.keys() == theirs.keys()
        for name, tensor in theirs.items():
            torch.testing.assert_close(mine[name], tensor, rtol=0, atol=0, msg=name)
        with np.load(source / "best" / "normalization.npz") as stats:
            np.testing.assert_array_equal(env.obs_rms.mean, stats["obs_mean"])
            np.testing.assert_array_equal(env.obs_rms.var, stats["obs_var"])
        assert env.get_attr("difficulty") == [SOURCE_DIFFICULTY]
    finally:
        env.close()


def test_cli_trains_a_new_run_from_the_source(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "finetune"
    code = main(
        ["train", "ppo_stairs", *PPO_TINY, "--timesteps", "64", "--init-from", str(source), "--out", str(out)]
    )
    assert code == 0
    config = (out / "config.yaml").read_text()
    assert f"init_from: {source.resolve()}" in config
    # A new run: its own step counter (one checkpoint at 64), its first episode on the source's stairs.
    assert [c.name for c in list_checkpoints(out)] == ["step_000000000064"]
    first = read_rows(out / "episodes.csv")[0]
    assert float(first["difficulty"]) == pytest.approx(SOURCE_DIFFICULTY)


def test_another_algorithm_is_refused_before_the_run_directory_exists(
    sac_run: TrainedRun, tmp_path: Path
) -> None:
    recipe = load_recipe("ppo_stairs", [*PPO_TINY, f"init_from={sac_run.path}"])
    with pytest.raises(CheckpointError, match="algorithm: checkpoint has 'sac', this run has 'ppo'"):
        train(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_another_network_shape_is_a_clear_error_and_leaves_no_run_behind(
    source: Path, tmp_path: Path
) -> None:
    recipe = load_recipe("ppo_stairs", [*PPO_TINY, "policy.net_arch=[32]", f"init_from={source}"])
    with pytest.raises(CheckpointError, match="net_arch"):
        train(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert (source / "best" / "model.zip").is_file()  # the source is never touched


def test_a_path_that_is_no_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        resolve_init_checkpoint(tmp_path)


def test_resume_refuses_init_from(source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(source)
    assert main(["train", "--resume", str(source), "--init-from", str(source)]) != 0
    assert "--resume continues a run as it was configured" in capsys.readouterr().err
    assert snapshot(source) == before
