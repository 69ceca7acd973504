"""`ppo.anchor_decay`: after each update the actor is pulled part of the way back to the weights the
run started from; on real tiny runs, through a resume; and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO

from stairbot.errors import ConfigError
from stairbot.training import trainer
from stairbot.training.algorithms import algorithm_class
from stairbot.training.anchor import ANCHOR_FILE, anchored_parameters, load_anchor, pull_toward
from stairbot.training.checkpoints import CheckpointError, list_checkpoints, load_model
from stairbot.training.recipe import load_recipe

from .helpers import PPO_TINY, TrainedRun


def _actor(model: PPO) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in anchored_parameters(model).items()}


def _distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return float(sum((a[k] - b[k]).pow(2).sum() for k in a)) ** 0.5


def test_the_pull_removes_its_share_of_the_actors_displacement_only(ppo_run: TrainedRun) -> None:
    model = load_model(list_checkpoints(ppo_run.path)[-1], algorithm_class("ppo"))
    anchor = _actor(model)
    others = {k: v.clone() for k, v in model.policy.state_dict().items() if k not in anchor}
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.policy.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator))
    moved = _actor(model)
    log_std, critic = model.policy.log_std.detach().clone(), model.policy.value_net.weight.detach().clone()

    distance = pull_toward(model, anchor, 0.25)

    after = _actor(model)
    for name in anchor:
        torch.testing.assert_close(after[name] - anchor[name], 0.75 * (moved[name] - anchor[name]))
    assert distance == pytest.approx(0.75 * _distance(moved, anchor), rel=1e-5)
    torch.testing.assert_close(model.policy.log_std, log_std)  # the recipe's noise is left alone
    torch.testing.assert_close(model.policy.value_net.weight, critic)  # and the critic
    assert not torch.equal(model.policy.value_net.weight, others["value_net.weight"])  # it was moved


def _train_tiny(run: Path, *extra: str) -> None:
    trainer.train(load_recipe("ppo_stairs", [*PPO_TINY, "total_timesteps=256", "seed=3", *extra]), run)


def test_an_anchored_run_stays_closer_to_its_start_and_resumes_toward_the_same_anchor(
    ppo_run: TrainedRun, tmp_path: Path
) -> None:
    source = list_checkpoints(ppo_run.path)[-1]
    anchored, free = tmp_path / "anchored", tmp_path / "free"
    start = f"init_from={source}"
    _train_tiny(anchored, start, "ppo.anchor_decay=0.5", "ppo.learning_rate=1e-3")
    _train_tiny(free, start, "ppo.learning_rate=1e-3")
    first = load_model(list_checkpoints(anchored)[-1], algorithm_class("ppo"))
    anchor = load_anchor(anchored, first)
    # the anchor is the actor the run started from: its --init-from source's
    source_actor = _actor(load_model(source, algorithm_class("ppo")))
    for name in source_actor:
        torch.testing.assert_close(anchor[name], source_actor[name], rtol=0, atol=0)
    free_end = load_model(list_checkpoints(free)[-1], algorithm_class("ppo"))
    anchored_distance = _distance(_actor(first), anchor)
    assert 0 < anchored_distance < 0.75 * _distance(_actor(free_end), anchor)
    assert not (free / ANCHOR_FILE).exists()  # off by default: nothing written

    saved = (anchored / ANCHOR_FILE).read_bytes()
    trainer.resume(anchored, total_timesteps=384)
    assert (anchored / ANCHOR_FILE).read_bytes() == saved  # a resume keeps pulling toward the start
    resumed = load_model(list_checkpoints(anchored)[-1], algorithm_class("ppo"))
    assert resumed.num_timesteps == 384
    assert 0 < _distance(_actor(resumed), anchor) < 0.75 * _distance(_actor(free_end), anchor)

    (anchored / ANCHOR_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"no anchor\.pt"):
        trainer.resume(anchored, total_timesteps=512)
    assert load_model(list_checkpoints(anchored)[-1], algorithm_class("ppo")).num_timesteps == 384


def test_a_corrupt_anchor_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _train_tiny(run, "ppo.anchor_decay=0.1", "total_timesteps=128")
    (run / ANCHOR_FILE).write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"anchor\.pt is corrupt"):
        trainer.resume(run, total_timesteps=256)


def test_a_decay_outside_its_range_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"anchor_decay must be in \[0, 0.5\], got 0.7"):
        load_recipe("ppo_stairs", ["ppo.anchor_decay=0.7"])
