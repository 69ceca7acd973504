"""Resuming a run continues it: steps, model, normalization, curriculum level, replay buffer, log."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.save_util import load_from_pkl

from stairbot.cli import main
from stairbot.errors import StairbotError
from stairbot.training import trainer
from stairbot.training.checkpoints import checkpoint_name, list_checkpoints
from stairbot.training.trainer import TrainResult

from .helpers import (
    PPO_TINY,
    CopyRun,
    TrainedRun,
    checkpoint_steps,
    read_header,
    read_rows,
    snapshot,
    tiny_recipe,
)

SAVED_DIFFICULTY = 0.7  # the recipe starts its adaptive curriculum at 0.0


@dataclass(frozen=True)
class Resumed:
    path: Path
    before_steps: list[int]
    before_episodes: int
    before_obs_count: float
    result: TrainResult


def _obs_count(checkpoint: Path) -> float:
    with np.load(checkpoint / "normalization.npz", allow_pickle=False) as data:
        return float(data["obs_count"])


@pytest.fixture(scope="module")
def ppo_resumed(ppo_run: TrainedRun, tmp_path_factory: pytest.TempPathFactory) -> Resumed:
    """The PPO run (256 steps) with its last checkpoint's curriculum set to 0.7, resumed to 384."""
    path = tmp_path_factory.mktemp("resumed") / "run"
    shutil.copytree(ppo_run.path, path)
    latest = list_checkpoints(path)[-1]
    (latest / "curriculum.json").write_text(json.dumps({"difficulties": [SAVED_DIFFICULTY]}))
    steps, episodes, obs_count = (
        checkpoint_steps(path),
        len(read_rows(path / "episodes.csv")),
        _obs_count(latest),
    )
    return Resumed(path, steps, episodes, obs_count, trainer.resume(path, 384))


def test_resume_continues_the_step_count(ppo_resumed: Resumed) -> None:
    result = ppo_resumed.result
    assert ppo_resumed.before_steps == [192, 256]
    assert result.num_timesteps == 384 and not result.interrupted
    after = checkpoint_steps(ppo_resumed.path)
    assert after == [320, 384]  # periodic checkpoints carry on from 256, every 64, keep 2
    assert min(after) > max(ppo_resumed.before_steps)
    assert result.last_checkpoint == ppo_resumed.path / "checkpoints" / checkpoint_name(384)


def test_resume_restores_the_model_and_normalization(ppo_resumed: Resumed) -> None:
    latest = list_checkpoints(ppo_resumed.path)[-1]
    model = PPO.load(latest / "model.zip", device="cpu")
    # 4 updates before the resume and 2 after (n_epochs=1): a fresh model would count 2.
    assert model._n_updates == 6
    # The observation statistics kept counting from the checkpoint's, not from zero.
    count = _obs_count(latest)
    assert count >= ppo_resumed.before_obs_count + 128
    assert count <= ppo_resumed.before_obs_count + 128 + 2


def test_resume_restores_the_saved_curriculum_level(ppo_resumed: Resumed) -> None:
    rows = read_rows(ppo_resumed.path / "episodes.csv")[ppo_resumed.before_episodes :]
    difficulties = [float(r["difficulty"]) for r in rows]
    # The first episode after the resume runs at the saved level, not the recipe's 0.0; the policy
    # climbs nothing, so the adaptive curriculum then demotes from there one step at a time.
    assert difficulties[:3] == pytest.approx([0.7, 0.6, 0.5])
    assert all(0.0 <= d <= SAVED_DIFFICULTY for d in difficulties)


def test_resume_appends_to_the_logs(ppo_resumed: Resumed) -> None:
    path = ppo_resumed.path
    assert len((path / "command.txt").read_text().splitlines()) == 2
    rows = read_rows(path / "episodes.csv")
    assert len(rows) > ppo_resumed.before_episodes
    new = rows[ppo_resumed.before_episodes :]
    assert all(256 < int(r["timesteps"]) <= 384 for r in new)
    assert read_header(path / "episodes.csv")[0] == "timesteps"
    assert sum(1 for r in rows if r["timesteps"] == "timesteps") == 0  # no second header line
    evaluations = [int(r["timesteps"]) for r in read_rows(path / "evaluations.csv")]
    assert evaluations == [128, 256, 384]


def test_two_env_resume_restores_each_env_level(ppo_run_two_envs: TrainedRun, copy_run: CopyRun) -> None:
    path = copy_run(ppo_run_two_envs)
    latest = list_checkpoints(path)[-1]
    (latest / "curriculum.json").write_text(json.dumps({"difficulties": [0.7, 0.3]}))
    before = len(read_rows(path / "episodes.csv"))
    result = trainer.resume(path, 256)
    assert result.num_timesteps == 256
    rows = read_rows(path / "episodes.csv")[before:]
    difficulties = [round(float(r["difficulty"]), 4) for r in rows]
    # Each worker's first episode runs at its own saved level (the recipe would start both at 0.0).
    assert difficulties[0] in (0.3, 0.7)
    assert 0.7 in difficulties and 0.3 in difficulties
    assert all(d <= 0.7 for d in difficulties)
    # ... and each then demotes from its own level, not from the other worker's.
    saved = json.loads((list_checkpoints(path)[-1] / "curriculum.json").read_text())["difficulties"]
    assert len(saved) == 2 and 0.0 <= saved[0] < 0.7 and 0.0 <= saved[1] < 0.3


