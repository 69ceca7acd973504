"""Stair bodies in PyBullet: built once per world, moved (never rebuilt) per episode.

PyBullet cannot resize a collision shape, and `loadURDF` / `removeBody` per episode leak memory
and body ids. `StairBodies` therefore creates a fixed pool of static boxes (mass 0, `GEOM_BOX`) when
the world is built and, for each episode, only moves them with `resetBasePositionAndOrientation` to
where `Flight.tread_boxes_m` / `Flight.nosing_boxes_m` say (`stairbot.terrain.stairs` describes the
geometry). Boxes a flight does not use are parked far below the ground plane, out of reach.

This is the only terrain module that talks to PyBullet, and only through the `BulletClient` it is
given (it never imports `pybullet` itself, so importing it needs no simulator).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from stairbot.errors import TerrainError
from stairbot.terrain.stairs import (
    MAX_NOSING_M,
    MAX_RISER_M,
    NOSING_THICKNESS_M,
    Flight,
    StairSpec,
    box_length_m,
)

if TYPE_CHECKING:
    from pybullet_utils.bullet_client import BulletClient

TREAD_RGBA = ((0.62, 0.62, 0.62, 1.0), (0.78, 0.78, 0.78, 1.0))
"""Two grey shades, alternating step by step so the edges are visible in the GUI."""
NOSING_RGBA = (0.35, 0.35, 0.35, 1.0)
BELOW_GROUND_M = 0.5
"""Every tread box reaches at least this far below z = 0 (max_height_m + this tall), metres."""
PARK_DEPTH_M = 100.0
"""Unused boxes are parked with their tops this far below the ground plane, out of reach."""
_TOL_M = 1e-9
_IDENTITY_QUAT = (0.0, 0.0, 0.0, 1.0)


class StairBodies:
    """A fixed pool of static boxes that forms any flight up to `max_steps` risers.

    Built once per world; `place(flight)` moves the boxes for an episode. Sizes fixed here:

    - `max_steps` tread boxes, each `max_length_m + BOX_MARGIN_M` long (x), `width_m` wide (y) and
      `max_height_m + BELOW_GROUND_M` tall (z), so any flight with num_steps * riser_m <=
      `max_height_m` is covered down to below the ground;
    - with `nosing_m > 0`, `max_steps` nosing boxes, `nosing_m` deep, `width_m` wide and
      NOSING_THICKNESS_M thick.

    Width, nosing depth and arena length are therefore fixed at construction: placing a flight whose
    spec has another `width_m`, `nosing_m` or `max_length_m` raises `TerrainError`, as does one with
    more than `max_steps` risers or higher than `max_height_m`.

    Args:
        client: the world's `BulletClient`.
        max_steps: most risers any flight will have (>= 1).
        width_m: stair width, metres (the spec's `width_m`).
        nosing_m: nosing depth, metres (the spec's `nosing_m`; 0 builds no nosing boxes).
        max_length_m: arena length, metres (the spec's `max_length_m`).
        max_height_m: highest total rise (num_steps * riser_m) any flight will have, metres.
        friction: lateral (Coulomb) friction coefficient set on every box (`changeDynamics`).
    """

    def __init__(  # noqa: PLR0917 (positional signature agreed with the env)
        self,
        client: BulletClient,
        max_steps: int,
        width_m: float,
        nosing_m: float,
        max_length_m: float,
        max_height_m: float,
        *,
        friction: float = 1.0,
    ) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise TerrainError(f"max_steps must be an integer >= 1, got {max_steps!r}")
        for key, value in (
            ("width_m", width_m),
            ("max_length_m", max_length_m),
            ("max_height_m", max_height_m),
        ):
            if not value > 0:
                raise TerrainError(f"{key} must be in (0, inf) m, got {value!r}")
        if not 0 <= nosing_m <= MAX_NOSING_M:
            raise TerrainError(f"nosing_m must be in [0, {MAX_NOSING_M:g}] m, got {nosing_m!r}")
        self._client = client
        self.max_steps = max_steps
        self.width_m = float(width_m)
        self.nosing_m = float(nosing_m)
        self.max_length_m = float(max_length_m)
        self.max_height_m = float(max_height_m)
        self.box_length_m = box_length_m(self.max_length_m)
        self.box_height_m = self.max_height_m + BELOW_GROUND_M

        half_y = self.width_m / 2
        tread_half = (self.box_length_m / 2, half_y, self.box_height_m / 2)
        tread_shape = client.createCollisionShape(client.GEOM_BOX, halfExtents=tread_half)
        tread_visuals = [
            client.createVisualShape(client.GEOM_BOX, halfExtents=tread_half, rgbaColor=rgba)
            for rgba in TREAD_RGBA
        ]
        self.tread_body_ids: tuple[int, ...] = tuple(
            self._create(tread_shape, tread_visuals[i % 2], i) for i in range(max_steps)
        )
        nosing_ids: tuple[int, ...] = ()
        if self.nosing_m > 0:
            nosing_half = (self.nosing_m / 2, half_y, NOSING_THICKNESS_M / 2)
            nosing_shape = client.createCollisionShape(client.GEOM_BOX, halfExtents=nosing_half)
            nosing_visual = client.createVisualShape(
                client.GEOM_BOX, halfExtents=nosing_half, rgbaColor=NOSING_RGBA
            )
            nosing_ids = tuple(
                self._create(nosing_shape, nosing_visual, max_steps + i) for i in range(max_steps)
            )
        self.nosing_body_ids: tuple[int, ...] = nosing_ids
        self.set_friction(friction)

    @classmethod
    def for_spec(
        cls,
        client: BulletClient,
        spec: StairSpec,
        *,
        max_steps: int | None = None,
        max_riser_m: float | None = None,
        friction: float = 1.0,
    ) -> StairBodies:
        """Bodies sized for `spec` (width, nosing, arena length).

        `max_steps` defaults to `spec.num_steps` and `max_riser_m` to `spec.riser_m`; pass larger
        values when a curriculum varies them. The height limit is `max_steps * (max_riser_m +
        spec.riser_jitter_m)`, capped at MAX_RISER_M per riser: a jittered flight's risers never
        exceed either.
        """
        steps = spec.num_steps if max_steps is None else max_steps
        riser = spec.riser_m if max_riser_m is None else max_riser_m
        if spec.riser_jitter_m > 0:
            riser = max(riser, min(riser + spec.riser_jitter_m, MAX_RISER_M))
        return cls(
            client,
            max_steps=steps,
            width_m=spec.width_m,
            nosing_m=spec.nosing_m,
            max_length_m=spec.max_length_m,
            max_height_m=steps * riser,
            friction=friction,
        )

    def _create(self, shape: int, visual: int, index: int) -> int:
        return int(
            self._client.createMultiBody(
                baseMass=0.0,
                baseCollisionShapeIndex=shape,
                baseVisualShapeIndex=visual,
                basePosition=self._park_position(index),
            )
        )

    def _park_position(self, index: int) -> tuple[float, float, float]:
        # Spread along x so the parked boxes do not all overlap in one broadphase cell.
        return (float(index), 0.0, -PARK_DEPTH_M - self.box_height_m)

    @property
    def body_ids(self) -> tuple[int, ...]:
        """Ids of all terrain bodies (treads, then nosings), for contact filtering by the env."""
        return self.tread_body_ids + self.nosing_body_ids

    def set_friction(self, friction: float) -> None:
        """Set the lateral (Coulomb) friction coefficient of every box, e.g. for randomization."""
        if not friction >= 0:
            raise TerrainError(f"friction must be in [0, inf), got {friction!r}")
        for body in self.body_ids:
            self._client.changeDynamics(body, -1, lateralFriction=float(friction))

    def check(self, flight: Flight) -> None:
        """Raise `TerrainError` if these bodies cannot form `flight` (see the class docstring)."""
        if abs(flight.width_m - self.width_m) > _TOL_M:
            raise TerrainError(
                f"width_m is fixed when the stair bodies are built ({self.width_m:g} m), "
                f"got a flight with width_m = {flight.width_m:g} m"
            )
        if abs(flight.nosing_m - self.nosing_m) > _TOL_M:
            raise TerrainError(
                f"nosing_m is fixed when the stair bodies are built ({self.nosing_m:g} m), "
                f"got a flight with nosing_m = {flight.nosing_m:g} m; build the bodies with "
                f"that nosing_m instead"
            )
        if abs(flight.box_length_m - self.box_length_m) > _TOL_M:
            raise TerrainError(
                f"max_length_m is fixed when the stair bodies are built ({self.max_length_m:g} m), "
                f"got a flight with max_length_m = {flight.spec.max_length_m:g} m"
            )
        if flight.num_steps > self.max_steps:
            raise TerrainError(
                f"num_steps must be <= {self.max_steps} (the stair bodies were built for that "
                f"many), got {flight.num_steps}"
            )
        if flight.total_rise_m > self.max_height_m + _TOL_M:
            raise TerrainError(
                f"num_steps * riser_m must be <= {self.max_height_m:g} m (max_height_m of the "
                f"stair bodies), got {flight.total_rise_m:g} m"
            )

    def place(self, flight: Flight) -> None:
        """Move the boxes to form `flight`; unused boxes go to the parking spot below the ground.

        Only `resetBasePositionAndOrientation` is called, so no body is created or removed.
        """
        self.check(flight)
        self._move(self.tread_body_ids, flight.tread_boxes_m, self.box_height_m, offset=0)
        self._move(self.nosing_body_ids, flight.nosing_boxes_m, NOSING_THICKNESS_M, offset=self.max_steps)

    def _move(
        self,
        bodies: tuple[int, ...],
        boxes: NDArray[np.float64],
        height_m: float,
        offset: int,
    ) -> None:
        reset = self._client.resetBasePositionAndOrientation
        for i, body in enumerate(bodies):
            if i < len(boxes):
                x_min, x_max, z_top = boxes[i]
                position = (float(x_min + x_max) / 2, 0.0, float(z_top) - height_m / 2)
            else:
                position = self._park_position(offset + i)
            reset(body, position, _IDENTITY_QUAT)
