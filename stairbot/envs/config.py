"""Environment presets: the typed, frozen configuration of a StairClimb env.

A preset is a YAML file in `envs/` (or any path) whose sections map onto the dataclasses below. Every
number carries its unit in its name. Load with `load_env_config("stairs_up", overrides)`; unknown keys
and out-of-range values raise `ConfigError` naming the key and what is allowed.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stairbot.config import apply_overrides, check_range, deep_merge, load_dataclass, read_yaml
from stairbot.errors import ConfigError
from stairbot.observations import ObservationLayout, observation_layout
from stairbot.paths import resolve_preset
from stairbot.randomization import RandomizationConfig
from stairbot.rewards import BASE_CLEARANCE_MARGIN_M
from stairbot.terrain.stairs import StairSpec


@dataclass(frozen=True)
class SimConfig:
    """Physics stepping. The policy acts every `decimation` physics steps."""

    physics_dt_s: float = 0.002  # 500 Hz physics
    decimation: int = 10  # physics steps per control step -> 50 Hz policy
    solver_iterations: int = 10  # PyBullet numSolverIterations
    ground_friction: float = 1.0  # lateral friction of the ground plane and the stairs

    def __post_init__(self) -> None:
        check_range("physics_dt_s", self.physics_dt_s, 0.0005, 0.005, unit="s (>= 200 Hz physics)")
        check_range("decimation", self.decimation, 1, 50)
        check_range("solver_iterations", self.solver_iterations, 1, 200)
        check_range("ground_friction", self.ground_friction, 0.0, 5.0)

    @property
    def control_dt_s(self) -> float:
        """Policy period in seconds (physics_dt_s * decimation)."""
        return self.physics_dt_s * self.decimation


@dataclass(frozen=True)
class GaitConfig:
    """The gait prior (`stairbot.deploy.TrotGenerator`): a clock-driven trot the joint targets ride on.

    With `enabled`, target = default_pose + trot offsets(phase) + action_scale_rad * action, and
    the observation gains a `gait_phase` block (sin, cos of the clock phase).
    """

    enabled: bool = False
    frequency_hz: float = 2.0  # gait cycles per second
    calf_swing_rad: float = 0.6  # peak calf flexion of a swinging leg (the thigh turns half), rad
    # fore-aft thigh sweep, rad: +stride at lift-off (foot back), -stride at touchdown; 0 lifts in place
    stride_rad: float = 0.0

    def __post_init__(self) -> None:
        check_range("frequency_hz", self.frequency_hz, 0.0, 5.0, low_open=True, unit="Hz")
        check_range("calf_swing_rad", self.calf_swing_rad, 0.0, 1.5, unit="rad")
        check_range("stride_rad", self.stride_rad, 0.0, 0.5, unit="rad")


@dataclass(frozen=True)
class ControlConfig:
    """How actions in [-1, 1] become joint position targets.

    `action_scale_rad` is one number for every joint or a list with one per joint in the robot
    spec's (policy) order: the joint's target moves at most that far from the default pose.
    """

    # target = default_pose + action_scale_rad * clip(action, -1, 1), rad per unit action
    action_scale_rad: float | tuple[float, ...] = 0.5
    gait: GaitConfig = field(default_factory=GaitConfig)

    def __post_init__(self) -> None:
        if isinstance(self.action_scale_rad, tuple):
            for index, scale in enumerate(self.action_scale_rad):
                check_range(f"action_scale_rad[{index}]", scale, 0.0, 2.0, low_open=True, unit="rad")
        else:
            check_range("action_scale_rad", self.action_scale_rad, 0.0, 2.0, low_open=True, unit="rad")

    def action_scale_vector(self, num_joints: int) -> NDArray[np.float64]:
        """(num_joints,) rad per unit action; raises `ConfigError` if a per-joint list has another length."""
        if isinstance(self.action_scale_rad, tuple):
            if len(self.action_scale_rad) != num_joints:
                raise ConfigError(
                    f"control.action_scale_rad lists {len(self.action_scale_rad)} scales; the robot has "
                    f"{num_joints} joints: give one number for all of them or one per joint"
                )
            return np.array(self.action_scale_rad, dtype=np.float64)
        return np.full(num_joints, self.action_scale_rad, dtype=np.float64)


@dataclass(frozen=True)
class ActuatorConfig:
    """Motor effects on top of the PD law (`stairbot.sim.actuators.MotorActuator`); both off = the
    plain PD law with torque saturation."""

    torque_speed_limit: bool = False  # linear torque-speed curve up to the spec's no-load speed
    motor_time_constant_s: float = 0.0  # first-order torque lag, s; 0 = none

    def __post_init__(self) -> None:
        check_range("motor_time_constant_s", self.motor_time_constant_s, 0.0, 0.1, unit="s")

    @property
    def enabled(self) -> bool:
        return self.torque_speed_limit or self.motor_time_constant_s > 0.0


MAX_FORWARD_SPEED_MPS = 2.0  # the highest forward-speed command a config may ask for


@dataclass(frozen=True)
class CommandConfig:
    """The velocity command the robot follows: a forward speed sampled at each reset, and a yaw
    rate that steers it back to facing the stairs (+x), as an operator's joystick would."""

    forward_speed_mps: tuple[float, float] = (0.5, 0.5)  # uniform range [low, high]
    heading_gain_per_s: float = 1.0  # yaw-rate command = clip(gain * (target - yaw), +-max_yaw_rate)
    max_yaw_rate_radps: float = 1.0
    # The heading target: 0 (facing the stairs) plus, with a gain, a turn back toward the flight's
    # centre line, target = -clip(gain * y, +-max_centreline_heading_rad) for a base y m off it. The
    # policy observes no position or linear velocity, so nothing else corrects a sideways drift: the
    # release drifts 0.4 m left over a flight of 0.12 m / 0.32 m stairs, and fine-tunings of it fell
    # off the side of the 2 m flight. An operator or a path follower steers so on a robot.
    centreline_gain_rad_per_m: float = 0.0
    max_centreline_heading_rad: float = 0.3

    def __post_init__(self) -> None:
        check_range("heading_gain_per_s", self.heading_gain_per_s, 0.0, 10.0, unit="1/s")
        check_range("max_yaw_rate_radps", self.max_yaw_rate_radps, 0.0, 5.0, unit="rad/s")
        check_range("centreline_gain_rad_per_m", self.centreline_gain_rad_per_m, 0.0, 10.0, unit="rad/m")
        check_range("max_centreline_heading_rad", self.max_centreline_heading_rad, 0.0, 1.0, unit="rad")
        low, high = self.forward_speed_mps
        check_range("forward_speed_mps[0]", low, 0.0, MAX_FORWARD_SPEED_MPS, unit="m/s")
        check_range("forward_speed_mps[1]", high, low, MAX_FORWARD_SPEED_MPS, unit="m/s (and >= the low end)")

    def heading_target_rad(self, lateral_offset_m: float) -> float:
        """Yaw (rad, 0 = facing the stairs) the command steers to with the base `lateral_offset_m` m
        left (+) or right (-) of the flight's centre line."""
        cap = self.max_centreline_heading_rad
        return -min(cap, max(-cap, self.centreline_gain_rad_per_m * lateral_offset_m))


