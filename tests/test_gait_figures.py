"""Evaluation reports how the robot moved: speed against the command, and pitch against the stairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stairbot.evaluation import EvalReport, evaluate, gait_figures, merge_reports
from stairbot.training.vec import env_factory


class _Stand:
    """The zero action: the robot holds its default pose where it spawned."""

    def act(self, observation: np.ndarray) -> np.ndarray:
        return np.zeros(12, np.float32)


def test_a_standing_robot_moves_at_no_speed_and_is_level_on_flat_ground() -> None:
    flat = {"curriculum.adaptive": False, "curriculum.difficulty": 0.0}
    report = evaluate(_Stand(), env_factory("stairs_up", flat), episodes=2)
    assert report.speed_over_command is not None and abs(report.speed_over_command) < 0.1
    assert report.peak_speed_mps is not None and report.peak_speed_mps < 0.3  # settling after the drop
    assert report.pitch_to_slope_deg is not None and report.pitch_to_slope_deg < 5.0
    assert report.pitch_rate_rms_radps is not None and report.pitch_rate_rms_radps < 0.5  # no rocking
    assert all(not math.isnan(r.peak_speed_mps) for r in report.results)
    assert "speed (mean)" in report.table() and "pitch off the slope" in report.table()
    assert "pitch rate (rms)" in report.table()
    assert report.hip_abduction_rms_rad is not None and report.hip_abduction_rms_rad < 0.05
    assert "hip splay (rms)" in report.table()


def test_merged_reports_average_the_episodes_gait_figures() -> None:
    up = evaluate(_Stand(), env_factory("stairs_up", {"stairs.riser_m": 0.10}), episodes=1)
    down = evaluate(_Stand(), env_factory("stairs_down", {"stairs.riser_m": 0.10}), episodes=1)
    merged = merge_reports([up, down])
    assert merged.pitch_to_slope_deg == pytest.approx(
        (up.results[0].pitch_to_slope_deg + down.results[0].pitch_to_slope_deg) / 2
    )
    # Reports built by hand (no gait recorded) keep None, not NaN.
    assert merged.pitch_rate_rms_radps == pytest.approx(
        (up.results[0].pitch_rate_rms_radps + down.results[0].pitch_rate_rms_radps) / 2
    )
    assert EvalReport.gait_means([]) == dict.fromkeys(
        (
            "speed_over_command",
            "peak_speed_mps",
            "pitch_to_slope_deg",
            "pitch_rate_rms_radps",
            "hip_abduction_rms_rad",
            "base_contact_x_m",
            "base_contact_pitch_to_slope_deg",
        )
    )


def test_gait_figures_of_a_run_down_the_stairs() -> None:
    speeds = [0.5, 1.0, 1.5, 2.0]  # m/s along +x, a robot speeding up as it drops
    hips = [0.3, 0.3, 0.4, 0.0]  # rad, each step's rms over the legs
    figures = gait_figures(speeds, [0.5] * 4, [0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 3.0, -3.0], hips)
    assert figures["speed_over_command"] == pytest.approx(1.25 / 0.5)
    assert figures["peak_speed_mps"] == 2.0
    assert figures["pitch_to_slope_deg"] == pytest.approx(math.degrees(0.25))
    # rms, not mean: rocking up and down at 1 and 3 rad/s averages to 0 but is sqrt(5) rad/s
    assert figures["pitch_rate_rms_radps"] == pytest.approx(math.sqrt(5.0))
    assert figures["hip_abduction_rms_rad"] == pytest.approx(math.sqrt((0.09 + 0.09 + 0.16) / 4))
    assert gait_figures([], [], [], [], []) == {}


def test_a_rocking_trunk_shows_in_the_pitch_rate() -> None:
    """A real PyBullet robot whose hind legs pump (thigh targets flip every 0.1 s) rocks its trunk
    nose up and down; standing still it does not."""

    class _Pump:
        def __init__(self) -> None:
            self.step = 0

        def act(self, observation: np.ndarray) -> np.ndarray:
            self.step += 1
            action = np.zeros(12, np.float32)
            action[[7, 10]] = 1.0 if (self.step // 5) % 2 else -1.0  # RR and RL thighs
            return action

    flat = {"curriculum.adaptive": False, "curriculum.difficulty": 0.0}
    rocking = evaluate(_Pump(), env_factory("stairs_up", flat), episodes=1)
    still = evaluate(_Stand(), env_factory("stairs_up", flat), episodes=1)
    assert rocking.pitch_rate_rms_radps is not None and still.pitch_rate_rms_radps is not None
    assert rocking.pitch_rate_rms_radps > 3 * still.pitch_rate_rms_radps


def test_splayed_legs_show_in_the_hip_splay() -> None:
    """A real robot holding its front feet out by 0.4 rad and its rear ones by 0.2 (the shipped
    policy's front hips sit at the 0.5 rad clip going up stairs) reads the rms of the four."""

    class _Splay:
        def act(self, observation: np.ndarray) -> np.ndarray:
            action = np.zeros(12, np.float32)
            action[[0, 3, 6, 9]] = np.array([-0.4, 0.4, -0.2, 0.2]) / 0.5  # FR, FL, RR, RL outward
            return action

    flat = {"curriculum.adaptive": False, "curriculum.difficulty": 0.0}
    report = evaluate(_Splay(), env_factory("stairs_up", flat), episodes=1)
    expected = math.sqrt((0.4**2 + 0.4**2 + 0.2**2 + 0.2**2) / 4)  # 0.32 rad
    # The trunk's weight pushes splayed legs further out against the PD law (front hips ~0.45 rad).
    assert report.hip_abduction_rms_rad is not None
    assert expected < report.hip_abduction_rms_rad < 1.2 * expected  # measured 0.36
