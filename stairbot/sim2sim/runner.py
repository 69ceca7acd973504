"""`stairbot sim2sim BUNDLE`: the same bundle, the same control loop, PyBullet beside MuJoCo.

Both simulators are driven by one episode loop (`run_episode`) that is the robot's control loop from
`stairbot.deploy`: every control period (`dt_s`) the raw signals (IMU quaternion, gyro, joint positions
and velocities, terrain heights at the scan points) go through `ObservationBuilder`, `BundlePolicy.act`
gives joint targets, and `pd_command(...).torques(q, qd)` is applied at every physics step
(`physics_dt_s`, `decimation` per control period). Only the physics engine differs:

- PyBullet: the training env's own world (`StairClimbEnv` built from the bundle's `env.yaml`). The env
  is reset with the episode seed, which plans the flight (jitter included) and samples the spawn pose
  exactly as in training; its `step` is not used (see below).
- MuJoCo: `MujocoWorld` built on that same flight, spawned at that same pose.

Why not `stairbot.evaluation` (the env's `step`) on the PyBullet side: it would run the env's
observation and PD code instead of the deploy runtime's (and, with a gait prior, add the trot's
offsets a second time, since `BundlePolicy.act` already adds them). With one loop for both, a gap in
the table can only come from the simulators.

The rest is the env's: forward speed = the middle of the bundle env's `command.forward_speed_mps` (the
yaw rate steers back to +x as in training), the height scan from the same source (`flight`: the
analytic profile; `rays`: ray casts in each simulator), termination by `stairbot.termination`
(tilt, base height, base or thigh contact, out of bounds, success = base `success_margin_m` past the
final landing's start), 1000 control steps at most, episode i seeded `seed + i`. Domain
randomization (if the env has it) is switched off, and neither side models motor dynamics beyond the
bundle's PD law with torque limits: both simulate the nominal robot.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pybullet
from numpy.typing import NDArray

from stairbot.deploy import (
    BundlePolicy,
    ObservationBuilder,
    load_bundle,
    projected_gravity,
    yaw_from_quaternion,
)
from stairbot.envs import MAX_EPISODE_STEPS
from stairbot.envs.config import EnvConfig, HeightSource
from stairbot.errors import ConfigError, StairbotError
from stairbot.evaluation import FALL_REASONS
from stairbot.policy_source import shipped_or_path
from stairbot.robots.spec import RobotSpec
from stairbot.sim.world import World
from stairbot.stats import paired_difference_interval
from stairbot.termination import TerminationCheck, TerminationReason
from stairbot.terrain.stairs import Flight

FloatArray = NDArray[np.float64]
SIMULATORS = ("pybullet", "mujoco")


class Physics(Protocol):
    """What the control loop needs from a simulator. Joint vectors are in the bundle's joint order."""

    def reset(self, base_pos_m: FloatArray, yaw_rad: float, joint_pos_rad: FloatArray) -> None: ...

    def joints(self) -> tuple[FloatArray, FloatArray]:
        """(q rad, qd rad/s), (J,) each."""
        ...

    def step(self, torques_nm: FloatArray) -> None:
        """One physics step with these joint torques."""
        ...

    def base(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(position (3,) m, quaternion x y z w (4,), gyro (3,) rad/s in the base frame)."""
        ...

    def contacts(self) -> tuple[bool, bool]:
        """(base touches the terrain, a thigh touches the terrain)."""
        ...

    def terrain_heights(self, xy_m: FloatArray) -> FloatArray:
        """(N,) terrain height under (N, 2) world xy points (ray casts)."""
        ...


class PyBulletPhysics:
    """The PyBullet env's world (`stairbot.sim.world.World`) driven joint-torque by joint-torque."""

    def __init__(self, world: World, joint_names: tuple[str, ...]) -> None:
        self.world = world
        by_name = dict(zip(world.spec.joint_names, world.joint_ids, strict=True))
        missing = [n for n in joint_names if n not in by_name]
        if missing:
            raise StairbotError(f"robot {world.spec.name} has no joints {missing} (named by the bundle)")
        self.joint_ids = [by_name[n] for n in joint_names]
        self._client_id = world.client._client
        self._robot = world.robot_id

    def reset(self, base_pos_m: FloatArray, yaw_rad: float, joint_pos_rad: FloatArray) -> None:
        c = self.world.client
        c.resetBasePositionAndOrientation(
            self._robot, base_pos_m.tolist(), c.getQuaternionFromEuler((0.0, 0.0, yaw_rad))
        )
        c.resetBaseVelocity(self._robot, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
        for joint, q in zip(self.joint_ids, joint_pos_rad, strict=True):
            c.resetJointState(self._robot, joint, float(q), 0.0)

    def joints(self) -> tuple[FloatArray, FloatArray]:
        states = pybullet.getJointStates(self._robot, self.joint_ids, physicsClientId=self._client_id)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def step(self, torques_nm: FloatArray) -> None:
        pybullet.setJointMotorControlArray(
            self._robot,
            self.joint_ids,
            pybullet.TORQUE_CONTROL,
            forces=torques_nm.tolist(),
            physicsClientId=self._client_id,
        )
        pybullet.stepSimulation(physicsClientId=self._client_id)

    def base(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        c = self.world.client
        pos, quat = c.getBasePositionAndOrientation(self._robot)
        _, ang = c.getBaseVelocity(self._robot)
        rotation = np.array(c.getMatrixFromQuaternion(quat)).reshape(3, 3)
        return np.array(pos), np.array(quat), rotation.T @ np.array(ang)

    def contacts(self) -> tuple[bool, bool]:
        contacts = self.world.contacts()
        return contacts.base_contact, contacts.thigh_contact

    def terrain_heights(self, xy_m: FloatArray) -> FloatArray:
        return self.world.terrain_heights(xy_m)


@dataclass(frozen=True)
class EpisodeSetup:
    """One episode's stairs, spawn pose and command, shared by both simulators."""

    seed: int
    flight: Flight
    spawn_pos_m: FloatArray
    spawn_yaw_rad: float
    forward_speed_mps: float


@dataclass(frozen=True)
class EpisodeOutcome:
    seed: int
    success: bool
    steps_climbed: int  # risers crossed by the base (best in the episode)
    num_steps: int
    termination_reason: str  # "time_limit" when the episode ran its 1000 steps
    length: int  # control steps


@dataclass(frozen=True)
class SimulatorSummary:
    """One simulator's aggregates over the episodes (JSON keys as named here)."""

    simulator: str
    episodes: int
    success_rate: float
    steps_climbed: float  # mean
    falls: int  # episodes ended by fall / base or thigh contact
    falls_per_episode: float
    mean_length: float  # control steps
    wall_s: float
    results: list[EpisodeOutcome] = field(repr=False)

    @classmethod
    def from_results(cls, simulator: str, results: list[EpisodeOutcome], wall_s: float) -> SimulatorSummary:
        n = len(results)
        falls = sum(r.termination_reason in FALL_REASONS for r in results)
        return cls(
            simulator=simulator,
            episodes=n,
            success_rate=sum(r.success for r in results) / n,
            steps_climbed=float(np.mean([r.steps_climbed for r in results])),
            falls=falls,
            falls_per_episode=falls / n,
            mean_length=float(np.mean([r.length for r in results])),
            wall_s=wall_s,
            results=results,
        )


@dataclass(frozen=True)
class Sim2SimReport:
    """Both simulators on the same episodes; `success_difference_points` = 100 x (MuJoCo's success
    rate - PyBullet's)."""

    bundle: str
    direction: str
    riser_m: float
    tread_m: float  # nominal tread of every episode's flight (the bundle env's `stairs.tread_m`)
    num_steps: int
    forward_speed_mps: float
    episodes: int
    seed: int
    pybullet: SimulatorSummary
    mujoco: SimulatorSummary

    @property
    def success_difference_points(self) -> float:
        return 100.0 * (self.mujoco.success_rate - self.pybullet.success_rate)

    @property
    def discordant_episodes(self) -> tuple[int, int]:
        """(episodes only PyBullet's robot finished, episodes only MuJoCo's finished)."""
        pairs = list(zip(self.pybullet.results, self.mujoco.results, strict=True))
        return (
            sum(pb.success and not mj.success for pb, mj in pairs),
            sum(mj.success and not pb.success for pb, mj in pairs),
        )

    @property
    def success_difference_ci95_points(self) -> tuple[float, float] | None:
        """95 % interval of `success_difference_points`, paired by seed
        (`stairbot.stats.paired_difference_interval`); None under 2 episodes. At 20 episodes and 90 %
        success the interval is about +-19 points wide: too wide to check a 15-point target."""
        interval = paired_difference_interval(
            [r.success for r in self.pybullet.results], [r.success for r in self.mujoco.results]
        )
        return None if interval is None else (100.0 * interval[0], 100.0 * interval[1])

    def to_dict(self) -> dict[str, Any]:
        only_pybullet, only_mujoco = self.discordant_episodes
        return {
            **asdict(self),
            "success_difference_points": self.success_difference_points,
            "success_difference_ci95_points": self.success_difference_ci95_points,
            "episodes_only_pybullet_succeeded": only_pybullet,
            "episodes_only_mujoco_succeeded": only_mujoco,
        }

    def to_json(self, path: Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            path.write_text(text + "\n")
        return text

    def table(self) -> str:
        header = ("simulator", "success rate", "mean steps climbed", "falls/episode")
        rows = [
            (
                s.simulator,
                f"{s.success_rate:.0%}",
                f"{s.steps_climbed:.2f} / {self.num_steps}",
                f"{s.falls_per_episode:.2f}",
            )
            for s in (self.pybullet, self.mujoco)
        ]
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        lines = [
            " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in (header, *rows)
        ]
        lines.insert(1, "-+-".join("-" * w for w in widths))
        seeds = f"seeds {self.seed}..{self.seed + self.episodes - 1}"
        return "\n".join(
            [
                f"sim2sim: {self.bundle}",
                f"stairs {self.direction}, {self.num_steps} risers of {self.riser_m:.3f} m on "
                f"{self.tread_m:.3f} m treads, command {self.forward_speed_mps:.2f} m/s, "
                f"{self.episodes} episodes ({seeds})",
                *lines,
                f"success difference (MuJoCo - PyBullet): {self.success_difference_points:+.0f} points"
                + self._difference_detail(),
            ]
        )

    def _difference_detail(self) -> str:
        only_pybullet, only_mujoco = self.discordant_episodes
        interval = self.success_difference_ci95_points
        bounds = "" if interval is None else f"95 % interval {interval[0]:+.0f} to {interval[1]:+.0f}; "
        return f" ({bounds}{only_pybullet} seeds only PyBullet finished, {only_mujoco} only MuJoCo)"


def run_episode(
    physics: Physics,
    policy: BundlePolicy,
    builder: ObservationBuilder,
    setup: EpisodeSetup,
    config: EnvConfig,
    *,
    max_steps: int = MAX_EPISODE_STEPS,
) -> EpisodeOutcome:
    """One episode of the deploy control loop in `physics` (see the module docstring)."""
    meta = policy.metadata
    flight = setup.flight
    terminate = TerminationCheck(config.termination, meta.nominal_base_height_m)
    rays = config.observation.height_scan.source is HeightSource.RAYS
    physics.reset(setup.spawn_pos_m, setup.spawn_yaw_rad, meta.default_joint_pos_rad)
    policy.reset()
    best, length = 0, 0
    reason = TerminationReason.NONE
    while length < max_steps:
        pos, quat, gyro = physics.base()
        q, qd = physics.joints()
        yaw = yaw_from_quaternion(quat)
        scan = None
        if builder.has_height_scan:
            points = builder.scan_points_xy_m(pos[:2], yaw)
            heights = (
                physics.terrain_heights(points) if rays else flight.height_at(points[:, 0], points[:, 1])
            )
            scan = heights - pos[2]
        observation = builder.build(
            imu_quat_xyzw=quat,
            gyro_radps=gyro,
            joint_pos_rad=q,
            joint_vel_radps=qd,
            command=builder.command(setup.forward_speed_mps, yaw_rad=yaw, lateral_offset_m=float(pos[1])),
            scan_heights_m=scan,
        )
        command = policy.pd_command(policy.act(observation))
        for _ in range(meta.decimation):
            q, qd = physics.joints()
            physics.step(command.torques(q, qd))
        length += 1
        pos, quat, _ = physics.base()
        best = max(best, int(flight.steps_crossed(pos[:1])[0]))
        base_contact, thigh_contact = physics.contacts()
        reason = terminate(flight, pos, projected_gravity(quat), base_contact, thigh_contact)
        if reason is not TerminationReason.NONE:
            break
    return EpisodeOutcome(
        seed=setup.seed,
        success=reason is TerminationReason.SUCCESS,
        steps_climbed=best,
        num_steps=flight.num_steps,
        termination_reason="time_limit" if reason is TerminationReason.NONE else reason.value,
        length=length,
    )


def mujoco_world_for(spec: RobotSpec, joint_names: tuple[str, ...], flight: Flight, config: EnvConfig) -> Any:
    """A `MujocoWorld` of the robot spec's URDF on `flight` with the env config's physics settings."""
    try:
        from stairbot.sim2sim.mujoco_world import MujocoWorld
    except ImportError as exc:
        raise StairbotError(
            f"sim2sim needs MuJoCo ({exc}): pip install 'stairbot[sim2sim]' (or pip install mujoco)"
        ) from exc
    return MujocoWorld(
        spec.urdf_path,
        spec.base_link,
        joint_names,
        flight,
        physics_dt_s=config.sim.physics_dt_s,
        ground_friction=config.sim.ground_friction,
        thigh_links=spec.thigh_links,
        foot_links=spec.foot_links,
        foot_friction=spec.foot_friction,
    )


def _check_bundle_against_env(policy: BundlePolicy, config: EnvConfig, spec: RobotSpec) -> None:
    meta = policy.metadata
    if (
        not math.isclose(meta.physics_dt_s, config.sim.physics_dt_s)
        or meta.decimation != config.sim.decimation
    ):
        raise StairbotError(
            f"bundle {policy.path}: policy.json says physics_dt_s {meta.physics_dt_s} x decimation "
            f"{meta.decimation}, its env.yaml {config.sim.physics_dt_s} x {config.sim.decimation}"
        )
    if meta.robot_name != spec.name:
        raise StairbotError(
            f"bundle {policy.path} is for robot {meta.robot_name!r}, env.yaml names {spec.name!r}"
        )


def run_sim2sim(
    bundle: str | Path,
    *,
    riser_m: float | None = None,
    episodes: int = 50,
    direction: str | None = None,
    seed: int = 0,
    max_steps: int = MAX_EPISODE_STEPS,
    log: Callable[[str], None] | None = None,
) -> Sim2SimReport:
    """Run `episodes` seeded episodes of the bundle in PyBullet and in MuJoCo (module docstring).

    `riser_m` and `direction` override the bundle env's stairs; `max_steps` caps each episode (1000,
    the env's time limit, unless a test wants it short).
    """
    from stairbot.envs.stair_climb import StairClimbEnv

    if episodes < 1:
        raise ConfigError(f"episodes must be at least 1, got {episodes}")
    if max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
    path = shipped_or_path(bundle)
    if not (path / "policy.json").is_file():
        raise StairbotError(f"{path} is not a policy bundle (no policy.json); make one with stairbot export")
    env_yaml = path / "env.yaml"
    if not env_yaml.is_file():
        raise StairbotError(f"bundle {path} has no env.yaml (exported by an older stairbot): re-export it")
    policy = load_bundle(path)
    builder = ObservationBuilder(policy)
    low, high = policy.metadata.forward_speed_mps
    speed = (low + high) / 2
    overrides: dict[str, Any] = {
        "curriculum.adaptive": False,
        "curriculum.difficulty": None,
        "command.forward_speed_mps": [speed, speed],
        "stairs.tread_range_m": None,  # the bundle's tread_m on every episode
    }
    if "randomization" in {f.name for f in dataclasses.fields(EnvConfig)}:
        # Nominal physics on both sides: MuJoCo gets no domain randomization either.
        overrides["randomization.enabled"] = False
    if riser_m is not None:
        overrides["stairs.riser_m"] = riser_m
    if direction is not None:
        overrides["stairs.direction"] = direction
    env = StairClimbEnv(str(env_yaml), overrides=overrides)
    try:
        config, spec = env.config, env.robot_spec
        _check_bundle_against_env(policy, config, spec)
        pybullet_physics = PyBulletPhysics(env.world, policy.joint_names)
        results: dict[str, list[EpisodeOutcome]] = {name: [] for name in SIMULATORS}
        wall = dict.fromkeys(SIMULATORS, 0.0)
        setups: list[EpisodeSetup] = []
        for i in range(episodes):
            _, info = env.reset(seed=seed + i)
            pos, _, _ = pybullet_physics.base()  # where the env spawned the robot
            setup = EpisodeSetup(seed + i, env.flight, pos, float(info["spawn_yaw_rad"]), speed)
            setups.append(setup)
            for name in SIMULATORS:
                start = time.perf_counter()
                physics: Physics = (
                    pybullet_physics
                    if name == "pybullet"
                    else mujoco_world_for(spec, policy.joint_names, setup.flight, config)
                )
                outcome = run_episode(physics, policy, builder, setup, config, max_steps=max_steps)
                wall[name] += time.perf_counter() - start
                results[name].append(outcome)
                if log is not None:
                    log(
                        f"episode {i} (seed {seed + i}) {name}: {outcome.termination_reason} after "
                        f"{outcome.length} steps, {outcome.steps_climbed} risers"
                    )
    finally:
        env.close()
    first = setups[0]
    return Sim2SimReport(
        bundle=str(bundle),  # as the user named it (`pretrained`), not this checkout's path
        direction=first.flight.direction.value,
        riser_m=float(first.flight.riser_m),
        tread_m=float(first.flight.tread_m),
        num_steps=first.flight.num_steps,
        forward_speed_mps=speed,
        episodes=episodes,
        seed=seed,
        pybullet=SimulatorSummary.from_results("pybullet", results["pybullet"], wall["pybullet"]),
        mujoco=SimulatorSummary.from_results("mujoco", results["mujoco"], wall["mujoco"]),
    )
