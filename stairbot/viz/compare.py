"""Training runs side by side: `stairbot compare RUN RUN ... [--labels ...] [--plot FILE] [--json FILE]`.

The question it answers is the one an ablation asks: which of these runs learned faster on the same
budget? Each run is read from its own logs (`episodes.csv`, `evaluations.csv`, `env.yaml`), nothing
is re-simulated, so it works on runs still in progress. Per run:

- at the common budget (the fewest environment steps any of the runs has reached), over the training
  episodes of the last `window_steps` before it: the success rate and the curriculum's riser height;
- the first periodic evaluation with a success rate >= `target` (environment steps and wall-clock),
  and the best evaluation so far.

The figure overlays the runs: training success and curriculum riser against steps, evaluation success
against steps and against wall-clock hours. Wall-clock is only comparable between runs that ran on
the same machine under the same load (side by side, or each alone).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from stairbot.errors import StairbotError
from stairbot.viz.plots import default_window, read_table, rolling_mean, run_max_riser_m, save_png, steps_axis

COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray")


@dataclass(frozen=True)
class RunSummary:
    """One run's figures for the comparison. Risers in m, times in s; NaN / None where a run has no
    such data (no curriculum, no evaluation yet, or none at the target).

    Attributes:
        label: the name the run goes by in the table and the legend.
        run_dir: its directory.
        steps: environment steps of its last logged training episode.
        wall_s: wall-clock seconds at that episode.
        budget_steps: the common budget the `*_at_budget` figures are taken at.
        episodes_at_budget: training episodes in the window before the budget.
        success_at_budget: their success rate in [0, 1].
        riser_at_budget_m: their mean curriculum riser (difficulty x the env's max_riser_m).
        eval_riser_m: the riser its periodic evaluation runs on.
        first_target_steps, first_target_wall_s: the first evaluation with success >= target.
        best_eval_success: its highest evaluation success rate so far.
    """

    label: str
    run_dir: str
    steps: int
    wall_s: float
    budget_steps: int
    episodes_at_budget: int
    success_at_budget: float
    riser_at_budget_m: float
    eval_riser_m: float
    first_target_steps: int | None
    first_target_wall_s: float | None
    best_eval_success: float


@dataclass(frozen=True)
class _RunLogs:
    label: str
    path: Path
    episodes: dict[str, np.ndarray]
    evaluations: dict[str, np.ndarray]
    max_riser_m: float | None

    @property
    def last_step(self) -> int:
        return int(self.episodes["timesteps"].max())


@dataclass(frozen=True)
class Comparison:
    """The runs' summaries at one budget and evaluation target, with the logs they came from (read
    once, for the figure; not part of the JSON)."""

    target: float
    window_steps: int
    budget_steps: int
    runs: tuple[RunSummary, ...]
    logs: tuple[_RunLogs, ...] = field(default=(), repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data; a figure a run does not have (NaN) is null."""
        return {
            "target": self.target,
            "window_steps": self.window_steps,
            "budget_steps": self.budget_steps,
            "runs": [
                {
                    key: None if isinstance(value, float) and math.isnan(value) else value
                    for key, value in asdict(run).items()
                }
                for run in self.runs
            ],
        }


def _read_run(path: Path, label: str) -> _RunLogs:
    if not (path / "config.yaml").is_file():
        raise StairbotError(f"{path} is not a stairbot run directory (no config.yaml)")
    episodes = read_table(path / "episodes.csv")
    if not len(episodes.get("timesteps", ())):
        raise StairbotError(
            f"{path} has no finished training episodes yet (episodes.csv is empty or missing)"
        )
    return _RunLogs(label, path, episodes, read_table(path / "evaluations.csv"), run_max_riser_m(path))


def compare_runs(
    run_dirs: Sequence[Path],
    labels: Sequence[str] | None = None,
    *,
    target: float = 0.9,
    window_steps: int = 100_000,
    budget_steps: int | None = None,
) -> Comparison:
    """Summarize `run_dirs` at a common budget (default: the fewest steps any of them has reached).

    Raises:
        StairbotError: fewer than one run, labels that do not match the runs, a directory that is
            not a run or has no episodes yet, or a target / window / budget out of range.
    """
    if not run_dirs:
        raise StairbotError("compare needs at least one run directory")
    if labels is not None and len(labels) != len(run_dirs):
        raise StairbotError(f"{len(labels)} labels for {len(run_dirs)} runs: give one label per run, or none")
    if not 0.0 < target <= 1.0:
        raise StairbotError(f"target must be a success rate in (0, 1], got {target}")
    if window_steps < 1:
        raise StairbotError(f"window_steps must be >= 1, got {window_steps}")
    names = list(labels) if labels is not None else [Path(p).name for p in run_dirs]
    logs = [_read_run(Path(path), name) for path, name in zip(run_dirs, names, strict=True)]
    common = min(run.last_step for run in logs)
    if budget_steps is None:
        budget_steps = common
    elif not 0 < budget_steps <= common:
        raise StairbotError(
            f"budget_steps must be in (0, {common}] (the fewest steps any run has reached), "
            f"got {budget_steps}"
        )
    return Comparison(
        target,
        window_steps,
        budget_steps,
        tuple(_summary(run, budget_steps, target, window_steps) for run in logs),
        tuple(logs),
    )


