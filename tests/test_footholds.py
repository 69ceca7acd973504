"""`stairbot footholds`: where feet touch down on the treads, from real PyBullet episodes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from stairbot.cli import main
from stairbot.errors import ConfigError
from stairbot.footholds import HISTOGRAM_BINS, Foothold, FootholdStats, Touchdown, classify, measure
from stairbot.terrain.stairs import Direction, StairSpec, plan_flight

RADIUS_M = 0.02


def _rest_on_corner(edge_x_m: float, top_m: float, dx_m: float) -> tuple[float, float]:
    """(x, z) of a foot sphere's centre resting on the corner (edge_x_m, top_m), dx_m beside it."""
    return edge_x_m + dx_m, top_m + math.sqrt(RADIUS_M**2 - dx_m**2)


def test_touchdowns_are_sorted_by_the_surface_the_foot_rests_on_going_up() -> None:
    flight = plan_flight(StairSpec(num_steps=3, tread_m=0.30, start_m=0.6), riser_m=0.10)
    assert flight.edges_x_m.tolist() == pytest.approx([0.6, 0.9, 1.2])
    assert flight.top_heights_m.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    on_tread = classify(flight, 0.62, 0.1 + RADIUS_M, RADIUS_M)  # 2 cm past the first lip
    assert (on_tread.kind, on_tread.on_flight) == (Foothold.TREAD, True)
    assert (on_tread.from_lip_m, on_tread.from_riser_m) == (pytest.approx(0.02), pytest.approx(0.28))
    # Toe in the corner at the next riser's foot: still on the tread, near its riser.
    in_corner = classify(flight, 0.9 - RADIUS_M, 0.1 + RADIUS_M, RADIUS_M)
    assert in_corner.kind is Foothold.TREAD and in_corner.from_riser_m == pytest.approx(RADIUS_M)
    # Halfway up the second riser's face: a swing that met it.
    assert classify(flight, 0.9 - RADIUS_M, 0.15, RADIUS_M).kind is Foothold.RISER
    # Centre 1.5 cm short of the second edge, resting on its top corner: on a nosing.
    nosing = classify(flight, *_rest_on_corner(0.9, 0.2, -0.015), RADIUS_M)
    assert (nosing.kind, nosing.on_flight) == (Foothold.NOSING, True)
    # Centre 1.5 cm past it, on the same corner: over the tread, at its lip.
    past = classify(flight, *_rest_on_corner(0.9, 0.2, 0.015), RADIUS_M)
    assert past.kind is Foothold.TREAD and past.from_lip_m == pytest.approx(0.015)
    # The ground before the flight and the landing are not on it; mid-air is no surface.
    assert classify(flight, 0.3, RADIUS_M, RADIUS_M).on_flight is False
    assert classify(flight, 1.5, 0.3 + RADIUS_M, RADIUS_M).on_flight is False
    assert classify(flight, 0.75, 0.2, RADIUS_M).kind is Foothold.UNKNOWN


def test_going_down_the_lip_is_ahead_and_the_nosing_behind() -> None:
    spec = StairSpec(num_steps=3, tread_m=0.30, start_m=0.6, direction=Direction.DOWN)
    flight = plan_flight(spec, riser_m=0.10)
    edges, tops = flight.edges_x_m, flight.top_heights_m
    assert tops[1] == pytest.approx(tops[0] - 0.1)
    on_tread = classify(flight, edges[0] + 0.04, tops[1] + RADIUS_M, RADIUS_M)
    assert on_tread.kind is Foothold.TREAD
    assert (on_tread.from_lip_m, on_tread.from_riser_m) == (pytest.approx(0.26), pytest.approx(0.04))
    # Stepped off the start platform's edge: centre 1 cm past it, resting on its corner.
    assert classify(flight, *_rest_on_corner(edges[0], tops[0], 0.01), RADIUS_M).kind is Foothold.NOSING


