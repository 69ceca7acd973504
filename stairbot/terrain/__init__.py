"""Procedural stairs: the spec, the flight geometry (numpy) and the PyBullet bodies forming it."""

from __future__ import annotations

from stairbot.terrain.build import StairBodies
from stairbot.terrain.stairs import (
    MAX_RISER_M,
    MIN_TREAD_M,
    Direction,
    Flight,
    StairSpec,
    plan_flight,
    riser_for_difficulty,
)

__all__ = [
    "MAX_RISER_M",
    "MIN_TREAD_M",
    "Direction",
    "Flight",
    "StairBodies",
    "StairSpec",
    "plan_flight",
    "riser_for_difficulty",
]