def _summary(run: _RunLogs, budget: int, target: float, window: int) -> RunSummary:
    steps = run.episodes["timesteps"]
    in_window = (steps > budget - window) & (steps <= budget)
    success = float(np.mean(run.episodes["success"][in_window])) if in_window.any() else math.nan
    riser = math.nan
    difficulty = run.episodes.get("difficulty")
    if difficulty is not None and run.max_riser_m is not None and in_window.any():
        values = difficulty[in_window]
        if np.isfinite(values).any():
            riser = float(np.nanmean(values)) * run.max_riser_m
    evals = run.evaluations
    first_steps: int | None = None
    first_wall: float | None = None
    best = math.nan
    eval_riser = math.nan
    if len(evals.get("timesteps", ())):
        rates = evals["success_rate"]
        best = float(np.nanmax(rates))
        eval_riser = float(evals["riser_m"][-1]) if "riser_m" in evals else math.nan
        hits = np.flatnonzero(rates >= target - 1e-9)
        if hits.size:
            first_steps = int(evals["timesteps"][hits[0]])
            first_wall = float(evals["wall_s"][hits[0]]) if "wall_s" in evals else None
    last = int(np.argmax(steps))
    return RunSummary(
        label=run.label,
        run_dir=str(run.path),
        steps=int(steps[last]),
        wall_s=float(run.episodes["wall_s"][last]) if "wall_s" in run.episodes else math.nan,
        budget_steps=budget,
        episodes_at_budget=int(in_window.sum()),
        success_at_budget=success,
        riser_at_budget_m=riser,
        eval_riser_m=eval_riser,
        first_target_steps=first_steps,
        first_target_wall_s=first_wall,
        best_eval_success=best,
    )


def format_comparison(comparison: Comparison) -> str:
    """A plain-text table of `comparison`, one row per run."""
    budget, window = comparison.budget_steps, comparison.window_steps
    lines = [
        f"at {budget:,} environment steps (training episodes of the last {window:,} steps), "
        f"first evaluation >= {comparison.target:.0%}:",
        f"{'run':<20} {'steps':>10} {'wall':>8} {'episodes':>8} {'success':>8} {'riser':>8} "
        f"{'eval riser':>10} {'first >= target':>24} {'best eval':>9}",
    ]
    for run in comparison.runs:
        first = (
            "not yet"
            if run.first_target_steps is None
            else f"{run.first_target_steps:,} steps"
            + ("" if run.first_target_wall_s is None else f", {run.first_target_wall_s / 60:.0f} min")
        )
        lines.append(
            f"{run.label:<20} {run.steps:>10,} {_minutes(run.wall_s):>8} {run.episodes_at_budget:>8} "
            f"{_percent(run.success_at_budget):>8} {_cm(run.riser_at_budget_m):>8} "
            f"{_cm(run.eval_riser_m):>10} "
            f"{first:>24} {_percent(run.best_eval_success):>9}"
        )
    return "\n".join(lines)


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0%}"


def _cm(value_m: float) -> str:
    return "-" if math.isnan(value_m) else f"{value_m * 100:.1f} cm"


def _minutes(value_s: float) -> str:
    return "-" if math.isnan(value_s) else f"{value_s / 60:.0f} min"


def plot_comparison(comparison: Comparison, out: Path) -> Path:
    """`out` (PNG): the runs' training success, curriculum riser and evaluation success overlaid."""
    fig = Figure(figsize=(14, 9), layout=ConstrainedLayoutEngine())
    (ax_success, ax_riser), (ax_eval, ax_eval_wall) = fig.subplots(2, 2)
    fig.suptitle(f"{len(comparison.runs)} training runs compared", fontsize=14)
    ax_success.set_title("Training success rate (rolling mean over episodes)")
    ax_success.set_ylabel("episodes reaching the landing (%)")
    ax_riser.set_title("Curriculum riser (rolling mean over episodes)")
    ax_riser.set_ylabel("riser height (cm)")
    ax_eval.set_title("Evaluation success rate")
    ax_eval.set_ylabel("success rate (%)")
    ax_eval_wall.set_title("Evaluation success rate against wall-clock")
    ax_eval_wall.set_ylabel("success rate (%)")
    ax_eval_wall.set_xlabel("wall-clock (h)")
    ax_eval_wall.grid(alpha=0.3)
    for ax in (ax_success, ax_riser, ax_eval):
        steps_axis(ax)
    for index, (summary, run) in enumerate(zip(comparison.runs, comparison.logs, strict=True)):
        color = COLORS[index % len(COLORS)]
        steps = run.episodes["timesteps"]
        order = np.argsort(steps, kind="stable")
        window = default_window(len(steps))
        ax_success.plot(
            steps[order],
            100 * rolling_mean(run.episodes["success"][order], window),
            color=color,
            label=summary.label,
        )
        difficulty = run.episodes.get("difficulty")
        if difficulty is not None and run.max_riser_m is not None and np.isfinite(difficulty).any():
            riser_cm = 100 * run.max_riser_m * np.nan_to_num(difficulty[order])
            ax_riser.plot(steps[order], rolling_mean(riser_cm, window), color=color, label=summary.label)
        evals = run.evaluations
        if len(evals.get("timesteps", ())):
            rate = 100 * evals["success_rate"]
            ax_eval.plot(evals["timesteps"], rate, "o-", ms=3, color=color, label=summary.label)
            if "wall_s" in evals:
                ax_eval_wall.plot(evals["wall_s"] / 3600, rate, "o-", ms=3, color=color, label=summary.label)
    for ax in (ax_success, ax_eval, ax_eval_wall):
        ax.set_ylim(-2, 102)
    ax_eval.axhline(100 * comparison.target, color="0.4", ls=":", lw=1)
    ax_eval_wall.axhline(100 * comparison.target, color="0.4", ls=":", lw=1)
    for ax in (ax_success, ax_riser, ax_eval):
        ax.axvline(comparison.budget_steps, color="0.6", ls="--", lw=1)  # the common budget
    for ax in (ax_success, ax_riser, ax_eval, ax_eval_wall):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=9, framealpha=0.8)
    return save_png(fig, out)
