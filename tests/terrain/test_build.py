"""Stair bodies in a real PyBullet DIRECT client: surfaces, re-placement, leaks, contact."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pybullet
import pybullet_data
import pytest
from pybullet_utils.bullet_client import BulletClient

from stairbot.errors import TerrainError
from stairbot.terrain import Direction, Flight, StairBodies, StairSpec, plan_flight
from stairbot.terrain.stairs import max_steps_that_fit

MAX_STEPS = 10
MAX_LENGTH_M = 8.0
WIDTH_M = 2.0
MAX_HEIGHT_M = 2.5


@pytest.fixture
def client() -> Iterator[BulletClient]:
    bullet = BulletClient(pybullet.DIRECT)
    bullet.setAdditionalSearchPath(pybullet_data.getDataPath())
    bullet.setGravity(0, 0, -9.81)
    bullet.loadURDF("plane.urdf")
    yield bullet
    bullet.disconnect()


def make_bodies(client: BulletClient, nosing_m: float = 0.0, **kwargs: float) -> StairBodies:
    return StairBodies(
        client,
        max_steps=MAX_STEPS,
        width_m=WIDTH_M,
        nosing_m=nosing_m,
        max_length_m=MAX_LENGTH_M,
        max_height_m=MAX_HEIGHT_M,
        **kwargs,
    )


def ray_heights(
    client: BulletClient, x: Sequence[float] | np.ndarray, y: float | np.ndarray = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Cast rays straight down from z = 10 at (x, y); return hit heights and hit body ids."""
    x = np.asarray(x, dtype=float)
    y = np.broadcast_to(np.asarray(y, dtype=float), x.shape)
    starts = np.stack([x, y, np.full_like(x, 10.0)], axis=1)
    ends = np.stack([x, y, np.full_like(x, -10.0)], axis=1)
    heights, bodies = [], []
    for i in range(0, len(x), 1000):  # rayTestBatch takes at most MAX_RAY_INTERSECTION_BATCH_SIZE
        for hit in client.rayTestBatch(starts[i : i + 1000].tolist(), ends[i : i + 1000].tolist()):
            bodies.append(hit[0])
            heights.append(hit[3][2] if hit[0] >= 0 else np.nan)
    return np.array(heights), np.array(bodies)


def probe_points(flight: Flight) -> tuple[np.ndarray, np.ndarray]:
    """x of: before the first edge (at spawn and just before edge 0), each tread middle, the
    final landing middle; and the expected heights there from the region table."""
    edges = flight.edges_x_m
    middles = edges[:-1] + flight.treads_m / 2
    x = np.concatenate([[0.0, edges[0] - 0.1], middles, [flight.goal_x_m + flight.spec.landing_m / 2]])
    tops = flight.top_heights_m
    return x, np.concatenate([[tops[0], tops[0]], tops[1:]])


def away_from_box_ends(flight: Flight, xs: np.ndarray) -> np.ndarray:
    """Mask of the x more than 1 mm from any box's x end (where a ray may hit either side)."""
    ends = np.concatenate([flight.tread_boxes_m[:, :2], flight.nosing_boxes_m[:, :2]], None)
    if ends.size == 0:
        return np.ones(xs.shape, dtype=bool)
    return np.min(np.abs(xs[:, None] - ends[None, :]), axis=1) > 1e-3


@pytest.mark.parametrize("nosing_m", [0.0, 0.03])
@pytest.mark.parametrize("direction", list(Direction))
def test_tread_tops_at_cumulative_riser_heights(
    client: BulletClient, direction: Direction, nosing_m: float
) -> None:
    bodies = make_bodies(client, nosing_m=nosing_m)
    spec = StairSpec(riser_m=0.12, tread_m=0.35, num_steps=7, nosing_m=nosing_m, direction=direction)
    flight = plan_flight(spec)
    bodies.place(flight)
    x, expected = probe_points(flight)
    cumulative = 0.12 * (np.arange(1, 8) if direction is Direction.UP else np.arange(6, -1, -1))
    np.testing.assert_allclose(expected[2:-1], cumulative[:-1])  # the table is what we think
    heights, hit_bodies = ray_heights(client, x)
    np.testing.assert_allclose(heights, expected, atol=1e-3)
    assert set(hit_bodies[expected > 0]) <= set(bodies.body_ids)
    # And height_at agrees with the rays everywhere in the arena, across the width and beyond it.
    rng = np.random.default_rng(1)
    xs = rng.uniform(-1.0, MAX_LENGTH_M, 2000)
    ys = rng.uniform(-WIDTH_M, WIDTH_M, 2000)
    away = away_from_box_ends(flight, xs) & (np.abs(np.abs(ys) - WIDTH_M / 2) > 1e-3)
    heights, _ = ray_heights(client, xs[away], ys[away])
    np.testing.assert_allclose(heights, flight.height_at(xs[away], ys[away], include_nosing=True), atol=1e-3)
    assert np.count_nonzero(away) > 1500


