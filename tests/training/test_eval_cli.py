"""`stairbot eval RUN_DIR`: a seeded, deterministic report of a trained run, as a table and JSON."""

from __future__ import annotations

import collections
import dataclasses
import json
import re
from pathlib import Path

import pytest

from stairbot.cli import main
from stairbot.evaluation import FALL_REASONS, EpisodeResult, EvalReport, fall_kinds, merge_reports

from .helpers import TERMINATION_REASONS, TrainedRun


def _eval(run: Path, out: Path, *extra: str) -> tuple[int, dict]:
    code = main(["eval", str(run), "--episodes", "2", "--json", str(out), *extra])
    return code, json.loads(out.read_text()) if out.exists() else {}


def test_eval_writes_a_complete_json_report(
    ppo_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _eval(ppo_run.path, tmp_path / "report.json")
    assert code == 0
    out = capsys.readouterr().out
    assert f"policy: {ppo_run.path / 'best'}" in out and "success rate" in out
    assert set(report) == {f.name for f in dataclasses.fields(EvalReport)}
    assert report["episodes"] == 2
    assert 0.0 <= report["success_rate"] <= 1.0
    assert 0.0 <= report["steps_climbed"] <= ppo_run.recipe.env.stairs.num_steps
    assert isinstance(report["falls"], int) and 0 <= report["falls"] <= 2
    assert report["falls_per_episode"] == report["falls"] / 2
    assert report["riser_m"] == pytest.approx(ppo_run.recipe.eval.riser_m)  # the recipe's eval flight
    assert report["direction"] == "up"
    results = report["results"]
    assert [r["seed"] for r in results] == [0, 1]
    assert {f.name for f in dataclasses.fields(EpisodeResult)} == set(results[0])
    for result in results:
        assert result["termination_reason"] in TERMINATION_REASONS and result["length"] > 0
        assert result["duration_s"] == pytest.approx(result["length"] * ppo_run.recipe.env.sim.control_dt_s)
    assert report["falls"] == sum(r["termination_reason"] in FALL_REASONS for r in results)
    endings = collections.Counter(r["termination_reason"] for r in results)
    listed = ", ".join(f"{k} {n}" for k, n in endings.most_common())
    assert re.search(rf"\nendings +{listed}\n", out), out
    mean_return = sum(r["episode_return"] for r in results) / 2
    assert report["mean_return"] == pytest.approx(mean_return)
    if report["success_rate"] == 0:
        assert report["mean_time_to_top_s"] is None


def test_eval_is_deterministic(ppo_run: TrainedRun, tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    second = tmp_path / "second.json"
    assert main(["eval", str(ppo_run.path), "--episodes", "2", "--json", str(first)]) == 0
    assert main(["eval", str(ppo_run.path), "--episodes", "2", "--json", str(second)]) == 0
    assert first.read_text() == second.read_text()


def test_eval_riser_override_and_latest_checkpoint(
    ppo_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _eval(ppo_run.path, tmp_path / "r.json", "--riser-m", "0.15", "--checkpoint", "latest")
    assert code == 0
    assert report["riser_m"] == pytest.approx(0.15)
    assert f"policy: {ppo_run.path / 'checkpoints' / 'step_000000000256'}" in capsys.readouterr().out


def test_eval_of_a_named_checkpoint(
    ppo_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _eval(ppo_run.path, tmp_path / "r.json", "--checkpoint", "step_000000000256")
    assert code == 0
    assert f"policy: {ppo_run.path / 'checkpoints' / 'step_000000000256'}" in capsys.readouterr().out
    code, _ = _eval(ppo_run.path, tmp_path / "missing.json", "--checkpoint", "step_000000009999")
    assert code == 2 and not (tmp_path / "missing.json").exists()
    err = capsys.readouterr().err
    assert "no checkpoint 'step_000000009999'" in err
    assert "use best, latest or one of the kept checkpoints (" in err and "step_000000000256)" in err


def test_eval_of_a_sac_run(sac_run: TrainedRun, tmp_path: Path) -> None:
    code, report = _eval(sac_run.path, tmp_path / "sac.json", "--seed", "5")
    assert code == 0
    assert [r["seed"] for r in report["results"]] == [5, 6]


def test_eval_of_a_non_run_dir_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path), "--episodes", "1"]) == 2
    assert "stairbot: error:" in capsys.readouterr().err


def test_eval_with_an_impossible_riser_is_a_clear_error(
    ppo_run: TrainedRun, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(ppo_run.path), "--episodes", "1", "--riser-m", "-0.1"]) == 2
    err = capsys.readouterr().err
    assert "stairbot: error:" in err and "riser_m" in err


def test_eval_with_zero_episodes_is_a_clear_error(
    ppo_run: TrainedRun, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(ppo_run.path), "--episodes", "0"]) == 2
    assert "stairbot: error:" in capsys.readouterr().err


def test_eval_runs_the_direction_asked_for(ppo_run: TrainedRun, tmp_path: Path) -> None:
    code, report = _eval(ppo_run.path, tmp_path / "down.json", "--direction", "down")
    assert code == 0
    assert report["direction"] == "down"


def test_merge_reports_weighs_every_episode() -> None:
    def result(seed: int, success: bool, climbed: int, ret: float) -> EpisodeResult:
        return EpisodeResult(seed, success, climbed, 6, "success" if success else "fall", 100, 2.0, ret)

    def report(direction: str, results: list[EpisodeResult]) -> EvalReport:
        falls = sum(not r.success for r in results)
        return EvalReport(len(results), 0.0, 0.0, falls, 0.0, None, 0.0, 0.1, direction, results)

    up = report("up", [result(0, True, 6, 10.0), result(1, False, 2, -4.0)])
    down = report("down", [result(0, False, 1, -2.0), result(1, False, 0, -8.0)])
    merged = merge_reports([up, down])
    assert merged.episodes == 4 and merged.direction == "up+down"
    assert merged.success_rate == 0.25 and merged.steps_climbed == 2.25
    assert merged.falls == 3 and merged.falls_per_episode == 0.75
    assert merged.mean_return == -1.0 and merged.mean_time_to_top_s == 2.0
    assert merge_reports([up]) is up


def test_the_report_counts_falls_by_the_way_the_trunk_tipped() -> None:
    def fell(seed: int, kind: str) -> EpisodeResult:
        return EpisodeResult(seed, False, 1, 6, "fall", 50, 1.0, -5.0, fall_kind=kind)

    results = [fell(0, "backward"), fell(1, "sideways"), fell(2, "backward")]
    results.append(EpisodeResult(3, True, 6, 6, "success", 100, 2.0, 10.0))
    assert fall_kinds(results) == {"backward": 2, "forward": 0, "sideways": 1, "low": 0}
    report = EvalReport(4, 0.25, 2.25, 3, 0.75, 2.0, 0.0, 0.15, "up", results)
    (row,) = [line for line in report.table().splitlines() if line.startswith("falls by direction")]
    assert row.endswith(" backward 2, sideways 1")
