"""Episode telemetry: what happened at every control step of one seeded episode of a policy.

`record_episode(source, seed=...)` drives the env with a policy (`stairbot.policy_source`) on fixed
stairs and returns an `EpisodeTelemetry` of plain arrays, one row per control step (T rows, the state
*after* each step; time t_k = (k + 1) * dt). It saves as `.npz` (every array, loadable with
`allow_pickle=False`, see `load_telemetry`) and as `.csv` (one row per step, one column per scalar:
`joint_pos_rad/FR_hip_joint`, `torque_nm/FR_hip_joint`, `contact/FR_foot`, `term/alive`, ...).

Torques: the env keeps the `AppliedTorques` of `World.step` local, so the recorder wraps the world's
`step` method on that one instance for the episode (and restores it after) and keeps the last
substep's torques, exactly what the physics applied. An env hook (e.g. `info["torques_nm"]`) would
replace the wrapper.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stairbot.errors import StairbotError
from stairbot.policy_source import PolicySource

FloatArray = NDArray[np.float64]

ENV_ID = "stairbot/StairClimb-v0"
# Playback and telemetry measure the policy on the stairs it is given: no adaptive curriculum, and the
# preset's (or --riser-m's) riser rather than a saved curriculum difficulty.
FIXED_STAIRS: Mapping[str, Any] = {"curriculum.adaptive": False, "curriculum.difficulty": None}
TIME_LIMIT = "time_limit"
# Stair profile samples for plots: from 1 m behind the spawn point to 0.5 m past the landing, m.
_PROFILE_STEP_M = 0.005


def policy_env(
    preset: str | Path,
    *,
    riser_m: float | None = None,
    max_steps: int | None = None,
    condition: Mapping[str, Any] | None = None,
) -> Any:
    """A `stairbot/StairClimb-v0` env (Gymnasium wrappers included) on `preset` with fixed stairs.

    `riser_m` overrides the preset's riser height (m); `max_steps` replaces the registered time limit
    (1000 control steps); `condition`: env overrides of a `stairbot.conditions` condition (None: the
    preset as it is). The world is PyBullet DIRECT (no display); `env.unwrapped` is the
    `StairClimbEnv`.
    """
    import gymnasium as gym

    import stairbot  # noqa: F401  (registers the env ids)

    if max_steps is not None and max_steps < 1:
        raise StairbotError(f"max steps must be >= 1 control step, got {max_steps}")
    overrides = {**(condition or {}), **FIXED_STAIRS}
    if riser_m is not None:
        overrides["stairs.riser_m"] = riser_m
    kwargs: dict[str, Any] = {} if max_steps is None else {"max_episode_steps": max_steps}
    return gym.make(ENV_ID, preset=str(preset), overrides=overrides, **kwargs)


@dataclass(frozen=True, eq=False)
class EpisodeTelemetry:
    """One episode, T control steps, J joints, F feet, K reward terms. World frame, SI units.

    Attributes:
        policy: what acted (`PolicySource.name`).
        seed: the reset seed.
        dt_s: control period, s.
        riser_m, tread_m: stair geometry of the episode, m.
        num_steps: risers in the flight.
        direction: "up" or "down".
        command: (3,) commanded (vx m/s, vy m/s, yaw rate rad/s) at reset.
        termination_reason: why it ended (`fall`, `base_contact`, `success`, ..., `time_limit`).
        success: reached the final landing.
        joint_names: (J,) in policy order. foot_names: (F,). term_names: (K,).
        torque_limit_nm: (J,) actuator limits.
        time_s: (T,) time at the end of each control step.
        base_pos_m: (T, 3). base_quat_xyzw: (T, 4). base_lin_vel_mps: (T, 3).
        terrain_height_m: (T,) stair surface height under the base (`Flight.height_at`).
        joint_pos_rad, joint_vel_radps: (T, J).
        action: (T, J) policy output in [-1, 1].
        torques_nm: (T, J) torques of the last physics substep of each control step.
        foot_contact: (T, F) bool.
        reward: (T,). reward_terms: (T, K) weighted terms (their row sums are `reward`).
        steps_climbed: (T,) risers crossed, best so far.
        profile_x_m, profile_z_m: (P,) the stair surface on the centre line, for plots.
        edges_x_m: (num_steps,) x of each riser.
    """

    policy: str
    seed: int
    dt_s: float
    riser_m: float
    tread_m: float
    num_steps: int
    direction: str
    command: FloatArray
    termination_reason: str
    success: bool
    joint_names: tuple[str, ...]
    foot_names: tuple[str, ...]
    term_names: tuple[str, ...]
    torque_limit_nm: FloatArray
    time_s: FloatArray
    base_pos_m: FloatArray
    base_quat_xyzw: FloatArray
    base_lin_vel_mps: FloatArray
    terrain_height_m: FloatArray
    joint_pos_rad: FloatArray
    joint_vel_radps: FloatArray
    action: FloatArray
    torques_nm: FloatArray
    foot_contact: NDArray[np.bool_]
    reward: FloatArray
    reward_terms: FloatArray
    steps_climbed: NDArray[np.int64]
    profile_x_m: FloatArray
    profile_z_m: FloatArray
    edges_x_m: FloatArray

    @property
    def length(self) -> int:
        """T, the number of control steps."""
        return len(self.time_s)

    @property
    def base_height_above_terrain_m(self) -> FloatArray:
        """(T,) base z minus the stair surface under it, m."""
        return self.base_pos_m[:, 2] - self.terrain_height_m

    @property
    def episode_return(self) -> float:
        return float(self.reward.sum())

    def save_npz(self, path: Path) -> Path:
        """Every field as a plain array (strings as unicode arrays): `np.load(path)` needs no pickle."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
        return path

    def csv_columns(self) -> dict[str, NDArray[Any]]:
        """Per-step columns (name -> (T,) array) in the order `save_csv` writes them."""
        cols: dict[str, NDArray[Any]] = {"time_s": self.time_s}
        for axis, values in zip("xyz", self.base_pos_m.T, strict=True):
            cols[f"base_{axis}_m"] = values
        cols["terrain_height_m"] = self.terrain_height_m
        cols["base_height_above_terrain_m"] = self.base_height_above_terrain_m
        for axis, values in zip("xyzw", self.base_quat_xyzw.T, strict=True):
            cols[f"base_quat_{axis}"] = values
        for axis, values in zip("xyz", self.base_lin_vel_mps.T, strict=True):
            cols[f"base_vel_{axis}_mps"] = values
        blocks = (
            ("joint_pos_rad", self.joint_pos_rad),
            ("joint_vel_radps", self.joint_vel_radps),
            ("action", self.action),
            ("torque_nm", self.torques_nm),
        )
        for prefix, block in blocks:
            for name, values in zip(self.joint_names, block.T, strict=True):
                cols[f"{prefix}/{name}"] = values
        for name, values in zip(self.foot_names, self.foot_contact.T, strict=True):
            cols[f"contact/{name}"] = values.astype(np.int64)
        cols["reward"] = self.reward
        for name, values in zip(self.term_names, self.reward_terms.T, strict=True):
            cols[f"term/{name}"] = values
        cols["steps_climbed"] = self.steps_climbed
        return cols

    def save_csv(self, path: Path) -> Path:
        """One row per control step; contacts as 0/1. Episode-level values are in the npz."""
        path.parent.mkdir(parents=True, exist_ok=True)
        cols = self.csv_columns()
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(cols)
            for row in zip(*cols.values(), strict=True):
                writer.writerow([f"{v:.6g}" if isinstance(v, np.floating) else int(v) for v in row])
        return path


