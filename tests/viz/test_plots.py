"""`stairbot plot`: real figures of a tiny real run, checked as images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stairbot.cli import main
from stairbot.viz.plots import learning_curves_figure, plot_run, read_table, rolling_mean

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path: Path, min_size: tuple[int, int], max_size: tuple[int, int]) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert min_size[0] <= width <= max_size[0] and min_size[1] <= height <= max_size[1], (width, height)
    assert pixels.std() > 15.0  # not blank: axes, lines and text on white
    assert (pixels < 128).mean() > 0.005  # some dark ink (text, lines)
    assert path.stat().st_size < 400_000


def test_plot_writes_curves_and_an_episode(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures"
    assert main(["plot", str(tiny_run), "--out", str(out), "--seed", "1", "--max-steps", "30"]) == 0
    printed = capsys.readouterr().out
    names = (
        "learning_curves.png",
        "reward_terms.png",
        "episode_seed1.png",
        "episode_seed1.npz",
        "episode_seed1.csv",
    )
    for name in names:
        assert f"wrote {out / name}" in printed
        assert (out / name).is_file()
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    _check_png(out / "learning_curves.png", (1200, 600), (2500, 1200))
    _check_png(out / "reward_terms.png", (1200, 600), (2500, 2500))
    _check_png(out / "episode_seed1.png", (1200, 1000), (2500, 2000))


def test_plot_defaults_to_the_run_dir_and_survives_a_run_without_evaluations(
    tiny_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "evaluations.csv").unlink()
    files = plot_run(run, episode=False)
    assert [p.name for p in files] == ["learning_curves.png", "reward_terms.png"]
    assert all(p.parent == run / "plots" for p in files)
    _check_png(run / "plots" / "learning_curves.png", (1200, 600), (2500, 1200))


def test_a_run_that_went_both_ways_gets_a_curriculum_curve_per_direction(
    tiny_run: Path, tmp_path: Path
) -> None:
    """Up and down episodes, each direction at its own level: one curve each, not their average."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    down = [i % 3 == 0 for i in range(30)]  # every third episode descends, at level 0.2, and fails
    rows = [
        f"{100 * (i + 1)},1.0,50,{'down' if d else 'up'},{0.2 if d else 0.8},{int(not d)},fall"
        for i, d in enumerate(down)
    ]
    header = "timesteps,return,length,direction,difficulty,success,termination_reason"
    (run / "episodes.csv").write_text("\n".join([header, *rows]) + "\n")
    fig = learning_curves_figure(run)
    curriculum = next(ax for ax in fig.axes if ax.get_title() == "Curriculum difficulty")
    means = {
        line.get_label(): line.get_ydata()
        for line in curriculum.get_lines()
        if str(line.get_label()).startswith("difficulty") and "mean" in str(line.get_label())
    }
    assert sorted(label.split(",")[0] for label in means) == ["difficulty down", "difficulty up"]
    by_direction = {label.split(",")[0]: np.asarray(values) for label, values in means.items()}
    np.testing.assert_allclose(by_direction["difficulty up"], 0.8)
    np.testing.assert_allclose(by_direction["difficulty down"], 0.2)
    success = next(ax for ax in fig.axes if ax.get_title() == "Training success rate")
    labels = [str(line.get_label()).split(",")[0] for line in success.get_lines()]
    assert "success up" in labels and "success down" in labels
    # An up-only run keeps its one curve.
    (run / "episodes.csv").write_text("\n".join([header, *(r.replace("down", "up") for r in rows)]) + "\n")
    curriculum = next(
        ax for ax in learning_curves_figure(run).axes if ax.get_title() == "Curriculum difficulty"
    )
    assert [str(line.get_label()).split(",")[0] for line in curriculum.get_lines()] == ["difficulty"] * 2


def test_plot_refuses_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stairbot: error:") and "not a stairbot run directory" in err


def test_read_table_and_rolling_mean(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timesteps,return,termination_reason\n")
    assert {k: len(v) for k, v in read_table(path).items()} == {
        "timesteps": 0,
        "return": 0,
        "termination_reason": 0,
    }
    path.write_text("timesteps,return,termination_reason\n10,1.5,fall\n20,-2,success\n")
    table = read_table(path)
    np.testing.assert_array_equal(table["timesteps"], [10, 20])
    assert table["termination_reason"].tolist() == ["fall", "success"]
    assert read_table(tmp_path / "missing.csv") == {}
    np.testing.assert_allclose(rolling_mean(np.array([1.0, 2.0, 3.0, 4.0]), 2), [1.0, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(rolling_mean(np.array([4.0]), 10), [4.0])
