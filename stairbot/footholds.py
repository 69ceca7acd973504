"""Where a policy's feet touch down on a flight's treads: near the lip, against the riser, or between.

A foot that lands on a tread's lip slides off it; one that lands against the next riser stubs its toe
there. On the stair benchmark's short treads (0.25 m) the shipped policies climb 0.15 m risers far
less often than on 0.32 m treads, and how they place their feet is one measured difference (README,
"What the recipes reach"). `stairbot footholds` runs seeded, deterministic episodes per cell, as
the benchmark does, and reports for climbed and failed episodes apart:

- touchdowns per episode on the flight's treads (a foot in contact now and not in the step before;
  the ground before the first riser and the landings do not count);
- the share of them within `margin_m` of the tread's lip and of its riser (horizontal distance from
  the foot's centre to the riser plane, `Flight.edges_x_m`; the foot sphere's radius is in it);
- where along the tread they land, as a histogram of the distance from the lip over the tread's depth.

Going up, a tread's lip is the edge of the riser below it (behind the foot) and its riser is the next
one ahead; going down, the lip is ahead (where the flight drops) and the riser behind.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stairbot.benchmark import Cell, check_cells, check_grid, grid_cells
from stairbot.conditions import condition_overrides
from stairbot.errors import ConfigError
from stairbot.policy_source import PolicySource
from stairbot.rewards import FOOT_EDGE_MARGIN_M
from stairbot.terrain.stairs import Direction, Flight
from stairbot.training.vec import env_factory

HISTOGRAM_BINS = 10  # along the tread, lip (0) to riser (1)


@dataclass(frozen=True)
class TreadPositions:
    """Touchdowns placed on a flight's treads (all arrays (K,), K = the touchdowns on a tread).

    Attributes:
        tread: index of the tread, 0 .. num_steps - 2 in walking order.
        from_lip_m: horizontal distance from the tread's lip (the edge a foot slips off), m.
        from_riser_m: horizontal distance from the tread's riser face, m.
    """

    tread: NDArray[np.int64]
    from_lip_m: NDArray[np.float64]
    from_riser_m: NDArray[np.float64]


def tread_positions(flight: Flight, foot_x_m: ArrayLike) -> TreadPositions:
    """Where the feet at x `foot_x_m` (m, any shape) stand on `flight`'s treads; feet before the first
    riser or past the last (ground, landings) are left out."""
    x = np.ravel(np.asarray(foot_x_m, dtype=np.float64))
    edges = flight.edges_x_m
    region = np.searchsorted(edges, x, side="right")  # 0: before edge 0, n: past the last edge
    on_tread = (region >= 1) & (region <= len(edges) - 1)
    x, region = x[on_tread], region[on_tread]
    behind, ahead = x - edges[region - 1], edges[region] - x
    if flight.direction is Direction.UP:
        from_lip, from_riser = behind, ahead
    else:
        from_lip, from_riser = ahead, behind
    return TreadPositions(region - 1, from_lip, from_riser)


@dataclass(frozen=True)
class FootholdStats:
    """Footholds of one group of episodes (climbed or failed) in one cell.

    Attributes:
        episodes: episodes in the group.
        touchdowns: touchdowns on treads, all episodes together.
        near_lip: share of them within `margin_m` of the lip, [0, 1] (None without touchdowns).
        near_riser: share within `margin_m` of the riser face, [0, 1] (None without touchdowns).
        median_from_lip_m: median distance from the lip, m (None without touchdowns).
        histogram: touchdowns per tenth of the tread's depth, lip to riser (`HISTOGRAM_BINS` counts).
    """

    episodes: int
    touchdowns: int
    near_lip: float | None
    near_riser: float | None
    median_from_lip_m: float | None
    histogram: list[int]

    @property
    def touchdowns_per_episode(self) -> float:
        return self.touchdowns / self.episodes if self.episodes else 0.0

    @classmethod
    def of(cls, episodes: int, positions: Sequence[TreadPositions], margin_m: float) -> FootholdStats:
        lip = np.concatenate([p.from_lip_m for p in positions]) if positions else np.zeros(0)
        riser = np.concatenate([p.from_riser_m for p in positions]) if positions else np.zeros(0)
        if lip.size == 0:
            return cls(episodes, 0, None, None, None, [0] * HISTOGRAM_BINS)
        depth_fraction = lip / (lip + riser)  # lip + riser = the tread's depth
        histogram, _ = np.histogram(depth_fraction, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
        return cls(
            episodes=episodes,
            touchdowns=int(lip.size),
            near_lip=float(np.mean(lip < margin_m)),
            near_riser=float(np.mean(riser < margin_m)),
            median_from_lip_m=float(np.median(lip)),
            histogram=histogram.astype(int).tolist(),
        )


@dataclass(frozen=True)
class CellFootholds:
    """One cell's footholds, climbed and failed episodes apart, and how its episodes ended."""

    cell: Cell
    margin_m: float
    climbed: FootholdStats
    failed: FootholdStats
    endings: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        groups = {
            name: {**asdict(stats), "touchdowns_per_episode": stats.touchdowns_per_episode}
            for name, stats in (("climbed", self.climbed), ("failed", self.failed))
        }
        return {
            "direction": self.cell.direction,
            "tread_m": self.cell.tread_m,
            "riser_m": self.cell.riser_m,
            "margin_m": self.margin_m,
            "endings": self.endings,
            **groups,
        }


