"""Where a policy's feet touch down on a flight: on a tread (near its lip, its riser, or between), on
a nosing, or against a riser face.

A foot that lands on a tread's lip slides off it; a swing foot that meets the next riser's face has
stubbed its toe there. On the stair benchmark's short treads (0.25 m) the shipped policies climb 0.15
m risers far less often than on 0.32 m treads, and how they place their feet is one measured
difference (README, "The stair benchmark"). `stairbot footholds` runs seeded, deterministic
episodes per cell, as the benchmark does, and sorts every touchdown (a foot in contact now and not
in the step before) by the surface the foot sphere rests on, from where its centre is on the
flight's x-z profile (`classify`). It reports successful episodes (the top reached, or the bottom
going down) and failed ones apart:

- touchdowns per episode on the flight (its treads, nosings and risers; the ground before it and the
  landing after it do not count);
- the share of them on a nosing (the foot's centre past a step's edge, the sphere on the corner)
  and against a riser face (below the step above: a stubbed swing);
- of those on a tread, the share within `margin_m` of its lip and of its riser (horizontal distance
  from the foot's centre to the riser plane, `Flight.edges_x_m`; the foot's radius is in it), the
  median distance from the lip, and a histogram along the tread.

Going up, a tread's lip is the edge of the riser below it (behind the foot) and its riser is the next
one ahead; going down, the lip is ahead (where the flight drops) and the riser behind. Nosing boxes
(`stairs.nosing_m`) are not part of the profile: the benchmark's flights have none.
"""

from __future__ import annotations

import enum
import functools
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stairbot.benchmark import Cell, map_clean_cells
from stairbot.errors import ConfigError
from stairbot.policy_source import PolicySource
from stairbot.rewards import FOOT_EDGE_MARGIN_M
from stairbot.terrain.stairs import Direction, Flight
from stairbot.training.vec import env_factory

HISTOGRAM_BINS = 10  # along the tread, lip (0) to riser (1)
# How much farther than the foot's radius its centre may be from the nearest surface and still rest
# on it, m: PyBullet reports contact within its margin, and a touchdown is seen at the end of a step.
CONTACT_TOLERANCE_M = 0.015
_CORNER_M = 1e-3  # a riser point this close to an end of the riser is that corner


class Foothold(enum.Enum):
    """The surface a touching-down foot rests on."""

    TREAD = "tread"  # the tread under its centre (the ground and landing, too: see `on_flight`)
    NOSING = "nosing"  # a step's top corner, its centre past the edge
    RISER = "riser"  # a riser's face, below its top corner: a swing that met the riser
    UNKNOWN = "unknown"  # farther than radius + CONTACT_TOLERANCE_M from every stair surface


@dataclass(frozen=True)
class Touchdown:
    """One touchdown, sorted.

    Attributes:
        kind: the surface the foot rests on.
        on_flight: on one of the flight's treads, nosings or risers (not the ground before the
            first riser or the landing after the last).
        from_lip_m, from_riser_m: on a tread of the flight, the horizontal distance from the foot's
            centre to the tread's lip and to its riser plane, m; NaN otherwise.
    """

    kind: Foothold
    on_flight: bool
    from_lip_m: float = math.nan
    from_riser_m: float = math.nan


def classify(flight: Flight, foot_x_m: float, foot_z_m: float, foot_radius_m: float) -> Touchdown:
    """Sort a touchdown of a foot sphere (centre x, z in m; radius m) on `flight`.

    A foot whose centre is within radius + `CONTACT_TOLERANCE_M` above the tread under it rests on
    that tread, even when it also touches the riser beside it (toe in the corner). Otherwise it
    rests on the nearer of the risers at the two edges around it: on its top corner (a nosing) or on
    its face below that (a riser), when within radius + tolerance of it.
    """
    edges, tops = flight.edges_x_m, flight.top_heights_m
    n = len(edges)
    reach_m = foot_radius_m + CONTACT_TOLERANCE_M
    region = int(np.searchsorted(edges, foot_x_m, side="right"))  # 0: before edge 0, n: past the last
    if abs(foot_z_m - tops[region]) <= reach_m:
        if not 1 <= region <= n - 1:  # the ground before the flight or the landing
            return Touchdown(Foothold.TREAD, on_flight=False)
        behind, ahead = foot_x_m - edges[region - 1], edges[region] - foot_x_m
        lip, riser = (behind, ahead) if flight.direction is Direction.UP else (ahead, behind)
        return Touchdown(Foothold.TREAD, on_flight=True, from_lip_m=float(lip), from_riser_m=float(riser))
    nearest_m, kind = math.inf, Foothold.UNKNOWN
    for index in (region - 1, region):  # the edges behind and ahead of the foot
        if not 0 <= index < n:
            continue
        top = max(tops[index], tops[index + 1])
        z = min(max(foot_z_m, min(tops[index], tops[index + 1])), top)  # nearest point on the riser
        distance = math.hypot(foot_x_m - edges[index], foot_z_m - z)
        if distance < nearest_m:
            nearest_m = distance
            kind = Foothold.NOSING if z > top - _CORNER_M else Foothold.RISER
    if nearest_m > reach_m:
        return Touchdown(Foothold.UNKNOWN, on_flight=False)
    return Touchdown(kind, on_flight=True)


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


