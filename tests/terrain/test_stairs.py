"""Stair spec validation and flight geometry (numpy only, no simulator)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from stairbot.config import load_dataclass
from stairbot.errors import ConfigError, TerrainError
from stairbot.terrain.stairs import (
    BOX_MARGIN_M,
    MAX_RISER_M,
    Direction,
    Flight,
    StairSpec,
    max_steps_that_fit,
    plan_flight,
    riser_for_difficulty,
)


def test_defaults_are_valid() -> None:
    spec = StairSpec()
    assert spec.direction is Direction.UP
    assert spec.total_rise_m == pytest.approx(0.6)
    assert spec.length_m == pytest.approx(0.6 + 5 * 0.3 + 1.0)


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"riser_m": 0.0}, "riser_m", "(0, 0.3] m"),
        ({"riser_m": -0.1}, "riser_m", "(0, 0.3] m"),
        ({"riser_m": 0.31}, "riser_m", "(0, 0.3] m"),
        ({"tread_m": 0.09}, "tread_m", "[0.1, 1] m"),
        ({"width_m": 0.4}, "width_m", "[0.5, 10] m"),
        ({"landing_m": 6.0}, "landing_m", "[0.5, 5] m"),
        ({"start_m": 0.1}, "start_m", "[0.3, 5] m"),
        ({"nosing_m": -0.01}, "nosing_m", "[0, 0.05] m"),
        ({"nosing_m": 0.06}, "nosing_m", "[0, 0.05] m"),
        ({"nosing_m": 0.05, "tread_m": 0.1}, "nosing_m", "< tread_m / 2 = 0.05 m"),
        ({"num_steps": 0}, "num_steps", "[1, 22]"),
        ({"direction": "sideways"}, "direction", "['up', 'down']"),
    ],
)
def test_bad_spec_names_field_and_range(kwargs: dict, field: str, allowed: str) -> None:
    with pytest.raises(TerrainError) as info:
        StairSpec(**kwargs)
    message = str(info.value)
    assert message.startswith(field), message
    assert allowed in message, message


def test_riser_error_message_format() -> None:
    with pytest.raises(TerrainError, match=r"^riser_m must be in \(0, 0\.3\] m, got -0\.1$"):
        StairSpec(riser_m=-0.1)


def test_too_many_steps_says_how_many_fit() -> None:
    # start 0.6 + (n - 1) * 0.3 + landing 1.0 <= 8.0  ->  n <= 22
    assert max_steps_that_fit(0.3, 0.6, 1.0, 8.0) == 22
    StairSpec(num_steps=22)
    with pytest.raises(TerrainError) as info:
        StairSpec(num_steps=23)
    message = str(info.value)
    assert message.startswith("num_steps must be in [1, 22]")
    assert "tread_m = 0.3 m" in message and "max_length_m = 8 m" in message
    # A longer tread fits fewer steps, and the message follows it.
    with pytest.raises(TerrainError, match=r"num_steps must be in \[1, 8\] for tread_m = 0\.9"):
        StairSpec(num_steps=9, tread_m=0.9)


def test_arena_too_short_for_one_step() -> None:
    with pytest.raises(TerrainError, match=r"^max_length_m must be >= start_m \+ landing_m"):
        StairSpec(num_steps=1, start_m=2.0, landing_m=2.0, max_length_m=3.0)


def test_terrain_error_is_a_config_error_and_loader_prefixes_section() -> None:
    assert issubclass(TerrainError, ConfigError)
    spec = load_dataclass(StairSpec, {"riser_m": 0.15, "direction": "down"})
    assert spec.direction is Direction.DOWN and spec.riser_m == 0.15
    with pytest.raises(ConfigError, match=r"^stairs\.tread_m must be in \[0\.1, 1\] m"):
        load_dataclass(StairSpec, {"tread_m": 0.05}, "stairs.")


def test_direction_string_and_numpy_scalars_are_converted() -> None:
    assert StairSpec(direction="down").direction is Direction.DOWN  # type: ignore[arg-type]
    spec = StairSpec(num_steps=np.int64(3), riser_m=np.float32(0.125))  # type: ignore[arg-type]
    assert type(spec.num_steps) is int and type(spec.riser_m) is float
    assert spec == StairSpec(num_steps=3, riser_m=0.125)
    for bad in (True, 2.0, "3"):
        with pytest.raises(TerrainError, match=r"^num_steps must be an integer"):
            StairSpec(num_steps=bad)  # type: ignore[arg-type]
    with pytest.raises(TerrainError, match=r"^tread_m must be a finite number"):
        StairSpec(tread_m=float("nan"))


def test_riser_for_difficulty() -> None:
    assert riser_for_difficulty(0.0) == 0.0
    assert riser_for_difficulty(1.0) == pytest.approx(0.20)
    assert riser_for_difficulty(0.5, max_riser_m=0.3) == pytest.approx(0.15)
    for bad in (-0.01, 1.01):
        with pytest.raises(TerrainError, match=r"^difficulty must be in \[0, 1\]"):
            riser_for_difficulty(bad)
    with pytest.raises(TerrainError, match=r"^max_riser_m must be in \(0, 0\.3\] m"):
        riser_for_difficulty(0.5, max_riser_m=0.35)


def test_up_flight_geometry() -> None:
    spec = StairSpec(riser_m=0.1, tread_m=0.3, num_steps=4, start_m=0.6, landing_m=1.0)
    flight = plan_flight(spec)
    np.testing.assert_allclose(flight.edges_x_m, [0.6, 0.9, 1.2, 1.5])
    np.testing.assert_allclose(flight.top_heights_m, [0.0, 0.1, 0.2, 0.3, 0.4])
    assert flight.spawn_height_m == 0.0
    assert flight.goal_x_m == pytest.approx(1.5)
    assert flight.end_x_m == pytest.approx(2.5)
    assert flight.tread_boxes_m.shape == (4, 3)
    assert flight.nosing_boxes_m.shape == (0, 3)
    # Region heights: before edge 0, each tread middle, the landing.
    xs = [0.0, 0.75, 1.05, 1.35, 2.0, spec.max_length_m]
    np.testing.assert_allclose(flight.height_at(xs), [0.0, 0.1, 0.2, 0.3, 0.4, 0.4])
    # Half-open regions: exactly at an edge you are on the next tread.
    np.testing.assert_allclose(flight.height_at(flight.edges_x_m), [0.1, 0.2, 0.3, 0.4])
    # The top landing stays flat past the arena, then drops to the ground.
    end_of_landing = flight.goal_x_m + spec.max_length_m + BOX_MARGIN_M
    np.testing.assert_allclose(flight.height_at([end_of_landing - 0.01, end_of_landing]), [0.4, 0])


def test_down_flight_geometry() -> None:
    spec = StairSpec(riser_m=0.15, num_steps=3, direction=Direction.DOWN, start_m=1.0)
    flight = plan_flight(spec)
    np.testing.assert_allclose(flight.edges_x_m, [1.0, 1.3, 1.6])
    np.testing.assert_allclose(flight.top_heights_m, [0.45, 0.3, 0.15, 0.0])
    assert flight.spawn_height_m == pytest.approx(0.45)
    xs = [-BOX_MARGIN_M + 0.01, 0.0, 1.15, 1.45, 1.75, 5.0]
    np.testing.assert_allclose(flight.height_at(xs), [0.45, 0.45, 0.3, 0.15, 0.0, 0.0])
    # The start platform reaches at least BOX_MARGIN_M behind the spawn point.
    platform_x_min = flight.tread_boxes_m[0, 0]
    assert platform_x_min <= -BOX_MARGIN_M
    assert flight.height_at(platform_x_min - 0.01) == 0.0


@pytest.mark.parametrize("direction", list(Direction))
def test_height_at_matches_region_table(direction: Direction) -> None:
    """The box union (what the simulator sees) equals the region table inside the arena."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        tread = rng.uniform(0.1, 1.0)
        spec = StairSpec(
            riser_m=rng.uniform(0.01, MAX_RISER_M),
            tread_m=tread,
            num_steps=int(rng.integers(1, max_steps_that_fit(tread, 0.6, 1.0, 8.0) + 1)),
            nosing_m=rng.uniform(0, min(0.05, tread / 2 - 1e-6)),
            direction=direction,
        )
        flight = plan_flight(spec)
        x = rng.uniform(0.0, spec.max_length_m, 500)
        expected = flight.top_heights_m[flight.steps_crossed(x)]
        np.testing.assert_allclose(flight.height_at(x), expected, atol=1e-12)