class HeightSource(str, enum.Enum):
    """Where the height scan's terrain heights come from."""

    FLIGHT = "flight"  # the flight's analytic step profile: exactly what rays see, ~10x cheaper
    RAYS = "rays"  # one batched ray cast per control step: sees any body in the scene (3 us a ray)


@dataclass(frozen=True)
class HeightScanConfig:
    """Terrain heights on a grid around the robot, in the base's yaw frame."""

    enabled: bool = False
    source: HeightSource = HeightSource.FLIGHT
    x_points_m: tuple[float, ...] = (-0.3, -0.15, 0.0, 0.15, 0.3, 0.45, 0.6, 0.75)  # base-yaw frame
    y_points_m: tuple[float, ...] = (-0.15, 0.0, 0.15)

    def __post_init__(self) -> None:
        if not self.x_points_m or not self.y_points_m:
            raise ConfigError("x_points_m and y_points_m must each list at least one offset in m")

    @property
    def num_points(self) -> int:
        return len(self.x_points_m) * len(self.y_points_m)


@dataclass(frozen=True)
class ObservationConfig:
    """What the policy observes beyond the proprioceptive terms.

    `history_steps` H > 0 appends the first six terms of the previous H observations (the
    `proprio_history` term, 9 + 3 J entries a frame): with it a policy can notice slip, payload or
    latency from how its joints answered its last actions. 0 keeps the memoryless layout.
    """

    height_scan: HeightScanConfig = field(default_factory=HeightScanConfig)
    history_steps: int = 0

    def __post_init__(self) -> None:
        check_range("history_steps", self.history_steps, 0, 50, unit="policy steps")


