"""The actuator model's math, with numbers worked out by hand, and its wiring into the world."""

from __future__ import annotations

import math

import numpy as np
import pybullet
import pytest

from stairbot.envs.stair_climb import StairClimbEnv
from stairbot.robots.spec import load_robot_spec
from stairbot.sim.actuators import (
    JOINT_FRICTION_SMOOTHING_RADPS,
    MotorActuator,
    PDActuator,
    joint_friction_torques,
    torque_speed_limit,
)


def test_torque_speed_limit_falls_linearly_in_the_direction_of_motion_and_brakes_in_full() -> None:
    tau_max, w0 = np.full(6, 10.0), np.full(6, 20.0)
    qd = np.array([0.0, 10.0, 10.0, 25.0, -10.0, -10.0])
    tau = np.array([10.0, 10.0, -10.0, 3.0, 8.0, -8.0])
    limited = torque_speed_limit(tau, qd, tau_max, w0)
    # at rest: full; half speed: half torque forward, full braking; past no-load: none forward;
    # moving backward: braking (positive) in full, -8 clipped to -5 (half of 10).
    np.testing.assert_allclose(limited, [10.0, 5.0, -10.0, 0.0, 8.0, -5.0])


def test_torque_speed_limit_at_no_load_speed_leaves_only_braking() -> None:
    limited = torque_speed_limit(
        np.array([5.0, -5.0]), np.array([20.0, 20.0]), np.full(2, 10.0), np.full(2, 20.0)
    )
    np.testing.assert_allclose(limited, [0.0, -5.0])


def test_torque_bounds_are_the_limit_and_follow_the_speed_curve_per_substep() -> None:
    limit, w0 = np.array([10.0, 20.0]), np.array([20.0, 20.0])
    pd = PDActuator(np.ones(2), np.zeros(2), limit)
    qd = np.array([[0.0, 10.0], [-10.0, 30.0]])  # (S=2, J=2) substeps
    lower, upper = pd.torque_bounds_nm(qd)
    np.testing.assert_array_equal(upper, [[10.0, 20.0], [10.0, 20.0]])
    np.testing.assert_array_equal(lower, -upper)
    motor = MotorActuator(pd, physics_dt_s=0.002, no_load_speed_radps=w0)
    lower, upper = motor.torque_bounds_nm(qd)
    # at rest full; half speed forward: half in the direction of motion, full braking; past no-load: 0.
    np.testing.assert_allclose(upper, [[10.0, 10.0], [10.0, 0.0]])
    np.testing.assert_allclose(lower, [[-10.0, -20.0], [-5.0, -20.0]])
    # a torque the motor clips lies on the bound it reports
    tau = motor.torques(np.array([100.0, 100.0]), np.zeros(2), qd[0])
    np.testing.assert_allclose(tau, upper[0])
    no_curve = MotorActuator(pd, physics_dt_s=0.002)
    np.testing.assert_array_equal(no_curve.torque_bounds_nm(qd)[1], pd.torque_bounds_nm(qd)[1])


def _pd(kp: float = 10.0, limit: float = 100.0) -> PDActuator:
    return PDActuator(np.array([kp]), np.array([0.0]), np.array([limit]))


def test_first_order_lag_closes_half_the_gap_when_dt_is_t_ln2() -> None:
    dt = 0.002
    motor = MotorActuator(_pd(), physics_dt_s=dt, time_constant_s=dt / math.log(2.0))
    assert motor.alpha == pytest.approx(0.5)
    target, q, qd = np.array([1.0]), np.array([0.0]), np.array([0.0])  # PD torque 10 N m
    out = [float(motor.torques(target, q, qd)[0]) for _ in range(3)]
    assert out == pytest.approx([5.0, 7.5, 8.75])
    motor.reset()
    assert float(motor.torques(target, q, qd)[0]) == pytest.approx(5.0)


