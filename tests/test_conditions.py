"""Conditions (clean, randomized) reach the envs that play, record and plot a policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairbot.cli import main
from stairbot.conditions import condition_name, direction_condition
from stairbot.errors import ConfigError
from stairbot.viz.telemetry import policy_env


def _config_after_reset(preset: str, condition: dict) -> tuple:
    env = policy_env(preset, max_steps=2, condition=condition)
    try:
        _, info = env.reset(seed=0)
        return env.unwrapped.config, info
    finally:
        env.close()


def test_clean_turns_a_randomized_presets_randomization_and_jitter_off() -> None:
    config, _ = _config_after_reset(
        "stairs_up_randomized", direction_condition("stairs_up_randomized", "up", False)
    )
    assert config.randomization.enabled is False
    assert config.stairs.riser_jitter_m == 0.0 and config.stairs.tread_jitter_m == 0.0
    as_trained, _ = _config_after_reset("stairs_up_randomized", {})
    assert as_trained.randomization.enabled is True  # what the condition changed


def test_randomized_takes_the_directions_preset_or_the_one_named() -> None:
    config, info = _config_after_reset("stairs_up", direction_condition("stairs_up", "up", True))
    assert config.randomization.enabled is True and config.stairs.riser_jitter_m == 0.01
    assert info["randomization"]  # the draw is in the reset info
    stress, _ = _config_after_reset("stairs_up", direction_condition("stairs_up", "up", "stairs_up_stress"))
    assert tuple(stress.randomization.payload_kg) == (2.0, 2.0)
    assert condition_name(False, "down") == "clean"
    assert condition_name(True, "down") == "randomized as stairs_down_randomized"
    with pytest.raises(ConfigError, match="nothing to randomize"):
        direction_condition("stairs_up", "up", "stairs_down")


def test_record_says_which_condition_it_filmed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["record", "--out", str(tmp_path / "a.gif"), "--width", "32", "--height", "24", "--max-steps", "2"]
    assert main(args) == 0
    assert ", clean -> " in capsys.readouterr().out
    assert main([*args, "--randomized", "stairs_up_stress"]) == 0
    assert ", randomized as stairs_up_stress -> " in capsys.readouterr().out


def test_conditions_set_the_regular_fraction_not_the_training_env() -> None:
    """A policy trained with `stairs.regular_fraction` is measured on the condition's flights: every
    randomized flight jittered, every clean one regular."""
    trained = {"stairs.regular_fraction": 0.5}
    for randomized in (False, True):
        condition = {**trained, **direction_condition("stairs_up_randomized", "up", randomized)}
        config, _ = _config_after_reset("stairs_up_randomized", condition)
        assert config.stairs.regular_fraction == 0.0


def test_a_randomized_condition_randomizes_every_episode_whatever_the_training_mix(tmp_path: Path) -> None:
    """A policy trained with `randomization.episode_fraction` 0.5 is measured on randomized robots
    only: the condition's `randomization:` section replaces the training's, mix included."""
    preset = tmp_path / "mixed.yaml"
    preset.write_text("extends: stairs_up_randomized\nrandomization:\n  episode_fraction: 0.5\n")
    as_trained, _ = _config_after_reset(str(preset), {})
    assert as_trained.randomization.episode_fraction == 0.5
    condition = direction_condition(str(preset), "up", True)
    config, _ = _config_after_reset(str(preset), condition)
    assert config.randomization.enabled is True and config.randomization.episode_fraction == 1.0
    env = policy_env(str(preset), max_steps=2, condition=condition)
    try:
        randomized = [env.reset(seed=seed)[1]["randomization"]["randomized"] for seed in range(12)]
    finally:
        env.close()
    assert all(randomized)
