"""Actuator model: the robot's joint-level control law, in plain numpy.

The policy outputs joint position targets; each physics substep the actuator turns them into torques
with a PD law on the spec's real gains and clips them to the motor's torque limit:

    tau = clip(kp * (q_target - q) - kd * qd, -tau_max, tau_max)        [N·m]

Running the PD explicitly in Python with PyBullet's TORQUE_CONTROL was measured faster than PyBullet's
PD_CONTROL and POSITION_CONTROL modes (1.7k vs 1.3k vs 1.4k control steps/s for a1 at 500 Hz with 10
substeps), and it is exactly the law an exported controller runs on the robot.

`MotorActuator` adds two motor effects on top of the PD law (env section `actuator:`), both off by
default and both running only when enabled:

- first-order motor dynamics: the applied torque follows the PD torque with a lag of time constant
  T (s), exact for a command held over a substep of length dt:
  `tau <- tau + (1 - exp(-dt / T)) * (tau_pd - tau)`;
- a torque-speed limit (the linear curve of a DC motor at its voltage limit): in the direction the
  joint is moving the available torque falls linearly from tau_max at rest to 0 at the no-load speed
  w0, `tau_avail = tau_max * clip(1 - |qd| / w0, 0, 1)`; torque against the motion (braking) keeps
  the full tau_max.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PDActuator:
    """PD position control with torque saturation, per joint.

    Attributes:
        kp_nm_per_rad: (J,) stiffness.
        kd_nms_per_rad: (J,) damping.
        torque_limit_nm: (J,) symmetric torque limit.
    """

    kp_nm_per_rad: FloatArray
    kd_nms_per_rad: FloatArray
    torque_limit_nm: FloatArray

    def torques(self, q_target_rad: FloatArray, q_rad: FloatArray, qd_rad_s: FloatArray) -> FloatArray:
        """Joint torques (J,) in N·m for targets and the measured positions/velocities, all (J,)."""
        tau = self.kp_nm_per_rad * (q_target_rad - q_rad) - self.kd_nms_per_rad * qd_rad_s
        # minimum/maximum rather than np.clip: a third of the cost on 12-vectors, and this runs
        # every physics substep.
        return np.minimum(np.maximum(tau, -self.torque_limit_nm), self.torque_limit_nm)

    def reset(self) -> None:
        """Stateless: nothing to reset (the method exists so that every actuator has one)."""

    def torque_bounds_nm(self, qd_rad_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(lower, upper) torque the motor can apply, N·m, shaped as `qd_rad_s` ((J,) or (S, J)):
        here -+ the torque limit at any speed."""
        upper = np.broadcast_to(self.torque_limit_nm, np.shape(qd_rad_s))
        return -upper, upper


