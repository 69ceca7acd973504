"""Applies domain randomization to a `World` over an episode: dynamics at reset, latency and pushes
while stepping. Used by the env only when `randomization.enabled`; the plain `World.step` path is
untouched otherwise.

Latency resolution: both latencies are whole physics substeps (`round(latency_s / physics_dt_s)`,
2 ms at 500 Hz).

- Action latency k: a new joint target takes effect at substep k of the control step (the previous
  target is applied for the first k substeps); k beyond one control period reaches further back.
- Observation latency k = n * decimation + r: the observation is built from the robot state read
  k substeps before the end of the control step: a state read after `decimation - r` substeps of the
  step n steps ago (a ring buffer of n + 1 states; one extra state read per step when r > 0). Rewards
  and termination always use the true, current state. The command, last action and gait clock in
  the observation are not delayed (the controller knows them).

Pushes (legged_gym style): every `push_interval_s` (drawn again after each push) the base's
horizontal velocity changes instantly by `push_vel_mps` in a random direction, at the start of a
control step.
"""

from __future__ import annotations

import collections
import math

import numpy as np
from numpy.typing import NDArray

from stairbot.randomization import RandomizationConfig, RandomizationSample, push_velocity, sample
from stairbot.sim.actuators import AppliedTorques
from stairbot.sim.world import RobotState, World

FloatArray = NDArray[np.float64]


class Randomizer:
    """Per-episode randomization state of one env (target history, observation buffer, push clock)."""

    def __init__(self, config: RandomizationConfig, world: World) -> None:
        self.config = config
        self.world = world
        self.sample: RandomizationSample | None = None
        self._rng = np.random.default_rng(0)
        self._targets: collections.deque[FloatArray] = collections.deque(maxlen=1)
        self._states: collections.deque[RobotState] = collections.deque(maxlen=1)
        self._action_k = 0
        self._snapshot_substep: int | None = None
        self._time_s = 0.0
        self._next_push_s = math.inf
        self.last_push_mps: tuple[float, float, float] | None = None

    def reset(self, rng: np.random.Generator, default_target_rad: FloatArray) -> RandomizationSample:
        """Draw and apply this episode's parameters; call after the robot is placed, before its
        state is read. `default_target_rad` (J,) stands for the targets sent before the episode."""
        world = self.world
        self._rng = rng
        self.sample = drawn = sample(
            self.config,
            rng,
            nominal_ground_friction=world.nominal.terrain_friction,
            physics_dt_s=world.sim.physics_dt_s,
        )
        world.apply_dynamics(drawn)
        decimation = world.sim.decimation
        self._action_k = drawn.action_latency_substeps
        self._targets = collections.deque(
            [np.asarray(default_target_rad, dtype=np.float64)] * (1 + -(-self._action_k // decimation)),
            maxlen=1 + -(-self._action_k // decimation),
        )
        steps_back, remainder = divmod(drawn.obs_latency_substeps, decimation)
        self._snapshot_substep = decimation - remainder if remainder else None
        self._states = collections.deque(maxlen=steps_back + 1)
        self._time_s = 0.0
        self._next_push_s = drawn.first_push_s if self.config.pushes and drawn.randomized else math.inf
        self.last_push_mps = None
        return drawn

    def start(self, state: RobotState) -> None:
        """Fill the observation buffer with the state at reset."""
        self._states.extend([state] * (self._states.maxlen or 1))

    def step(
        self, q_target_rad: FloatArray, state: RobotState
    ) -> tuple[AppliedTorques, RobotState, RobotState]:
        """One control step from `state` (the current one): returns the applied torques, the new
        true state and the (possibly delayed) state the observation sees."""
        world = self.world
        self._time_s += world.sim.control_dt_s
        self.last_push_mps = None
        if self._time_s >= self._next_push_s:
            self.last_push_mps = push = push_velocity(self.config, self._rng)
            world.push_base(np.array(push))
            self._next_push_s += float(self._rng.uniform(*self.config.push_interval_s))
        self._targets.append(q_target_rad)
        torques, snapshot = world.step_perturbed(
            self._targets,
            action_latency_substeps=self._action_k,
            snapshot_substep=self._snapshot_substep,
            com_torque_nm=world.com_torque_nm(state.rotation),
        )
        new_state = world.read_state()
        self._states.append(new_state if snapshot is None else snapshot)
        return torques, new_state, self._states[0]
