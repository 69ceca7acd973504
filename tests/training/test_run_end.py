"""What a run guarantees at its end: the final policy is evaluated, the best model carries its own
evaluation key and no replay buffer, and training works from a thread that cannot own signals."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from stairbot.errors import ConfigError
from stairbot.training.trainer import BEST_KEY_FILE, TrainResult, train

from .helpers import PPO_TINY, SAC_TINY, TrainedRun, read_rows, tiny_recipe


def test_final_policy_is_evaluated_when_the_budget_is_off_the_eval_grid(tmp_path: Path) -> None:
    # 192 steps with evaluations every 128: without a final evaluation the last 64 go unmeasured.
    recipe = tiny_recipe("ppo_stairs", PPO_TINY, "total_timesteps=192", "eval.every_steps=128")
    result = train(recipe, tmp_path / "run")
    rows = read_rows(result.run_dir / "evaluations.csv")
    assert [int(row["timesteps"]) for row in rows] == [128, 192]


def test_best_model_holds_its_evaluation_key_and_no_replay_buffer(sac_run: TrainedRun) -> None:
    best = sac_run.path / "best"
    rows = read_rows(sac_run.path / "evaluations.csv")
    best_row = [row for row in rows if row["best"] == "1"][-1]
    key = json.loads((best / BEST_KEY_FILE).read_text())
    assert key[0] == float(best_row["success_rate"]) and key[1] == float(best_row["steps_climbed"])
    assert not (best / "replay_buffer.pkl").exists()  # resuming uses the periodic checkpoints
    assert (sorted((sac_run.path / "checkpoints").iterdir())[-1] / "replay_buffer.pkl").is_file()


def test_training_runs_from_a_non_main_thread(tmp_path: Path) -> None:
    recipe = tiny_recipe("sac_stairs", SAC_TINY, "total_timesteps=150")
    results: list[TrainResult | BaseException] = []

    def work() -> None:
        try:
            results.append(train(recipe, tmp_path / "run"))
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=120)
    (result,) = results
    assert isinstance(result, TrainResult), result
    assert result.num_timesteps == 150 and not result.interrupted


def test_a_run_evaluated_both_ways_chooses_its_best_on_both(tmp_path: Path) -> None:
    recipe = tiny_recipe("ppo_stairs", PPO_TINY, "total_timesteps=128", "eval.directions=[up, down]")
    result = train(recipe, tmp_path / "run")
    rows = read_rows(result.run_dir / "evaluations.csv")
    assert [int(row["timesteps"]) for row in rows] == [128]
    (row,) = rows
    up, down = float(row["success_rate_up"]), float(row["success_rate_down"])
    assert float(row["success_rate"]) == (up + down) / 2  # eval.episodes (1) each way
    assert 0 <= int(row["falls"]) <= 2 * recipe.eval.episodes


def test_eval_directions_must_be_distinct() -> None:
    with pytest.raises(ConfigError, match="directions must list up and/or down once each"):
        tiny_recipe("ppo_stairs", PPO_TINY, "eval.directions=[up, up]")
    with pytest.raises(ConfigError, match="must be one of"):
        tiny_recipe("ppo_stairs", PPO_TINY, "eval.directions=[sideways]")
