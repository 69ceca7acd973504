"""`stairbot average`: the mean of real checkpoints of a real tiny PPO run, and what it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from stairbot.cli import main
from stairbot.errors import StairbotError
from stairbot.policy_source import load_policy_source
from stairbot.training.averaging import AVERAGE_FILE, _mean_state_dict, average_checkpoints
from stairbot.training.checkpoints import list_checkpoints, load_normalization, read_meta

from .helpers import CopyRun, TrainedRun


def _params(checkpoint: Path) -> dict[str, torch.Tensor]:
    return PPO.load(checkpoint / "model.zip", device="cpu").policy.state_dict()


def test_the_average_holds_the_mean_weights_and_statistics(
    ppo_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = list_checkpoints(ppo_run.path)[-2:]
    a, b = _params(first), _params(second)
    # 64 steps of PPO apart: the test means something only if the two differ
    assert any(not torch.equal(a[key], b[key]) for key in a)
    out = tmp_path / "avg"
    assert main(["average", str(first), str(second), "--out", str(out)]) == 0
    assert "the mean of 2 checkpoints" in capsys.readouterr().out

    averaged = _params(out / "best")
    assert averaged.keys() == a.keys()
    for key in a:
        torch.testing.assert_close(averaged[key], (a[key] + b[key]) / 2)
    stats = [load_normalization(c / "normalization.npz") for c in (first, second, out / "best")]
    for key in ("obs_mean", "obs_var", "ret_mean", "ret_var"):
        np.testing.assert_allclose(stats[2][key], (stats[0][key] + stats[1][key]) / 2)
    assert read_meta(out / "best").observation_size == read_meta(first).observation_size
    record = json.loads((out / AVERAGE_FILE).read_text())
    assert [s["checkpoint"] for s in record["sources"]] == [str(first), str(second)]
    assert (out / "env.yaml").read_text() == (ppo_run.path / "env.yaml").read_text()

    # every command that takes a run takes it: it acts as a policy of the run's env
    source = load_policy_source(out)
    action = source.act(np.zeros(stats[2]["obs_mean"].shape, np.float32))
    assert action.shape == (12,) and np.all(np.isfinite(action))


def test_a_run_directory_stands_for_its_best_checkpoint(ppo_run: TrainedRun, tmp_path: Path) -> None:
    latest = list_checkpoints(ppo_run.path)[-2]
    out = average_checkpoints([ppo_run.path, latest], tmp_path / "avg")
    record = json.loads((out / AVERAGE_FILE).read_text())
    assert record["sources"][0]["checkpoint"] == str(ppo_run.path / "best")


def test_refuses_what_cannot_be_averaged(
    ppo_run: TrainedRun, sac_run: TrainedRun, copy_run: CopyRun, tmp_path: Path
) -> None:
    first, second = list_checkpoints(ppo_run.path)[-2:]
    out = tmp_path / "avg"
    with pytest.raises(StairbotError, match="at least two distinct"):
        average_checkpoints([first], out)
    with pytest.raises(StairbotError, match="named twice"):
        average_checkpoints([first, second, first], out)
    with pytest.raises(StairbotError, match="neither a run directory"):
        average_checkpoints([first, tmp_path], out)
    with pytest.raises(StairbotError, match="algorithm: checkpoint has 'sac'"):
        average_checkpoints([first, list_checkpoints(sac_run.path)[-1]], out)

    wider = copy_run(ppo_run)
    env_file = wider / "env.yaml"
    env_file.write_text(env_file.read_text().replace("action_scale_rad: 0.5", "action_scale_rad: 0.65"))
    with pytest.raises(StairbotError, match=r"another env\.control"):
        average_checkpoints([first, list_checkpoints(wider)[-1]], out)
    assert not out.exists()  # nothing written by a refused average

    out.mkdir()
    (out / "kept.txt").write_text("saved work")
    with pytest.raises(StairbotError, match="already exists"):
        average_checkpoints([first, second], out)
    assert [p.name for p in out.iterdir()] == ["kept.txt"]
    shutil.rmtree(out)


def test_networks_of_another_shape_are_refused_by_parameter() -> None:
    small = {"mlp.0.weight": torch.zeros(64, 8), "log_std": torch.zeros(12)}
    large = {"mlp.0.weight": torch.zeros(128, 8), "log_std": torch.ones(12)}
    with pytest.raises(StairbotError, match=r"\['mlp.0.weight'\] differ in name or shape"):
        _mean_state_dict([small, large], [Path("a"), Path("b")])
    mean = _mean_state_dict([small, {**small, "log_std": torch.ones(12)}], [Path("a"), Path("b")])
    torch.testing.assert_close(mean["log_std"], torch.full((12,), 0.5))