def test_no_lag_and_no_limit_is_the_pd_law() -> None:
    pd = _pd(limit=4.0)
    motor = MotorActuator(pd, physics_dt_s=0.002)
    args = (np.array([1.0]), np.array([0.2]), np.array([3.0]))
    np.testing.assert_array_equal(motor.torques(*args), pd.torques(*args))
    assert float(pd.torques(*args)[0]) == 4.0  # 10 * 0.8 = 8, clipped at 4


def test_lag_then_speed_limit() -> None:
    motor = MotorActuator(
        _pd(limit=10.0),
        physics_dt_s=0.002,
        time_constant_s=0.002 / math.log(2.0),
        no_load_speed_radps=np.array([20.0]),
    )
    # PD 10 N m -> lagged 5 N m -> at 15 rad/s forward only 2.5 N m are available.
    assert float(motor.torques(np.array([1.0]), np.array([0.0]), np.array([15.0]))[0]) == pytest.approx(2.5)


def test_no_load_speed_defaults_to_the_urdf_velocity_limit() -> None:
    np.testing.assert_array_equal(load_robot_spec("stairdog").no_load_speeds_radps, np.full(12, 30.0))
    np.testing.assert_allclose(load_robot_spec("a1").no_load_speeds_radps, [52.4, 28.6, 28.6] * 4)


def test_env_uses_the_motor_model_only_when_the_actuator_section_asks() -> None:
    plain = StairClimbEnv()
    motor = StairClimbEnv(
        overrides={"actuator.torque_speed_limit": True, "actuator.motor_time_constant_s": 0.004}
    )
    try:
        assert type(plain.world.actuator) is PDActuator
        actuator = motor.world.actuator
        assert isinstance(actuator, MotorActuator)
        np.testing.assert_array_equal(actuator.no_load_speed_radps, np.full(12, 30.0))
        motor.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(20):
            motor.step(rng.uniform(-1, 1, 12).astype(np.float32))
            applied = motor.last_torques
            assert applied is not None
            # forward torque never exceeds the torque-speed curve at the measured speed
            available = actuator.torque_limit_nm * np.clip(1 - np.abs(applied.joint_vel_radps) / 30.0, 0, 1)
            forward = applied.torques_nm * np.sign(applied.joint_vel_radps)
            assert np.all(forward <= available + 1e-9)
    finally:
        plain.close()
        motor.close()


def test_joint_friction_opposes_velocity_and_saturates_at_its_value() -> None:
    qd = np.array([-10.0, -0.2, 0.0, 0.2, 10.0])
    tau = joint_friction_torques(qd, 0.3)
    expected = -0.3 * np.tanh(qd / JOINT_FRICTION_SMOOTHING_RADPS)
    np.testing.assert_allclose(tau, expected)
    assert tau[0] == pytest.approx(0.3) and tau[-1] == pytest.approx(-0.3)  # full value when moving
    assert tau[2] == 0.0  # no torque at rest (no stiction in this model)
    assert tau[3] == pytest.approx(-0.3 * np.tanh(1.0))


def test_randomized_joint_friction_slows_the_swinging_legs() -> None:
    """Legs swung in the air (base held by a fixed constraint): friction takes speed off every joint."""
    speeds = {}
    for friction in (0.0, 2.0):
        env = StairClimbEnv(
            overrides={"randomization.enabled": True, "randomization.joint_friction_nm": [friction, friction]}
        )
        env.reset(seed=0)
        world = env.world
        c = world.client
        pos, quat = c.getBasePositionAndOrientation(world.robot_id)
        lifted = (pos[0], pos[1], pos[2] + 0.5)
        c.resetBasePositionAndOrientation(world.robot_id, lifted, quat)
        c.createConstraint(world.robot_id, -1, -1, -1, pybullet.JOINT_FIXED, (0, 0, 0), (0, 0, 0), lifted)
        env._state = world.read_state()
        env.step(np.ones(12, np.float32))
        speeds[friction] = np.abs(world.read_state().joint_vel_radps)
        env.close()
    assert np.all(speeds[2.0] < speeds[0.0] - 0.1), (speeds[2.0], speeds[0.0])