def load_telemetry(path: Path) -> EpisodeTelemetry:
    """Read back `EpisodeTelemetry.save_npz`."""
    with np.load(path, allow_pickle=False) as data:
        values: dict[str, Any] = {}
        for f in fields(EpisodeTelemetry):
            array = data[f.name]
            if f.name in ("joint_names", "foot_names", "term_names"):
                values[f.name] = tuple(str(s) for s in array)
            elif array.ndim == 0:
                values[f.name] = array.item()
            else:
                values[f.name] = array
    return EpisodeTelemetry(**values)


def record_episode(
    source: PolicySource,
    *,
    seed: int = 0,
    riser_m: float | None = None,
    max_steps: int | None = None,
    condition: Mapping[str, Any] | None = None,
) -> EpisodeTelemetry:
    """Run one episode of `source` (reset with `seed`) on fixed stairs and record every control step.

    `riser_m` overrides the riser height (m) of the policy's env preset; `max_steps` caps the episode
    (default: the registered 1000-step time limit); `condition` as in `policy_env`.
    """
    from stairbot.envs.stair_climb import StairClimbEnv

    env = policy_env(source.env_preset, riser_m=riser_m, max_steps=max_steps, condition=condition)
    try:
        base = env.unwrapped
        assert isinstance(base, StairClimbEnv)
        observation, reset_info = env.reset(seed=seed)
        world, flight, spec = base.world, base.flight, base.robot_spec
        rows: dict[str, list[Any]] = {
            key: []
            for key in (
                "base_pos_m",
                "base_quat_xyzw",
                "base_lin_vel_mps",
                "joint_pos_rad",
                "joint_vel_radps",
                "action",
                "torques_nm",
                "foot_contact",
                "reward",
                "reward_terms",
                "steps_climbed",
            )
        }
        term_names = tuple(base.rewards.names)
        reason = TIME_LIMIT
        success = False
        done = False
        while not done:
            action = np.asarray(source.act(observation), dtype=np.float32)
            observation, reward, terminated, truncated, info = env.step(action)
            state = world.read_state()
            torques = base.last_torques
            rows["base_pos_m"].append(state.base_pos_m)
            rows["base_quat_xyzw"].append(state.base_quat_xyzw)
            rows["base_lin_vel_mps"].append(state.base_lin_vel_mps)
            rows["joint_pos_rad"].append(state.joint_pos_rad)
            rows["joint_vel_radps"].append(state.joint_vel_radps)
            rows["action"].append(np.clip(action, -1.0, 1.0))
            rows["torques_nm"].append(
                np.full(spec.num_joints, np.nan) if torques is None else torques.last_nm
            )
            rows["foot_contact"].append(world.contacts().foot_contact)
            rows["reward"].append(float(reward))
            rows["reward_terms"].append([info["reward_terms"].get(n, 0.0) for n in term_names])
            rows["steps_climbed"].append(int(info["steps_climbed"]))
            done = terminated or truncated
            if terminated:
                reason = str(info["termination_reason"])
            success = bool(info["success"])
        arrays = {key: np.array(value) for key, value in rows.items()}
        positions = arrays["base_pos_m"]
        lo = min(-1.0, float(positions[:, 0].min()) - 0.3)
        hi = max(flight.end_x_m + 0.5, float(positions[:, 0].max()) + 0.3)
        profile_x = np.arange(lo, hi, _PROFILE_STEP_M)
        return EpisodeTelemetry(
            policy=source.name,
            seed=seed,
            dt_s=float(base.dt),
            riser_m=float(flight.riser_m),
            tread_m=float(flight.tread_m),
            num_steps=int(flight.num_steps),
            direction=flight.direction.value,
            command=np.asarray(reset_info["command"], dtype=np.float64),
            termination_reason=reason,
            success=success,
            joint_names=tuple(spec.joint_names),
            foot_names=tuple(spec.foot_links),
            term_names=term_names,
            torque_limit_nm=np.asarray(spec.torque_limits_nm, dtype=np.float64),
            time_s=np.arange(1, len(positions) + 1, dtype=np.float64) * float(base.dt),
            terrain_height_m=flight.height_at(positions[:, 0], positions[:, 1]),
            profile_x_m=profile_x,
            profile_z_m=flight.height_at(profile_x),
            edges_x_m=np.asarray(flight.edges_x_m, dtype=np.float64),
            **arrays,
        )
    finally:
        env.close()
