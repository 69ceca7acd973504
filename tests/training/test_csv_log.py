"""The run's CSV logs keep their columns when a newer stairbot resumes the run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from stairbot.training.callbacks import append_csv


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_new_file_gets_the_rows_columns(tmp_path: Path) -> None:
    path = tmp_path / "episodes.csv"
    append_csv(path, {"timesteps": 10, "success": 1})
    append_csv(path, {"timesteps": 20, "success": 0})
    assert path.read_text().splitlines() == ["timesteps,success", "10,1", "20,0"]


def test_rows_with_more_columns_stay_under_the_old_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "episodes.csv"
    append_csv(path, {"timesteps": 10, "success": 1, "difficulty": 0.5})  # an older stairbot's row
    newer = {"timesteps": 20, "success": 0, "direction": "down", "difficulty": 0.7}
    append_csv(path, newer)
    append_csv(path, {**newer, "timesteps": 30})
    rows = _rows(path)
    assert [r["difficulty"] for r in rows] == ["0.5", "0.7", "0.7"]  # not "down": nothing shifted
    assert all(len(r) == 3 and None not in r for r in rows)
    warning = capsys.readouterr().err
    assert warning.count("has no column(s) ['direction']") == 1  # said once per file


def test_rows_missing_a_column_leave_it_empty(tmp_path: Path) -> None:
    path = tmp_path / "evaluations.csv"
    append_csv(path, {"timesteps": 10, "success_rate": 0.5, "success_rate_up": 0.5})
    append_csv(path, {"timesteps": 20, "success_rate": 0.25})
    assert _rows(path)[1] == {"timesteps": "20", "success_rate": "0.25", "success_rate_up": ""}