@pytest.mark.parametrize("nosing_m", [0.0, 0.03])
@pytest.mark.parametrize("direction", list(Direction))
def test_jittered_flight_matches_rays(client: BulletClient, direction: Direction, nosing_m: float) -> None:
    """Per-step risers and treads: the boxes still form exactly what height_at says."""
    spec = StairSpec(
        riser_m=0.15,
        tread_m=0.3,
        num_steps=MAX_STEPS,
        nosing_m=nosing_m,
        direction=direction,
        riser_jitter_m=0.05,
        tread_jitter_m=0.1,
        max_length_m=MAX_LENGTH_M,
    )
    bodies = StairBodies.for_spec(client, spec)
    assert bodies.max_height_m == pytest.approx(MAX_STEPS * 0.2)  # room for the tallest risers
    rng = np.random.default_rng(11)
    for _ in range(3):
        flight = plan_flight(spec, rng=rng)
        assert flight.jittered and np.ptp(flight.risers_m) > 0.02 and np.ptp(flight.treads_m) > 0.02
        bodies.place(flight)
        x, expected = probe_points(flight)
        heights, _ = ray_heights(client, x)
        np.testing.assert_allclose(heights, expected, atol=1e-3)
        xs = rng.uniform(-1.0, MAX_LENGTH_M, 1500)
        ys = rng.uniform(-WIDTH_M, WIDTH_M, 1500)
        away = away_from_box_ends(flight, xs) & (np.abs(np.abs(ys) - WIDTH_M / 2) > 1e-3)
        heights, _ = ray_heights(client, xs[away], ys[away])
        np.testing.assert_allclose(
            heights, flight.height_at(xs[away], ys[away], include_nosing=True), atol=1e-3
        )


@pytest.mark.parametrize("direction", list(Direction))
def test_nosing_overhangs_the_riser_below(client: BulletClient, direction: Direction) -> None:
    bodies = make_bodies(client, nosing_m=0.04)
    flight = plan_flight(StairSpec(riser_m=0.1, num_steps=3, nosing_m=0.04, direction=direction))
    bodies.place(flight)
    sign = -1.0 if direction is Direction.UP else 1.0
    x = flight.edges_x_m + sign * 0.02  # inside the overhang
    heights, hit_bodies = ray_heights(client, x)
    higher = flight.top_heights_m[1:] if direction is Direction.UP else flight.top_heights_m[:-1]
    np.testing.assert_allclose(heights, higher, atol=1e-3)
    assert set(hit_bodies) <= set(bodies.nosing_body_ids)
    np.testing.assert_allclose(flight.height_at(x, include_nosing=True), higher)


@pytest.mark.parametrize("direction", list(Direction))
def test_flat_flight_leaves_only_the_ground(client: BulletClient, direction: Direction) -> None:
    bodies = make_bodies(client, nosing_m=0.02)
    bodies.place(plan_flight(StairSpec(direction=direction, nosing_m=0.02)))
    flight = plan_flight(StairSpec(direction=direction, nosing_m=0.02), riser_m=0.0)
    bodies.place(flight)
    x = np.linspace(-3.0, MAX_LENGTH_M, 200)
    heights, hit_bodies = ray_heights(client, x)
    np.testing.assert_allclose(heights, 0.0, atol=1e-3)
    assert not set(hit_bodies) & set(bodies.body_ids)
    np.testing.assert_allclose(flight.height_at(x), 0.0)
    for body in bodies.body_ids:  # parked far below the ground
        (_, _, z), _ = client.getBasePositionAndOrientation(body)
        assert z < -100.0


def test_replacing_moves_surfaces(client: BulletClient) -> None:
    bodies = make_bodies(client)
    first = plan_flight(StairSpec(riser_m=0.2, tread_m=0.5, num_steps=10, landing_m=0.5))
    second = plan_flight(StairSpec(riser_m=0.08, tread_m=0.25, num_steps=3, direction="down"))  # type: ignore[arg-type]
    third = plan_flight(StairSpec(riser_m=0.15, tread_m=0.3, num_steps=5))
    for flight in (first, second, third, first):
        bodies.place(flight)
        x, expected = probe_points(flight)
        heights, _ = ray_heights(client, x)
        np.testing.assert_allclose(heights, expected, atol=1e-3)
        xs = np.linspace(-1.0, MAX_LENGTH_M, 1000)
        xs = xs[away_from_box_ends(flight, xs)]
        heights, _ = ray_heights(client, xs)
        np.testing.assert_allclose(heights, flight.height_at(xs), atol=1e-3)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _random_flight(rng: np.random.Generator, nosing_m: float) -> Flight:
    tread = float(rng.uniform(0.15, 1.0))
    most = min(MAX_STEPS, max_steps_that_fit(tread, 0.6, 1.0, MAX_LENGTH_M))
    spec = StairSpec(
        riser_m=0.2,
        tread_m=tread,
        num_steps=int(rng.integers(1, most + 1)),
        nosing_m=nosing_m,
        direction=Direction.UP if rng.random() < 0.5 else Direction.DOWN,
    )
    riser = 0.0 if rng.random() < 0.1 else float(rng.uniform(0.01, MAX_HEIGHT_M / MAX_STEPS))
    return plan_flight(spec, riser_m=riser)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_many_placements_do_not_leak(client: BulletClient) -> None:
    bodies = make_bodies(client, nosing_m=0.02)
    rng = np.random.default_rng(7)
    flights = [_random_flight(rng, 0.02) for _ in range(100)]
    for flight in flights:  # warm up allocator and caches
        bodies.place(flight)
        client.stepSimulation()
    num_bodies = client.getNumBodies()
    rss_before = _rss_bytes()
    for i in range(1000):
        bodies.place(flights[i % len(flights)])
        if i % 10 == 0:
            client.stepSimulation()
    assert client.getNumBodies() == num_bodies
    growth = _rss_bytes() - rss_before
    assert growth < 5 * 2**20, f"RSS grew by {growth / 2**20:.1f} MB over 1000 placements"