def test_stats_share_out_the_touchdowns_and_bin_them_along_the_tread() -> None:
    def tread(lip: float) -> Touchdown:
        return Touchdown(Foothold.TREAD, True, from_lip_m=lip, from_riser_m=0.30 - lip)

    touchdowns = [
        tread(0.01),
        tread(0.15),
        tread(0.28),
        Touchdown(Foothold.NOSING, True),
        Touchdown(Foothold.RISER, True),
        Touchdown(Foothold.TREAD, False),  # on the landing: not counted
    ]
    stats = FootholdStats.of(episodes=2, touchdowns=touchdowns, margin_m=0.05)
    assert (stats.touchdowns, stats.on_tread, stats.touchdowns_per_episode) == (5, 3, 2.5)
    assert (stats.on_nosing, stats.against_riser) == (pytest.approx(0.2), pytest.approx(0.2))
    assert stats.near_lip == pytest.approx(1 / 3) and stats.near_riser == pytest.approx(1 / 3)
    assert stats.median_from_lip_m == pytest.approx(0.15)
    assert stats.histogram == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    empty = FootholdStats.of(episodes=3, touchdowns=[], margin_m=0.05)
    assert (empty.touchdowns, empty.near_lip, empty.on_nosing) == (0, None, None)
    assert empty.histogram == [0] * HISTOGRAM_BINS


def test_the_pretrained_policy_steps_on_every_tread_it_climbs(tmp_path: Path) -> None:
    """On 0.10 m risers and 0.32 m treads the shipped policy climbs; every foot must land on each of
    the flight's treads on its way up (its strides are shorter than a tread), so a climbed episode has
    at least 4 feet x (steps - 1) treads of touchdowns there."""
    path = tmp_path / "footholds.json"
    argv = ["footholds", "pretrained", "--risers", "0.10", "--treads", "0.32", "--episodes", "2"]
    figure = tmp_path / "footholds.png"
    assert main([*argv, "--seed", "1000", "--json", str(path), "--plot", str(figure)]) == 0
    assert mpimg.imread(figure).shape[2] in (3, 4)  # a real PNG
    payload = json.loads(path.read_text())
    (cell,) = payload["cells"]
    assert (cell["direction"], cell["riser_m"], cell["tread_m"]) == ("up", 0.10, 0.32)
    climbed = cell["succeeded"]
    assert climbed["episodes"] >= 1, cell["endings"]
    treads = 6 - 1  # the preset's six risers
    assert climbed["on_tread"] / climbed["episodes"] >= 4 * treads
    assert sum(climbed["histogram"]) == climbed["on_tread"] <= climbed["touchdowns"]
    assert climbed["unknown"] == 0  # every touchdown rests on a stair surface
    assert 0.0 <= climbed["near_lip"] <= 1.0 and 0.0 < climbed["median_from_lip_m"] < 0.32


def test_bad_grids_and_margins_are_refused_before_any_episode() -> None:
    grid = {"risers_m": [0.10], "treads_m": [0.32], "directions": ["up"], "episodes": 1, "seed": 0}
    with pytest.raises(ConfigError, match=r"riser -0\.1 m is outside"):
        measure(None, **{**grid, "risers_m": [-0.1]})
    with pytest.raises(ConfigError, match="unknown direction 'sideways'"):
        measure(None, **{**grid, "directions": ["sideways"]})
    with pytest.raises(ConfigError, match="--margin-m must be a positive distance"):
        measure(None, **grid, margin_m=0.0)
    with pytest.raises(ConfigError, match="--processes must be at least 1"):
        measure(None, **grid, processes=0)
    assert main(["footholds", "--episodes", "0"]) == 2


def test_cells_run_in_a_process_pool_give_the_serial_results() -> None:
    """Two workers, each loading the policy from its POLICY string, sort the same touchdowns."""
    grid = {"risers_m": [0.10], "treads_m": [0.25, 0.32], "directions": ["up"], "episodes": 1, "seed": 7}
    serial = measure("pretrained", **grid, processes=1)
    pooled = measure("pretrained", **grid, processes=2)
    assert [cell.cell.tread_m for cell in pooled] == [0.25, 0.32]
    assert sum(cell.succeeded.touchdowns + cell.failed.touchdowns for cell in serial) > 0
    assert pooled == serial
