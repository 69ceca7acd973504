"""Which randomization factor costs a policy how much: one factor at a time on one stair cell.

`stairbot sensitivity POLICY [--preset P] [--riser-m H] [--tread-m T] [--direction D] [--episodes N]`

A randomized benchmark cell says how much success a policy loses under a condition preset
(`stairs_up_randomized`, `stairs_up_stress`, ...), not why. This runs the same cell, with the same
seeds, clean, then with each factor of the preset alone (its keys from the preset's `randomization:`
section on an otherwise clean robot, or its stair jitter on the clean robot), then with the whole
preset. Each row reports success, falls and the gait figures, and the change in success against the
clean row. The factors group the `RandomizationConfig` keys that act together (the three PD/torque
scales are `motor`, the two latencies stay apart because they act on different ends of the loop).

The factor rows do not add up to the whole-preset row: factors interact (a heavy payload on low
friction), and each row is a sample of `episodes` seeded episodes. Use it to find the factor to work
on, then confirm on the benchmark.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stairbot.benchmark import CLEAN, Cell, CellResult, check_grid, run_cells
from stairbot.conditions import JITTER_KEYS, condition_overrides
from stairbot.policy_source import load_policy_source
from stairbot.randomization import RandomizationConfig

FACTORS: dict[str, tuple[str, ...]] = {
    "friction": ("ground_friction", "foot_friction_scale"),
    "restitution": ("restitution",),
    "payload": ("payload_kg",),
    "com_offset": ("com_offset_x_m", "com_offset_y_m", "com_offset_z_m"),
    "link_mass": ("link_mass_scale",),
    "motor": ("motor_strength_scale", "kp_scale", "kd_scale"),
    "joint_friction": ("joint_friction_nm", "joint_damping_nms_per_rad"),
    "obs_latency": ("obs_latency_s",),
    "action_latency": ("action_latency_s",),
    "pushes": ("push_interval_s", "push_vel_mps"),
    "obs_noise": ("obs_noise", "obs_noise_scale"),
}
"""Factor name -> the `randomization:` keys it turns on together (every key but `SWITCH_KEYS`)."""
STAIR_JITTER = "stair_jitter"
"""The factor of the preset's `stairs.riser_jitter_m` / `stairs.tread_jitter_m`."""
WHOLE_PRESET = "all"

# Keys whose values only matter with a push of non-zero size (alone they change nothing).
_INERT_ALONE = {"push_interval_s"}


@dataclass(frozen=True)
class FactorRow:
    """One row: a cell under one factor (or clean, or the whole preset)."""

    factor: str
    settings: dict[str, Any]  # the preset's values this row turned on
    result: CellResult
    success_change: float  # success rate minus the clean row's

    def to_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "settings": self.settings,
            "success_change": self.success_change,
            **self.result.row(),
        }


@dataclass(frozen=True)
class SensitivityReport:
    policy: str
    env_preset: str
    condition_preset: str
    seed: int
    rows: tuple[FactorRow, ...]

    def table(self) -> str:
        """Plain-text table: success, its change against clean, falls, gait, what the row set."""
        header = f"{'factor':16s} {'success':>7s} {'change':>7s} {'falls':>5s} {'speed/cmd':>9s}  settings"
        lines = [
            f"{self.policy} on {self.env_preset}, factors of {self.condition_preset}:",
            header,
        ]
        for row in self.rows:
            r = row.result
            speed = "-" if r.speed_over_command is None else f"{r.speed_over_command:.2f}"
            settings = ", ".join(f"{k}={v}" for k, v in row.settings.items())
            lines.append(
                f"{row.factor:16s} {r.success_rate:7.0%} {row.success_change:+7.0%} {r.falls:5d} "
                f"{speed:>9s}  {settings}"
            )
        return "\n".join(lines)

    def to_json(self, path: Path) -> None:
        data = {k: v for k, v in asdict(self).items() if k != "rows"}
        data["rows"] = [row.to_dict() for row in self.rows]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")