def torque_speed_bounds(
    qd_rad_s: FloatArray, torque_limit_nm: FloatArray, no_load_speed_radps: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(lower, upper) torque a linear torque-speed curve allows, N·m, shaped as `qd_rad_s` ((J,) or
    (S, J)): in the direction of the joint velocity `torque_limit * clip(1 - |qd| / no_load_speed, 0,
    1)`; against it (braking) the full limit."""
    available = torque_limit_nm * np.clip(1.0 - np.abs(qd_rad_s) / no_load_speed_radps, 0.0, 1.0)
    upper = np.where(qd_rad_s > 0.0, available, torque_limit_nm)
    lower = np.where(qd_rad_s < 0.0, -available, -torque_limit_nm)
    return lower, upper


def torque_speed_limit(
    tau_nm: FloatArray, qd_rad_s: FloatArray, torque_limit_nm: FloatArray, no_load_speed_radps: FloatArray
) -> FloatArray:
    """Clip torques (J,) to a linear torque-speed curve (`torque_speed_bounds`)."""
    lower, upper = torque_speed_bounds(qd_rad_s, torque_limit_nm, no_load_speed_radps)
    return np.minimum(np.maximum(tau_nm, lower), upper)


class MotorActuator:
    """The PD law followed by optional first-order motor dynamics and a torque-speed limit.

    Stateful (the lagged torque): `reset()` at each episode start sets it to zero.

    Args:
        pd: the PD law and torque limits.
        physics_dt_s: the substep the lag is discretized on, s.
        time_constant_s: motor torque time constant T, s; 0 = no lag.
        no_load_speed_radps: (J,) joint speed at which the available torque reaches zero; None = no
            torque-speed limit.
    """

    def __init__(
        self,
        pd: PDActuator,
        *,
        physics_dt_s: float,
        time_constant_s: float = 0.0,
        no_load_speed_radps: FloatArray | None = None,
    ) -> None:
        if time_constant_s < 0.0:
            raise ValueError(f"time_constant_s must be >= 0, got {time_constant_s}")
        if no_load_speed_radps is not None and not np.all(np.asarray(no_load_speed_radps) > 0.0):
            raise ValueError(f"no_load_speed_radps must be > 0 for every joint, got {no_load_speed_radps}")
        self.pd = pd
        self.torque_limit_nm = pd.torque_limit_nm
        # Fraction of the remaining gap closed per substep; 1 = no lag.
        self.alpha = 1.0 if time_constant_s == 0.0 else 1.0 - math.exp(-physics_dt_s / time_constant_s)
        self.no_load_speed_radps = no_load_speed_radps
        self._tau = np.zeros_like(pd.torque_limit_nm, dtype=np.float64)

    def reset(self) -> None:
        self._tau = np.zeros_like(self._tau)

    def torques(self, q_target_rad: FloatArray, q_rad: FloatArray, qd_rad_s: FloatArray) -> FloatArray:
        """Joint torques (J,) in N·m applied over the next substep."""
        tau = self.pd.torques(q_target_rad, q_rad, qd_rad_s)
        if self.alpha < 1.0:
            tau = self._tau = self._tau + self.alpha * (tau - self._tau)
        if self.no_load_speed_radps is not None:
            tau = torque_speed_limit(tau, qd_rad_s, self.torque_limit_nm, self.no_load_speed_radps)
        return tau

    def torque_bounds_nm(self, qd_rad_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(lower, upper) torque the motor can apply at joint velocities `qd_rad_s` ((J,) or (S, J)),
        N·m: the torque limit, lowered in the direction of motion by the torque-speed curve if on."""
        if self.no_load_speed_radps is None:
            return self.pd.torque_bounds_nm(qd_rad_s)
        return torque_speed_bounds(np.asarray(qd_rad_s), self.torque_limit_nm, self.no_load_speed_radps)


# Velocity over which Coulomb joint friction ramps up to its full value (tanh), rad/s. Its slope at
# rest, friction / 0.2 = 1.5 N m s/rad at the randomization's 0.3 N m, stays well inside the explicit
# 2 ms substep's stability limit (about 2 I / dt = 5 N m s/rad for a 5 g m^2 calf).
JOINT_FRICTION_SMOOTHING_RADPS = 0.2


def joint_friction_torques(qd_rad_s: FloatArray, friction_nm: float) -> FloatArray:
    """(J,) Coulomb friction torque opposing each joint's velocity: `-friction * tanh(qd / 0.2)`, N·m.

    Explicit and smooth (no stiction): a joint loaded below `friction_nm` creeps slowly instead of
    holding. PyBullet's implicit alternative (a velocity motor of target 0 with `friction_nm` as its
    force) models stiction but adds 12 solver rows per substep: measured 1005 vs 1320 randomized env
    steps/s (one process) before this replaced it.
    """
    return -friction_nm * np.tanh(qd_rad_s / JOINT_FRICTION_SMOOTHING_RADPS)


@dataclass(frozen=True)
class AppliedTorques:
    """What the actuators did over the S physics substeps of one control step.

    The statistics are computed on first use only: most reward presets read one of them or none.

    Attributes:
        torques_nm: (S, J) motor torque applied in each substep (a randomized joint friction acts
            on top of it and is not included).
        joint_vel_radps: (S, J) joint velocity measured in each substep.
    """

    torques_nm: FloatArray
    joint_vel_radps: FloatArray

    @property
    def last_nm(self) -> FloatArray:
        """(J,) torques of the last substep."""
        return self.torques_nm[-1]

    @cached_property
    def sum_mean_sq_nm2(self) -> float:
        """sum_j mean_s tau_sj^2, (N·m)^2."""
        flat = self.torques_nm.ravel()
        return float(flat @ flat) / len(self.torques_nm)

    @cached_property
    def mean_power_w(self) -> float:
        """mean_s sum_j |tau_sj * qd_sj|: mechanical power, W."""
        return float(np.abs(self.torques_nm * self.joint_vel_radps).sum()) / len(self.torques_nm)