def test_nosing_boxes() -> None:
    up = plan_flight(StairSpec(riser_m=0.1, num_steps=2, nosing_m=0.03))
    np.testing.assert_allclose(up.nosing_boxes_m, [[0.57, 0.6, 0.1], [0.87, 0.9, 0.2]])
    assert up.height_at(0.58) == 0.0
    assert up.height_at(0.58, include_nosing=True) == pytest.approx(0.1)
    down = plan_flight(StairSpec(riser_m=0.1, num_steps=2, nosing_m=0.03, direction="down"))  # type: ignore[arg-type]
    np.testing.assert_allclose(down.nosing_boxes_m, [[0.6, 0.63, 0.2], [0.9, 0.93, 0.1]])
    assert down.height_at(0.62, include_nosing=True) == pytest.approx(0.2)
    assert down.height_at(0.62) == pytest.approx(0.1)


@pytest.mark.parametrize("direction", list(Direction))
def test_flat_flight_has_edges_but_no_boxes(direction: Direction) -> None:
    flight = plan_flight(StairSpec(nosing_m=0.02, direction=direction), riser_m=0.0)
    assert flight.riser_m == 0.0
    assert flight.tread_boxes_m.shape == (0, 3) and flight.nosing_boxes_m.shape == (0, 3)
    assert flight.spawn_height_m == 0.0
    np.testing.assert_array_equal(flight.height_at(np.linspace(-3, 10, 50)), 0.0)
    assert list(flight.steps_crossed([0.0, 0.6, 0.61, 0.9, 100.0])) == [0, 1, 1, 2, 6]


