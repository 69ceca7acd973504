"""`stairbot benchmark`: a tiny grid (2 risers x 1 tread x up/down, 2 episodes per cell), for real.

The zero-action robot stands still until the time limit (0% success, no falls); the tiny PPO run of
tests/training/helpers.py falls within a few control steps, so its cells take milliseconds. Each is
run serially and in a 2-process spawn pool, and the two must give the same JSON.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from training.helpers import PPO_TINY

from stairbot import benchmark
from stairbot.benchmark import CellResult, summarize
from stairbot.cli import main
from stairbot.training import trainer
from stairbot.training.recipe import load_recipe

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
