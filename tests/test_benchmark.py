"""`stairbot benchmark`: a tiny grid (2 risers x 1 tread x up/down, 2 episodes per cell), for real.

The zero-action robot stands still until the time limit (0% success, no falls); the tiny PPO run of
tests/training/helpers.py falls within a few control steps, so its cells take milliseconds. Each is
run serially and in a 2-process spawn pool, and the two must give the same JSON.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from training.helpers import PPO_TINY

from stairbot import benchmark, conditions
from stairbot.benchmark import CellResult, summarize
from stairbot.cli import main
from stairbot.envs.config import read_env_preset
from stairbot.errors import ConfigError
from stairbot.paths import resolve_preset
from stairbot.stats import wilson_interval
from stairbot.termination import FALL_KINDS
from stairbot.training import trainer
from stairbot.training.recipe import load_recipe
from stairbot.training.vec import env_factory

TINY_GRID = ("--risers", "0.1", "0.05", "--treads", "0.3", "--directions", "up", "down", "--episodes", "2")
CELLS = 4
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOP_KEYS = {"policy", "env_preset", "seed", "episodes", "success_threshold", "grid", "cells", "summary"}
SUMMARY_KEYS = {"max_riser_m", "max_riser_by_tread_m", "episodes", "falls_per_episode", "mean_time_to_top_s"}


def _run(out: Path, policy: str | None, processes: int, *extra: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    argv = ["benchmark", *([policy] if policy else []), *TINY_GRID, "--processes", str(processes)]
    argv += ["--json", str(out / "b.json"), "--csv", str(out / "b.csv"), *extra]
    assert main(argv) == 0
    return json.loads((out / "b.json").read_text())


@pytest.fixture(scope="module")
def zero_serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("zero-serial")
    return out, _run(out, None, 1, "--plot", str(out / "b.png"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench-ppo") / "run"
    trainer.train(load_recipe("ppo_stairs", list(PPO_TINY)), path)
    return path


def _check_report(data: dict) -> None:
    assert set(data) == TOP_KEYS
    assert data["grid"] == {"risers_m": [0.05, 0.1], "treads_m": [0.3], "directions": ["up", "down"]}
    assert len(data["cells"]) == CELLS
    assert [(c["direction"], c["riser_m"]) for c in data["cells"]] == [
        ("up", 0.05),
        ("up", 0.1),
        ("down", 0.05),
        ("down", 0.1),
    ]
    for cell in data["cells"]:
        assert set(cell) == set(benchmark.CSV_COLUMNS)
        assert cell["episodes"] == 2 and cell["tread_m"] == 0.3
        assert 0.0 <= cell["success_rate"] <= 1.0
        assert 0.0 <= cell["falls_per_episode"] <= 1.0
        assert cell["falls"] == round(cell["falls_per_episode"] * 2)
        assert cell["steps_climbed"] >= 0.0
        assert (cell["mean_time_to_top_s"] is None) == (cell["success_rate"] == 0.0)
        endings = {reason: cell[f"ended_{reason}"] for reason in benchmark.ENDINGS}
        assert sum(endings.values()) == cell["episodes"]  # every episode ends one way
        assert endings["success"] == round(cell["success_rate"] * 2)
        assert endings["fall"] + endings["base_contact"] + endings["thigh_contact"] == cell["falls"]
        assert sum(cell[f"fell_{kind}"] for kind in FALL_KINDS) == endings["fall"]  # each fall has a kind
        low, high = wilson_interval(endings["success"], 2)
        assert (cell["success_ci95_low"], cell["success_ci95_high"]) == pytest.approx((low, high))
        assert low <= cell["success_rate"] <= high
    assert set(data["summary"]) == {"up", "down"}
    for summary in data["summary"].values():
        assert set(summary) == SUMMARY_KEYS
        assert summary["episodes"] == 4
        assert set(summary["max_riser_by_tread_m"]) == {"0.3"}
        assert summary["max_riser_m"] in (None, 0.05, 0.1)
        assert 0.0 <= summary["falls_per_episode"] <= 1.0


def test_zero_action_stands_until_time_limit(
    zero_serial: tuple[Path, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    out, data = zero_serial
    _check_report(data)
    assert data["policy"] == "zero action"
    for cell in data["cells"]:
        assert cell["success_rate"] == 0.0 and cell["falls"] == 0 and cell["steps_climbed"] == 0.0
        assert cell["ended_time_limit"] == 2  # it stands the episodes out
    for summary in data["summary"].values():
        assert summary["max_riser_m"] is None and summary["mean_time_to_top_s"] is None
    with open(out / "b.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == CELLS and tuple(rows[0]) == benchmark.CSV_COLUMNS
    assert rows[0]["mean_time_to_top_s"] == ""
    png = out / "b.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape == (500, 800)
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005  # drawn on, not blank


def test_zero_action_parallel_matches_serial(zero_serial: tuple[Path, dict], tmp_path: Path) -> None:
    assert _run(tmp_path, None, 2) == zero_serial[1]


def test_trained_run_deterministic_serial_and_parallel(tiny_run: Path, tmp_path: Path) -> None:
    first = _run(tmp_path / "a", str(tiny_run), 1)
    _check_report(first)
    assert first["policy"].startswith(f"run {tiny_run}") and first["env_preset"] == str(tiny_run / "env.yaml")
    assert sum(c["falls"] for c in first["cells"]) > 0  # min_base_height_ratio 0.9: it falls
    assert _run(tmp_path / "b", str(tiny_run), 1) == first
    assert _run(tmp_path / "c", str(tiny_run), 2) == first
    assert (tmp_path / "a" / "b.csv").read_text() == (tmp_path / "c" / "b.csv").read_text()


def _cell(direction: str, tread: float, riser: float, success: float) -> CellResult:
    wins = round(success * 10)
    return CellResult(
        direction, tread, riser, 10, success, 1.0, 10 - wins, 1 - success, None, 0.0, (2.0,) * wins
    )


def test_summary_envelope_is_contiguous_and_needs_every_tread() -> None:
    cells = [
        _cell("up", 0.25, 0.05, 1.0),
        _cell("up", 0.25, 0.10, 0.8),
        _cell("up", 0.25, 0.15, 0.5),
        _cell("up", 0.25, 0.20, 0.9),  # a pass above a failing riser does not count
        _cell("up", 0.32, 0.05, 1.0),
        _cell("up", 0.32, 0.10, 1.0),
        _cell("up", 0.32, 0.15, 0.9),
        _cell("up", 0.32, 0.20, 0.0),
    ]
    (summary,) = summarize(cells, ["up"], [0.25, 0.32])
    assert summary.max_riser_m == 0.10
    assert summary.max_riser_by_tread_m == {"0.25": 0.10, "0.32": 0.15}
    assert summary.episodes == 80
    assert summary.falls_per_episode == pytest.approx(
        sum(10 - round(c.success_rate * 10) for c in cells) / 80
    )
    assert summary.mean_time_to_top_s == 2.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--risers", "0.35"), "outside (0, 0.3]"),
        (("--risers", "0"), "outside (0, 0.3]"),
        (("--risers", "0.1", "-0.05"), "outside (0, 0.3]"),
        (("--directions", "sideways"), "unknown direction 'sideways'"),
        (("--episodes", "0"), "--episodes must be at least 1"),
        (("--treads", "0.05"), "tread 0.05 m is outside"),
        (("--processes", "0"), "--processes must be at least 1"),
        (("--command-mps", "0"), "--command-mps must be in (0, 2] m/s, got 0.0"),
        (("--command-mps", "-0.3"), "--command-mps must be in (0, 2] m/s, got -0.3"),
        (("--command-mps", "2.5"), "--command-mps must be in (0, 2] m/s, got 2.5"),
        (("--action-noise", "-0.2"), "action noise must be a finite standard deviation >= 0"),
        (("--action-noise", "nan"), "action noise must be a finite standard deviation >= 0"),
    ],
)
def test_bad_input_is_a_clear_error(
    args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["benchmark", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stairbot: error:") and message in err


def test_unknown_policy_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", str(tmp_path), *TINY_GRID]) == 2
    assert "is not a policy" in capsys.readouterr().err


# ---- --command-mps ------------------------------------------------------------------------------


def test_command_mps_fixes_every_episodes_command_and_nothing_else() -> None:
    preset = "stairs_up_randomized"  # commands drawn from 0.4-0.6 m/s, robots and stairs randomized
    fixed = {**conditions.condition_overrides(preset, preset), **benchmark.command_overrides(0.3)}
    drawn = conditions.condition_overrides(preset, preset)
    infos = {}
    for name, overrides in (("fixed", fixed), ("drawn", drawn)):
        cell = benchmark.grid_cells([0.1], [0.3], ["up"], benchmark.RANDOMIZED, {"up": overrides})[0]
        env = env_factory(preset, cell.overrides())()
        try:
            infos[name] = [env.reset(seed=seed)[1] for seed in range(4)]
        finally:
            env.close()
    assert [info["command"][0] for info in infos["fixed"]] == [0.3] * 4
    assert all(0.4 <= info["command"][0] <= 0.6 for info in infos["drawn"])
    # The same seed draws the same stairs, spawn and robot with or without a fixed command.
    for fixed_info, drawn_info in zip(infos["fixed"], infos["drawn"], strict=True):
        assert fixed_info["risers_m"] == drawn_info["risers_m"]
        assert np.array_equal(fixed_info["spawn_xy_m"], drawn_info["spawn_xy_m"])
        assert fixed_info["randomization"] == drawn_info["randomization"]


def test_command_mps_is_reported(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _run(tmp_path, str(tiny_run), 1, "--command-mps", "0.3")
    assert set(data) == {*TOP_KEYS, "command_mps"} and data.pop("command_mps") == 0.3
    _check_report(data)
    printed = capsys.readouterr().out
    assert "command fixed at 0.3 m/s (the policy trained on 0.4-0.6 m/s)" in printed
    assert "summary (2 episodes per cell, seed 0, command 0.3 m/s," in printed


# ---- --action-noise -----------------------------------------------------------------------------


def test_action_noise_is_seeded_reported_and_reaches_the_episodes(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = _run(tmp_path / "clean", str(tiny_run), 1)
    assert _run(tmp_path / "zero", str(tiny_run), 1, "--action-noise", "0") == clean  # 0: the default
    noisy = _run(tmp_path / "a", str(tiny_run), 1, "--action-noise", "0.3")
    assert set(noisy) == {*TOP_KEYS, "action_noise"} and noisy["action_noise"] == 0.3
    printed = capsys.readouterr().out
    assert "action noise: std 0.3 (action units) on every action's mean, as training does" in printed
    assert "summary (2 episodes per cell, seed 0, action noise 0.3," in printed
    assert _run(tmp_path / "b", str(tiny_run), 2, "--action-noise", "0.3") == noisy  # seeded per episode
    del noisy["action_noise"]
    _check_report(noisy)
    returns = [c["mean_return"] for c in noisy["cells"]]
    assert returns != [c["mean_return"] for c in clean["cells"]]  # other actions, other episodes


# ---- --randomized -------------------------------------------------------------------------------

JITTER_PRESET = "extends: stairs_up\nstairs:\n  riser_jitter_m: 0.02\n  tread_jitter_m: 0.04\n"
ONE_CELL = ("--risers", "0.1", "--treads", "0.3", "--episodes", "2", "--processes", "1")


def _condition_preset(tmp_path: Path, text: str = JITTER_PRESET) -> Path:
    path = tmp_path / "condition.yaml"
    path.write_text(text)
    return path


def test_randomized_is_deterministic_and_reported_next_to_clean(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preset = _condition_preset(tmp_path)
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        argv = ["benchmark", str(tiny_run), *ONE_CELL, "--directions", "up", "down"]
        argv += ["--json", str(out / "b.json"), "--csv", str(out / "b.csv"), "--plot", str(out / "b.png")]
        assert main([*argv, "--randomized", str(preset)]) == 0
        runs.append(json.loads((out / "b.json").read_text()))
    first, second = runs
    assert first == second
    assert set(first) == {*TOP_KEYS, "randomized"}
    block = first["randomized"]
    assert set(block) == {"presets", "overrides", "cells", "summary"}
    assert block["presets"] == {"up": str(preset), "down": str(preset)}
    # The condition: the preset's jitter and its randomization section (stairs_up's, disabled).
    off = read_env_preset("stairs_up")["randomization"]
    condition = {
        "stairs.riser_jitter_m": 0.02,
        "stairs.tread_jitter_m": 0.04,
        "stairs.regular_fraction": 0.0,
        "randomization": off,
    }
    assert off["enabled"] is False and block["overrides"] == {"up": condition, "down": condition}
    assert [(c["condition"], c["direction"]) for c in first["cells"]] == [("clean", "up"), ("clean", "down")]
    assert [(c["condition"], c["direction"]) for c in block["cells"]] == [
        ("randomized", "up"),
        ("randomized", "down"),
    ]
    assert set(block["summary"]) == {"up", "down"}
    assert set(block["summary"]["up"]) == SUMMARY_KEYS
    with open(tmp_path / "a" / "b.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["condition"] for r in rows] == ["clean", "clean", "randomized", "randomized"]
    assert (tmp_path / "a" / "b.png").read_bytes()[:8] == PNG_SIGNATURE
    printed = capsys.readouterr().out
    assert "success clean" in printed and "max riser clean" in printed and ", randomized" in printed


def test_condition_overrides_reach_the_env(tmp_path: Path) -> None:
    cells = benchmark.grid_cells(
        [0.1],
        [0.3],
        ["up"],
        benchmark.RANDOMIZED,
        {"up": conditions.condition_overrides("stairs_up", _condition_preset(tmp_path))},
    )
    env = env_factory("stairs_up", cells[0].overrides())()
    try:
        _, info = env.reset(seed=4)
    finally:
        env.close()
    assert len(info["risers_m"]) == info["num_steps"] and len(info["treads_m"]) == info["num_steps"] - 1
    assert all(0.08 <= r <= 0.12 for r in info["risers_m"]) and all(
        0.26 <= t <= 0.34 for t in info["treads_m"]
    )


def test_a_cell_plays_its_own_tread_whatever_range_the_policy_trained_on(tmp_path: Path) -> None:
    trained = tmp_path / "trained.yaml"
    trained.write_text("extends: stairs_up\nstairs:\n  tread_range_m: [0.24, 0.34]\n")
    cell = benchmark.grid_cells([0.1], [0.25], ["up"], benchmark.CLEAN, {})[0]
    env = env_factory(str(trained), cell.overrides())()
    try:
        treads = [env.reset(seed=seed)[1]["tread_m"] for seed in range(5)]
    finally:
        env.close()
    assert treads == [0.25] * 5


def test_clean_turns_randomization_and_jitter_off(tmp_path: Path) -> None:
    trained = tmp_path / "trained.yaml"
    trained.write_text(JITTER_PRESET + "randomization:\n  enabled: true\n")
    _condition_preset(tmp_path, "stairs:\n  riser_m: 0.1\n")
    assert conditions.condition_overrides(trained, None) == {
        "stairs.riser_jitter_m": 0.0,
        "stairs.tread_jitter_m": 0.0,
        "stairs.regular_fraction": 0.0,
        "randomization": {"enabled": False},
    }
    assert conditions.condition_overrides(tmp_path / "condition.yaml", None) == {  # no such section
        "stairs.riser_jitter_m": 0.0,
        "stairs.tread_jitter_m": 0.0,
        "stairs.regular_fraction": 0.0,
    }
    condition = _condition_preset(tmp_path, "extends: stairs_up\nrandomization:\n  enabled: true\n")
    overrides = conditions.condition_overrides(trained, condition)
    assert overrides == {
        "stairs.riser_jitter_m": 0.0,
        "stairs.tread_jitter_m": 0.0,
        "stairs.regular_fraction": 0.0,
        "randomization": {**read_env_preset("stairs_up")["randomization"], "enabled": True},
    }
    with pytest.raises(ConfigError, match="there is nothing to randomize"):
        conditions.condition_overrides("stairs_up", "stairs_down")


def test_randomized_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preset = _condition_preset(tmp_path)
    assert main(["benchmark", "--risers", "0.01", "--randomized", str(preset)]) == 2
    err = capsys.readouterr().err
    assert "randomized cell (up, tread 0.25 m, riser 0.01 m)" in err and "riser_jitter_m must be in" in err
    assert main(["benchmark", "--randomized", "no_such_preset"]) == 2
    assert "no envs preset named 'no_such_preset'" in capsys.readouterr().err
    assert main(["benchmark", "--randomized", "stairs_down"]) == 2
    assert "nothing to randomize" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["stairs_up_randomized", "stairs_down_randomized", "stairs_up_stress"])
def test_shipped_condition_presets_randomize_something(preset: str) -> None:
    try:
        resolve_preset(preset, "envs")
    except ConfigError:
        pytest.skip(f"{preset} is not shipped (yet)")
    overrides = conditions.condition_overrides("stairs_up", preset)
    cells = benchmark.grid_cells(
        list(benchmark.DEFAULT_RISERS_M), list(benchmark.DEFAULT_TREADS_M), ["up", "down"]
    )
    benchmark.check_cells("stairs_up", [dataclasses.replace(c, condition_overrides=overrides) for c in cells])


def test_shipped_randomization_is_deterministic(tiny_run: Path, tmp_path: Path) -> None:
    for preset in conditions.RANDOMIZED_PRESETS.values():
        try:
            resolve_preset(preset, "envs")
        except ConfigError:
            pytest.skip(f"{preset} is not shipped (yet)")
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        argv = [
            "benchmark",
            str(tiny_run),
            *ONE_CELL,
            "--directions",
            "up",
            "down",
            "--json",
            str(out / "b.json"),
        ]
        assert main([*argv, "--randomized"]) == 0
        runs.append(json.loads((out / "b.json").read_text()))
    assert runs[0] == runs[1]
    assert runs[0]["randomized"]["presets"] == conditions.RANDOMIZED_PRESETS
    assert all(o["randomization"]["enabled"] for o in runs[0]["randomized"]["overrides"].values())
