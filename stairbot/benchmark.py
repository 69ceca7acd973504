"""A policy's stair-climbing envelope over a grid of riser heights, tread depths and directions.

`stairbot benchmark POLICY [--episodes N] [--seed S] [--processes K] [--json F] [--csv F] [--plot F]
[--randomized [PRESET]] [--command-mps V] [--action-noise SIGMA]`

Every cell of the grid (direction x tread x riser) is `stairbot.evaluation.evaluate` with the same
seeds (episode i of every cell is reset with `seed + i`, so cells differ only in the stairs) and
deterministic actions, in the policy's own env preset with the curriculum off and the cell's
`stairs.riser_m`, `stairs.tread_m` and `stairs.direction` as overrides.

Conditions. The clean grid runs with domain randomization and stair jitter off (`randomization:` is
disabled if the policy's preset has that section, `stairs.riser_jitter_m` and `stairs.tread_jitter_m`
are 0), whatever the policy was trained with. `--randomized` runs the whole grid a second time under
a randomized condition: each cell also takes the `randomization:` section and the
`stairs.*_jitter_m` keys of a condition preset (read with `extends:` resolved; nothing else of it),
`stairs_up_randomized` for up cells and `stairs_down_randomized` for down cells, or the one PRESET
given for both (e.g. the fixed `stairs_up_stress`). The same seeds are used, and the sampled
parameters come from each episode's seeded `np_random`, so the randomized results are as
deterministic as the clean ones. They are reported next to the clean ones (a `randomized` block in the
JSON, a `condition` column in the CSV, dashed lines in the plot).

Commands. Each episode's forward-speed command is drawn from the policy's own
`command.forward_speed_mps` range, as in training. `--command-mps V` fixes it at V m/s in every cell
of both conditions (the same seeds, so the episodes differ only in the command): how well it climbs
when told to walk up at V, e.g. slower than the middle of the range it trained on. The JSON then
carries `command_mps` (absent when the command is the policy's own range).

Action noise. `--action-noise SIGMA` draws every action as the policy's Gaussian with std SIGMA
(action units) would in training: the noise goes on its mean before the clip (or tanh), from a
generator seeded per episode (`stairbot.evaluation`). It is the policy as its own PPO fine-tuning
sees it (the recipes explore at std 0.2-0.3), so a report can say how often the training episodes
reach the top of a cell. The JSON then carries `action_noise`.

Per direction the summary gives `max_riser_m`: the highest riser up to which *every* riser of the
grid reaches `SUCCESS_THRESHOLD` (80%) success on *every* tread (a conservative, contiguous envelope:
a lucky pass above a failing riser does not count, nor does a pass on the easier tread alone), and
`max_riser_by_tread_m`, the same rule for each tread on its own. Falls per episode and the mean time
to the top are pooled over all the direction's episodes (the time over its successful ones).

Cells are independent: with K > 1 processes they run in a spawn-context pool, each worker building its
own policy from the POLICY string and its own envs; results equal the serial run's.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from stairbot.conditions import Randomized, condition_overrides, condition_presets
from stairbot.envs.config import MAX_FORWARD_SPEED_MPS, load_env_config
from stairbot.errors import ConfigError
from stairbot.evaluation import (
    EPISODE_FIGURES,
    FALL_REASONS,
    EvalReport,
    check_action_noise,
    evaluate,
    fall_kinds,
)
from stairbot.policy_source import PolicySource, load_policy_source
from stairbot.stats import wilson_interval
from stairbot.termination import FALL_KINDS
from stairbot.terrain.stairs import MAX_RISER_M, MIN_TREAD_M
from stairbot.training.vec import env_factory

DEFAULT_RISERS_M = tuple(round(0.05 + 0.025 * i, 3) for i in range(7))  # 0.05 .. 0.20
DEFAULT_TREADS_M = (0.25, 0.32)
DIRECTIONS = ("up", "down")
DEFAULT_EPISODES = 20
SUCCESS_THRESHOLD = 0.8
MAX_TREAD_M = 1.0
# The evaluation setting: fixed stairs, no curriculum.
_CURRICULUM_OFF = {"curriculum.adaptive": False, "curriculum.difficulty": None}
CLEAN = "clean"
RANDOMIZED = "randomized"

ENDINGS = ("success", "fall", "base_contact", "thigh_contact", "out_of_bounds", "time_limit")
"""How an episode can end (`EpisodeResult.termination_reason`); each cell counts them."""

CSV_COLUMNS = (
    "condition",
    "direction",
    "tread_m",
    "riser_m",
    "episodes",
    "success_rate",
    "success_ci95_low",
    "success_ci95_high",
    "steps_climbed",
    "falls",
    "falls_per_episode",
    "mean_time_to_top_s",
    "mean_return",
    *EPISODE_FIGURES,  # how the robot moved, and where its trunk struck
    *(f"ended_{reason}" for reason in ENDINGS),
    *(f"fell_{kind}" for kind in FALL_KINDS),  # the "fall" endings by which way the trunk tipped
)


@dataclass(frozen=True)
class Cell:
    """One grid point."""

    direction: str
    tread_m: float
    riser_m: float
    condition: str = CLEAN
    # Env overrides of the condition (`condition_overrides`): randomization section, stair jitter.
    # Empty runs the policy's preset as it is, randomization included: a clean cell of a policy
    # trained under randomization needs condition_overrides(preset, None).
    condition_overrides: Mapping[str, Any] = field(default_factory=dict)

    def overrides(self) -> dict[str, Any]:
        return {
            **_CURRICULUM_OFF,
            **self.condition_overrides,
            "stairs.riser_m": self.riser_m,
            "stairs.tread_m": self.tread_m,
            "stairs.tread_range_m": None,  # the cell's tread, not the training's range
            "stairs.direction": self.direction,
        }


@dataclass(frozen=True)
class CellResult:
    """A cell's aggregates (see `EvalReport`) plus the per-episode numbers the summary pools."""

    direction: str
    tread_m: float
    riser_m: float
    episodes: int
    success_rate: float
    steps_climbed: float
    falls: int
    falls_per_episode: float
    mean_time_to_top_s: float | None
    mean_return: float
    success_durations_s: tuple[float, ...]  # time to the top of each successful episode
    condition: str = CLEAN  # CLEAN or RANDOMIZED
    # How the robot moved (see EpisodeResult): mean speed / command, peak speed m/s, |pitch - slope| deg.
    speed_over_command: float | None = None
    peak_speed_mps: float | None = None
    pitch_to_slope_deg: float | None = None
    pitch_rate_rms_radps: float | None = None  # how much the trunk rocks nose up and down
    hip_abduction_rms_rad: float | None = None  # how far the legs splay sideways from the default pose
    base_contact_x_m: float | None = None  # where base contacts struck the trunk (x, base frame, m)
    base_contact_pitch_to_slope_deg: float | None = None  # the trunk's pitch off the slope then, deg
    # Episodes per ending (ENDINGS): which failure limits a cell (base contact on the nosings, a
    # fall, standing out the time limit).
    endings: Mapping[str, int] = field(default_factory=dict)
    # The "fall" endings by kind (`termination.FallKind`): backward (up a flight: back down it),
    # forward, sideways, or sunk low while upright.
    fall_kinds: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_report(cls, cell: Cell, report: EvalReport) -> CellResult:
        return cls(
            condition=cell.condition,
            direction=cell.direction,
            tread_m=cell.tread_m,
            riser_m=cell.riser_m,
            episodes=report.episodes,
            success_rate=report.success_rate,
            steps_climbed=report.steps_climbed,
            falls=sum(r.termination_reason in FALL_REASONS for r in report.results),
            falls_per_episode=report.falls_per_episode,
            mean_time_to_top_s=report.mean_time_to_top_s,
            mean_return=report.mean_return,
            success_durations_s=tuple(r.duration_s for r in report.results if r.success),
            **{name: getattr(report, name) for name in EPISODE_FIGURES},
            endings=dict(Counter(r.termination_reason for r in report.results)),
            fall_kinds=fall_kinds(report.results),
        )

    @property
    def successes(self) -> int:
        return round(self.success_rate * self.episodes)

    @property
    def success_ci95_low(self) -> float:
        """Lower end of the success rate's 95 % Wilson interval (`stairbot.stats.wilson_interval`)."""
        return wilson_interval(self.successes, self.episodes)[0]

    @property
    def success_ci95_high(self) -> float:
        return wilson_interval(self.successes, self.episodes)[1]

    def row(self) -> dict[str, Any]:
        """The JSON / CSV fields (plain types); `ended_<reason>` from `endings` and `fell_<kind>`
        from `fall_kinds` (0 where absent)."""
        counted = ("ended_", "fell_")
        fields = {name: getattr(self, name) for name in CSV_COLUMNS if not name.startswith(counted)}
        return {
            **fields,
            **{f"ended_{reason}": int(self.endings.get(reason, 0)) for reason in ENDINGS},
            **{f"fell_{kind}": int(self.fall_kinds.get(kind, 0)) for kind in FALL_KINDS},
        }