def measure_cell(
    source: PolicySource, cell: Cell, episodes: int, seed: int, margin_m: float = FOOT_EDGE_MARGIN_M
) -> CellFootholds:
    """Run `episodes` deterministic episodes of `cell` (episode i: seed + i) and sort their touchdowns."""
    env = env_factory(source.env_preset, cell.overrides())()
    base = env.unwrapped
    positions: dict[bool, list[TreadPositions]] = {True: [], False: []}
    counts: Counter[bool] = Counter()
    endings: Counter[str] = Counter()
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            flight = base.flight  # type: ignore[attr-defined]
            touched: list[TreadPositions] = []
            while True:
                obs, _, terminated, truncated, info = env.step(source.act(obs))
                landing = base.feet_touching_down  # type: ignore[attr-defined]
                if landing.any():
                    feet_x = base.world.foot_positions()[landing, 0]  # type: ignore[attr-defined]
                    touched.append(tread_positions(flight, feet_x))
                if terminated or truncated:
                    break
            climbed = bool(info["success"])
            counts[climbed] += 1
            positions[climbed].extend(touched)
            endings[info["termination_reason"] if terminated else "time_limit"] += 1
    finally:
        env.close()
    return CellFootholds(
        cell=cell,
        margin_m=margin_m,
        climbed=FootholdStats.of(counts[True], positions[True], margin_m),
        failed=FootholdStats.of(counts[False], positions[False], margin_m),
        endings=dict(sorted(endings.items())),
    )


def measure(
    source: PolicySource,
    *,
    risers_m: Sequence[float],
    treads_m: Sequence[float],
    directions: Sequence[str],
    episodes: int,
    seed: int,
    margin_m: float = FOOT_EDGE_MARGIN_M,
) -> list[CellFootholds]:
    """Every (direction, tread, riser) cell on clean stairs: the robot and flight without
    randomization or jitter, as the benchmark's clean grid. Bad axes, episodes or margin raise
    `ConfigError` before any episode runs."""
    if not (math.isfinite(margin_m) and margin_m > 0.0):
        raise ConfigError(f"--margin-m must be a positive distance in m, got {margin_m}")
    risers, treads, kept_directions = check_grid(risers_m, treads_m, directions, episodes, processes=1)
    clean = condition_overrides(source.env_preset, None)
    cells = grid_cells(risers, treads, kept_directions, overrides=dict.fromkeys(kept_directions, clean))
    check_cells(source.env_preset, cells)
    return [measure_cell(source, cell, episodes, seed, margin_m) for cell in cells]


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f} %"


def table(results: Sequence[CellFootholds]) -> str:
    """One block per cell: climbed and failed episodes' touchdowns per episode and their placement."""
    lines = []
    for result in results:
        cell = result.cell
        lines.append(
            f"{cell.direction} {cell.riser_m:g} m risers, {cell.tread_m:g} m treads: "
            f"{result.climbed.episodes} of {result.climbed.episodes + result.failed.episodes} climbed; "
            f"ended {result.endings}"
        )
        margin_cm = f"{100 * result.margin_m:g} cm"
        lines.append(
            f"  {'':8} {'episodes':>8} {'touchdowns/ep':>13} {'near lip':>9} {'near riser':>10} "
            f"{'median from lip':>15}   (near: within {margin_cm})"
        )
        for name, stats in (("climbed", result.climbed), ("failed", result.failed)):
            median = "-" if stats.median_from_lip_m is None else f"{stats.median_from_lip_m:.3f} m"
            lines.append(
                f"  {name:8} {stats.episodes:8d} {stats.touchdowns_per_episode:13.1f} "
                f"{_percent(stats.near_lip):>9} {_percent(stats.near_riser):>10} {median:>15}"
            )
    return "\n".join(lines)


def write_json(results: Sequence[CellFootholds], path: Path, policy: str, seed: int) -> None:
    payload = {"policy": policy, "seed": seed, "cells": [result.to_dict() for result in results]}
    path.write_text(json.dumps(payload, indent=2) + "\n")
