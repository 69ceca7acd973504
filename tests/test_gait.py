"""The gait prior: the trot generator's numbers, and that the env and the deploy runtime use it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stairbot.deploy import TrotGenerator
from stairbot.envs.stair_climb import StairClimbEnv
from stairbot.errors import ConfigError


def test_trot_offsets_by_hand() -> None:
    gen = TrotGenerator(12, frequency_hz=2.0, calf_swing_rad=0.6)
    np.testing.assert_allclose(gen.offsets(), 0.0, atol=1e-12)  # phase 0: every leg at touchdown
    gen.reset(math.pi / 2)  # FR and RL at mid-swing, FL and RR in stance
    expected = np.zeros(12)
    for leg in (0, 3):  # FR, RL: thigh +0.3, calf -0.6
        expected[3 * leg + 1 : 3 * leg + 3] = (0.3, -0.6)
    np.testing.assert_allclose(gen.offsets(), expected, atol=1e-12)
    gen.reset(3 * math.pi / 2)  # the other diagonal
    np.testing.assert_allclose(gen.offsets()[[4, 5, 7, 8]], (0.3, -0.6, 0.3, -0.6), atol=1e-12)
    np.testing.assert_allclose(gen.offsets()[[1, 2, 10, 11]], 0.0, atol=1e-12)
    np.testing.assert_allclose(gen.observation(), (-1.0, 0.0), atol=1e-12)


def test_trot_clock_period() -> None:
    gen = TrotGenerator(12, frequency_hz=2.0, calf_swing_rad=0.6)
    for _ in range(12):
        gen.advance(0.02)
    assert gen.phase_rad == pytest.approx(2 * math.pi * 2.0 * 0.24)
    for _ in range(13):
        gen.advance(0.02)  # 25 steps of 20 ms = one 0.5 s cycle
    assert min(gen.phase_rad, 2 * math.pi - gen.phase_rad) == pytest.approx(0.0, abs=1e-9)


def test_trot_needs_four_legs() -> None:
    with pytest.raises(ValueError, match="4 legs"):
        TrotGenerator(8, 2.0, 0.6)


def test_env_observes_the_phase_and_lifts_the_swinging_feet() -> None:
    env = StairClimbEnv(difficulty=0.0, overrides={"control.gait.enabled": True})
    plain = StairClimbEnv(difficulty=0.0)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape[0] == plain.reset(seed=0)[0].shape[0] + 2
        phase = env.obs_layout.slice("gait_phase")
        np.testing.assert_allclose(obs[phase], (0.0, 1.0))
        world = env.world
        feet = world.foot_link_ids
        for step in range(1, 7):  # to just past mid-swing of FR/RL (phase pi/2 at 6.25 steps)
            obs, *_ = env.step(np.zeros(12, np.float32))
            np.testing.assert_allclose(
                obs[phase], (math.sin(0.08 * math.pi * step), math.cos(0.08 * math.pi * step)), atol=1e-6
            )
        heights = [world.client.getLinkState(world.robot_id, i)[0][2] for i in feet]
        fr, fl, rr, rl = heights
        # The zero action still trots: the swinging diagonal is off the ground, the other stands.
        assert min(fr, rl) > max(fl, rr) + 0.03
    finally:
        env.close()
        plain.close()


def test_gait_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="frequency_hz"):
        StairClimbEnv(overrides={"control.gait.frequency_hz": -1.0})


def test_trot_stride_by_hand() -> None:
    """The stride turns each thigh by stride_rad x cos(leg phase): back (+) at lift-off, forward (-)
    at touchdown; the calf is the lift's alone."""
    gen = TrotGenerator(12, frequency_hz=2.0, calf_swing_rad=0.6, stride_rad=0.2)
    thighs, calves = [1, 4, 7, 10], [2, 5, 8, 11]
    # Phase 0: FR and RL lift off (foot back), FL and RR touch down (foot forward); nobody is lifted.
    np.testing.assert_allclose(gen.offsets()[thighs], (0.2, -0.2, -0.2, 0.2), atol=1e-12)
    np.testing.assert_allclose(gen.offsets()[calves], 0.0, atol=1e-12)
    gen.reset(math.pi / 2)  # FR and RL at mid-swing: lift only; FL and RR at mid-stance: stride 0 too
    np.testing.assert_allclose(gen.offsets()[thighs], (0.3, 0.0, 0.0, 0.3), atol=1e-12)
    np.testing.assert_allclose(gen.offsets()[calves], (-0.6, 0.0, 0.0, -0.6), atol=1e-12)
    gen.reset(math.pi / 4)  # mid-way through the swing: the thigh carries both
    lift, sweep = 0.3 * math.sin(math.pi / 4), 0.2 * math.cos(math.pi / 4)
    assert gen.offsets()[1] == pytest.approx(lift + sweep)
    assert gen.offsets()[4] == pytest.approx(-sweep)  # FL in stance, phase 5 pi / 4: foot forward of centre


def _zero_action_displacement_m(stride_rad: float, steps: int = 100) -> float:
    """How far forward (m) the trunk moves on flat ground in `steps` control periods of zero action."""
    env = StairClimbEnv(
        difficulty=0.0, overrides={"control.gait.enabled": True, "control.gait.stride_rad": stride_rad}
    )
    try:
        env.reset(seed=0)
        world = env.world
        x0 = world.client.getBasePositionAndOrientation(world.robot_id)[0][0]
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(np.zeros(12, np.float32))
            assert not (terminated or truncated)
        return world.client.getBasePositionAndOrientation(world.robot_id)[0][0] - x0
    finally:
        env.close()


def test_the_stride_walks_the_trot_forward() -> None:
    """Real PyBullet, 2 s of zero action: lifting in place drifts the trunk back (~0.2 m/s on stairdog),
    a 0.4 rad stride carries it forward (~0.3-0.4 m/s)."""
    in_place = _zero_action_displacement_m(0.0)
    striding = _zero_action_displacement_m(0.4)
    assert in_place < -0.2
    assert striding > 0.4


def test_stride_is_validated() -> None:
    with pytest.raises(ConfigError, match="stride_rad"):
        StairClimbEnv(overrides={"control.gait.stride_rad": -0.1})
