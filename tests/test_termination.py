"""Termination decisions from base pose and contacts, on real flight geometry (no simulator needed)."""

from __future__ import annotations

import numpy as np
import pytest

from stairbot.envs.config import TerminationConfig
from stairbot.termination import FallKind, TerminationCheck, TerminationReason
from stairbot.terrain.stairs import Direction, StairSpec, plan_flight

NOMINAL_M = 0.30
LEVEL = np.array([0.0, 0.0, -1.0])


def check(flight, x, z, *, y=0.0, gravity=LEVEL, touching_base=False, touching_thigh=False, **cfg):
    """Reason for a base at (x, y, z) with `gravity` in the base frame; **cfg: TerminationConfig."""
    decide = TerminationCheck(TerminationConfig(**cfg), NOMINAL_M)
    return decide(flight, np.array([x, y, z]), gravity, touching_base, touching_thigh)


@pytest.mark.parametrize("direction", [Direction.UP, Direction.DOWN])
def test_base_height_is_measured_from_the_terrain_beneath(direction: Direction) -> None:
    flight = plan_flight(StairSpec(riser_m=0.15, num_steps=6, direction=direction))
    x = float((flight.edges_x_m[2] + flight.edges_x_m[3]) / 2)  # middle of a tread
    tread_z = float(flight.height_at(np.array([x]))[0])
    assert check(flight, x, tread_z + NOMINAL_M) is TerminationReason.NONE
    assert check(flight, x, tread_z + 0.05) is TerminationReason.FALL
    if direction is Direction.DOWN:
        # Measured from the spawn platform instead, this base would look far below it already.
        assert tread_z + NOMINAL_M < flight.spawn_height_m


def test_just_past_an_edge_going_up_is_not_a_fall() -> None:
    flight = plan_flight(StairSpec(riser_m=0.20, num_steps=6))
    x = float(flight.edges_x_m[1] + 0.05)  # base centre just over a step, rear legs still below
    lower_z = float(flight.height_at(np.array([flight.edges_x_m[1] - 0.1]))[0])
    assert check(flight, x, lower_z + NOMINAL_M) is TerminationReason.NONE


def test_tilt_contacts_bounds_and_success() -> None:
    flight = plan_flight(StairSpec(riser_m=0.1, num_steps=4, width_m=2.0))
    z = NOMINAL_M
    tilted = np.array([np.sin(1.2), 0.0, -np.cos(1.2)])  # 1.2 rad pitch
    assert check(flight, 0.0, z, gravity=tilted) is TerminationReason.FALL
    assert check(flight, 0.0, z, gravity=tilted, max_tilt_rad=1.3) is TerminationReason.NONE
    assert check(flight, 0.0, z, touching_base=True) is TerminationReason.BASE_CONTACT
    assert check(flight, 0.0, z, touching_base=True, base_contact=False) is TerminationReason.NONE
    assert check(flight, 0.0, z, touching_thigh=True) is TerminationReason.NONE
    assert check(flight, 0.0, z, touching_thigh=True, thigh_contact=True) is (TerminationReason.THIGH_CONTACT)
    assert check(flight, 0.0, z, y=1.05) is TerminationReason.OUT_OF_BOUNDS
    assert check(flight, -1.5, z) is TerminationReason.OUT_OF_BOUNDS
    top = flight.total_rise_m
    assert check(flight, flight.goal_x_m + 0.2, top + z) is TerminationReason.NONE
    assert check(flight, flight.goal_x_m + 0.5, top + z) is TerminationReason.SUCCESS
    assert check(flight, flight.end_x_m + 0.1, top + z) is TerminationReason.OUT_OF_BOUNDS


def test_reason_failure_flags() -> None:
    failures = {r for r in TerminationReason if r.is_failure}
    assert failures == {
        TerminationReason.FALL,
        TerminationReason.BASE_CONTACT,
        TerminationReason.THIGH_CONTACT,
        TerminationReason.OUT_OF_BOUNDS,
    }


@pytest.mark.parametrize(
    ("gravity", "kind"),
    [
        ([-np.sin(1.2), 0.0, -np.cos(1.2)], FallKind.BACKWARD),  # nose up 1.2 rad (gx = -sin(pitch))
        ([np.sin(1.2), 0.0, -np.cos(1.2)], FallKind.FORWARD),
        ([0.0, np.sin(1.2), -np.cos(1.2)], FallKind.SIDEWAYS),
        ([0.0, -np.sin(1.2), -np.cos(1.2)], FallKind.SIDEWAYS),
        # Nose up 0.95 rad on a 0.5 rad roll: 1.04 rad of tilt, mostly by pitch.
        ([-np.sin(0.95), np.cos(0.95) * np.sin(0.5), -np.cos(0.95) * np.cos(0.5)], FallKind.BACKWARD),
        ([-np.sin(0.5), 0.0, -np.cos(0.5)], FallKind.LOW),  # within the limit: the height ended it
    ],
)
def test_a_fall_says_which_way_the_base_tipped(gravity: list[float], kind: FallKind) -> None:
    decide = TerminationCheck(TerminationConfig(max_tilt_rad=1.0), NOMINAL_M)
    assert decide.fall_kind(np.array(gravity)) is kind
