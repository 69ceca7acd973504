"""`stairbot sensitivity`: a cell clean, under each randomization factor of a preset alone, and under
the whole preset, for real (the zero-action robot, shoved hard enough to fall)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from stairbot.cli import main
from stairbot.errors import ConfigError
from stairbot.randomization import SWITCH_KEYS, RandomizationConfig
from stairbot.sensitivity import FACTORS, STAIR_JITTER, factor_settings

SHOVE = """\
extends: stairs_up
randomization:
  enabled: true
  payload_kg: [1.0, 1.0]
  push_interval_s: [0.5, 0.5]
  push_vel_mps: [3.0, 3.0]
stairs:
  riser_jitter_m: 0.01
"""


def test_every_randomization_key_belongs_to_exactly_one_factor() -> None:
    keys = [f.name for f in dataclasses.fields(RandomizationConfig) if f.name not in SWITCH_KEYS]
    grouped = [k for factor_keys in FACTORS.values() for k in factor_keys]
    assert sorted(grouped) == sorted(keys)


def test_factors_of_the_shipped_presets() -> None:
    stress = factor_settings("stairs_up", "stairs_up_stress")
    assert stress == {
        "friction": {"ground_friction": [0.5, 0.5], "foot_friction_scale": [1.0, 1.0]},
        "payload": {"payload_kg": [2.0, 2.0]},
        "obs_latency": {"obs_latency_s": [0.01, 0.01]},
        "action_latency": {"action_latency_s": [0.01, 0.01]},
    }
    randomized = factor_settings("stairs_up", "stairs_up_randomized")
    assert set(randomized) == {*FACTORS, STAIR_JITTER}
    # foot_friction_scale stays nominal there but rides along with the ground friction it scales
    assert randomized["friction"] == {"ground_friction": [0.4, 1.2], "foot_friction_scale": [1.0, 1.0]}


def test_a_preset_that_randomizes_nothing_is_refused(tmp_path: Path) -> None:
    preset = tmp_path / "calm.yaml"
    preset.write_text("extends: stairs_up\n")
    with pytest.raises(ConfigError, match="nothing to randomize"):
        factor_settings("stairs_up", preset)


def test_each_factor_alone_on_the_same_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preset = tmp_path / "shove.yaml"
    preset.write_text(SHOVE)
    out = tmp_path / "s.json"
    argv = ["sensitivity", "--preset", str(preset), "--riser-m", "0.1", "--episodes", "2", "--json", str(out)]
    assert main([*argv, "--processes", "1"]) == 0
    assert "pushes" in capsys.readouterr().out
    data = json.loads(out.read_text())
    rows = {row["factor"]: row for row in data["rows"]}
    assert list(rows) == ["clean", "payload", "pushes", STAIR_JITTER, "all"]
    # standing still, the robot only falls when shoved: the pushes row and the whole preset
    assert rows["clean"]["falls"] == rows["payload"]["falls"] == rows[STAIR_JITTER]["falls"] == 0
    assert rows["pushes"]["falls"] == rows["all"]["falls"] == 2
    assert rows["pushes"]["settings"] == {"push_interval_s": [0.5, 0.5], "push_vel_mps": [3.0, 3.0]}
    assert rows[STAIR_JITTER]["settings"]["stairs.riser_jitter_m"] == 0.01
    assert all(row["episodes"] == 2 and row["riser_m"] == 0.1 for row in rows.values())
    clean_rate = rows["clean"]["success_rate"]
    assert all(row["success_change"] == row["success_rate"] - clean_rate for row in rows.values())
    # a 2-process pool gives the same rows
    parallel = tmp_path / "p.json"
    assert main([*argv[:-1], str(parallel), "--processes", "2"]) == 0
    assert json.loads(parallel.read_text())["rows"] == data["rows"]
