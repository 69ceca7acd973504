"""A tiny real training run shared by the viz tests (about 2 s): its untrained policy flails and
"falls" within about eight control steps (`min_base_height_ratio=0.9`), so its episodes are short."""

from __future__ import annotations

from pathlib import Path

import pytest
from training.helpers import PPO_TINY

from stairbot.training import trainer
from stairbot.training.recipe import load_recipe


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PPO, 1 env, 256 steps: episodes.csv has rows, evaluations.csv two rows, best/ exists."""
    path = tmp_path_factory.mktemp("viz-run") / "run"
    trainer.train(load_recipe("ppo_stairs", list(PPO_TINY)), path)
    return path