@dataclass(frozen=True)
class TerminationConfig:
    """When an episode ends early (truncation comes only from the registered time limit)."""

    max_tilt_rad: float = 1.0  # fall: angle between base z axis and world z axis above this
    min_base_height_ratio: float = 0.4  # fall: base height above terrain < ratio * nominal height
    base_contact: bool = True  # base touching the ground or stairs ends the episode
    thigh_contact: bool = False  # thigh contact ends the episode (else only the reward penalizes)
    success_margin_m: float = 0.35  # success: base this far past the start of the final landing
    lateral_margin_m: float = 0.0  # out of bounds: |y| > width/2 + margin

    def __post_init__(self) -> None:
        check_range("max_tilt_rad", self.max_tilt_rad, 0.1, 3.2, unit="rad")
        check_range("min_base_height_ratio", self.min_base_height_ratio, 0.0, 1.0)
        check_range("success_margin_m", self.success_margin_m, 0.0, 2.0, unit="m")
        check_range("lateral_margin_m", self.lateral_margin_m, 0.0, 2.0, unit="m")


@dataclass(frozen=True)
class CurriculumConfig:
    """Stair difficulty in [0, 1] maps to riser height: 0 = flat, 1 = max_riser_m.

    `difficulty: null` uses `stairs.riser_m` as given. With `adaptive: true` each env runs its own
    terrain curriculum (legged_gym's rule, per env): after an episode in which the base crossed at
    least `promote_fraction` of the risers the difficulty rises by `step`; below `demote_fraction`
    it falls by `step`; it starts at `difficulty` (0 if null).

    `down_fraction` (adaptive only): the share of episodes whose flight goes down, drawn at each
    reset from the env's RNG, so one policy learns both directions (it tells them apart by its
    height scan). 0 keeps `stairs.direction` (and draws nothing); 1 is always down. By default up
    and down share the env's level: a level is promoted or demoted by the fraction of risers
    crossed, which means the same in both directions. Fixed-stair uses (evaluation, the benchmark,
    play, sim2sim) turn `adaptive` off and so get `stairs.direction`.

    `separate_down_level` (adaptive only): each env keeps a second level for its down episodes, moved
    only by their outcomes (as legged_gym's terrain types each have their own rows), starting at
    `difficulty` like the up level. With one shared level, a policy that climbs 0.17 m risers but
    has never descended meets its first down flights at 0.17 m: 30 % of episodes going down from
    such a start fell in 9 of 10 (runs/sc_ud, 0.4M steps) while the up episodes kept the level high.

    `replay_fraction` (adaptive only): the share of episodes played at a difficulty drawn uniformly
    in [0, level] instead of at the env's level; their outcome does not move the level. An env at its
    frontier otherwise never sees lower risers again, and a policy fine-tuned at 0.175 m lost
    0.12 m climbs it had made (legged_gym sends robots that finish its hardest level to random ones
    for the same reason). 0 draws nothing.

    `replay_min_difficulty` (with `replay_fraction`): the lowest difficulty a replay draws, so that
    replays go to [replay_min_difficulty, level] instead of [0, level] (an env whose level is below it
    replays its own level). An env at the top level otherwise replays the risers a benchmark asks
    for (0.14-0.18 m) in 6 % of its episodes (a fifth of the 30 % replayed): runs/tr493, 70 % of
    its climbs at 0.20 m, climbed 0.175 m risers on 0.25 m treads in 36 of 40 held-out episodes and
    0.15 m ones in 23.
    """

    difficulty: float | None = None
    max_riser_m: float = 0.20
    adaptive: bool = False
    step: float = 0.1
    promote_fraction: float = 0.8
    demote_fraction: float = 0.35
    down_fraction: float = 0.0
    separate_down_level: bool = False
    replay_fraction: float = 0.0
    replay_min_difficulty: float = 0.0

    def __post_init__(self) -> None:
        if self.difficulty is not None:
            check_range("difficulty", self.difficulty, 0.0, 1.0)
        check_range("max_riser_m", self.max_riser_m, 0.20, 0.30, unit="m")
        check_range("step", self.step, 0.0, 1.0, low_open=True)
        check_range("promote_fraction", self.promote_fraction, 0.0, 1.0, low_open=True)
        check_range("demote_fraction", self.demote_fraction, 0.0, self.promote_fraction, unit="(< promote)")
        check_range("down_fraction", self.down_fraction, 0.0, 1.0)
        check_range("replay_fraction", self.replay_fraction, 0.0, 1.0)
        check_range("replay_min_difficulty", self.replay_min_difficulty, 0.0, 1.0)

    @property
    def keeps_down_level(self) -> bool:
        """Down episodes keep a level of their own: `separate_down_level` in an adaptive curriculum
        (fixed stairs, as in evaluation, have one level that `set_difficulty` sets)."""
        return self.adaptive and self.separate_down_level

    def next_difficulty(self, difficulty: float, steps_climbed: int, num_steps: int) -> float:
        """Difficulty for the next episode after one that crossed `steps_climbed` of `num_steps`."""
        fraction = steps_climbed / num_steps
        if fraction >= self.promote_fraction:
            difficulty += self.step
        elif fraction < self.demote_fraction:
            difficulty -= self.step
        # Rounded so that repeated steps land on the grid (0.3, not 0.30000000000000004).
        return round(min(1.0, max(0.0, difficulty)), 9)


