"""Base clearance over the step profile: hand-computed cases, and PyBullet's own contact as referee."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from stairbot.rewards import BASE_CLEARANCE_MARGIN_M
from stairbot.robots.spec import available_robots
from stairbot.terrain.clearance import BaseBox, base_clearance_m
from stairbot.terrain.stairs import Direction, Flight, StairSpec, plan_flight

# stairdog's trunk: 0.38 x 0.19 x 0.11 m, centred on the base frame.
TRUNK = BaseBox(np.array([0.19, 0.095, 0.055]), np.zeros(3))


def pitch_nose_up(angle_rad: float) -> np.ndarray:
    """Base-to-world rotation of a base pitched nose-up by `angle_rad` (a rotation of -angle about y)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])


def dense_clearance_m(flight: Flight, box: BaseBox, pos: np.ndarray, rotation: np.ndarray) -> float:
    """Reference: the gap sampled at 4001 points along each bottom edge (1e-4 m apart)."""
    t = np.linspace(0.0, 1.0, 4001)[:, None]
    gaps = []
    for rear, front in box.bottom_edges_m() @ rotation.T + pos:
        xyz = rear + t * (front - rear)
        gaps.append(xyz[:, 2] - flight.height_at(xyz[:, 0], xyz[:, 1]))
    return float(np.min(gaps))


def test_level_base_over_flat_ground_is_its_underside_height() -> None:
    flight = plan_flight(StairSpec(riser_m=0.15, tread_m=0.32))
    pos = np.array([0.2, 0.0, 0.30])  # the trunk spans x 0.01-0.39 m, before the first riser (0.6 m)
    assert base_clearance_m(flight, TRUNK, pos, np.eye(3)) == pytest.approx(0.30 - 0.055)


def test_a_level_trunk_overhanging_the_next_riser_is_measured_against_the_tread_above() -> None:
    flight = plan_flight(StairSpec(riser_m=0.15, tread_m=0.25))
    tops = flight.top_heights_m  # [1]: before riser 1, [2]: between risers 1 and 2, [3]: after riser 2
    x = float(flight.edges_x_m[1]) + 0.10  # the trunk's rear 0.09 m before riser 1, front 0.04 m past riser 2
    for z in (0.55, 0.45):
        underside = z - 0.055
        expected = min(underside - tops[1], underside - tops[2], underside - tops[3])
        assert expected == pytest.approx(underside - tops[3])  # the tread above sets it
        assert base_clearance_m(flight, TRUNK, np.array([x, 0.0, z]), np.eye(3)) == pytest.approx(expected)


def test_going_down_the_rear_edge_is_measured_against_the_tread_behind() -> None:
    flight = plan_flight(StairSpec(riser_m=0.15, tread_m=0.25, direction=Direction.DOWN))
    edge = float(flight.edges_x_m[2])
    behind = float(flight.height_at(np.array([edge - 0.01]))[0])
    assert float(flight.height_at(np.array([edge + 0.01]))[0]) == pytest.approx(behind - 0.15)
    pos = np.array([edge + 0.15, 0.0, behind - 0.15 + 0.25])  # rear edge 0.04 m back over the tread behind
    assert base_clearance_m(flight, TRUNK, pos, np.eye(3)) == pytest.approx(0.25 - 0.055 - 0.15)


@pytest.mark.parametrize("direction", [Direction.UP, Direction.DOWN])
@pytest.mark.parametrize("pitch_deg", [-25.0, -10.0, 0.0, 10.0, 25.0])
def test_the_exact_minimum_matches_a_dense_sampling_of_the_bottom_edges(
    direction: Direction, pitch_deg: float
) -> None:
    flight = plan_flight(StairSpec(riser_m=0.15, tread_m=0.25, direction=direction))
    rotation = pitch_nose_up(math.radians(pitch_deg))
    for x in np.linspace(float(flight.edges_x_m[0]) - 0.3, float(flight.edges_x_m[-1]) + 0.3, 23):
        z = float(flight.height_at(np.array([x]))[0]) + 0.25
        pos = np.array([x, 0.0, z])
        exact = base_clearance_m(flight, TRUNK, pos, rotation)
        assert exact == pytest.approx(dense_clearance_m(flight, TRUNK, pos, rotation), abs=2e-4)


def test_pitching_with_the_stairs_gains_clearance_over_a_level_trunk() -> None:
    flight = plan_flight(StairSpec(riser_m=0.15, tread_m=0.25))
    # Centred over the middle of a tread, 0.24 m above it: the level trunk's front overhangs the riser
    # ahead by 6.5 cm with its underside 3.5 cm above the next tread.
    pos = np.array([float(flight.edges_x_m[1]) + 0.125, 0.0, float(flight.top_heights_m[2]) + 0.24])
    level = base_clearance_m(flight, TRUNK, pos, np.eye(3))
    with_the_stairs = base_clearance_m(flight, TRUNK, pos, pitch_nose_up(math.atan2(0.15, 0.25)))
    assert level < 0.05 < with_the_stairs