def test_riser_override_validated() -> None:
    with pytest.raises(TerrainError, match=r"^riser_m must be in \[0, 0\.3\] m, got -0\.01"):
        plan_flight(StairSpec(), riser_m=-0.01)
    with pytest.raises(TerrainError, match=r"^riser_m must be in \[0, 0\.3\] m"):
        plan_flight(StairSpec(), riser_m=0.4)


def test_steps_crossed_shape_and_range() -> None:
    flight = plan_flight(StairSpec(num_steps=3))
    x = np.array([[-1.0, 0.6], [0.95, 9.0]])
    crossed = flight.steps_crossed(x)
    assert crossed.shape == (2, 2)
    assert crossed.tolist() == [[0, 1], [2, 3]]


def test_height_at_lateral_bounds_and_broadcast() -> None:
    flight = plan_flight(StairSpec(width_m=2.0))
    x = np.full(3, 3.0)  # on the top landing
    np.testing.assert_allclose(flight.height_at(x, [0.0, 0.99, 1.01]), [0.6, 0.6, 0.0])
    assert flight.height_at(np.zeros((4, 5))).shape == (4, 5)
    assert flight.height_at(np.zeros((4, 1)), np.zeros(5)).shape == (4, 5)


def test_flight_is_immutable() -> None:
    flight = plan_flight(StairSpec())
    with pytest.raises(dataclasses.FrozenInstanceError):
        flight.riser_m = 0.2  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        flight.edges_x_m[0] = 0.0


@pytest.mark.parametrize("direction", [Direction.UP, Direction.DOWN])
@pytest.mark.parametrize("riser_m", [0.0, 0.07, 0.2])
def test_height_fast_path_equals_the_box_union_everywhere(direction: Direction, riser_m: float) -> None:
    flight = plan_flight(StairSpec(riser_m=0.1, num_steps=7, tread_m=0.27, direction=direction), riser_m)
    xs = np.random.default_rng(0).uniform(-20.0, 20.0, 5000)
    xs = np.concatenate([xs, flight.edges_x_m, flight.edges_x_m - 1e-9])
    union = flight._box_union_height(xs, include_nosing=False)
    np.testing.assert_array_equal([flight.height_at(x) for x in xs], union)  # per point: fast path
    np.testing.assert_array_equal(flight.height_at(xs), union)  # mixed batch: falls back