@dataclass(frozen=True)
class FootholdStats:
    """Footholds of one group of episodes (successful or failed) in one cell.

    Attributes:
        episodes: episodes in the group.
        touchdowns: touchdowns on the flight (treads, nosings, risers), all episodes together.
        on_nosing, against_riser: shares of `touchdowns` on a nosing and against a riser face,
            [0, 1] (None without touchdowns).
        on_tread: touchdowns on the flight's treads.
        near_lip, near_riser: shares of `on_tread` within `margin_m` of the lip and of the riser
            plane, [0, 1] (None without tread touchdowns).
        median_from_lip_m: median distance of `on_tread` from the lip, m (None without them).
        histogram: `on_tread` per tenth of the tread's depth, lip to riser (`HISTOGRAM_BINS` counts).
        unknown: touchdowns not on any stair surface (none expected; a check on the sorting).
    """

    episodes: int
    touchdowns: int
    on_nosing: float | None
    against_riser: float | None
    on_tread: int
    near_lip: float | None
    near_riser: float | None
    median_from_lip_m: float | None
    histogram: list[int]
    unknown: int = 0

    @property
    def touchdowns_per_episode(self) -> float:
        return self.touchdowns / self.episodes if self.episodes else 0.0

    @classmethod
    def of(cls, episodes: int, touchdowns: Sequence[Touchdown], margin_m: float) -> FootholdStats:
        flight = [t for t in touchdowns if t.on_flight]
        kinds = Counter(t.kind for t in flight)
        lip = np.array([t.from_lip_m for t in flight if t.kind is Foothold.TREAD])
        riser = np.array([t.from_riser_m for t in flight if t.kind is Foothold.TREAD])
        histogram = [0] * HISTOGRAM_BINS
        if lip.size:
            depth_fraction = lip / (lip + riser)  # lip + riser = the tread's depth
            counts, _ = np.histogram(depth_fraction, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
            histogram = counts.astype(int).tolist()
        return cls(
            episodes=episodes,
            touchdowns=len(flight),
            on_nosing=_share(kinds[Foothold.NOSING], len(flight)),
            against_riser=_share(kinds[Foothold.RISER], len(flight)),
            on_tread=int(lip.size),
            near_lip=float(np.mean(lip < margin_m)) if lip.size else None,
            near_riser=float(np.mean(riser < margin_m)) if lip.size else None,
            median_from_lip_m=float(np.median(lip)) if lip.size else None,
            histogram=histogram,
            unknown=sum(1 for t in touchdowns if t.kind is Foothold.UNKNOWN),
        )


@dataclass(frozen=True)
class CellFootholds:
    """One cell's footholds, successful and failed episodes apart, and how its episodes ended."""

    cell: Cell
    margin_m: float
    succeeded: FootholdStats
    failed: FootholdStats
    endings: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        groups = {
            name: {**asdict(stats), "touchdowns_per_episode": stats.touchdowns_per_episode}
            for name, stats in (("succeeded", self.succeeded), ("failed", self.failed))
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
    radius = base.robot_spec.foot_radius_m  # type: ignore[attr-defined]
    touchdowns: dict[bool, list[Touchdown]] = {True: [], False: []}
    counts: Counter[bool] = Counter()
    endings: Counter[str] = Counter()
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            flight = base.flight  # type: ignore[attr-defined]
            touched: list[Touchdown] = []
            while True:
                obs, _, terminated, truncated, info = env.step(source.act(obs))
                landing = base.feet_touching_down  # type: ignore[attr-defined]
                if landing.any():
                    feet = base.world.foot_positions()[landing]  # type: ignore[attr-defined]
                    touched += [classify(flight, float(x), float(z), radius) for x, _, z in feet]
                if terminated or truncated:
                    break
            succeeded = bool(info["success"])
            counts[succeeded] += 1
            touchdowns[succeeded] += touched
            endings[info["termination_reason"] if terminated else "time_limit"] += 1
    finally:
        env.close()
    return CellFootholds(
        cell=cell,
        margin_m=margin_m,
        succeeded=FootholdStats.of(counts[True], touchdowns[True], margin_m),
        failed=FootholdStats.of(counts[False], touchdowns[False], margin_m),
        endings=dict(sorted(endings.items())),
    )


def measure(
    policy: str | None,
    *,
    risers_m: Sequence[float],
    treads_m: Sequence[float],
    directions: Sequence[str],
    episodes: int,
    seed: int,
    margin_m: float = FOOT_EDGE_MARGIN_M,
    processes: int | None = 1,
) -> list[CellFootholds]:
    """Every (direction, tread, riser) cell on clean stairs for `policy` (a POLICY string for
    `load_policy_source`; None: zero action): the robot and flight without randomization or jitter,
    as the benchmark's clean grid. With `processes` > 1 (None: one per core) the cells run in a
    process pool, each worker loading the policy itself; the results are the serial ones. Bad axes,
    episodes, processes or margin raise `ConfigError` before any episode runs."""
    if not (math.isfinite(margin_m) and margin_m > 0.0):
        raise ConfigError(f"--margin-m must be a positive distance in m, got {margin_m}")
    return map_clean_cells(
        functools.partial(measure_cell, margin_m=margin_m),
        policy,
        risers_m=risers_m,
        treads_m=treads_m,
        directions=directions,
        episodes=episodes,
        seed=seed,
        processes=processes,
    )


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f} %"


def table(results: Sequence[CellFootholds]) -> str:
    """One block per cell: successful and failed episodes' touchdowns per episode and their placement."""
    lines = []
    for result in results:
        cell = result.cell
        lines.append(
            f"{cell.direction} {cell.riser_m:g} m risers, {cell.tread_m:g} m treads: "
            f"{result.succeeded.episodes} of {result.succeeded.episodes + result.failed.episodes} succeeded; "
            f"ended {result.endings}"
        )
        margin_cm = f"{100 * result.margin_m:g} cm"
        lines.append(
            f"  {'':9} {'episodes':>8} {'touchdowns/ep':>13} {'on a nosing':>11} {'on a riser':>10} | "
            f"on treads: {'near lip':>8} {'near riser':>10} {'median from lip':>15}"
            f"   (near: within {margin_cm})"
        )
        for name, stats in (("succeeded", result.succeeded), ("failed", result.failed)):
            median = "-" if stats.median_from_lip_m is None else f"{stats.median_from_lip_m:.3f} m"
            lines.append(
                f"  {name:9} {stats.episodes:8d} {stats.touchdowns_per_episode:13.1f} "
                f"{_percent(stats.on_nosing):>11} {_percent(stats.against_riser):>10} | "
                f"{'':11}{_percent(stats.near_lip):>8} {_percent(stats.near_riser):>10} {median:>15}"
            )
    return "\n".join(lines)


def write_json(results: Sequence[CellFootholds], path: Path, policy: str, seed: int) -> None:
    payload = {"policy": policy, "seed": seed, "cells": [result.to_dict() for result in results]}
    path.write_text(json.dumps(payload, indent=2) + "\n")


def plot(results: Sequence[CellFootholds], path: Path, title: str = "") -> Path:
    """Tread touchdowns per episode along the tread, lip (left) to riser (right), one panel per cell,
    successful and failed episodes side by side, their touchdowns on nosings and risers in the legend;
    the `margin_m` bands at both ends shaded (PNG)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(results), 3.6), layout="constrained")
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    width = 1.0 / HISTOGRAM_BINS
    centres = (np.arange(HISTOGRAM_BINS) + 0.5) * width
    for ax, result in zip(axes, results, strict=True):
        cell = result.cell
        band = result.margin_m / cell.tread_m  # the margin as a share of the nominal tread
        ax.axvspan(0.0, band, color="tab:red", alpha=0.12, linewidth=0)
        ax.axvspan(1.0 - band, 1.0, color="tab:red", alpha=0.12, linewidth=0)
        for offset, (name, stats, color) in zip(
            (-0.2, 0.2),
            (("succeeded", result.succeeded, "tab:green"), ("failed", result.failed, "tab:gray")),
            strict=True,
        ):
            if stats.episodes == 0:
                continue
            per_episode = np.asarray(stats.histogram, dtype=float) / stats.episodes
            off_tread = stats.touchdowns - stats.on_tread  # on nosings and riser faces
            ax.bar(
                centres + offset * width,
                per_episode,
                width=0.4 * width,
                color=color,
                label=f"{name} ({stats.episodes} ep.; nosings, risers {off_tread / stats.episodes:.1f}/ep.)",
            )
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel("distance from the lip / tread depth")
        ax.set_title(f"{cell.direction}, riser {cell.riser_m:g} m, tread {cell.tread_m:g} m", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("touchdowns per episode")
    if title:
        fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, facecolor="white")
    fig.clear()
    return path
