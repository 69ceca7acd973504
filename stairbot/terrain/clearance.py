"""How far a box-shaped robot base is above the flight: its lowest point over the step profile.

A policy that keeps its base level on a steep flight puts the front of the trunk into the next
nosing (the base-contact ending that dominates failed 0.15 m climbs). `base_clearance_m` measures
that gap before it closes, so a reward can act on it (`rewards.base_clearance_deficit`).

The base is a box (the trunk's collision shape); the flight is a step profile that is constant
across y within its width. Its lowest edges are the two long bottom edges (at y = +-half width in the
base frame). Along each, the gap to the profile is linear in x between riser edges, so its minimum
is at an end of the edge or at a riser edge it passes over: those few points give the exact minimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from stairbot.terrain.stairs import Flight

FloatArray = NDArray[np.float64]

# Each riser edge a bottom edge passes over is evaluated this far on both sides of it: the surface
# jumps there, and the higher side (after the edge going up, before it going down) sets the gap.
_EDGE_SIDE_M = 1e-9


@dataclass(frozen=True)
class BaseBox:
    """The base's collision box in the base frame (the frame of the base pose PyBullet reports).

    Attributes:
        half_extents_m: (3,) half length (x), width (y) and height (z), m.
        center_m: (3,) the box centre in the base frame, m.
    """

    half_extents_m: FloatArray
    center_m: FloatArray

    def bottom_edges_m(self) -> FloatArray:
        """(2, 2, 3) the two long bottom edges, [left/right][rear/front] xyz in the base frame, m."""
        hx, hy, hz = self.half_extents_m
        corners = [[(-hx, side * hy, -hz), (hx, side * hy, -hz)] for side in (1.0, -1.0)]
        return np.asarray(corners, dtype=np.float64) + self.center_m

    @cached_property
    def _bottom_corners_m(self) -> FloatArray:
        """(4, 3) rows: left rear, left front, right rear, right front (this runs every step)."""
        return self.bottom_edges_m().reshape(4, 3)


def base_clearance_m(
    flight: Flight, box: BaseBox, base_pos_m: FloatArray, base_rotation: FloatArray
) -> float:
    """Smallest height (m) of the base box's bottom edges above the flight's surface under them.

    Negative when an edge is below the surface ahead (the box is into a riser or nosing).

    Args:
        flight: the episode's stairs.
        box: the base's collision box.
        base_pos_m: (3,) base position, world frame.
        base_rotation: (3, 3) base-to-world rotation matrix.
    """
    corners = box._bottom_corners_m @ base_rotation.T + base_pos_m  # (4, 3), world frame
    rear, front = corners[0::2], corners[1::2]  # (2, 3) each: the left and right bottom edges
    points = [corners]
    risers = _riser_x_m(flight)
    lo, hi = corners[:, 0].min(), corners[:, 0].max()
    crossed = risers[(risers > lo) & (risers < hi)]
    if len(crossed):
        run = front[:, 0] - rear[:, 0]
        t = (crossed[None, :] - rear[:, :1]) / np.where(run == 0.0, np.inf, run)[:, None]  # (2, k)
        on_edge = (t > 0.0) & (t < 1.0)
        at_riser = (rear[:, None, :] + t[:, :, None] * (front - rear)[:, None, :])[on_edge]  # (m, 3)
        for side in (-_EDGE_SIDE_M, _EDGE_SIDE_M):
            beside = at_riser.copy()
            beside[:, 0] += side
            points.append(beside)
    xyz = np.concatenate(points)
    surface = flight.height_at(xyz[:, 0], include_nosing=bool(len(flight.nosing_boxes_m)))
    surface[np.abs(xyz[:, 1]) > flight.width_m / 2] = 0.0  # off the side of the flight: the ground
    return float(np.min(xyz[:, 2] - surface))


def _riser_x_m(flight: Flight) -> FloatArray:
    """x of every place the surface steps: the risers and, with nosings, the nosings' front edges."""
    if len(flight.nosing_boxes_m):
        return np.concatenate([flight.edges_x_m, flight.nosing_boxes_m[:, 0]])
    return flight.edges_x_m
