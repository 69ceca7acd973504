"""Damaged checkpoints, mismatched checkpoints and bad commands fail with clear errors, changing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stairbot.cli import main
from stairbot.errors import ConfigError, StairbotError
from stairbot.training import trainer
from stairbot.training.checkpoints import CheckpointError, list_checkpoints
from stairbot.training.recipe import load_recipe

from .helpers import CopyRun, TrainedRun, snapshot


def _latest(path: Path) -> Path:
    return list_checkpoints(path)[-1]


def test_corrupt_model_zip_is_a_checkpoint_error_and_changes_nothing(
    ppo_run: TrainedRun, copy_run: CopyRun
) -> None:
    path = copy_run(ppo_run)
    model = _latest(path) / "model.zip"
    model.write_bytes(model.read_bytes()[:300])  # a truncated zip
    before = snapshot(path)
    with pytest.raises(CheckpointError) as error:
        trainer.resume(path, 512)
    assert "model.zip" in str(error.value) and str(_latest(path)) in str(error.value)
    assert snapshot(path) == before  # no new checkpoint, log, command line or TensorBoard file


def test_failed_resume_leaves_command_txt_alone(ppo_run: TrainedRun, copy_run: CopyRun) -> None:
    path = copy_run(ppo_run)
    (_latest(path) / "model.zip").write_bytes(b"not a zip")
    before = (path / "command.txt").read_text()
    with pytest.raises(CheckpointError):
        trainer.resume(path, 512)
    assert (path / "command.txt").read_text() == before


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"garbage, not an npz file" * 4, id="garbage"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
    ],
)
def test_unreadable_normalization_is_a_checkpoint_error(
    ppo_run: TrainedRun, copy_run: CopyRun, damage
) -> None:
    path = copy_run(ppo_run)
    stats = _latest(path) / "normalization.npz"
    stats.write_bytes(damage(stats.read_bytes()))
    before = snapshot(path)
    with pytest.raises(CheckpointError, match=r"normalization statistics .*normalization\.npz"):
        trainer.resume(path, 512)
    assert snapshot(path) == before


def test_normalization_without_its_arrays_is_a_checkpoint_error(
    ppo_run: TrainedRun, copy_run: CopyRun
) -> None:
    path = copy_run(ppo_run)
    np.savez(_latest(path) / "normalization.npz", obs_mean=np.zeros(69))  # a valid npz, arrays missing
    with pytest.raises(CheckpointError, match="obs_var"):
        trainer.resume(path, 512)


@pytest.mark.parametrize(
    ("field", "value"),
    [("robot", "a1"), ("observation_size", 12), ("algorithm", "sac")],
)
def test_checkpoint_of_another_robot_or_layout_is_refused(
    ppo_run: TrainedRun, copy_run: CopyRun, field: str, value: object
) -> None:
    path = copy_run(ppo_run)
    meta_file = _latest(path) / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta[field] = value
    meta_file.write_text(json.dumps(meta))
    before = snapshot(path)
    with pytest.raises(CheckpointError, match=rf"{field}: checkpoint has {value!r}, this run has") as error:
        trainer.resume(path, 512)
    assert str(_latest(path)) in str(error.value)
    assert snapshot(path) == before  # refused before anything is written, command.txt included


def test_incomplete_checkpoint_is_refused(ppo_run: TrainedRun, copy_run: CopyRun) -> None:
    path = copy_run(ppo_run)
    (_latest(path) / "curriculum.json").unlink()
    with pytest.raises(CheckpointError, match=r"incomplete: missing \['curriculum.json'\]"):
        trainer.resume(path, 512)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{not json", id="not-json"),
        pytest.param('{"levels": [0.1]}', id="no-difficulties"),
        pytest.param('{"difficulties": [1.5]}', id="out-of-range"),
    ],
)
def test_damaged_curriculum_is_a_checkpoint_error(
    ppo_run: TrainedRun, copy_run: CopyRun, content: str
) -> None:
    path = copy_run(ppo_run)
    (_latest(path) / "curriculum.json").write_text(content)
    with pytest.raises(CheckpointError, match=r"curriculum\.json"):
        trainer.resume(path, 512)


def test_resume_of_a_directory_that_is_not_a_run_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not a run")
    assert main(["train", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stairbot: error:") and "not a stairbot run directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_resume_of_a_run_without_checkpoints_is_a_checkpoint_error(
    ppo_run: TrainedRun, copy_run: CopyRun
) -> None:
    path = copy_run(ppo_run)
    for checkpoint in list_checkpoints(path):
        for file in checkpoint.iterdir():
            file.unlink()
        checkpoint.rmdir()
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        trainer.resume(path, 512)


def test_unknown_recipe_key_is_named_with_the_allowed_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match=r"ppo\.learnin_rate.*allowed keys: \[.*'learning_rate'"):
        load_recipe("ppo_stairs", ["ppo.learnin_rate=1"])
    out = tmp_path / "run"
    assert main(["train", "ppo_stairs", "ppo.learnin_rate=1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "stairbot: error:" in err and "learnin_rate" in err
    assert not out.exists()


def test_new_run_into_a_non_empty_directory_is_refused(ppo_run: TrainedRun, copy_run: CopyRun) -> None:
    path = copy_run(ppo_run)
    before = snapshot(path)
    with pytest.raises((FileExistsError, StairbotError), match="already exists and is not empty"):
        trainer.train(ppo_run.recipe, path)
    assert snapshot(path) == before


def test_cli_new_run_into_a_non_empty_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["train", "ppo_stairs", "--out", str(tmp_path), "total_timesteps=64"]) == 2
    assert "stairbot: error:" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("value", ["autox", "auto_-1", "auto_0", "-0.5", "0"])
def test_a_sac_entropy_coefficient_sb3_cannot_take_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"sac\.ent_coef must be 'auto', 'auto_X' \(X > 0"):
        load_recipe("sac_stairs", [f"sac.ent_coef={value}"])


def test_sac_entropy_settings_reach_the_model() -> None:
    from stable_baselines3.common.env_util import make_vec_env

    from stairbot.training.algorithms import build_model
    from stairbot.training.vec import env_factory

    env = make_vec_env(env_factory("stairs_up"), n_envs=1)
    try:
        recipe = load_recipe("sac_stairs", ["sac.ent_coef=auto_0.1", "sac.target_entropy=-24"])
        model = build_model(recipe, env, None)
        assert model.target_entropy == -24.0
        assert model.log_ent_coef.exp().item() == pytest.approx(0.1)
        fixed = build_model(load_recipe("sac_stairs", ["sac.ent_coef=0.05"]), env, None)
        assert fixed.ent_coef_tensor.item() == pytest.approx(0.05)
        default = build_model(load_recipe("sac_stairs"), env, None)
        assert default.target_entropy == -12.0  # -(action dims), SB3's default
    finally:
        env.close()
