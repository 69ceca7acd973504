"""`stairbot compare`: runs side by side from their logs; figures checked on logs with known answers,
the command and its figure on a tiny real run."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from stairbot.cli import main
from stairbot.errors import StairbotError
from stairbot.viz.compare import compare_runs, format_comparison
from viz.test_plots import _check_png

EPISODE_FIELDS = ("timesteps", "wall_s", "success", "difficulty")
EVAL_FIELDS = ("timesteps", "success_rate", "riser_m", "wall_s")


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[tuple[float, ...]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        writer.writerows(rows)


def _fake_run(
    root: Path, name: str, episodes: list[tuple[float, ...]], evaluations: list[tuple[float, ...]]
) -> Path:
    """A run directory with only the logs compare reads: max_riser_m 0.20 m."""
    run = root / name
    run.mkdir()
    (run / "config.yaml").write_text("algorithm: ppo\n")
    (run / "env.yaml").write_text("curriculum:\n  max_riser_m: 0.20\nstairs:\n  num_steps: 6\n")
    _write_csv(run / "episodes.csv", EPISODE_FIELDS, episodes)
    _write_csv(run / "evaluations.csv", EVAL_FIELDS, evaluations)
    return run


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    # fast: 10 episodes to 1000 steps, the last 4 (from 700 steps) at difficulty 0.5, the last 3 won;
    # its evaluation first reaches 90 % at 800 steps (120 s).
    fast = _fake_run(
        tmp_path,
        "fast",
        [(100 * (i + 1), 12.0 * (i + 1), int(i >= 7), 0.5 if i >= 6 else 0.1) for i in range(10)],
        [(400, 0.5, 0.1, 60.0), (800, 0.9, 0.1, 120.0), (1200, 1.0, 0.1, 180.0)],
    )
    # slow: to 800 steps only (the common budget), no wins, difficulty 0.25 throughout, never 90 %.
    slow = _fake_run(
        tmp_path,
        "slow",
        [(200 * (i + 1), 30.0 * (i + 1), 0, 0.25) for i in range(4)],
        [(400, 0.2, 0.1, 60.0), (800, 0.6, 0.1, 130.0)],
    )
    return fast, slow


def test_figures_at_the_common_budget(two_runs: tuple[Path, Path]) -> None:
    fast, slow = two_runs
    comparison = compare_runs([fast, slow], ["fast", "slow"], window_steps=400)
    assert comparison.budget_steps == 800  # the slower run's last episode
    a, b = comparison.runs
    # fast, episodes in (400, 800]: steps 500..800, won at 800 only, difficulty 0.1, 0.1, 0.5, 0.5
    assert (a.steps, a.wall_s, a.episodes_at_budget) == (1000, 120.0, 4)
    assert a.success_at_budget == pytest.approx(1 / 4)
    assert a.riser_at_budget_m == pytest.approx(0.20 * (0.1 + 0.1 + 0.5 + 0.5) / 4)
    assert (a.first_target_steps, a.first_target_wall_s, a.best_eval_success) == (800, 120.0, 1.0)
    assert a.eval_riser_m == pytest.approx(0.1)
    assert (b.steps, b.episodes_at_budget, b.success_at_budget) == (800, 2, 0.0)
    assert b.riser_at_budget_m == pytest.approx(0.05)
    assert b.first_target_steps is None and b.best_eval_success == pytest.approx(0.6)
    table = format_comparison(comparison)
    fast_row, slow_row = table.splitlines()[2:]
    assert fast_row.split()[:8] == ["fast", "1,000", "2", "min", "4", "25%", "6.0", "cm"]
    assert "800 steps, 2 min" in fast_row and "10.0 cm" in fast_row
    assert "5.0 cm" in slow_row and "not yet" in slow_row
    # A lower target is met by the slow run too; a budget of 400 steps looks earlier.
    assert compare_runs([slow], target=0.6).runs[0].first_target_steps == 800
    early = compare_runs([fast, slow], budget_steps=400, window_steps=200).runs
    assert [run.episodes_at_budget for run in early] == [2, 1]


def test_json_has_null_for_what_a_run_lacks(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    fast, _ = two_runs
    fixed = _fake_run(tmp_path, "fixed", [(100, 5.0, 1, math.nan), (200, 10.0, 0, math.nan)], [])
    data = compare_runs([fast, fixed]).to_json()
    text = json.dumps(data, allow_nan=False)  # strict JSON: no NaN
    run = json.loads(text)["runs"][1]
    assert run["riser_at_budget_m"] is None and run["best_eval_success"] is None
    assert run["eval_riser_m"] is None and run["first_target_steps"] is None
    assert run["success_at_budget"] == 0.5


def test_bad_arguments_are_clear(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    fast, slow = two_runs
    with pytest.raises(StairbotError, match="1 labels for 2 runs"):
        compare_runs([fast, slow], ["only one"])
    with pytest.raises(StairbotError, match=r"budget_steps must be in \(0, 800\]"):
        compare_runs([fast, slow], budget_steps=900)
    with pytest.raises(StairbotError, match=r"target must be a success rate in \(0, 1\]"):
        compare_runs([fast], target=90)
    with pytest.raises(StairbotError, match="not a stairbot run directory"):
        compare_runs([tmp_path])
    empty = _fake_run(tmp_path, "empty", [], [])
    with pytest.raises(StairbotError, match="no finished training episodes"):
        compare_runs([fast, empty])


def test_compare_command_on_real_runs(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Path(shutil.copytree(tiny_run, tmp_path / "other"))
    plot, report = tmp_path / "compare.png", tmp_path / "compare.json"
    argv = [
        "compare",
        str(tiny_run),
        str(other),
        "--labels",
        "a",
        "b",
        "--plot",
        str(plot),
        "--json",
        str(report),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"wrote {plot}" in printed and f"wrote {report}" in printed
    data = json.loads(report.read_text())
    assert [run["label"] for run in data["runs"]] == ["a", "b"]
    assert data["runs"][0]["steps"] == data["runs"][1]["steps"] == data["budget_steps"] > 0
    assert not math.isnan(data["runs"][0]["success_at_budget"])
    _check_png(plot, (1200, 800), (1600, 1000))
    assert main(["compare", str(tiny_run), "--labels", "a", "b"]) == 2
    assert "2 labels for 1 runs" in capsys.readouterr().err