def test_bodies_fixed_at_construction(client: BulletClient) -> None:
    bodies = make_bodies(client, nosing_m=0.02)
    assert len(bodies.body_ids) == 2 * MAX_STEPS == len(set(bodies.body_ids))
    assert len(make_bodies(client).body_ids) == MAX_STEPS
    cases = [
        (StairSpec(nosing_m=0.03), "nosing_m is fixed"),
        (StairSpec(nosing_m=0.02, width_m=3.0), "width_m is fixed"),
        (StairSpec(nosing_m=0.02, max_length_m=9.0), "max_length_m is fixed"),
        (StairSpec(nosing_m=0.02, num_steps=11), r"num_steps must be <= 10"),
        (StairSpec(nosing_m=0.02, num_steps=10, riser_m=0.3), r"must be <= 2\.5 m"),
    ]
    for spec, message in cases:
        with pytest.raises(TerrainError, match=message):
            bodies.place(plan_flight(spec))
    with pytest.raises(TerrainError, match="max_steps must be an integer >= 1"):
        StairBodies(client, 0, WIDTH_M, 0.0, MAX_LENGTH_M, MAX_HEIGHT_M)


def test_friction_is_set_on_every_box(client: BulletClient) -> None:
    bodies = make_bodies(client, nosing_m=0.02, friction=0.7)
    for body in bodies.body_ids:
        assert client.getDynamicsInfo(body, -1)[1] == pytest.approx(0.7)
        assert client.getDynamicsInfo(body, -1)[0] == 0.0  # static
    bodies.set_friction(0.4)
    assert client.getDynamicsInfo(bodies.body_ids[-1], -1)[1] == pytest.approx(0.4)


def test_for_spec_sizes_from_the_spec(client: BulletClient) -> None:
    spec = StairSpec(riser_m=0.1, num_steps=4, nosing_m=0.02, width_m=1.5)
    bodies = StairBodies.for_spec(client, spec, max_riser_m=0.25)
    assert bodies.max_height_m == pytest.approx(1.0)
    bodies.place(plan_flight(spec, riser_m=0.25))
    jittered = StairSpec(riser_m=0.1, num_steps=4, riser_jitter_m=0.1)
    assert StairBodies.for_spec(client, jittered, max_riser_m=0.25).max_height_m == pytest.approx(1.2)
    assert StairBodies.for_spec(client, jittered).max_height_m == pytest.approx(0.8)


@pytest.mark.parametrize(("direction", "nosing_m"), [(Direction.UP, 0.0), (Direction.DOWN, 0.03)])
def test_dropped_box_rests_on_the_tread(client: BulletClient, direction: Direction, nosing_m: float) -> None:
    """Contact geometry matches the visuals: a box dropped on a tread comes to rest on it."""
    bodies = make_bodies(client, nosing_m=nosing_m)
    flight = plan_flight(
        StairSpec(riser_m=0.17, tread_m=0.4, num_steps=5, nosing_m=nosing_m, direction=direction)
    )
    bodies.place(flight)
    x = float(flight.edges_x_m[2] + flight.tread_m / 2)
    tread_z = float(flight.height_at(x))
    half = (0.1, 0.1, 0.05)
    shape = client.createCollisionShape(client.GEOM_BOX, halfExtents=half)
    probe = client.createMultiBody(1.0, shape, -1, [x, 0.3, tread_z + half[2] + 0.05])
    for _ in range(240):
        client.stepSimulation()
    (px, _, pz), _ = client.getBasePositionAndOrientation(probe)
    velocity, _ = client.getBaseVelocity(probe)
    assert abs(pz - (tread_z + half[2])) < 2e-3
    assert abs(px - x) < 1e-2
    assert np.linalg.norm(velocity) < 1e-2