def test_sac_resume_restores_the_replay_buffer(sac_run: TrainedRun, copy_run: CopyRun) -> None:
    path = copy_run(sac_run)
    before = load_from_pkl(list_checkpoints(path)[-1] / "replay_buffer.pkl")
    assert before.size() == 300
    result = trainer.resume(path, 400)
    assert result.num_timesteps == 400
    after = load_from_pkl(list_checkpoints(path)[-1] / "replay_buffer.pkl")
    # Restored, then 100 more transitions: a fresh buffer would hold only the 100 new ones.
    assert after.size() == 400 >= before.size()
    np.testing.assert_array_equal(after.observations[:300], before.observations[:300])
    np.testing.assert_array_equal(after.actions[:300], before.actions[:300])
    assert len((path / "command.txt").read_text().splitlines()) == 2


def test_resume_to_a_target_not_above_the_current_count_is_an_error(
    ppo_run: TrainedRun, copy_run: CopyRun, capsys: pytest.CaptureFixture[str]
) -> None:
    path = copy_run(ppo_run)
    before = snapshot(path)
    with pytest.raises(StairbotError, match=r"already has 256 steps, the target is 256.*--timesteps"):
        trainer.resume(path, 256)
    assert main(["train", "--resume", str(path), "--timesteps", "100"]) == 2
    err = capsys.readouterr().err
    assert "stairbot: error:" in err and "already has 256 steps" in err
    assert snapshot(path) == before


def test_a_refused_resume_does_not_record_a_command(ppo_run: TrainedRun, copy_run: CopyRun) -> None:
    path = copy_run(ppo_run)
    with pytest.raises(StairbotError):
        trainer.resume(path, 100)
    assert len((path / "command.txt").read_text().splitlines()) == 1


def _first_level_per_direction(rows: list[dict[str, str]]) -> dict[str, float]:
    first: dict[str, float] = {}
    for row in rows:
        first.setdefault(row["direction"], float(row["difficulty"]))
    return first


def test_separate_down_levels_survive_resume_and_init_from(ppo_run: TrainedRun, tmp_path: Path) -> None:
    """Down episodes that keep their own level save it; a resume and an --init-from run start each
    direction at its own saved level, and from a source whose levels were shared the down level
    starts at the recipe's `curriculum.difficulty` (0.0)."""
    separate = ("env.curriculum.down_fraction=0.5", "env.curriculum.separate_down_level=true")
    path = tmp_path / "run"
    trainer.train(tiny_recipe("ppo_stairs", PPO_TINY, "total_timesteps=128", *separate), path)
    latest = list_checkpoints(path)[-1]
    assert len(json.loads((latest / "curriculum.json").read_text())["down_difficulties"]) == 1
    saved = json.dumps({"difficulties": [0.7], "down_difficulties": [0.3]})
    (latest / "curriculum.json").write_text(saved)
    before = len(read_rows(path / "episodes.csv"))
    trainer.resume(path, 256)
    rows = read_rows(path / "episodes.csv")[before:]
    assert _first_level_per_direction(rows) == pytest.approx({"up": 0.7, "down": 0.3})
    # The tiny robot falls at once: each direction demotes from its own level, not the other's.
    assert all(float(r["difficulty"]) <= 0.3 for r in rows if r["direction"] == "down")
    assert any(float(r["difficulty"]) > 0.3 for r in rows if r["direction"] == "up")

    latest = list_checkpoints(path)[-1]
    (latest / "curriculum.json").write_text(saved)
    warm = tmp_path / "warm"
    trainer.train(
        tiny_recipe("ppo_stairs", PPO_TINY, "total_timesteps=64", *separate, f"init_from={latest}"), warm
    )
    assert _first_level_per_direction(read_rows(warm / "episodes.csv")) == pytest.approx(
        {"up": 0.7, "down": 0.3}
    )

    shared_source = tmp_path / "shared"
    shutil.copytree(ppo_run.path, shared_source)
    (shared_source / "best" / "curriculum.json").write_text(json.dumps({"difficulties": [0.7]}))
    from_shared = tmp_path / "from_shared"
    recipe = tiny_recipe(
        "ppo_stairs", PPO_TINY, "total_timesteps=64", *separate, f"init_from={shared_source}"
    )
    trainer.train(recipe, from_shared)
    first = _first_level_per_direction(read_rows(from_shared / "episodes.csv"))
    assert first == pytest.approx({"up": 0.7, "down": 0.0})
