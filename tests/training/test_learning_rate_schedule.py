"""`ppo.learning_rate_end`: a learning rate that falls linearly over a real tiny run, and survives a
resume; the default stays constant."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairbot.errors import ConfigError
from stairbot.training import trainer
from stairbot.training.algorithms import algorithm_class
from stairbot.training.checkpoints import list_checkpoints, load_model
from stairbot.training.recipe import load_recipe

from .helpers import PPO_TINY, TrainedRun


def _final_rate(run: Path) -> tuple[float, object]:
    model = load_model(list_checkpoints(run)[-1], algorithm_class("ppo"))
    return model.policy.optimizer.param_groups[0]["lr"], model.lr_schedule


def test_the_rate_falls_to_its_end_over_the_run_and_stays_on_the_line_on_resume(tmp_path: Path) -> None:
    start, end = 1e-3, 1e-4
    recipe = load_recipe(
        "ppo_stairs",
        [*PPO_TINY, "total_timesteps=128", f"ppo.learning_rate={start}", f"ppo.learning_rate_end={end}"],
    )
    run = tmp_path / "run"
    trainer.train(recipe, run)
    # SB3 calls the schedule with the share of the run still to go: 1 at the start, 0 at the end
    lr, schedule = _final_rate(run)
    assert schedule(1.0) == pytest.approx(start)
    assert schedule(0.25) == pytest.approx(start + 0.75 * (end - start))
    assert lr == pytest.approx(end)  # the last update ran at the end of the line (a constant: start)

    trainer.resume(run, total_timesteps=256)
    lr, schedule = _final_rate(run)
    assert schedule(0.25) == pytest.approx(start + 0.75 * (end - start))
    assert lr == pytest.approx(end)


def test_without_an_end_the_rate_is_constant(ppo_run: TrainedRun) -> None:
    lr, schedule = _final_rate(ppo_run.path)
    assert lr == pytest.approx(ppo_run.recipe.ppo.learning_rate)
    assert schedule(0.0) == pytest.approx(schedule(1.0))


def test_an_end_outside_its_range_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"learning_rate_end must be in \[0, 1\], got -1e-05"):
        load_recipe("ppo_stairs", ["ppo.learning_rate_end=-1e-5"])
