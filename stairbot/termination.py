"""Why an episode ends: the termination reasons and the checks that decide them (plain numpy).

Truncation is not decided here: it comes only from the time limit given at registration.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from stairbot.envs.config import TerminationConfig
from stairbot.terrain.stairs import Flight

# The ground under the body is the mean terrain height over the body's length (x +- 0.2 m), not the
# height under the base centre alone: a base that has just passed a step edge going up, its rear legs
# still on the tread below, is not mistaken for one sinking into the step.
_FOOTPRINT_X_OFFSETS_M = np.linspace(-0.2, 0.2, 5)
# Walking this far back from the spawn point counts as leaving the arena.
_BACKWARD_LIMIT_M = -1.0


class TerminationReason(str, enum.Enum):
    """Value of `info["termination_reason"]`. NONE while the episode goes on."""

    NONE = "none"
    FALL = "fall"  # tilted beyond the limit, or the base sank too low above the terrain beneath it
    BASE_CONTACT = "base_contact"
    THIGH_CONTACT = "thigh_contact"
    OUT_OF_BOUNDS = "out_of_bounds"
    SUCCESS = "success"

    @property
    def is_failure(self) -> bool:
        return self not in (TerminationReason.NONE, TerminationReason.SUCCESS)


class FallKind(str, enum.Enum):
    """How a fall ended (`info["fall_kind"]`): which way the trunk tipped past the tilt limit, against
    gravity (not the stairs' slope), or that it sank too low while still within it."""

    BACKWARD = "backward"  # nose up: tipped over its tail (up a flight: back down the stairs)
    FORWARD = "forward"  # nose down, over its head
    SIDEWAYS = "sideways"  # rolled onto a side
    LOW = "low"  # upright within the tilt limit, but the base below the height limit


FALL_KINDS = tuple(kind.value for kind in FallKind)


@dataclass(frozen=True)
class TerminationCheck:
    """Decides the termination reason from the base pose and contacts after a control step."""

    config: TerminationConfig
    nominal_base_height_m: float

    def __call__(
        self,
        flight: Flight,
        base_pos_m: np.ndarray,
        projected_gravity: np.ndarray,
        base_contact: bool,
        thigh_contact: bool,
    ) -> TerminationReason:
        """Reason for base position (3,) and projected gravity (3,) on `flight`; NONE if going on."""
        cfg = self.config
        x, y, z = base_pos_m.tolist()
        # Scalar math rather than numpy ufuncs: this runs every control step.
        tilt_rad = math.acos(max(-1.0, min(1.0, -float(projected_gravity[2]))))
        floor_m = float(flight.height_at(x + _FOOTPRINT_X_OFFSETS_M).sum()) / len(_FOOTPRINT_X_OFFSETS_M)
        min_height_m = cfg.min_base_height_ratio * self.nominal_base_height_m
        if tilt_rad > cfg.max_tilt_rad or z - floor_m < min_height_m:
            return TerminationReason.FALL
        if cfg.base_contact and base_contact:
            return TerminationReason.BASE_CONTACT
        if cfg.thigh_contact and thigh_contact:
            return TerminationReason.THIGH_CONTACT
        if abs(y) > flight.width_m / 2 + cfg.lateral_margin_m or not (
            _BACKWARD_LIMIT_M <= x <= flight.end_x_m
        ):
            return TerminationReason.OUT_OF_BOUNDS
        if x > flight.goal_x_m + cfg.success_margin_m:
            return TerminationReason.SUCCESS
        return TerminationReason.NONE

    def fall_kind(self, projected_gravity: np.ndarray) -> FallKind:
        """Which way a base with gravity (3,) in its frame fell. Past the tilt limit, the larger of
        gravity's x and y parts says where the base tipped: x < 0 is nose up (gx = -sin(pitch)), y a
        roll; within the limit it was the height that ended it."""
        gx, gy, gz = (float(v) for v in projected_gravity)
        if math.acos(max(-1.0, min(1.0, -gz))) <= self.config.max_tilt_rad:
            return FallKind.LOW
        if abs(gy) > abs(gx):
            return FallKind.SIDEWAYS
        return FallKind.BACKWARD if gx < 0.0 else FallKind.FORWARD
