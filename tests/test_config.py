"""Config loading: unknown keys, types, ranges, overrides and preset inheritance."""

from __future__ import annotations

import dataclasses

import pytest

from stairbot.config import (
    apply_overrides,
    dump_yaml,
    load_dataclass,
    parse_override,
    read_yaml,
    safe_load_yaml,
)
from stairbot.envs.config import EnvConfig, load_env_config
from stairbot.errors import ConfigError
from stairbot.paths import available_presets, resolve_preset
from stairbot.training.recipe import load_recipe


def test_shipped_presets_load() -> None:
    for name in available_presets("envs"):
        config = load_env_config(name)
        assert isinstance(config, EnvConfig)


def test_down_preset_extends_up_and_only_changes_direction() -> None:
    up, down = load_env_config("stairs_up"), load_env_config("stairs_down")
    assert down.stairs.direction.value == "down"
    assert dataclasses.replace(down.stairs, direction=up.stairs.direction) == up.stairs
    assert down.rewards == up.rewards


def test_unknown_key_names_it_and_lists_allowed(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("stairs:\n  riser_m: 0.1\n  colour: red\n")
    with pytest.raises(ConfigError, match=r"stairs\.colour.*allowed keys.*riser_m"):
        load_env_config(path)


def test_unknown_top_level_section(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("physics:\n  dt: 0.001\n")
    with pytest.raises(ConfigError, match=r"'physics'.*allowed keys.*'sim'"):
        load_env_config(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stairs.riser_m=-0.1", r"stairs\.riser_m must be in \(0"),
        ("stairs.riser_m=0", r"stairs\.riser_m must be in \(0"),
        ("sim.physics_dt_s=0.01", r"sim\.physics_dt_s must be in"),
        ("sim.decimation=2.5", r"sim\.decimation must be an integer"),
        ("stairs.direction=sideways", r"stairs\.direction must be one of \['up', 'down'\]"),
        ("termination.base_contact=maybe", r"termination\.base_contact must be true or false"),
        ("command.forward_speed_mps=[0.8, 0.2]", r"forward_speed_mps\[1\] must be in"),
        ("curriculum.difficulty=1.5", r"curriculum\.difficulty must be in \[0, 1\]"),
        ("control.action_scale_rad=[0.5, -0.1]", r"control\.action_scale_rad\[1\] must be in \(0, 2\]"),
        ("control.action_scale_rad=fast", r"control\.action_scale_rad must be a number"),
        ("observation.history_steps=-1", r"observation\.history_steps must be in \[0, 50\]"),
        ("observation.history_steps=2.5", r"observation\.history_steps must be an integer"),
    ],
)
def test_bad_values_name_the_key_and_the_allowed_range(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_env_config("stairs_up", [override])


def test_overrides_apply_and_leave_the_source_untouched() -> None:
    raw = {"stairs": {"riser_m": 0.1}}
    updated = apply_overrides(raw, ["stairs.riser_m=0.15", "stairs.num_steps=4"])
    assert updated == {"stairs": {"riser_m": 0.15, "num_steps": 4}}
    assert raw == {"stairs": {"riser_m": 0.1}}
    config = load_env_config("stairs_up", {"stairs.riser_m": 0.15, "rewards.fall": -20.0})
    assert config.stairs.riser_m == 0.15
    assert config.rewards["fall"] == -20.0


def test_override_syntax_errors() -> None:
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        parse_override("no_equals_sign")
    with pytest.raises(ConfigError, match="'robot' is a value, not a section"):
        apply_overrides({"robot": "stairdog"}, ["robot.name=x"])


def test_config_is_frozen() -> None:
    config = load_env_config("stairs_up")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sim.decimation = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.rewards["fall"] = 0.0  # type: ignore[index]


def test_dump_and_reload_round_trip(tmp_path) -> None:
    config = load_env_config("stairs_down", ["stairs.riser_m=0.17"])
    path = tmp_path / "resolved.yaml"
    dump_yaml(config, path)
    assert load_dataclass(EnvConfig, read_yaml(path)) == config


def test_unknown_preset_lists_shipped_ones() -> None:
    with pytest.raises(ConfigError, match=r"no envs preset named 'nope'.*stairs_up"):
        resolve_preset("nope", "envs")


def test_extends_cycle_is_an_error(tmp_path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"extends: {b}\n")
    b.write_text(f"extends: {a}\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_env_config(a)


def test_yaml_is_read_safely(tmp_path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("robot: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(path)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-4", 1e-4), ("3.0e-5", 3e-5), ("-2E+3", -2000.0), ("[1e-3, 2]", [1e-3, 2]), ("12", 12)],
)
def test_exponents_without_a_dot_are_numbers(text: str, value: object) -> None:
    # YAML 1.1 (PyYAML) read `1e-4` as a string, so `ppo.learning_rate=1e-4` was "must be a number".
    assert parse_override(f"ppo.learning_rate={text}") == ("ppo.learning_rate", value)


def test_a_recipe_takes_a_learning_rate_written_1e_4(tmp_path) -> None:
    assert load_recipe("ppo_stairs", ["ppo.learning_rate=1e-4"]).ppo.learning_rate == 1e-4
    path = tmp_path / "recipe.yaml"
    path.write_text("algorithm: ppo\nppo:\n  learning_rate: 2e-4\n")
    assert load_recipe(path).ppo.learning_rate == 2e-4
    # Words that merely start like a number stay strings.
    assert safe_load_yaml("name: 1e\nother: e5\n") == {"name": "1e", "other": "e5"}