@dataclass(frozen=True)
class SpawnConfig:
    """Initial pose noise, sampled from the env's RNG at each reset."""

    xy_jitter_m: float = 0.05  # uniform in [-v, v] on x and y
    yaw_jitter_rad: float = 0.1  # uniform in [-v, v]

    def __post_init__(self) -> None:
        check_range("xy_jitter_m", self.xy_jitter_m, 0.0, 0.25, unit="m")
        check_range("yaw_jitter_rad", self.yaw_jitter_rad, 0.0, 0.5, unit="rad")


@dataclass(frozen=True)
class RewardParamsConfig:
    """Parameters of the reward terms that measure against a distance (the weights live in `rewards`)."""

    # `base_clearance_deficit` charges the trunk's lowest edge for each m it is below this height
    # above the stairs under it, m.
    base_clearance_margin_m: float = BASE_CLEARANCE_MARGIN_M

    def __post_init__(self) -> None:
        check_range("base_clearance_margin_m", self.base_clearance_margin_m, 0.0, 0.3, unit="m")


DEFAULT_REWARD_WEIGHTS: Mapping[str, float] = types.MappingProxyType(
    {
        "forward_progress": 1.0,
        "new_steps": 4.0,
        "orientation_l2": -1.0,
        "ang_vel_xy_l2": -0.01,
        "lateral_vel_l2": -1.0,
        "heading_l2": -0.5,
        "torque_l2": -1.0e-5,
        "action_rate_l2": -0.005,
        "joint_limit": -1.0,
        "body_contact": -0.5,
        "fall": -10.0,
        "success": 10.0,
    }
)


@dataclass(frozen=True)
class EnvConfig:
    """A whole StairClimb environment. Sections match the top-level keys of a preset YAML."""

    robot: str = "stairdog"  # a spec name in urdf/ or a path to a spec YAML
    sim: SimConfig = field(default_factory=SimConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    actuator: ActuatorConfig = field(default_factory=ActuatorConfig)
    stairs: StairSpec = field(default_factory=StairSpec)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    command: CommandConfig = field(default_factory=CommandConfig)
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    termination: TerminationConfig = field(default_factory=TerminationConfig)
    spawn: SpawnConfig = field(default_factory=SpawnConfig)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    rewards: Mapping[str, float] = field(default_factory=lambda: DEFAULT_REWARD_WEIGHTS)
    reward_params: RewardParamsConfig = field(default_factory=RewardParamsConfig)


def read_env_preset(preset: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Raw mapping of a preset, with `extends: <preset>` resolved (the file's keys win)."""
    path = resolve_preset(preset, "envs")
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"env presets extend each other in a cycle: {chain}")
    raw = read_yaml(path)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends must be a preset name or path, got {parent!r}")
    return deep_merge(read_env_preset(parent, (*_seen, path)), raw)


def load_env_config(
    preset: str | Path = "stairs_up",
    overrides: Mapping[str, Any] | Iterable[str] = (),
) -> EnvConfig:
    """Load an env preset by name (`envs/<name>.yaml`) or path, with dotted-key overrides applied."""
    raw = read_env_preset(preset)
    try:
        return load_dataclass(EnvConfig, apply_overrides(raw, overrides))
    except ConfigError as exc:
        raise ConfigError(f"env preset '{preset}': {exc}") from None


def env_observation_layout(config: EnvConfig, num_joints: int) -> ObservationLayout:
    """The observation layout of an env built from `config` for a robot with `num_joints` joints:
    the height scan, gait phase and history blocks are there when the config turns them on."""
    scan = config.observation.height_scan
    return observation_layout(
        num_joints,
        scan.num_points if scan.enabled else 0,
        gait_phase=config.control.gait.enabled,
        history_steps=config.observation.history_steps,
    )