@dataclass(frozen=True)
class DirectionSummary:
    direction: str
    max_riser_m: float | None  # every tread >= SUCCESS_THRESHOLD at this riser and all lower ones
    max_riser_by_tread_m: dict[str, float | None]  # key: tread as "0.25"
    episodes: int
    falls_per_episode: float
    mean_time_to_top_s: float | None  # over all successful episodes of the direction


@dataclass(frozen=True)
class ConditionResult:
    """The grid run again under a condition (`--randomized`): its presets, overrides and results."""

    presets: dict[str, str]  # direction -> condition preset
    overrides: dict[str, dict[str, Any]]  # direction -> the env overrides taken from it
    cells: tuple[CellResult, ...]
    summary: tuple[DirectionSummary, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "presets": dict(self.presets),
            "overrides": {d: dict(o) for d, o in self.overrides.items()},
            "cells": [cell.row() for cell in self.cells],
            "summary": _summary_dict(self.summary),
        }


def _summary_dict(summary: Sequence[DirectionSummary]) -> dict[str, Any]:
    return {s.direction: {k: v for k, v in asdict(s).items() if k != "direction"} for s in summary}


@dataclass(frozen=True)
class BenchmarkResult:
    policy: str
    env_preset: str
    seed: int
    episodes: int
    risers_m: tuple[float, ...]
    treads_m: tuple[float, ...]
    directions: tuple[str, ...]
    cells: tuple[CellResult, ...]
    summary: tuple[DirectionSummary, ...]
    randomized: ConditionResult | None = None  # with --randomized
    command_mps: float | None = None  # with --command-mps: the fixed forward-speed command, m/s
    action_noise: float = 0.0  # with --action-noise: std of the noise on every action, action units

    def to_dict(self) -> dict[str, Any]:
        data = {
            "policy": self.policy,
            "env_preset": self.env_preset,
            "seed": self.seed,
            "episodes": self.episodes,
            "success_threshold": SUCCESS_THRESHOLD,
            "grid": {
                "risers_m": list(self.risers_m),
                "treads_m": list(self.treads_m),
                "directions": list(self.directions),
            },
            "cells": [cell.row() for cell in self.cells],
            "summary": _summary_dict(self.summary),
        }
        if self.command_mps is not None:
            data["command_mps"] = self.command_mps
        if self.action_noise > 0:
            data["action_noise"] = self.action_noise
        if self.randomized is not None:
            data["randomized"] = self.randomized.to_dict()
        return data

    def _conditions_text(self) -> str:
        """'N episodes per cell, seed S[, command V m/s][, action noise SIGMA]' for the summary lines."""
        command = "" if self.command_mps is None else f", command {self.command_mps:g} m/s"
        noise = f", action noise {self.action_noise:g}" if self.action_noise > 0 else ""
        return f"{self.episodes} episodes per cell, seed {self.seed}{command}{noise}"

    def to_json(self, path: Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n")
        return text

    def to_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            randomized = () if self.randomized is None else self.randomized.cells
            for cell in (*self.cells, *randomized):
                row = cell.row()
                if row["mean_time_to_top_s"] is None:
                    row["mean_time_to_top_s"] = ""
                writer.writerow(row)

    def table(self) -> str:
        if self.randomized is not None:
            return self._comparison_table(self.randomized)
        header = (
            "direction",
            "tread m",
            "riser m",
            "success",
            "steps climbed",
            "falls/ep",
            "time to top",
            "speed/cmd",
            "pitch-slope",
            "pitch rate",
            "hip splay",
        )
        rows = [
            (
                c.direction,
                f"{c.tread_m:.3f}",
                f"{c.riser_m:.3f}",
                f"{c.success_rate:.0%}",
                f"{c.steps_climbed:.2f}",
                f"{c.falls_per_episode:.2f}",
                "-" if c.mean_time_to_top_s is None else f"{c.mean_time_to_top_s:.1f} s",
                "-" if c.speed_over_command is None else f"{c.speed_over_command:.2f}",
                "-" if c.pitch_to_slope_deg is None else f"{c.pitch_to_slope_deg:.0f} deg",
                "-" if c.pitch_rate_rms_radps is None else f"{c.pitch_rate_rms_radps:.2f} rad/s",
                "-" if c.hip_abduction_rms_rad is None else f"{c.hip_abduction_rms_rad:.2f} rad",
            )
            for c in self.cells
        ]
        lines = _aligned(header, rows)
        lines.append("")
        lines.append(f"summary ({self._conditions_text()}, success >= {SUCCESS_THRESHOLD:.0%}):")
        for s in self.summary:
            per_tread = ", ".join(f"tread {t}: {_riser_text(h)}" for t, h in s.max_riser_by_tread_m.items())
            time_to_top = "-" if s.mean_time_to_top_s is None else f"{s.mean_time_to_top_s:.1f} s"
            lines.append(
                f"  {s.direction:<4} max riser {_riser_text(s.max_riser_m)} (all treads; {per_tread}), "
                f"falls/ep {s.falls_per_episode:.2f}, time to top {time_to_top}"
            )
        return "\n".join(lines)

    def _comparison_table(self, randomized: ConditionResult) -> str:
        """Clean next to randomized, cell by cell, and both envelopes per direction."""
        header = (
            "direction",
            "tread m",
            "riser m",
            "success clean",
            "randomized",
            "falls/ep clean",
            "randomized",
        )
        rows = [
            (
                c.direction,
                f"{c.tread_m:.3f}",
                f"{c.riser_m:.3f}",
                f"{c.success_rate:.0%}",
                f"{r.success_rate:.0%}",
                f"{c.falls_per_episode:.2f}",
                f"{r.falls_per_episode:.2f}",
            )
            for c, r in zip(self.cells, randomized.cells, strict=True)
        ]
        lines = _aligned(header, rows)
        presets = ", ".join(f"{d}: {p}" for d, p in randomized.presets.items())
        lines += [
            "",
            f"summary ({self._conditions_text()}, success >= {SUCCESS_THRESHOLD:.0%}; "
            f"randomized with {presets}):",
        ]
        for clean, rand in zip(self.summary, randomized.summary, strict=True):
            lines.append(
                f"  {clean.direction:<4} max riser clean {_riser_text(clean.max_riser_m)}, randomized "
                f"{_riser_text(rand.max_riser_m)} (all treads); falls/ep clean "
                f"{clean.falls_per_episode:.2f}, randomized {rand.falls_per_episode:.2f}"
            )
        return "\n".join(lines)


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Table lines: the first column left-aligned, the others right-aligned, a rule under the header."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
        for r in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _riser_text(riser_m: float | None) -> str:
    return "none" if riser_m is None else f"{riser_m:.3f} m"


# ---- grid ---------------------------------------------------------------------------------------


def check_grid(
    risers_m: Sequence[float],
    treads_m: Sequence[float],
    directions: Sequence[str],
    episodes: int,
    processes: int,
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[str, ...]]:
    """Validated, sorted, de-duplicated grid axes (directions keep their order); `ConfigError` otherwise."""
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    if processes < 1:
        raise ConfigError(f"--processes must be at least 1, got {processes}")
    if not risers_m or not treads_m or not directions:
        raise ConfigError("the grid needs at least one riser, one tread and one direction")
    for riser in risers_m:
        if not (math.isfinite(riser) and 0.0 < riser <= MAX_RISER_M):
            raise ConfigError(f"riser {riser} m is outside (0, {MAX_RISER_M}] m")
    for tread in treads_m:
        if not (math.isfinite(tread) and MIN_TREAD_M <= tread <= MAX_TREAD_M):
            raise ConfigError(f"tread {tread} m is outside [{MIN_TREAD_M}, {MAX_TREAD_M}] m")
    for direction in directions:
        if direction not in DIRECTIONS:
            raise ConfigError(f"unknown direction {direction!r}: use {' or '.join(DIRECTIONS)}")
    return (
        tuple(sorted({float(r) for r in risers_m})),
        tuple(sorted({float(t) for t in treads_m})),
        tuple(dict.fromkeys(directions)),
    )


def command_overrides(command_mps: float | None) -> dict[str, Any]:
    """Env overrides that fix the forward-speed command at `command_mps` (None: none); `ConfigError`
    outside (0, MAX_FORWARD_SPEED_MPS] m/s."""
    if command_mps is None:
        return {}
    if not (math.isfinite(command_mps) and 0.0 < command_mps <= MAX_FORWARD_SPEED_MPS):
        raise ConfigError(f"--command-mps must be in (0, {MAX_FORWARD_SPEED_MPS:g}] m/s, got {command_mps}")
    # A one-point range: the env still draws from it, so every episode's random stream is unchanged.
    return {"command.forward_speed_mps": [float(command_mps), float(command_mps)]}


def grid_cells(
    risers_m: Sequence[float],
    treads_m: Sequence[float],
    directions: Sequence[str],
    condition: str = CLEAN,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Cell]:
    """Cells in table order: direction, then tread, then riser; `overrides`: direction -> condition
    overrides (`condition_overrides`)."""
    overrides = overrides or {}
    return [
        Cell(d, t, r, condition, dict(overrides.get(d, {})))
        for d in directions
        for t in treads_m
        for r in risers_m
    ]


def check_cells(env_preset: str, cells: Sequence[Cell]) -> None:
    """Load every cell's env config once up front, so a bad combination fails before any episode."""
    for cell in cells:
        try:
            load_env_config(env_preset, cell.overrides())
        except ConfigError as exc:
            raise ConfigError(
                f"{cell.condition} cell ({cell.direction}, tread {cell.tread_m:g} m, riser "
                f"{cell.riser_m:g} m): {exc}"
            ) from None


# ---- running ------------------------------------------------------------------------------------


def run_cell(
    source: PolicySource, cell: Cell, episodes: int, seed: int, action_noise: float = 0.0
) -> CellResult:
    make_env = env_factory(source.env_preset, cell.overrides())
    return CellResult.from_report(cell, evaluate(source, make_env, episodes, seed, action_noise))


_WORKER: dict[str, PolicySource] = {}  # a pool worker's policy, built once by _init_worker

Result = TypeVar("Result")
CellRunner = Callable[[PolicySource, Cell, int, int], Result]  # (source, cell, episodes, seed)


def _init_worker(policy: str | None) -> None:
    import torch

    torch.set_num_threads(1)  # K workers on K cores
    _WORKER["source"] = load_policy_source(policy)


def _worker_cell(task: tuple[CellRunner[Result], Cell, int, int]) -> Result:
    run, cell, episodes, seed = task
    return run(_WORKER["source"], cell, episodes, seed)


def map_cells(
    run: CellRunner[Result],
    *,
    policy: str | None,
    source: PolicySource,
    cells: list[Cell],
    episodes: int,
    seed: int,
    processes: int,
) -> Iterator[Result]:
    """`run(source, cell, episodes, seed)` for each cell, in order: serially, or with `processes` > 1
    in a spawn-context pool whose workers build their own policy from the POLICY string `policy`
    (same results as serial). `run` must pickle: a module-level function or a `functools.partial`
    of one."""
    if processes <= 1 or len(cells) <= 1:
        for cell in cells:
            yield run(source, cell, episodes, seed)
        return
    context = multiprocessing.get_context("spawn")
    tasks = [(run, cell, episodes, seed) for cell in cells]
    with context.Pool(min(processes, len(cells)), initializer=_init_worker, initargs=(policy,)) as pool:
        yield from pool.imap(_worker_cell, tasks, chunksize=1)


def map_clean_cells(
    run: CellRunner[Result],
    policy: str | None,
    *,
    risers_m: Sequence[float],
    treads_m: Sequence[float],
    directions: Sequence[str],
    episodes: int,
    seed: int,
    processes: int | None,
    command_mps: float | None = None,
) -> list[Result]:
    """`run(source, cell, episodes, seed)` on every (direction, tread, riser) cell of the clean grid
    for `policy` (a POLICY string for `load_policy_source`; None: zero action), in table order: the
    robot and flight without randomization or jitter, as the benchmark's clean cells, and with
    `command_mps` the forward-speed command fixed (`command_overrides`). `processes` None is one per
    core (`map_cells`). Bad axes, episodes, processes or command raise `ConfigError` before any
    episode runs. What the per-cell diagnostics (`stairbot footholds`, `stairbot saturation`) share."""
    if processes is None:
        processes = os.cpu_count() or 1
    risers, treads, kept_directions = check_grid(risers_m, treads_m, directions, episodes, processes)
    command = command_overrides(command_mps)
    source = load_policy_source(policy)
    clean = {**condition_overrides(source.env_preset, None), **command}
    cells = grid_cells(risers, treads, kept_directions, overrides=dict.fromkeys(kept_directions, clean))
    check_cells(source.env_preset, cells)
    return list(
        map_cells(
            run, policy=policy, source=source, cells=cells, episodes=episodes, seed=seed, processes=processes
        )
    )


def run_cells(
    *,
    policy: str | None,
    source: PolicySource,
    cells: list[Cell],
    episodes: int,
    seed: int,
    processes: int,
    action_noise: float = 0.0,
) -> Iterator[CellResult]:
    """Each cell's benchmark result, in order (`map_cells` of `run_cell`)."""
    run = functools.partial(run_cell, action_noise=action_noise)
    return map_cells(
        run, policy=policy, source=source, cells=cells, episodes=episodes, seed=seed, processes=processes
    )


def summarize(
    cells: Sequence[CellResult], directions: Sequence[str], treads_m: Sequence[float]
) -> list[DirectionSummary]:
    summaries = []
    for direction in directions:
        mine = [c for c in cells if c.direction == direction]
        by_tread = {}
        for tread in treads_m:
            by_tread[f"{tread:g}"] = _envelope([c for c in mine if c.tread_m == tread])
        episodes = sum(c.episodes for c in mine)
        durations = [d for c in mine for d in c.success_durations_s]
        summaries.append(
            DirectionSummary(
                direction=direction,
                max_riser_m=_envelope(mine),
                max_riser_by_tread_m=by_tread,
                episodes=episodes,
                falls_per_episode=sum(c.falls for c in mine) / episodes,
                mean_time_to_top_s=float(np.mean(durations)) if durations else None,
            )
        )
    return summaries


def _envelope(cells: Sequence[CellResult]) -> float | None:
    """Highest riser such that every cell at it and at every lower riser reaches the threshold."""
    best = None
    for riser in sorted({c.riser_m for c in cells}):
        if all(c.success_rate >= SUCCESS_THRESHOLD for c in cells if c.riser_m == riser):
            best = riser
        else:
            break
    return best


def run_benchmark(
    policy: str | None,
    *,
    risers_m: Sequence[float] | None = None,
    treads_m: Sequence[float] | None = None,
    directions: Sequence[str] | None = None,
    episodes: int = DEFAULT_EPISODES,
    seed: int = 0,
    processes: int | None = None,
    randomized: Randomized = False,
    command_mps: float | None = None,
    action_noise: float = 0.0,
    log: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Evaluate `policy` (a POLICY string for `load_policy_source`; None: zero action) on the grid.

    Axes left None take the defaults (DEFAULT_RISERS_M, DEFAULT_TREADS_M, DIRECTIONS); `processes`
    None means one per core. `randomized`: False runs the clean grid only; True also runs it under
    `stairbot.conditions.RANDOMIZED_PRESETS` (by direction); a preset name or path uses that one for
    every direction; a mapping direction -> preset names each (see the module docstring).
    `command_mps` fixes the forward-speed command in every cell (None: the policy preset's range).
    `action_noise` > 0 draws every action with Gaussian noise of that std (action units) on the
    policy's mean before its squash, as training does (module docstring); 0 is the deterministic
    benchmark.
    """
    risers_m = DEFAULT_RISERS_M if risers_m is None else risers_m
    treads_m = DEFAULT_TREADS_M if treads_m is None else treads_m
    directions = DIRECTIONS if directions is None else directions
    if processes is None:
        processes = os.cpu_count() or 1
    risers, treads, dirs = check_grid(risers_m, treads_m, directions, episodes, processes)
    command = command_overrides(command_mps)
    action_noise = check_action_noise(action_noise)
    source = load_policy_source(policy)
    clean = {d: {**condition_overrides(source.env_preset, None), **command} for d in dirs}
    cells = grid_cells(risers, treads, dirs, CLEAN, clean)
    presets: dict[str, str] = {}
    randomized_overrides: dict[str, dict[str, Any]] = {}
    if randomized is not False:
        presets = condition_presets(randomized, dirs)
        randomized_overrides = {
            d: {**condition_overrides(source.env_preset, p), **command} for d, p in presets.items()
        }
        cells += grid_cells(risers, treads, dirs, RANDOMIZED, randomized_overrides)
    check_cells(source.env_preset, cells)
    if log is not None:
        log(
            f"benchmarking {source.name} on {source.env_preset}: {len(cells)} cells x {episodes} episodes, "
            f"{min(processes, len(cells))} process(es)"
        )
        if command_mps is not None:
            low, high = load_env_config(source.env_preset).command.forward_speed_mps
            log(f"command fixed at {command_mps:g} m/s (the policy trained on {low:g}-{high:g} m/s)")
        if action_noise > 0:
            log(f"action noise: std {action_noise:g} (action units) on every action's mean, as training does")
    results = []
    for result in run_cells(
        policy=policy,
        source=source,
        cells=cells,
        episodes=episodes,
        seed=seed,
        processes=processes,
        action_noise=action_noise,
    ):
        results.append(result)
        if log is not None:
            condition = f"{result.condition} " if presets else ""
            log(
                f"  [{len(results)}/{len(cells)}] {condition}{result.direction} tread {result.tread_m:g} "
                f"riser {result.riser_m:g}: {result.success_rate:.0%}"
            )
    clean_results = [r for r in results if r.condition == CLEAN]
    condition_result = None
    if presets:
        mine = [r for r in results if r.condition == RANDOMIZED]
        condition_result = ConditionResult(
            presets=presets,
            overrides=randomized_overrides,
            cells=tuple(mine),
            summary=tuple(summarize(mine, dirs, treads)),
        )
    results = clean_results
    return BenchmarkResult(
        policy=source.name,
        env_preset=source.env_preset,
        seed=seed,
        episodes=episodes,
        risers_m=risers,
        treads_m=treads,
        directions=dirs,
        cells=tuple(results),
        summary=tuple(summarize(results, dirs, treads)),
        randomized=condition_result,
        command_mps=command_mps,
        action_noise=action_noise,
    )


# ---- plot ---------------------------------------------------------------------------------------


def plot_success(result: BenchmarkResult, path: Path) -> Path:
    """Success rate against riser height, one line per direction x tread, the threshold in grey (PNG).

    With a randomized run, its lines are dashed (hollow markers) in the same colours.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    colors = {"up": "tab:blue", "down": "tab:orange"}
    styles = ("-", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1)))
    markers = ("o", "s", "^", "D", "v")
    randomized = () if result.randomized is None else result.randomized.cells
    for direction in result.directions:
        for i, tread in enumerate(result.treads_m):
            mine = [c for c in result.cells if c.direction == direction and c.tread_m == tread]
            ax.plot(
                [c.riser_m for c in mine],
                [c.success_rate for c in mine],
                color=colors[direction],
                linestyle=styles[i % len(styles)],
                marker=markers[i % len(markers)],
                label=f"{direction}, tread {tread:g} m" + (", clean" if randomized else ""),
            )
            noisy = [c for c in randomized if c.direction == direction and c.tread_m == tread]
            if noisy:
                ax.plot(
                    [c.riser_m for c in noisy],
                    [c.success_rate for c in noisy],
                    color=colors[direction],
                    linestyle="--",
                    marker=markers[i % len(markers)],
                    markerfacecolor="none",
                    label=f"{direction}, tread {tread:g} m, randomized",
                )
    threshold_style = (0, (1, 3)) if randomized else "--"  # randomized lines are the dashed ones
    ax.axhline(
        SUCCESS_THRESHOLD,
        color="gray",
        linestyle=threshold_style,
        linewidth=1,
        label=f"{SUCCESS_THRESHOLD:.0%}",
    )
    ax.set_xlabel("riser height (m)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title(f"{result.policy}: {result.episodes} episodes per cell, seed {result.seed}", fontsize=10)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, facecolor="white")
    fig.clear()
    return path
