"""`foot_edge`: feet in contact near a stair edge, from real PyBullet footholds."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

from stairbot.rewards import FOOT_EDGE_MARGIN_M
from stairbot.terrain.stairs import StairSpec, plan_flight


def test_distance_to_edge_is_to_the_nearest_riser_plane() -> None:
    flight = plan_flight(StairSpec(num_steps=3, tread_m=0.30, start_m=0.6), riser_m=0.10)
    assert flight.edges_x_m.tolist() == pytest.approx([0.6, 0.9, 1.2])
    x = np.array([[0.0, 0.58, 0.61], [0.75, 0.89, 2.0]])
    np.testing.assert_allclose(flight.distance_to_edge_m(x), [[0.6, 0.02, 0.01], [0.15, 0.01, 0.8]])


def _stand_with_front_feet_at(env: gym.Env, foot_x_m: float) -> dict:
    """Stand the robot level on the ground, front feet at x = foot_x_m, and step 0.1 s (zero action)."""
    base = env.unwrapped
    world = base.world
    spec = base.robot_spec
    world.reset_robot(np.array([0.0, 0.0, spec.nominal_base_height_m + 0.005]), 0.0, spec.default_pose_rad)
    front_offset = world.foot_positions()[:2, 0].mean()  # FR, FL: ahead of the base
    world.reset_robot(
        np.array([foot_x_m - front_offset, 0.0, spec.nominal_base_height_m + 0.005]),
        0.0,
        spec.default_pose_rad,
    )
    base._state = world.read_state()
    for _ in range(5):
        _, _, terminated, _, info = env.step(np.zeros(12, np.float32))
        assert not terminated
    return info


def test_the_term_counts_the_feet_in_contact_near_an_edge() -> None:
    env = gym.make("stairbot/StairClimb-v0", riser_m=0.10, overrides={"rewards.foot_edge": -0.5})
    env.reset(seed=0)
    world, flight = env.unwrapped.world, env.unwrapped.flight
    riser_x = float(flight.edges_x_m[0])
    # Front feet 3 cm before the first riser (toes 1 cm from its face), hind feet ~0.4 m behind.
    info = _stand_with_front_feet_at(env, riser_x - 0.03)
    distance = flight.distance_to_edge_m(world.foot_positions()[:, 0])
    assert (distance[:2] < FOOT_EDGE_MARGIN_M).all() and (distance[2:] > 0.3).all(), distance
    assert world.contacts().foot_contact.all()
    assert info["reward_terms"]["foot_edge"] == pytest.approx(-0.5 * 2)
    # The same stance 0.2 m further back: no foot near an edge, nothing charged.
    info = _stand_with_front_feet_at(env, riser_x - 0.2)
    assert info["reward_terms"]["foot_edge"] == 0.0
    env.close()


def test_the_touchdown_term_charges_each_landing_near_an_edge_once() -> None:
    """Dropped 2 cm onto the ground, front feet 3 cm before a riser: each front foot is charged on
    the step it lands, and not again while it stands there (`foot_edge` would charge every step)."""
    weights = {"rewards.foothold_edge": -1.0, "rewards.foot_edge": -0.5}
    env = gym.make("stairbot/StairClimb-v0", riser_m=0.10, overrides=weights)
    env.reset(seed=0)
    flight = env.unwrapped.flight
    riser_x = float(flight.edges_x_m[0])
    charged, per_step = _drop_with_front_feet_at(env, riser_x - 0.03, drop_m=0.02)
    assert sum(charged) == pytest.approx(-1.0 * 2), charged
    assert charged[-5:] == [0.0] * 5  # standing still: no new touchdowns
    assert per_step[-5:] == [pytest.approx(-0.5 * 2)] * 5  # still on the edge, charged every step
    charged, _ = _drop_with_front_feet_at(env, riser_x - 0.2, drop_m=0.02)
    assert charged == [0.0] * len(charged)
    env.close()


def _drop_with_front_feet_at(env: gym.Env, foot_x_m: float, drop_m: float) -> tuple[list, list]:
    """Hold the robot level, front feet at x = foot_x_m, `drop_m` above its standing height, let it
    land and stand for 0.4 s (zero action). Returns the weighted `foothold_edge` and `foot_edge` of
    each step."""
    base = env.unwrapped
    world, spec = base.world, base.robot_spec
    height = spec.nominal_base_height_m + 0.005
    world.reset_robot(np.array([0.0, 0.0, height]), 0.0, spec.default_pose_rad)
    front_offset = world.foot_positions()[:2, 0].mean()
    world.reset_robot(np.array([foot_x_m - front_offset, 0.0, height + drop_m]), 0.0, spec.default_pose_rad)
    base._state = world.read_state()
    touchdowns, on_edges, contact, landing = [], [], [], []
    for _ in range(20):
        _, _, terminated, _, info = env.step(np.zeros(12, np.float32))
        assert not terminated
        touchdowns.append(info["reward_terms"]["foothold_edge"])
        on_edges.append(info["reward_terms"]["foot_edge"])
        contact.append(world.contacts().foot_contact)
        landing.append(base.feet_touching_down)
    # Every foot really landed: in the air after the first step, on the ground at the end, and the
    # env reports each landing on the step its contact began.
    assert not contact[0].any() and contact[-1].all(), contact
    began = [contact[0], *(now & ~before for before, now in itertools.pairwise(contact))]
    np.testing.assert_array_equal(landing, began)
    return touchdowns, on_edges


def test_front_feet_airborne_charges_the_steps_without_a_front_foot_down() -> None:
    """The front feet are found from the robot's geometry (stairdog: FR, FL ahead of the base). A
    robot that stands, then folds its front legs (thigh and calf actions at -1) while its hind feet
    stay down, is charged exactly on the steps neither front foot touches the ground."""
    env = gym.make("stairbot/StairClimb-v0", riser_m=0.10, overrides={"rewards.front_feet_airborne": -1.0})
    env.reset(seed=0)
    base = env.unwrapped
    np.testing.assert_array_equal(base._front_feet, [True, True, False, False])
    world = base.world
    stand, fold = np.zeros(12, np.float32), np.zeros(12, np.float32)
    fold[[1, 2, 4, 5]] = -1.0  # FR, FL thigh and calf
    charged, contact = [], []
    for action in [stand] * 15 + [fold] * 10:
        _, _, terminated, _, info = env.step(action)
        assert not terminated
        charged.append(info["reward_terms"]["front_feet_airborne"])
        contact.append(world.contacts().foot_contact)
    assert all(feet.all() for feet in contact[10:15])  # standing on all four
    front_up_hind_down = [not feet[:2].any() and feet[2:].all() for feet in contact[15:]]
    assert sum(front_up_hind_down) >= 5, contact[15:]
    assert charged == [0.0 if feet[:2].any() else -1.0 for feet in contact]
    env.close()