def factor_settings(env_preset: str | Path, condition_preset: str | Path) -> dict[str, dict[str, Any]]:
    """Factor -> the condition preset's settings of its keys, for the factors the preset randomizes.

    A factor counts when the preset sets one of its keys away from `RandomizationConfig`'s nominal
    default (a push interval alone does not: without a push size nothing is pushed). Raises
    `ConfigError` if the preset randomizes nothing.
    """
    overrides = condition_overrides(env_preset, condition_preset)
    section = overrides.get("randomization", {})
    nominal = RandomizationConfig()
    out: dict[str, dict[str, Any]] = {}
    if section.get("enabled") is True:
        for factor, keys in FACTORS.items():
            changed = {k for k in keys if k in section and _differs(section[k], getattr(nominal, k))}
            if changed - _INERT_ALONE:
                out[factor] = {k: section[k] for k in keys if k in section}
    jitter = {f"stairs.{k}": overrides[f"stairs.{k}"] for k in JITTER_KEYS if overrides[f"stairs.{k}"]}
    if jitter:
        out[STAIR_JITTER] = jitter
    return out


def _differs(value: Any, nominal: Any) -> bool:
    """Whether a preset's value (YAML: lists, dicts) differs from the nominal config value."""
    if isinstance(value, Mapping):
        return any(value.values())  # obs_noise: some term has noise
    if isinstance(value, list | tuple):
        return nominal is None or tuple(value) != tuple(nominal)
    return bool(value != nominal)


def factor_cells(
    env_preset: str, condition_preset: str | Path, direction: str, tread_m: float, riser_m: float
) -> list[Cell]:
    """The cells of a sensitivity run: clean, one per randomized factor, the whole preset."""
    clean = condition_overrides(env_preset, None)
    cells = [Cell(direction, tread_m, riser_m, CLEAN, clean)]
    for factor, settings in factor_settings(env_preset, condition_preset).items():
        if factor == STAIR_JITTER:
            cells.append(Cell(direction, tread_m, riser_m, factor, {**clean, **settings}))
        else:
            randomization = {"enabled": True, **settings}
            cells.append(Cell(direction, tread_m, riser_m, factor, {**clean, "randomization": randomization}))
    whole = condition_overrides(env_preset, condition_preset)
    cells.append(Cell(direction, tread_m, riser_m, WHOLE_PRESET, whole))
    return cells


def _settings_of(cell: Cell) -> dict[str, Any]:
    if cell.condition in (CLEAN, WHOLE_PRESET):
        return {}
    if cell.condition == STAIR_JITTER:
        return {k: v for k, v in cell.condition_overrides.items() if k.startswith("stairs.")}
    return {k: v for k, v in cell.condition_overrides["randomization"].items() if k != "enabled"}


def run_sensitivity(
    policy: str | None,
    *,
    condition_preset: str | Path,
    riser_m: float,
    tread_m: float = 0.30,
    direction: str = "up",
    episodes: int = 20,
    seed: int = 0,
    processes: int | None = None,
    log: Callable[[str], None] | None = None,
) -> SensitivityReport:
    """Evaluate `policy` on one cell clean, under each factor of `condition_preset` alone, and under
    all of it (same seeds in every row). `processes` None: one per core."""
    if processes is None:
        processes = os.cpu_count() or 1
    check_grid([riser_m], [tread_m], [direction], episodes, processes)
    source = load_policy_source(policy)
    cells = factor_cells(source.env_preset, condition_preset, direction, tread_m, riser_m)
    if log is not None:
        log(
            f"sensitivity of {source.name} to {condition_preset}: {direction}, riser {riser_m:g} m, "
            f"tread {tread_m:g} m, {len(cells)} rows x {episodes} episodes"
        )
    results: dict[str, CellResult] = {}
    for result in run_cells(
        policy=policy, source=source, cells=cells, episodes=episodes, seed=seed, processes=processes
    ):
        results[result.condition] = result
        if log is not None:
            log(f"  {result.condition}: {result.success_rate:.0%}")
    clean_rate = results[CLEAN].success_rate
    rows = tuple(
        FactorRow(
            factor=cell.condition,
            settings=_settings_of(cell),
            result=results[cell.condition],
            success_change=results[cell.condition].success_rate - clean_rate,
        )
        for cell in cells
    )
    return SensitivityReport(
        policy=source.name,
        env_preset=source.env_preset,
        condition_preset=str(condition_preset),
        seed=seed,
        rows=rows,
    )
