"""`stairbot footholds`: where feet touch down on the treads, from real PyBullet episodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stairbot.cli import main
from stairbot.errors import ConfigError
from stairbot.footholds import HISTOGRAM_BINS, FootholdStats, TreadPositions, measure, tread_positions
from stairbot.policy_source import load_policy_source
from stairbot.terrain.stairs import Direction, StairSpec, plan_flight


def test_tread_positions_measure_from_the_lip_and_the_riser_in_walking_order() -> None:
    up = plan_flight(StairSpec(num_steps=3, tread_m=0.30, start_m=0.6), riser_m=0.10)
    assert up.edges_x_m.tolist() == pytest.approx([0.6, 0.9, 1.2])
    # Ground before the first riser and the landing past the last are not treads.
    feet = np.array([0.5, 0.62, 0.88, 1.0, 1.3])
    positions = tread_positions(up, feet)
    assert positions.tread.tolist() == [0, 0, 1]
    np.testing.assert_allclose(positions.from_lip_m, [0.02, 0.28, 0.10])  # the lip is behind going up
    np.testing.assert_allclose(positions.from_riser_m, [0.28, 0.02, 0.20])

    down = plan_flight(
        StairSpec(num_steps=3, tread_m=0.30, start_m=0.6, direction=Direction.DOWN), riser_m=0.10
    )
    edges = down.edges_x_m
    on_first_tread = edges[0] + 0.04  # 4 cm past the riser face behind, 26 cm from the drop ahead
    positions = tread_positions(down, np.array([edges[0] - 0.1, on_first_tread]))
    assert positions.tread.tolist() == [0]
    np.testing.assert_allclose(positions.from_lip_m, [0.26])
    np.testing.assert_allclose(positions.from_riser_m, [0.04])


def test_stats_count_near_edges_and_bin_along_the_tread() -> None:
    positions = [
        TreadPositions(np.array([0, 0]), np.array([0.01, 0.15]), np.array([0.29, 0.15])),
        TreadPositions(np.array([1]), np.array([0.28]), np.array([0.02])),
    ]
    stats = FootholdStats.of(episodes=2, positions=positions, margin_m=0.05)
    assert stats.touchdowns == 3 and stats.touchdowns_per_episode == 1.5
    assert stats.near_lip == pytest.approx(1 / 3) and stats.near_riser == pytest.approx(1 / 3)
    assert stats.median_from_lip_m == pytest.approx(0.15)
    assert stats.histogram == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    empty = FootholdStats.of(episodes=3, positions=[], margin_m=0.05)
    assert (empty.touchdowns, empty.near_lip, empty.histogram) == (0, None, [0] * HISTOGRAM_BINS)


def test_the_pretrained_policy_steps_on_every_tread_it_climbs(tmp_path: Path) -> None:
    """On 0.10 m risers and 0.32 m treads the shipped policy climbs; every foot must land on each of
    the flight's treads on its way up (its strides are shorter than a tread), so a climbed episode has
    at least 4 feet x (steps - 1) treads of touchdowns there."""
    path = tmp_path / "footholds.json"
    argv = ["footholds", "pretrained", "--risers", "0.10", "--treads", "0.32", "--episodes", "2"]
    assert main([*argv, "--seed", "1000", "--json", str(path)]) == 0
    payload = json.loads(path.read_text())
    (cell,) = payload["cells"]
    assert (cell["direction"], cell["riser_m"], cell["tread_m"]) == ("up", 0.10, 0.32)
    climbed = cell["climbed"]
    assert climbed["episodes"] >= 1, cell["endings"]
    treads = 6 - 1  # the preset's six risers
    assert climbed["touchdowns_per_episode"] >= 4 * treads
    assert sum(climbed["histogram"]) == climbed["touchdowns"]
    assert 0.0 <= climbed["near_lip"] <= 1.0 and 0.0 < climbed["median_from_lip_m"] < 0.32


def test_bad_grids_and_margins_are_refused_before_any_episode() -> None:
    source = load_policy_source(None)  # zero action: nothing would run anyway
    grid = {"risers_m": [0.10], "treads_m": [0.32], "directions": ["up"], "episodes": 1, "seed": 0}
    with pytest.raises(ConfigError, match=r"riser -0\.1 m is outside"):
        measure(source, **{**grid, "risers_m": [-0.1]})
    with pytest.raises(ConfigError, match="unknown direction 'sideways'"):
        measure(source, **{**grid, "directions": ["sideways"]})
    with pytest.raises(ConfigError, match="--margin-m must be a positive distance"):
        measure(source, **grid, margin_m=0.0)
    assert main(["footholds", "--episodes", "0"]) == 2
