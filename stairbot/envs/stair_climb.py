"""The StairClimb Gymnasium environment."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import EzPickle
from numpy.typing import NDArray

from stairbot.deploy import TrotGenerator
from stairbot.envs.config import EnvConfig, HeightSource, env_observation_layout, load_env_config
from stairbot.errors import ConfigError
from stairbot.observations import (
    HISTORY_FRAME_TERMS,
    HISTORY_TERM,
    OBS_CLIP,
    ObservationHistory,
    history_frame_size,
)
from stairbot.rewards import RewardComposer, StepContext
from stairbot.robots.spec import RobotSpec, hip_abduction_rad, load_robot_spec
from stairbot.sim.actuators import AppliedTorques
from stairbot.sim.randomizer import Randomizer
from stairbot.sim.world import FOLLOW_CAMERA, RobotState, World, camera_target
from stairbot.termination import TerminationCheck, TerminationReason
from stairbot.terrain.clearance import base_clearance_m
from stairbot.terrain.stairs import Direction, Flight, StairSpec, plan_flight, riser_for_difficulty

FloatArray = NDArray[np.float64]

# Margin of the soft joint limits used by the `joint_limit` reward, as a fraction of the URDF range.
_SOFT_LIMIT_FRACTION = 0.9
# Spawn clearance above the terrain so that the feet do not start inside it, m.
_SPAWN_CLEARANCE_M = 0.02


class StairClimbEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]], EzPickle):
    """A legged robot walks up (or down) a procedurally built flight of stairs.

    ## Description
    The robot spawns at x = 0 facing +x; a flight of `num_steps` risers starts `stairs.start_m`
    ahead and ends in a landing. Going up it starts on the floor; going down it starts on a platform
    at the top. The episode succeeds when the base reaches the final landing. PyBullet simulates at
    `sim.physics_dt_s` (500 Hz by default); the policy acts every `sim.decimation` physics steps
    (50 Hz, `env.dt` = 0.02 s).

    ## Action space
    `Box(-1, 1, (J,), float32)`, J = number of actuated joints in the robot spec's joint order.
    Joint position targets are `q_target = default_pose + control.action_scale_rad * action`; a PD
    law with the spec's gains runs at physics rate: `tau = clip(kp (q_target - q) - kd qd, ±tau_max)`.
    The `actuator:` section can add a torque-speed limit and a first-order torque lag
    (`stairbot.sim.actuators.MotorActuator`); both are off in the shipped presets. With the gait
    prior (`control.gait.enabled`) the action is a residual: `q_target = default_pose + trot
    offsets(phase) + action_scale_rad * action` (`stairbot.deploy.TrotGenerator`; the clock starts at
    phase 0 at reset and advances by one control period per step).

    ## Observation space
    `Box(-100, 100, (N,), float32)`. One layout defines it (`stairbot.observations`); each block is
    `raw * scale`:

    | block | size | scale | raw value |
    |---|---|---|---|
    | base_ang_vel | 3 | 0.25 | base angular velocity, base frame, rad/s |
    | projected_gravity | 3 | 1 | unit gravity vector in the base frame |
    | command | 3 | 1 | commanded (vx m/s, vy m/s, yaw rate rad/s); the yaw rate steers to +x |
    | joint_pos | J | 1 | joint position - default pose, rad |
    | joint_vel | J | 0.05 | joint velocity, rad/s |
    | last_action | J | 1 | previous action |
    | gait_phase | 2 (gait prior only) | 1 | (sin, cos) of the trot clock's phase |
    | height_scan | P (optional) | 5 | terrain height - (base z - nominal height), m, clipped to ±1 |
    | proprio_history | H x 45 (optional) | 1 | the first six blocks of the previous H observations |

    For the 12-joint robots N = 45, + 2 with the gait prior, + P with the height scan (P = 24 by default),
    + 45 H with `observation.history_steps: H` (newest frame first; the first observation of an
    episode repeats its own frame; the frames carry the noise they were seen with).

    ## Rewards
    `reward = sum_i w_i * term_i`, weights from the preset's `rewards:` table (sign in the weight).
    Terms (see `stairbot.rewards` for each formula): `forward_progress` (dx/dt capped at the command,
    m/s), `forward_overspeed_l2` (max(0, vx - vx_cmd)^2), `forward_vel_exp` (exp(-(vx - vx_cmd)^2 /
    0.25)), `new_steps` (risers newly crossed beyond the best so far), `lateral_vel_l2` (vy^2),
    `heading_l2` ((yaw - the command's heading target)^2), `alive` (1), `orientation_l2` (gx^2 +
    gy^2), `orientation_to_slope_l2`
    (gy^2 + (gx + sin a)^2, a = the flight's slope under the base, `Flight.pitch_at`),
    `base_clearance_deficit` (m the trunk's lowest edge is below
    `reward_params.base_clearance_margin_m`, 5 cm by default, above the stairs under it),
    `foot_edge` (feet in contact within 5 cm of a stair edge, horizontally), `foothold_edge` (feet
    touching down there in this step), `front_feet_airborne` (1 with no front foot in contact),
    `ang_vel_xy_l2`, `torque_l2`, `energy` (W), `action_rate_l2`, `joint_limit` (rad beyond 90 % of
    the range), `foot_slip`, `feet_air_time`, `body_contact` (links other than feet and base
    touching terrain), `fall` (1 on a failure), `success` (1 on reaching the landing).
    `info["reward_terms"]` holds each weighted term.

    ## Episode end
    Termination (`info["termination_reason"]`): `fall` (tilt above `termination.max_tilt_rad`, or
    base lower than `min_base_height_ratio` x nominal height above the terrain beneath it, on the way
    down too), `base_contact`, `thigh_contact` (if enabled), `out_of_bounds` (off the side of the
    flight, 1 m behind the spawn, or past the end of the landing), `success`. Truncation only from the
    registered time limit (1000 steps = 20 s).

    ## Info
    Every step: `reward_terms`, `episode_reward_terms` (their sums so far in the episode),
    `termination_reason`, `steps_climbed` (risers crossed by the base, best in the episode),
    `num_steps`, `direction` (`up`/`down`: drawn per episode with `curriculum.down_fraction`),
    `difficulty` (the level this episode's direction plays), `success`, and how the robot moves:
    `base_speed_x_mps` and `command_speed_mps` (m/s along +x), `pitch_to_slope_rad` (base pitch,
    nose up > 0, minus the flight's slope under it), `pitch_rate_radps` (base angular velocity about
    its own y axis, rad/s),
    `hip_abduction_rms_rad` (root mean square over the legs of the hip abduction joints' distance
    from the default pose, rad: how far the legs splay sideways); with
    `base_clearance_deficit` weighted, `base_clearance_m` (that edge's height above the stairs, m,
    `terrain.clearance.base_clearance_m`); on a `base_contact` ending, `base_contact_at_m` (the mean
    of the trunk's contact points in the base frame, m: x > 0 toward the nose, the trunk box spans
    x +-0.19 m on stairdog); on a `fall` ending, `fall_kind` (`backward`, `forward`, `sideways` or
    `low`: `termination.FallKind`). Reset: the sampled episode parameters (`riser_m`,
    `tread_m`, `num_steps`, `direction`, `difficulty`, `command`, `spawn_xy_m`, `spawn_yaw_rad`;
    with `stairs.riser_jitter_m` or `stairs.tread_jitter_m` > 0 also the drawn `risers_m` and
    `treads_m` lists, see `plan_flight`), enough to replay a failure exactly.
    With `randomization.enabled` the reset info also holds `randomization`: this episode's draw as
    plain floats (`ground_friction`, `foot_friction_scale`, `restitution`, `payload_kg`,
    `com_offset_m` [x, y, z] in the base frame, `link_mass_scale`, `motor_strength_scale`, `kp_scale`,
    `kd_scale`, `joint_friction_nm`, `joint_damping_nms_per_rad`, `obs_latency_s` and
    `action_latency_s` with their whole `*_substeps`, `first_push_s`); see `stairbot.randomization`
    and `stairbot.sim.randomizer` (latency resolution, pushes).

    ## Curriculum
    With `curriculum.adaptive: true` the env sets its own difficulty at each reset from the episode
    that just ended (see `CurriculumConfig`); `set_difficulty` (e.g. through `VecEnv.env_method`)
    restores a saved level, `set_down_difficulty` the level of down episodes where they keep their
    own (`curriculum.separate_down_level`).

    ## Arguments
    `preset` (name in `envs/` or a YAML path, default `stairs_up`); keyword overrides `riser_m`,
    `tread_m`, `num_steps`, `direction` (`up`/`down`), `difficulty` (0 = flat .. 1 = max riser),
    `robot`; `overrides` (dotted keys, e.g. `{"rewards.fall": -20}`); `render_mode` (`human` opens
    the PyBullet GUI, `rgb_array` renders offscreen). `reset(options={"difficulty": d})` changes the
    difficulty from that episode on (the curriculum uses it).

    ## Version history
    v0: first release.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}  # noqa: RUF012

    def __init__(
        self,
        preset: str | Path = "stairs_up",
        *,
        riser_m: float | None = None,
        tread_m: float | None = None,
        num_steps: int | None = None,
        direction: str | None = None,
        difficulty: float | None = None,
        robot: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        EzPickle.__init__(
            self,
            preset,
            riser_m=riser_m,
            tread_m=tread_m,
            num_steps=num_steps,
            direction=direction,
            difficulty=difficulty,
            robot=robot,
            overrides=overrides,
            render_mode=render_mode,
        )
        keyword_overrides = {
            "stairs.riser_m": riser_m,
            "stairs.tread_m": tread_m,
            "stairs.num_steps": num_steps,
            "stairs.direction": direction,
            "curriculum.difficulty": difficulty,
            "robot": robot,
        }
        merged = {k: v for k, v in keyword_overrides.items() if v is not None}
        merged.update(overrides or {})
        self.config: EnvConfig = load_env_config(preset, merged)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.robot_spec: RobotSpec = load_robot_spec(self.config.robot)
        self.rewards = RewardComposer(self.config.rewards)
        scan = self.config.observation.height_scan
        gait = self.config.control.gait
        self.obs_layout = env_observation_layout(self.config, self.robot_spec.num_joints)
        # The gait prior's clock (None: plain joint targets).
        self._gait = (
            TrotGenerator(self.robot_spec.num_joints, gait.frequency_hz, gait.calf_swing_rad, gait.stride_rad)
            if gait.enabled
            else None
        )
        self.dt = self.config.sim.control_dt_s
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.dt)}
        num_joints = self.robot_spec.num_joints
        # (J,) rad per unit action (one config number, or one per joint)
        self._action_scale_rad = self.config.control.action_scale_vector(num_joints)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (num_joints,), np.float32)
        self.observation_space = gym.spaces.Box(-OBS_CLIP, OBS_CLIP, (self.obs_layout.size,), np.float32)
        curriculum = self.config.curriculum
        self._difficulty = curriculum.difficulty
        if curriculum.adaptive and self._difficulty is None:
            self._difficulty = 0.0
        # The level of down episodes with `curriculum.separate_down_level` (unused otherwise).
        self._down_difficulty = self._difficulty
        self._replay = False  # this episode plays an easier level than the curriculum's (replay_fraction)
        self._terminate = TerminationCheck(self.config.termination, self.robot_spec.nominal_base_height_m)
        randomization = self.config.randomization
        if randomization.enabled and randomization.obs_noise:
            try:
                self.obs_layout = self.obs_layout.with_noise(randomization.obs_noise)
            except KeyError as exc:
                raise ConfigError(f"randomization.obs_noise: {exc.args[0]}") from None
        self._obs_noise_scale = 1.0  # this episode's x on the layout's noise (randomization)
        history_steps = self.config.observation.history_steps
        self._history = (
            ObservationHistory(history_steps, history_frame_size(self.robot_spec.num_joints))
            if history_steps
            else None
        )
        # Where the history goes, and the zeros that hold its place until the noise is added.
        self._history_slice = self.obs_layout.slice(HISTORY_TERM) if history_steps else slice(0, 0)
        self._history_placeholder = np.zeros(self._history_slice.stop - self._history_slice.start)
        if self._history is not None and HISTORY_TERM in randomization.obs_noise:
            raise ConfigError(
                f"randomization.obs_noise: {HISTORY_TERM} takes no noise of its own (its frames repeat "
                f"the noisy terms {list(HISTORY_FRAME_TERMS)}); name those instead"
            )
        # Domain randomization at reset and step (None: disabled, the plain World.step path).
        self._randomizer: Randomizer | None = None
        self._scan_offsets = np.array(
            [(x, y) for x in scan.x_points_m for y in scan.y_points_m], dtype=np.float64
        ).reshape(-1, 2)
        # The world (a PyBullet client) is created lazily, in the process that steps the env.
        self._world: World | None = None
        self._camera_placed = False
        self._soft_limits = np.zeros((num_joints, 2))
        self._flight: Flight | None = None
        self._state: RobotState | None = None
        self._command = np.zeros(3)
        self._last_action = np.zeros(num_joints)
        self._air_time_s = np.zeros(len(self.robot_spec.foot_links))
        self._foot_contact = np.zeros(len(self.robot_spec.foot_links), dtype=bool)
        self._first_contact = np.zeros(len(self.robot_spec.foot_links), dtype=bool)
        self._front_feet: NDArray[np.bool_] | None = None  # (F,) set at the first reset
        self._best_steps = 0
        self._episode_steps = 0
        self._episode_terms: dict[str, float] = {}
        # What the actuators applied in the last step (telemetry, plots); None before the first step.
        self.last_torques: AppliedTorques | None = None

    # ---- properties --------------------------------------------------------------------------------

    @property
    def world(self) -> World:
        if self._world is None:
            self._world = World(
                self.robot_spec,
                self.config.sim,
                self.config.stairs,
                max_riser_m=self.config.curriculum.max_riser_m,
                gui=self.render_mode == "human",
                actuator=self.config.actuator,
            )
            self._soft_limits = self._soft_joint_limits(self._world)
            if self.config.randomization.enabled:
                self._randomizer = Randomizer(self.config.randomization, self._world)
        return self._world

    @property
    def flight(self) -> Flight:
        """This episode's stair geometry (set by reset())."""
        if self._flight is None:
            raise RuntimeError("call reset() first: the flight is planned at reset")
        return self._flight

    @property
    def feet_touching_down(self) -> NDArray[np.bool_]:
        """(F,) the feet (robot spec's `foot_links` order) that touched down in the last step: in
        contact now, not before it. A copy; all False after reset()."""
        return self._first_contact.copy()

    @property
    def command(self) -> FloatArray:
        """(3,) current command (vx m/s, vy m/s, yaw rate rad/s), a copy."""
        return self._command.copy()

    @property
    def difficulty(self) -> float | None:
        """Stair difficulty in [0, 1] (None: the preset's riser height is used)."""
        return self._difficulty

    def set_difficulty(self, difficulty: float | None) -> None:
        """Use `difficulty` from the next reset on (callable through `VecEnv.env_method`). With
        `curriculum.separate_down_level` this is the level of the up episodes."""
        if difficulty is not None:
            riser_for_difficulty(difficulty, self.config.curriculum.max_riser_m)  # validates
        self._difficulty = difficulty

    @property
    def down_difficulty(self) -> float | None:
        """The level down episodes play: `difficulty` unless `curriculum.separate_down_level`."""
        return self._down_difficulty if self.config.curriculum.keeps_down_level else self._difficulty

    def set_down_difficulty(self, difficulty: float | None) -> None:
        """Set the level of down episodes from the next reset on (`curriculum.separate_down_level`
        only: a shared level is `set_difficulty`'s)."""
        if not self.config.curriculum.keeps_down_level:
            raise ConfigError(
                "set_down_difficulty: this env's up and down episodes share one level "
                "(curriculum.separate_down_level needs adaptive: true); use set_difficulty"
            )
        if difficulty is not None:
            riser_for_difficulty(difficulty, self.config.curriculum.max_riser_m)  # validates
        self._down_difficulty = difficulty

    def _draw_direction(self, rng: np.random.Generator) -> Direction:
        """This episode's flight direction: drawn with `curriculum.down_fraction` in a curriculum
        that mixes them, else the preset's `stairs.direction` (no draw)."""
        curriculum = self.config.curriculum
        if curriculum.adaptive and curriculum.down_fraction > 0.0:
            return Direction.DOWN if rng.uniform() < curriculum.down_fraction else Direction.UP
        return self.config.stairs.direction

    def _level(self, direction: Direction | None) -> float | None:
        """The curriculum level an episode going `direction` plays (None: the shared level)."""
        return self.down_difficulty if direction is Direction.DOWN else self._difficulty

    def _move_level(self, direction: Direction) -> None:
        """Promote or demote the level the episode that just ended (going `direction`) played."""
        curriculum = self.config.curriculum
        moved = curriculum.next_difficulty(
            self._level(direction) or 0.0, self._best_steps, self.flight.num_steps
        )
        if curriculum.keeps_down_level and direction is Direction.DOWN:
            self._down_difficulty = moved
        else:
            self._difficulty = moved

    def _episode_stairs(self, rng: np.random.Generator, direction: Direction | None) -> StairSpec:
        """This episode's stair spec: the preset's, going `direction` (None: drawn here, see
        `_draw_direction`), the jitter dropped in a `stairs.regular_fraction` share of episodes and
        the tread drawn from `stairs.tread_range_m`. Each draw happens only when its setting is in
        use, so other configs keep every seed's episodes as they were."""
        stairs = self.config.stairs
        if direction is None:
            direction = self._draw_direction(rng)
        if direction is not stairs.direction:
            stairs = dataclasses.replace(stairs, direction=direction)
        if stairs.has_jitter and stairs.regular_fraction > 0.0 and rng.uniform() < stairs.regular_fraction:
            stairs = dataclasses.replace(stairs, riser_jitter_m=0.0, tread_jitter_m=0.0)
        if stairs.tread_range_m is not None:
            stairs = dataclasses.replace(stairs, tread_m=float(rng.uniform(*stairs.tread_range_m)))
        return stairs

    # ---- Gymnasium API -----------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        curriculum = self.config.curriculum
        if options and "difficulty" in options:
            self.set_difficulty(options["difficulty"])
        elif (
            curriculum.adaptive and self._flight is not None and self._episode_steps > 0 and not self._replay
        ):
            self._move_level(self._flight.direction)
        rng = self.np_random
        cfg = self.config
        world = self.world
        # Separate levels: the direction decides the level, so it is drawn first. Shared: after the
        # replay draw, where it always was (a seed keeps its episodes).
        direction = self._draw_direction(rng) if curriculum.keeps_down_level else None
        level = self._level(direction)
        played = level
        # A replay episode: an easier level, drawn below the env's own, that will not move it.
        self._replay = (
            curriculum.adaptive
            and curriculum.replay_fraction > 0.0
            and (rng.uniform() < curriculum.replay_fraction)
        )
        if self._replay:
            top = level or 0.0
            played = float(rng.uniform(min(curriculum.replay_min_difficulty, top), top))
        riser_m = (
            cfg.stairs.riser_m if played is None else riser_for_difficulty(played, cfg.curriculum.max_riser_m)
        )
        self._flight = flight = plan_flight(self._episode_stairs(rng, direction), riser_m=riser_m, rng=rng)
        world.place_stairs(flight)

        jitter = cfg.spawn.xy_jitter_m
        spawn_xy = rng.uniform(-jitter, jitter, size=2)
        spawn_yaw = float(rng.uniform(-cfg.spawn.yaw_jitter_rad, cfg.spawn.yaw_jitter_rad))
        spawn_z = flight.spawn_height_m + self.robot_spec.nominal_base_height_m + _SPAWN_CLEARANCE_M
        world.reset_robot(np.array([*spawn_xy, spawn_z]), spawn_yaw, self.robot_spec.default_pose_rad)
        if self._front_feet is None:  # ahead of the base at the default pose; the geometry is fixed
            spawned = world.read_state()
            in_base = (world.foot_positions() - spawned.base_pos_m) @ spawned.rotation
            self._front_feet = in_base[:, 0] > 0.0

        low, high = cfg.command.forward_speed_mps
        self._command = np.array([rng.uniform(low, high), 0.0, 0.0])
        self._last_action = np.zeros(self.robot_spec.num_joints)
        if self._gait is not None:
            self._gait.reset()
        if self._history is not None:
            self._history.reset()
        self._air_time_s[:] = 0.0
        self._foot_contact[:] = False
        self._first_contact[:] = False
        self._best_steps = 0
        self._episode_steps = 0
        self._episode_terms = dict.fromkeys(self.rewards.names, 0.0)
        randomized = (
            None
            if self._randomizer is None
            else self._randomizer.reset(rng, self.robot_spec.default_pose_rad)
        )
        self._obs_noise_scale = 1.0 if randomized is None else randomized.obs_noise_scale
        self._state = world.read_state()
        self._steer(self._state)
        if self._randomizer is not None:
            self._randomizer.start(self._state)

        info: dict[str, Any] = {
            "riser_m": float(flight.riser_m),
            "tread_m": float(flight.tread_m),
            "num_steps": int(flight.num_steps),
            "direction": flight.direction.value,
            "difficulty": level,
            "command": self._command.copy(),
            "spawn_xy_m": spawn_xy,
            "spawn_yaw_rad": spawn_yaw,
        }
        if curriculum.replay_fraction > 0.0:  # an easier level than `difficulty`, which it leaves alone
            info["replay"] = self._replay
        if cfg.stairs.has_jitter:  # this episode's per-step geometry, to replay a failure exactly
            info["risers_m"] = flight.risers_m.tolist()
            info["treads_m"] = flight.treads_m.tolist()
        if randomized is not None:  # this episode's dynamics, latencies and first push time
            info["randomization"] = randomized.to_info()
        if self.render_mode == "human":
            self._follow_camera()
        return self._observation(self._state), info

    def step(
        self, action: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        if self._state is None or self._flight is None:
            raise RuntimeError("call reset() before step()")
        world = self.world
        flight = self._flight
        robot = self.robot_spec
        action64 = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if action64.shape != (robot.num_joints,):
            raise ValueError(f"action must have shape ({robot.num_joints},), got {action64.shape}")

        prev_x = float(self._state.base_pos_m[0])
        q_target = robot.default_pose_rad + self._action_scale_rad * action64
        if self._gait is not None:
            q_target += self._gait.offsets()
            self._gait.advance(self.dt)
        if self._randomizer is None:
            torques = self.last_torques = world.step(q_target)
            state = obs_state = self._state = world.read_state()
        else:  # latency, pushes, COM moment; obs_state is the (delayed) state the policy sees
            torques, state, obs_state = self._randomizer.step(q_target, self._state)
            self.last_torques = torques
            self._state = state
        heading_target_rad = self._steer(state)
        contacts = world.contacts()

        # Episode state every term may need, updated whether a term uses it or not.
        first_contact = contacts.foot_contact & ~self._foot_contact
        self._air_time_s += self.dt
        air_time_at_touchdown = self._air_time_s * first_contact
        self._air_time_s[contacts.foot_contact] = 0.0
        self._foot_contact = contacts.foot_contact
        self._first_contact = first_contact
        steps = int(flight.steps_crossed(np.array([state.base_pos_m[0]]))[0])
        new_steps = max(0, steps - self._best_steps)
        self._best_steps = max(self._best_steps, steps)

        reason = self._terminate(
            flight,
            state.base_pos_m,
            state.projected_gravity,
            contacts.base_contact,
            contacts.thigh_contact,
        )
        # The flight's slope under the base: the orientation reward and the gait info both read it.
        terrain_pitch_rad = flight.pitch_at(float(state.base_pos_m[0]))
        ctx = StepContext(
            dt_s=self.dt,
            base_x_m=float(state.base_pos_m[0]),
            prev_base_x_m=prev_x,
            base_lin_vel_mps=state.base_lin_vel_mps,
            base_yaw_rad=state.yaw_rad,
            heading_target_rad=heading_target_rad,
            base_ang_vel_body_radps=state.base_ang_vel_body_radps,
            projected_gravity=state.projected_gravity,
            command=self._command,
            action=action64,
            last_action=self._last_action,
            joint_pos_rad=state.joint_pos_rad,
            default_joint_pos_rad=robot.default_pose_rad,
            soft_joint_limits_rad=self._soft_limits,
            torques=torques,
            foot_contact=contacts.foot_contact,
            foot_first_contact=first_contact,
            front_feet=self._front_feet,
            foot_air_time_s=air_time_at_touchdown,
            num_body_contacts=contacts.num_body_contacts,
            new_steps=new_steps,
            failed=reason.is_failure,
            succeeded=reason is TerminationReason.SUCCESS,
            foot_velocity_fn=world.foot_velocities,
            terrain_pitch_rad=terrain_pitch_rad,
            # ~40 us a step (6 % of the env's): only worked out when a term reads it.
            base_clearance_fn=lambda: base_clearance_m(
                flight, world.base_box, state.base_pos_m, state.rotation
            ),
            foot_edge_distance_fn=lambda: flight.distance_to_edge_m(world.foot_positions()[:, 0]),
            base_clearance_margin_m=self.config.reward_params.base_clearance_margin_m,
        )
        reward, terms = self.rewards(ctx)
        self._last_action = action64
        self._episode_steps += 1
        for name, value in terms.items():
            self._episode_terms[name] += value
        info = {
            "reward_terms": terms,
            "episode_reward_terms": dict(self._episode_terms),
            "termination_reason": reason.value,
            "steps_climbed": self._best_steps,
            "num_steps": flight.num_steps,
            "direction": flight.direction.value,
            "difficulty": self._level(flight.direction),
            "success": reason is TerminationReason.SUCCESS,
            **self._gait_signals(state, terrain_pitch_rad),
        }
        if "base_clearance_deficit" in terms:
            info["base_clearance_m"] = ctx.base_clearance_m
        if reason is TerminationReason.FALL:
            info["fall_kind"] = self._terminate.fall_kind(state.projected_gravity).value
        if reason is TerminationReason.BASE_CONTACT:  # where the trunk struck: nose, belly or tail
            points = contacts.base_points_in_base_frame_m(state.base_pos_m, state.rotation)
            info["base_contact_at_m"] = points.mean(axis=0).tolist()
        if self.render_mode == "human":
            self._follow_camera()
        terminated = reason is not TerminationReason.NONE
        return self._observation(obs_state), reward, terminated, False, info

    def render(self) -> NDArray[np.uint8] | None:
        if self.render_mode != "rgb_array":
            return None
        base = np.zeros(3) if self._state is None else self._state.base_pos_m
        return self.world.render(480, 360, camera_target(base))

    def close(self) -> None:
        if self._world is not None:
            self._world.close()
            self._world = None
        super().close()

    # ---- helpers -----------------------------------------------------------------------------------

    def _gait_signals(self, state: RobotState, terrain_pitch_rad: float) -> dict[str, float]:
        """How the robot moves, for evaluation: base speed along +x and the commanded one (m/s), the
        base's pitch minus the terrain's slope under it (rad, > 0: nose higher than the stairs), its
        pitch rate (rad/s about the base's y axis), and the rms over legs of the hips' abduction
        from the default pose (rad)."""
        hips = hip_abduction_rad(state.joint_pos_rad, self.robot_spec.default_pose_rad)
        nose_up_rad = math.asin(max(-1.0, min(1.0, -float(state.projected_gravity[0]))))
        return {
            "base_speed_x_mps": float(state.base_lin_vel_mps[0]),
            "command_speed_mps": float(self._command[0]),
            "pitch_to_slope_rad": nose_up_rad - terrain_pitch_rad,
            "pitch_rate_radps": float(state.base_ang_vel_body_radps[1]),
            "hip_abduction_rms_rad": float(np.sqrt(np.mean(np.square(hips)))),
        }

    def _steer(self, state: RobotState) -> float:
        """Set the yaw-rate command that turns the robot back to facing the stairs (and, with
        `command.centreline_gain_rad_per_m`, toward the flight's centre line); return the heading
        target it steers to, rad (`heading_l2` charges the error from it)."""
        cmd = self.config.command
        target_rad = cmd.heading_target_rad(float(state.base_pos_m[1]))
        yaw_rate = cmd.heading_gain_per_s * (target_rad - state.yaw_rad)
        self._command[2] = min(cmd.max_yaw_rate_radps, max(-cmd.max_yaw_rate_radps, yaw_rate))
        return target_rad

    def _observation(self, state: RobotState) -> NDArray[np.float32]:
        raw = {
            "base_ang_vel": state.base_ang_vel_body_radps,
            "projected_gravity": state.projected_gravity,
            "command": self._command,
            "joint_pos": state.joint_pos_rad - self.robot_spec.default_pose_rad,
            "joint_vel": state.joint_vel_radps,
            "last_action": self._last_action,
        }
        if self._gait is not None:
            raw["gait_phase"] = self._gait.observation()
        if self.config.observation.height_scan.enabled:
            raw["height_scan"] = self._height_scan(state)
        if self._history is None:
            return self.obs_layout.assemble(raw, self.np_random, self._obs_noise_scale)
        raw[HISTORY_TERM] = self._history_placeholder  # filled below, after the noise
        observation = self.obs_layout.assemble(raw, self.np_random, self._obs_noise_scale)
        self._history.fill(observation, self._history_slice)
        return observation

    def _height_scan(self, state: RobotState) -> FloatArray:
        """Terrain height relative to the stance floor on the scan grid (P,), clipped to ±1 m."""
        cos_yaw, sin_yaw = math.cos(state.yaw_rad), math.sin(state.yaw_rad)
        points = state.base_pos_m[:2] + self._scan_offsets @ ((cos_yaw, sin_yaw), (-sin_yaw, cos_yaw))
        if self.config.observation.height_scan.source is HeightSource.RAYS:
            heights = self.world.terrain_heights(points)
        else:
            assert self._flight is not None  # set by reset()
            heights = self._flight.height_at(points[:, 0], points[:, 1])
        stance_floor = state.base_pos_m[2] - self.robot_spec.nominal_base_height_m
        return np.clip(heights - stance_floor, -1.0, 1.0)

    @staticmethod
    def _soft_joint_limits(world: World) -> FloatArray:
        """(J, 2) soft limits: the middle 90 % of each joint's URDF range; +-inf for joints without
        limits (continuous joints, which PyBullet reports as lower 0 > upper -1)."""
        c = world.client
        limits = np.array(
            [c.getJointInfo(world.robot_id, j)[8:10] for j in world.joint_ids], dtype=np.float64
        )
        mid = limits.mean(axis=1, keepdims=True)
        half = (limits[:, 1:] - limits[:, :1]) / 2 * _SOFT_LIMIT_FRACTION
        soft = np.hstack([mid - half, mid + half])
        soft[limits[:, 1] <= limits[:, 0]] = (-np.inf, np.inf)
        return soft

    def _follow_camera(self) -> None:
        """Keep the GUI camera on the robot; distance, yaw and pitch stay as the user set them with the
        mouse (the first call sets FOLLOW_CAMERA's)."""
        if self._state is None:
            return
        client = self.world.client
        if self._camera_placed:
            camera = client.getDebugVisualizerCamera()  # (..., yaw [8], pitch [9], distance [10], target)
            yaw, pitch, distance = float(camera[8]), float(camera[9]), float(camera[10])
        else:
            yaw, pitch, distance = FOLLOW_CAMERA["yaw"], FOLLOW_CAMERA["pitch"], FOLLOW_CAMERA["distance"]
            self._camera_placed = True
        client.resetDebugVisualizerCamera(
            distance, yaw, pitch, camera_target(self._state.base_pos_m).tolist()
        )
