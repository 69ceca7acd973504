"""Which joints sit at the edge of the action space, or at their motor's torque limit, on a flight.

A policy's action is clipped to [-1, 1] per joint, and the joint target is the default pose plus
`control.action_scale_rad` x action (with the gait prior, the generator's offsets plus that residual).
A joint whose action sits at +1 or -1 for much of a climb asks for a target the action space may not
reach. `stairbot reach` gives the geometry (how high a foot can rise within the scale); this gives
the use (how often a policy runs into the bound, and on which joints).

`stairbot saturation POLICY` runs seeded, deterministic episodes per cell as the benchmark does (clean
stairs: randomization and jitter off; episode i uses seed + i) and, over the control steps with the
base between the flight's first and last riser (`Flight.edges_x_m`; the approach and the landing do
not count), reports per joint the share of steps with the action at +1 and at -1 and the mean action,
and the share of those steps' physics substeps with the applied torque at the motor's limit (the
torque limit, lowered in the direction of motion by the torque-speed curve when the env's actuator
model has it on; `torque_bounds_nm`). An action at its bound asks for a pose the action space may not
give; a torque at its limit asks for more than the motor has.

On `pretrained/` (20 episodes from seed 1000, up) the front legs run into their bounds on 0.175 m
risers: each front hip at its bound (splayed out 0.5 rad) in 57-58 % of the flight steps on 0.25 m
treads and 50 % on 0.32 m, against 28-33 % and 21-23 % at 0.15 m; docs/experiments.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stairbot.benchmark import Cell, map_clean_cells
from stairbot.policy_source import PolicySource
from stairbot.sim.actuators import AppliedTorques, MotorActuator, PDActuator
from stairbot.training.vec import env_factory

# An action this close to +-1 counts as at the bound: a deterministic mean past it is clipped to it.
AT_BOUND = 1.0 - 1e-6
# A torque within this share of the limit's size of a bound counts as at it (the clip lands exactly on
# the bound; this absorbs rounding only).
TORQUE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class CellSaturation:
    """One cell's action use per joint, over its episodes' control steps on the flight.

    Attributes:
        joint_names: (J,) the robot spec's joints, in policy order.
        steps: control steps counted (base over the flight), all episodes.
        at_upper, at_lower: (J,) share of those steps with the joint's action at +1 / -1.
        mean_action: (J,) the joint's mean action over them (in [-1, 1]).
        at_torque_limit: (J,) share of those steps' physics substeps with the joint's applied torque
            at the motor's limit, either way.
    """

    cell: Cell
    episodes: int
    successes: int
    joint_names: tuple[str, ...]
    steps: int
    at_upper: tuple[float, ...]
    at_lower: tuple[float, ...]
    mean_action: tuple[float, ...]
    at_torque_limit: tuple[float, ...]

    @property
    def at_bound(self) -> tuple[float, ...]:
        """(J,) share of the steps with the joint's action at either bound."""
        return tuple(up + low for up, low in zip(self.at_upper, self.at_lower, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.cell.direction,
            "tread_m": self.cell.tread_m,
            "riser_m": self.cell.riser_m,
            "episodes": self.episodes,
            "successes": self.successes,
            "steps_on_flight": self.steps,
            "joints": {
                name: {"at_upper": up, "at_lower": low, "mean_action": mean, "at_torque_limit": torque}
                for name, up, low, mean, torque in zip(
                    self.joint_names,
                    self.at_upper,
                    self.at_lower,
                    self.mean_action,
                    self.at_torque_limit,
                    strict=True,
                )
            },
        }


def measure_cell(source: PolicySource, cell: Cell, episodes: int, seed: int) -> CellSaturation:
    """Run `episodes` deterministic episodes of `cell` (episode i: seed + i) and count, over the steps
    that end with the base between the first and the last riser, each joint's actions at +-1 and its
    substeps with the torque at the motor's limit."""
    env = env_factory(source.env_preset, cell.overrides())()
    base = env.unwrapped
    names = tuple(joint.name for joint in base.robot_spec.joints)  # type: ignore[attr-defined]
    upper = np.zeros(len(names))
    lower = np.zeros(len(names))
    total = np.zeros(len(names))
    torque_limited = np.zeros(len(names))
    steps = substeps = successes = 0
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            edges = base.flight.edges_x_m  # type: ignore[attr-defined]
            while True:
                action = np.clip(np.asarray(source.act(obs), np.float64), -1.0, 1.0)
                obs, _, terminated, truncated, info = env.step(action)
                x = float(base.world.read_state().base_pos_m[0])  # type: ignore[attr-defined]
                if edges[0] <= x <= edges[-1]:
                    upper += action >= AT_BOUND
                    lower += action <= -AT_BOUND
                    total += action
                    steps += 1
                    at_limit = torque_at_limit(base.last_torques, base.world.actuator)  # type: ignore[attr-defined]
                    torque_limited += at_limit.sum(axis=0)
                    substeps += len(at_limit)
                if terminated or truncated:
                    break
            successes += bool(info["success"])
    finally:
        env.close()
    count = max(steps, 1)  # a cell whose robot never reached the flight reports zeros
    return CellSaturation(
        cell=cell,
        episodes=episodes,
        successes=successes,
        joint_names=names,
        steps=steps,
        at_upper=tuple(float(v) for v in upper / count),
        at_lower=tuple(float(v) for v in lower / count),
        mean_action=tuple(float(v) for v in total / count),
        at_torque_limit=tuple(float(v) for v in torque_limited / max(substeps, 1)),
    )


def torque_at_limit(applied: AppliedTorques, actuator: PDActuator | MotorActuator) -> NDArray[np.bool_]:
    """(S, J): which joints' applied torques in each of a control step's S substeps sit on the bound
    the actuator allows at that substep's joint velocity."""
    lower, upper = actuator.torque_bounds_nm(applied.joint_vel_radps)
    tolerance = TORQUE_TOLERANCE * actuator.torque_limit_nm
    tau = applied.torques_nm
    return (tau >= upper - tolerance) | (tau <= lower + tolerance)


def measure(
    policy: str | None,
    *,
    risers_m: Sequence[float],
    treads_m: Sequence[float],
    directions: Sequence[str],
    episodes: int,
    seed: int,
    processes: int | None = 1,
    command_mps: float | None = None,
) -> list[CellSaturation]:
    """Every (direction, tread, riser) cell on clean stairs for `policy` (a POLICY string for
    `load_policy_source`; None: zero action). With `processes` > 1 (None: one per core) the cells run
    in the benchmark's process pool; the results are the serial ones. `command_mps` fixes the
    forward-speed command as `stairbot benchmark --command-mps` does (None: drawn from the policy's
    range). Bad axes, episodes, processes or command raise `ConfigError` before any episode runs."""
    return map_clean_cells(
        measure_cell,
        policy,
        risers_m=risers_m,
        treads_m=treads_m,
        directions=directions,
        episodes=episodes,
        seed=seed,
        processes=processes,
        command_mps=command_mps,
    )


def _percent(share: float) -> str:
    return f"{100 * share:.0f} %"


def table(results: Sequence[CellSaturation]) -> str:
    """One block per cell: each joint's share of flight steps at +1 and at -1, its mean action, and its
    share of the substeps with the torque at the motor's limit."""
    lines: list[str] = []
    for result in results:
        cell = result.cell
        if lines:
            lines.append("")
        lines.append(
            f"{cell.direction} {cell.riser_m:g} m risers, {cell.tread_m:g} m treads: {result.successes} of "
            f"{result.episodes} succeeded; {result.steps} control steps on the flight"
        )
        width = max(len(name) for name in result.joint_names)
        lines.append(
            f"  {'joint':<{width}} {'at +1':>6} {'at -1':>6} {'mean action':>11} {'torque limit':>12}"
        )
        for name, up, low, mean, torque in zip(
            result.joint_names,
            result.at_upper,
            result.at_lower,
            result.mean_action,
            result.at_torque_limit,
            strict=True,
        ):
            shares = f"{_percent(up):>6} {_percent(low):>6} {mean:>+11.2f} {100 * torque:>10.1f} %"
            lines.append(f"  {name:<{width}} {shares}")
        name, share = most_saturated(result)
        lines.append(f"  most often at a bound: {name}, {_percent(share)} of the steps")
        torque_index = int(np.argmax(result.at_torque_limit))
        lines.append(
            f"  most often at its torque limit: {result.joint_names[torque_index]}, "
            f"{100 * result.at_torque_limit[torque_index]:.1f} % of the substeps"
        )
    return "\n".join(lines)


def write_json(results: Sequence[CellSaturation], path: Path, policy: str, seed: int) -> None:
    payload = {"policy": policy, "seed": seed, "cells": [result.to_dict() for result in results]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def most_saturated(result: CellSaturation) -> tuple[str, float]:
    """The joint whose action sits at a bound most often, and that share (ties: policy order)."""
    shares = result.at_bound
    index = int(np.argmax(shares))
    return result.joint_names[index], shares[index]