def test_pybullet_reports_base_contact_exactly_when_the_clearance_reaches_zero() -> None:
    """Lower the real stairdog, level, onto the nosing ahead: PyBullet's contact and the clearance
    agree to within its contact margin."""
    env = gym.make("stairbot/StairClimb-v0", riser_m=0.15, overrides={"stairs.tread_m": 0.25})
    env.reset(seed=0)
    base = env.unwrapped
    world, flight = base.world, base.flight
    assert np.allclose(world.base_box.half_extents_m, TRUNK.half_extents_m)
    x = float(flight.edges_x_m[2]) - 0.15  # the trunk's front 4 cm past riser 2
    top = float(flight.top_heights_m[3])
    readings = []
    for gap_m in (0.02, 0.005, -0.005):
        z = top + 0.055 + gap_m
        world.client.resetBasePositionAndOrientation(world.robot_id, [x, 0.0, z], [0, 0, 0, 1])
        world.client.performCollisionDetection()
        state = world.read_state()
        clearance = base_clearance_m(flight, world.base_box, state.base_pos_m, state.rotation)
        readings.append((clearance, world.contacts().base_contact))
    assert [c for c, _ in readings] == pytest.approx([0.02, 0.005, -0.005], abs=1e-9)
    assert [touching for _, touching in readings] == [False, False, True]
    env.close()


@pytest.mark.parametrize(
    ("margin_m", "gap_m"),
    [
        (None, 0.02),  # the default margin, 5 cm
        (0.10, 0.07),  # above the default margin, within a 10 cm one: charged only through the config
    ],
)
def test_the_env_reports_the_clearance_and_charges_the_deficit_below_the_margin(
    margin_m: float | None, gap_m: float
) -> None:
    overrides: dict[str, object] = {"stairs.tread_m": 0.25, "rewards.base_clearance_deficit": -20.0}
    if margin_m is not None:
        overrides["reward_params.base_clearance_margin_m"] = margin_m
    expected_margin_m = BASE_CLEARANCE_MARGIN_M if margin_m is None else margin_m
    env = gym.make("stairbot/StairClimb-v0", riser_m=0.15, overrides=overrides)
    env.reset(seed=0)
    base = env.unwrapped
    world, flight = base.world, base.flight
    x = float(flight.edges_x_m[2]) - 0.15
    z = float(flight.top_heights_m[3]) + 0.055 + gap_m  # gap_m above the nosing ahead
    world.client.resetBasePositionAndOrientation(world.robot_id, [x, 0.0, z], [0, 0, 0, 1])
    base._state = world.read_state()
    _, _, _, _, info = env.step(np.zeros(12, np.float32))  # 20 ms: the base sinks a little
    clearance = info["base_clearance_m"]
    lowest_m = 0.0 if margin_m is None else BASE_CLEARANCE_MARGIN_M
    assert lowest_m < clearance < expected_margin_m
    assert info["reward_terms"]["base_clearance_deficit"] == pytest.approx(
        -20.0 * (expected_margin_m - clearance)
    )
    env.close()


@pytest.mark.parametrize("robot", available_robots())
def test_every_robots_base_box_holds_its_base_collision_shapes(robot: str) -> None:
    """stairdog and A1 have a box trunk (taken as is); Laikago's chassis is a mesh (its bounding box)."""
    env = gym.make("stairbot/StairClimb-v0", robot=robot)
    env.reset(seed=0)
    world = env.unwrapped.world
    box = world.base_box
    assert np.all(box.half_extents_m > 0.02)
    state = world.read_state()
    low, high = (np.asarray(v) for v in world.client.getAABB(world.robot_id, -1))
    corners = box.bottom_edges_m().reshape(-1, 3) @ state.rotation.T + state.base_pos_m
    # The box's bottom corners lie within the base's world AABB grown by the box's own tilt (~1 cm).
    assert np.all(corners[:, :2] > low[:2] - 0.02) and np.all(corners[:, :2] < high[:2] + 0.02)
    assert corners[:, 2].min() == pytest.approx(low[2], abs=0.02)
    env.close()


def test_without_the_term_the_clearance_is_neither_worked_out_nor_reported() -> None:
    env = gym.make("stairbot/StairClimb-v0", riser_m=0.15)
    env.reset(seed=0)
    assert "base_clearance_deficit" not in env.unwrapped.rewards.names
    _, _, _, _, info = env.step(np.zeros(12, np.float32))
    assert "base_clearance_m" not in info and "base_clearance_deficit" not in info["reward_terms"]
    env.close()