# ---- jitter ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"riser_m": 0.05, "riser_jitter_m": 0.06},
            "riser_jitter_m must be in [0, 0.05] m for riser_m = 0.05 m",
        ),
        ({"riser_m": 0.28, "riser_jitter_m": 0.03}, "riser_jitter_m must be in [0, 0.02] m"),
        ({"riser_jitter_m": -0.01}, "riser_jitter_m must be in [0, 0.1] m"),
        (
            {"tread_m": 0.15, "tread_jitter_m": 0.06},
            "tread_jitter_m must be in [0, 0.05] m for tread_m = 0.15 m",
        ),
        ({"tread_m": 0.95, "tread_jitter_m": 0.1, "num_steps": 2}, "tread_jitter_m must be in [0, 0.05] m"),
        (
            {"tread_m": 0.2, "tread_jitter_m": 0.1, "nosing_m": 0.05},
            "nosing_m must be in [0, 0.05] m and < (tread_m - tread_jitter_m) / 2 = 0.05 m",
        ),
        (
            {"num_steps": 22, "tread_jitter_m": 0.01},
            "num_steps must be in [1, 21] for tread_m + tread_jitter_m = 0.31 m",
        ),
        ({"riser_jitter_m": float("inf")}, "riser_jitter_m must be a finite number"),
    ],
)
def test_bad_jitter_says_what_is_allowed(kwargs: dict, message: str) -> None:
    with pytest.raises(TerrainError) as info:
        StairSpec(**kwargs)
    assert str(info.value).startswith(message), str(info.value)


def test_jitter_defaults_off() -> None:
    spec = StairSpec()
    assert spec.riser_jitter_m == 0.0 and spec.tread_jitter_m == 0.0 and not spec.has_jitter
    assert StairSpec(riser_m=0.1, riser_jitter_m=0.1).has_jitter  # risers down to 0 are allowed
    assert StairSpec(tread_m=0.2, tread_jitter_m=0.1).has_jitter  # treads down to MIN_TREAD_M
    flight = plan_flight(spec, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(flight.risers_m, np.full(6, 0.1))
    np.testing.assert_array_equal(flight.treads_m, np.full(5, 0.3))
    assert not flight.jittered


def test_zero_jitter_leaves_the_rng_alone() -> None:
    rng = np.random.default_rng(5)
    plan_flight(StairSpec(), riser_m=0.13, rng=rng)
    assert rng.random() == np.random.default_rng(5).random()


def _jittered(direction: Direction, seed: int, **kwargs: float) -> Flight:
    spec = StairSpec(
        riser_m=0.12,
        tread_m=0.3,
        num_steps=8,
        riser_jitter_m=0.03,
        tread_jitter_m=0.05,
        direction=direction,
        **kwargs,  # type: ignore[arg-type]
    )
    return plan_flight(spec, rng=np.random.default_rng(seed))


@pytest.mark.parametrize("direction", list(Direction))
def test_jittered_flight_geometry(direction: Direction) -> None:
    flight = _jittered(direction, 3, nosing_m=0.02)
    assert flight.jittered and flight.riser_m == 0.12 and flight.tread_m == 0.3
    risers, treads = flight.risers_m, flight.treads_m
    assert risers.shape == (8,) and treads.shape == (7,)
    assert np.all((risers >= 0.09) & (risers <= 0.15)) and np.ptp(risers) > 0.01
    assert np.all((treads >= 0.25) & (treads <= 0.35)) and np.ptp(treads) > 0.01
    np.testing.assert_allclose(np.diff(flight.edges_x_m), treads)
    assert flight.edges_x_m[0] == 0.6
    assert flight.total_rise_m == pytest.approx(risers.sum())
    # Riser i at edge i is risers[i] high, whichever the direction (the robot walks +x).
    steps = np.diff(flight.top_heights_m)
    np.testing.assert_allclose(steps if direction is Direction.UP else -steps, risers, atol=1e-12)
    assert flight.spawn_height_m == (0.0 if direction is Direction.UP else flight.total_rise_m)
    assert flight.top_heights_m[-1 if direction is Direction.UP else 0] == flight.total_rise_m
    assert flight.goal_x_m == flight.edges_x_m[-1]
    # Tread middles are at the cumulative heights, and the nosings flush with the higher tread.
    middles = flight.edges_x_m[:-1] + treads / 2
    np.testing.assert_allclose(flight.height_at(middles), flight.top_heights_m[1:-1])
    higher = flight.top_heights_m[1:] if direction is Direction.UP else flight.top_heights_m[:-1]
    sign = -1.0 if direction is Direction.UP else 1.0
    np.testing.assert_allclose(flight.height_at(flight.edges_x_m + sign * 0.01, include_nosing=True), higher)


def test_jitter_is_seeded() -> None:
    first, again, other = (_jittered(Direction.UP, s) for s in (1, 1, 2))
    np.testing.assert_array_equal(first.risers_m, again.risers_m)
    np.testing.assert_array_equal(first.edges_x_m, again.edges_x_m)
    assert not np.array_equal(first.risers_m, other.risers_m)
    nominal = plan_flight(first.spec)  # no rng: the nominal flight
    assert not nominal.jittered and nominal.total_rise_m == pytest.approx(8 * 0.12)


@pytest.mark.parametrize("direction", list(Direction))
def test_riser_override_narrows_the_jitter(direction: Direction) -> None:
    spec = StairSpec(riser_m=0.1, riser_jitter_m=0.05, tread_jitter_m=0.05, direction=direction)
    rng = np.random.default_rng(0)
    flat = plan_flight(spec, riser_m=0.0, rng=rng)  # curriculum difficulty 0 stays flat ground
    assert flat.total_rise_m == 0.0 and flat.tread_boxes_m.shape == (0, 3)
    np.testing.assert_array_equal(flat.height_at(np.linspace(-3, 10, 50)), 0.0)
    low = plan_flight(spec, riser_m=0.02, rng=rng)
    assert np.all((low.risers_m >= 0.0) & (low.risers_m <= 0.04))
    high = plan_flight(spec, riser_m=0.29, rng=rng)
    assert np.all((high.risers_m >= 0.28) & (high.risers_m <= MAX_RISER_M))


@pytest.mark.parametrize("direction", list(Direction))
def test_jittered_height_fast_path_equals_the_box_union(direction: Direction) -> None:
    """The box union (what the simulator sees) equals the region table for jittered flights too."""
    rng = np.random.default_rng(0)
    for _ in range(40):
        tread = rng.uniform(0.15, 0.9)
        tread_jitter = rng.uniform(0.0, min(tread - 0.1, 1.0 - tread))
        riser = rng.uniform(0.01, MAX_RISER_M)
        spec = StairSpec(
            riser_m=riser,
            tread_m=tread,
            num_steps=int(rng.integers(1, max_steps_that_fit(tread + tread_jitter, 0.6, 1.0, 8.0) + 1)),
            nosing_m=rng.uniform(0, min(0.05, (tread - tread_jitter) / 2 - 1e-6)),
            direction=direction,
            riser_jitter_m=rng.uniform(0.0, min(riser, MAX_RISER_M - riser)),
            tread_jitter_m=tread_jitter,
        )
        flight = plan_flight(spec, rng=rng)
        assert flight.end_x_m <= spec.max_length_m + 1e-9
        x = rng.uniform(0.0, spec.max_length_m, 500)
        np.testing.assert_allclose(
            flight.height_at(x), flight.top_heights_m[flight.steps_crossed(x)], atol=1e-12
        )
        xs = np.concatenate([rng.uniform(-20.0, 20.0, 1000), flight.edges_x_m, flight.edges_x_m - 1e-9])
        union = flight._box_union_height(xs, include_nosing=False)
        np.testing.assert_array_equal([flight.height_at(x) for x in xs], union)


def test_bad_step_arrays_are_rejected() -> None:
    spec = StairSpec(num_steps=3, nosing_m=0.04)
    with pytest.raises(TerrainError, match=r"^step_risers_m must be 3 finite numbers"):
        Flight(spec, 0.1, step_risers_m=[0.1, 0.1])
    with pytest.raises(TerrainError, match=r"^every riser must be in \[0, 0\.3\] m"):
        Flight(spec, 0.1, step_risers_m=[0.1, -0.01, 0.1])
    with pytest.raises(TerrainError, match=r"^step_treads_m must be 2 finite numbers"):
        Flight(spec, 0.1, step_treads_m=[0.3, 0.3, 0.3])
    with pytest.raises(TerrainError, match=r"^every tread must be >= 0\.1 m and > 2 \* nosing_m = 0\.08 m"):
        Flight(spec, 0.1, step_treads_m=[0.3, 0.08])
    with pytest.raises(TerrainError, match=r"^start_m \+ sum\(treads\) \+ landing_m must be <= max_length_m"):
        Flight(spec, 0.1, step_treads_m=[4.0, 4.0])


def test_pitch_at_reads_a_flights_mean_slope_and_flat_landings() -> None:
    up = plan_flight(StairSpec(tread_m=0.25, num_steps=6), riser_m=0.15)
    middle = float((up.edges_x_m[0] + up.edges_x_m[-1]) / 2)
    assert up.pitch_at(middle) == pytest.approx(math.atan(0.15 / 0.25), abs=0.05)
    assert up.pitch_at(float(up.edges_x_m[0]) - 0.5) == pytest.approx(0.0, abs=1e-9)  # ground before
    assert up.pitch_at(float(up.edges_x_m[-1]) + 0.5) == pytest.approx(0.0, abs=1e-9)  # top landing
    down = plan_flight(StairSpec(tread_m=0.25, num_steps=6, direction=Direction.DOWN), riser_m=0.15)
    middle = float((down.edges_x_m[0] + down.edges_x_m[-1]) / 2)
    assert down.pitch_at(middle) == pytest.approx(-math.atan(0.15 / 0.25), abs=0.05)


# ---- tread range ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tread_range_m": (0.32, 0.4)}, "tread_m must lie in tread_range_m = [0.32, 0.4] m"),
        (
            {"tread_range_m": (0.35, 0.25)},
            "tread_range_m[1] must be in [0.35, 1] m (and >= tread_range_m[0])",
        ),
        ({"tread_m": 0.12, "tread_range_m": (0.05, 0.3)}, "tread_range_m[0] must be in [0.1, 1] m"),
        (
            {"tread_range_m": (0.11, 0.3), "tread_jitter_m": 0.02},
            "tread_jitter_m must be in [0, 0.01] m for tread_range_m = [0.11, 0.3] m",
        ),
        (
            {"tread_range_m": (0.25, 0.35), "num_steps": 19, "tread_jitter_m": 0.02},
            "num_steps must be in [1, 18] for tread_range_m[1] + tread_jitter_m = 0.37 m",
        ),
        (
            {"tread_range_m": (0.1, 0.3), "nosing_m": 0.05},
            "nosing_m must be in [0, 0.05] m and < tread_range_m[0] / 2 = 0.05 m",
        ),
        ({"tread_range_m": (0.25, float("nan"))}, "tread_range_m[1] must be a finite number"),
    ],
)
def test_bad_tread_range_says_what_is_allowed(kwargs: dict, message: str) -> None:
    with pytest.raises(TerrainError) as info:
        StairSpec(**kwargs)
    assert str(info.value).startswith(message), str(info.value)


def test_tread_range_loads_from_yaml_and_defaults_off() -> None:
    assert StairSpec().tread_range_m is None
    spec = load_dataclass(StairSpec, {"tread_range_m": [0.25, 0.35]})
    assert spec.tread_range_m == (0.25, 0.35) and spec.tread_m == 0.30
    with pytest.raises(ConfigError, match=r"tread_range_m must be a list of 2 values"):
        load_dataclass(StairSpec, {"tread_range_m": [0.25]})
