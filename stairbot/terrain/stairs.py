"""Stair specification and flight geometry (plain numpy, no simulator).

World frame: z up, the robot spawns near (x=0, y=0) facing +x, the ground plane is z = 0. A flight
of `num_steps` risers starts at x = `start_m`; riser i stands at

    edges_x_m[i] = start_m + i * tread_m            (i = 0 .. num_steps - 1, metres)

and the robot always walks +x, whichever the direction:

- `Direction.UP`: ground (z = 0) before edge 0, the tread [edge_i, edge_{i+1}) at (i + 1) * riser_m,
  and the top landing from the last edge on at num_steps * riser_m.
- `Direction.DOWN`: the robot spawns on a start platform at num_steps * riser_m (x < edge 0), the
  tread [edge_i, edge_{i+1}) is at (num_steps - 1 - i) * riser_m, and from the last edge on it is
  the ground at z = 0.

The "final landing" is the region after the last edge (`goal_x_m`); `landing_m` is the length of it
that the arena must hold (`end_x_m = goal_x_m + landing_m`).

The staircase is the union of a few long, tall boxes that never change size (PyBullet cannot resize
a collision shape), so only their positions change between episodes. `Flight.tread_boxes_m` and
`Flight.nosing_boxes_m` say where `stairbot.terrain.build.StairBodies` puts them, and
`Flight.height_at` evaluates exactly that union, so it agrees with ray casts in the simulator:

- every tread box is `box_length_m(max_length_m)` = `max_length_m + BOX_MARGIN_M` long in x,
  `width_m` wide in y (centred on y = 0) and reaches from its top down below z = 0;
- UP: box i has its top at (i + 1) * riser_m and covers x in [edge_i, edge_i + box length); later,
  higher boxes cover the tops of earlier ones. The top landing therefore stays flat well past
  `end_x_m` (to goal_x_m + box length >= max_length_m + BOX_MARGIN_M), then drops to the ground;
- DOWN: the start platform box (top num_steps * riser_m) covers x in [edge_0 - box length, edge_0),
  so at least BOX_MARGIN_M behind the spawn point; the box of tread i (top (num_steps - 1 - i) *
  riser_m, i < n - 1) covers x BACKWARD from edge_{i+1}, so a lower box never covers a higher
  tread. The last tread is the ground plane itself;
- with nosing, a thin box (NOSING_THICKNESS_M thick, `nosing_m` deep) sticks out of each higher
  tread over the riser below it: x in [edge_i - nosing_m, edge_i) going UP, [edge_i, edge_i +
  nosing_m) going DOWN, with its top flush with that tread;
- with `riser_m = 0` (flat ground, difficulty 0 of the curriculum) no box is placed at all; the
  edges still exist so `steps_crossed` is defined.

Jitter (`riser_jitter_m`, `tread_jitter_m` > 0, sim-to-real robustness): `plan_flight` with a numpy
Generator draws each riser of the flight from U(riser_m - riser_jitter_m, riser_m + riser_jitter_m)
and each tread depth between two risers from U(tread_m - tread_jitter_m, tread_m + tread_jitter_m).
Everything above still holds with per-step numbers: riser i (at edges_x_m[i]) is `risers_m[i]` high,
edges_x_m[i + 1] = edges_x_m[i] + treads_m[i], and the tread tops are the cumulative sums of the
risers (going up from z = 0; going down, the start platform is at sum(risers_m) and each riser drops
by its own height). Every riser is >= 0, so the tops stay monotonic and the same long boxes form
the union. With zero jitter the flight is the uniform one, computed exactly as without jitter.

Laterally the stairs span |y| <= width_m / 2; outside that is the ground plane at z = 0 in both
directions (the DOWN start platform is a box of the same width, not a wall-to-wall floor).
"""

from __future__ import annotations

import enum
import math
import numbers
from dataclasses import InitVar, dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stairbot.config import check_range
from stairbot.errors import TerrainError

MAX_RISER_M = 0.30
"""Highest allowed riser (step height), metres."""
MIN_TREAD_M = 0.10
"""Shallowest allowed tread (step depth): a quadruped foothold with some margin, metres."""
MAX_TREAD_M = 1.0
MAX_NOSING_M = 0.05
BOX_MARGIN_M = 2.0
"""Tread boxes are `max_length_m + BOX_MARGIN_M` long: the DOWN start platform reaches at least this
far behind the spawn point, and the UP top landing this far past the end of the arena, metres."""
NOSING_THICKNESS_M = 0.025
"""Vertical thickness of a nosing box, metres."""
_EPS_M = 1e-9


class Direction(str, enum.Enum):
    """Which way the flight goes for a robot walking +x."""

    UP = "up"
    DOWN = "down"


def _check_number(key: str, value: object) -> float:
    """Return `value` as a float if it is a finite real number (numpy scalars included)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TerrainError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def max_steps_that_fit(tread_m: float, start_m: float, landing_m: float, max_length_m: float) -> int:
    """Largest `num_steps` with `start_m + (num_steps - 1) * tread_m + landing_m <= max_length_m`.

    Returns 0 when not even one step fits (start and landing alone are longer than the arena).
    """
    room_m = max_length_m - start_m - landing_m
    if room_m < -_EPS_M:
        return 0
    return math.floor(room_m / tread_m + 1e-9) + 1


def box_length_m(max_length_m: float) -> float:
    """Length in x (metres) of every tread box for an arena of `max_length_m`."""
    return max_length_m + BOX_MARGIN_M


@dataclass(frozen=True)
class StairSpec:
    """One straight flight of stairs; also the `stairs:` section of an env preset.

    All lengths in metres. Ranges (checked on construction, `TerrainError` otherwise):

    - `riser_m`: step height, (0, MAX_RISER_M = 0.30]. Flat ground is not a spec: the curriculum
      passes `riser_m=0.0` to `plan_flight` instead.
    - `tread_m`: step depth, [MIN_TREAD_M = 0.10, 1.0].
    - `num_steps`: number of risers, >= 1, and the flight must fit in the arena:
      `start_m + (num_steps - 1) * tread_m + landing_m <= max_length_m`.
    - `width_m`: [0.5, 10], centred on y = 0.
    - `landing_m`: length of the final landing (top landing going up, bottom going down), [0.5, 5].
    - `start_m`: distance from the spawn point (x = 0) to the first riser, [0.3, 5].
    - `nosing_m`: overhang of each tread over the riser below, [0, 0.05] and < tread_m / 2.
    - `direction`: `Direction.UP` or `Direction.DOWN` (a plain "up"/"down" string is converted).
    - `max_length_m`: length of the arena along x, > 0.
    - `riser_jitter_m`: each riser of an episode's flight is drawn from riser_m +- this (uniform);
      in [0, min(riser_m, MAX_RISER_M - riser_m)] so every riser stays in [0, MAX_RISER_M]. 0: none.
    - `tread_jitter_m`: each tread depth is drawn from tread_m +- this (uniform); in
      [0, min(tread_m - MIN_TREAD_M, MAX_TREAD_M - tread_m)], nosing_m < (tread_m - tread_jitter_m)
      / 2, and the flight must fit with every tread at its longest:
      `start_m + (num_steps - 1) * (tread_m + tread_jitter_m) + landing_m <= max_length_m`. 0: none.
    - `regular_fraction`: with jitter, the share of episodes whose flight is drawn without it (every
      riser and tread as specified, as in real buildings), in [0, 1]. A policy trained only on jittered
      flights climbed regular ones far worse (15 % against 80 % with the jitter, 0.15 m risers). The
      env draws it per reset (`StairClimbEnv`), only when it is above 0, so seeds keep their episodes.
    - `tread_range_m`: `[low, high]` or None (off). The env draws each episode's tread depth from
      U(low, high) and uses it in place of `tread_m` (jitter then varies each step around it), so one
      run trains on short and long treads alike. `tread_m` must lie in the range (it is the flight an
      episode without an rng gets), and every constraint above on `tread_m` must hold at both ends:
      low - tread_jitter_m >= MIN_TREAD_M, high + tread_jitter_m <= MAX_TREAD_M, nosing_m < (low -
      tread_jitter_m) / 2, and the flight must fit with (high + tread_jitter_m) treads.
    """

    riser_m: float = 0.10
    tread_m: float = 0.30
    num_steps: int = 6
    width_m: float = 2.0
    landing_m: float = 1.0
    start_m: float = 0.6
    nosing_m: float = 0.0
    direction: Direction = Direction.UP
    max_length_m: float = 8.0
    riser_jitter_m: float = 0.0
    tread_jitter_m: float = 0.0
    regular_fraction: float = 0.0
    tread_range_m: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        float_keys = (
            "riser_m",
            "tread_m",
            "width_m",
            "landing_m",
            "start_m",
            "nosing_m",
            "riser_jitter_m",
            "tread_jitter_m",
            "regular_fraction",
        )
        for key in (*float_keys, "max_length_m"):
            object.__setattr__(self, key, _check_number(key, getattr(self, key)))
        check_range("riser_m", self.riser_m, 0.0, MAX_RISER_M, low_open=True, unit="m", error=TerrainError)
        check_range("tread_m", self.tread_m, MIN_TREAD_M, MAX_TREAD_M, unit="m", error=TerrainError)
        check_range("regular_fraction", self.regular_fraction, 0.0, 1.0, error=TerrainError)
        check_range("width_m", self.width_m, 0.5, 10.0, unit="m", error=TerrainError)
        check_range("landing_m", self.landing_m, 0.5, 5.0, unit="m", error=TerrainError)
        check_range("start_m", self.start_m, 0.3, 5.0, unit="m", error=TerrainError)
        check_range("nosing_m", self.nosing_m, 0.0, MAX_NOSING_M, unit="m", error=TerrainError)
        most_riser_jitter = min(self.riser_m, MAX_RISER_M - self.riser_m)
        if not 0.0 <= self.riser_jitter_m <= most_riser_jitter + _EPS_M:
            raise TerrainError(
                f"riser_jitter_m must be in [0, {most_riser_jitter:g}] m for riser_m = {self.riser_m:g} m "
                f"(every riser riser_m +- riser_jitter_m must stay in [0, {MAX_RISER_M:g}] m), "
                f"got {self.riser_jitter_m!r}"
            )
        low_tread, high_tread = self._check_tread_range()
        most_tread_jitter = min(low_tread - MIN_TREAD_M, MAX_TREAD_M - high_tread)
        if not 0.0 <= self.tread_jitter_m <= most_tread_jitter + _EPS_M:
            nominal = (
                f"tread_m = {self.tread_m:g} m"
                if self.tread_range_m is None
                else f"tread_range_m = [{low_tread:g}, {high_tread:g}] m"
            )
            raise TerrainError(
                f"tread_jitter_m must be in [0, {most_tread_jitter:g}] m for {nominal} (every tread "
                f"+- tread_jitter_m must stay in [{MIN_TREAD_M:g}, {MAX_TREAD_M:g}] m), "
                f"got {self.tread_jitter_m!r}"
            )
        shortest_tread = low_tread - self.tread_jitter_m
        if self.nosing_m >= shortest_tread / 2:
            tread_text = "tread_m" if self.tread_range_m is None else "tread_range_m[0]"
            if self.tread_jitter_m:
                tread_text = f"({tread_text} - tread_jitter_m)"
            raise TerrainError(
                f"nosing_m must be in [0, {MAX_NOSING_M:g}] m and < {tread_text} / 2 = "
                f"{shortest_tread / 2:g} m, got {self.nosing_m!r}"
            )
        try:
            object.__setattr__(self, "direction", Direction(self.direction))
        except ValueError:
            raise TerrainError(
                f"direction must be one of {[d.value for d in Direction]}, got {self.direction!r}"
            ) from None
        if isinstance(self.num_steps, bool) or not isinstance(self.num_steps, numbers.Integral):
            raise TerrainError(f"num_steps must be an integer >= 1, got {self.num_steps!r}")
        object.__setattr__(self, "num_steps", int(self.num_steps))
        if self.max_length_m <= 0:
            raise TerrainError(f"max_length_m must be in (0, inf) m, got {self.max_length_m!r}")
        longest_tread = high_tread + self.tread_jitter_m
        most = max_steps_that_fit(longest_tread, self.start_m, self.landing_m, self.max_length_m)
        if most < 1:
            raise TerrainError(
                f"max_length_m must be >= start_m + landing_m = "
                f"{self.start_m + self.landing_m:g} m (room for at least one step), "
                f"got {self.max_length_m!r}"
            )
        if not 1 <= self.num_steps <= most:
            longest = "tread_m" if self.tread_range_m is None else "tread_range_m[1]"
            formula = longest
            if self.tread_jitter_m:
                longest, formula = f"{longest} + tread_jitter_m", f"({longest} + tread_jitter_m)"
            raise TerrainError(
                f"num_steps must be in [1, {most}] for {longest} = {longest_tread:g} m "
                f"(start_m + (num_steps - 1) * {formula} + landing_m <= max_length_m = "
                f"{self.max_length_m:g} m), got {self.num_steps!r}"
            )

    def _check_tread_range(self) -> tuple[float, float]:
        """The (shortest, longest) nominal tread an episode can draw, metres: `tread_range_m`
        checked (low <= tread_m <= high) or (tread_m, tread_m) without it."""
        if self.tread_range_m is None:
            return self.tread_m, self.tread_m
        if len(self.tread_range_m) != 2:
            raise TerrainError(f"tread_range_m must be [low, high] in metres, got {self.tread_range_m!r}")
        low = _check_number("tread_range_m[0]", self.tread_range_m[0])
        high = _check_number("tread_range_m[1]", self.tread_range_m[1])
        check_range("tread_range_m[0]", low, MIN_TREAD_M, MAX_TREAD_M, unit="m", error=TerrainError)
        check_range(
            "tread_range_m[1]", high, low, MAX_TREAD_M, unit="m (and >= tread_range_m[0])", error=TerrainError
        )
        if not low <= self.tread_m <= high:
            raise TerrainError(
                f"tread_m must lie in tread_range_m = [{low:g}, {high:g}] m (the tread of a flight planned "
                f"without an rng), got {self.tread_m!r}"
            )
        object.__setattr__(self, "tread_range_m", (low, high))
        return low, high

    @property
    def has_jitter(self) -> bool:
        """Whether episodes draw per-step risers or treads (`riser_jitter_m` or `tread_jitter_m` > 0)."""
        return self.riser_jitter_m > 0.0 or self.tread_jitter_m > 0.0

    @property
    def total_rise_m(self) -> float:
        """Height difference between the bottom and the top of the flight, metres."""
        return self.num_steps * self.riser_m

    @property
    def length_m(self) -> float:
        """Length used along x from the spawn point to the end of the final landing, metres."""
        return self.start_m + (self.num_steps - 1) * self.tread_m + self.landing_m


def riser_for_difficulty(difficulty: float, max_riser_m: float = 0.20) -> float:
    """Riser height (metres) for a curriculum difficulty: 0 -> flat ground, 1 -> max_riser_m.

    Linear in `difficulty`, which must be in [0, 1]; `max_riser_m` must be in (0, MAX_RISER_M].
    Raises `TerrainError` otherwise.
    """
    difficulty = _check_number("difficulty", difficulty)
    max_riser_m = _check_number("max_riser_m", max_riser_m)
    check_range("difficulty", difficulty, 0.0, 1.0, error=TerrainError)
    check_range("max_riser_m", max_riser_m, 0.0, MAX_RISER_M, low_open=True, unit="m", error=TerrainError)
    return difficulty * max_riser_m


def _frozen(a: ArrayLike) -> NDArray[np.float64]:
    arr = np.array(a, dtype=np.float64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Flight:
    """Geometry of one episode's flight: `spec` with its riser replaced by `riser_m`.

    Build it with `plan_flight`. All lengths in metres; n = `num_steps`. Arrays are read-only.

    Args (init only): step_risers_m, step_treads_m: per-step (n,) risers and (n - 1,) treads of a
        jittered flight (`plan_flight` draws them); None: every riser is `riser_m` and every tread
        `spec.tread_m`. Risers must be in [0, MAX_RISER_M], treads >= MIN_TREAD_M and > 2 *
        nosing_m, and the flight must fit the arena (`TerrainError` otherwise).

    Attributes:
        spec: the stair spec (tread, count, width, nosing, direction, arena length).
        riser_m: step height of this episode, [0, MAX_RISER_M]; 0 is flat ground (no box placed).
            With jitter, the nominal height the risers were drawn around.
        risers_m: (n,) height of each riser, in walking order (riser i stands at edges_x_m[i]);
            all `riser_m` without jitter. Always >= 0, whichever the direction.
        treads_m: (n - 1,) depth of each tread between two risers (edges_x_m[i + 1] -
            edges_x_m[i]); all `spec.tread_m` without jitter.
        total_rise_m: height difference between the bottom and the top (sum of `risers_m`).
        edges_x_m: (n,) x of each riser, increasing (the robot walks +x).
        top_heights_m: (n + 1,) surface height of each region: [0] for x < edge 0, [i] for
            [edge_{i-1}, edge_i), [n] after the last edge (the final landing).
        spawn_height_m: surface height at x = 0 (0 going up, n * riser_m going down).
        goal_x_m: x where the final landing begins (the last edge).
        end_x_m: x where the final landing, `landing_m` long, ends.
        box_length_m: x length of every tread box (`max_length_m + BOX_MARGIN_M`).
        tread_boxes_m: (k, 3) rows [x_min, x_max, z_top] of the tread boxes, k = n (or 0 when
            riser_m = 0). Each box spans |y| <= width_m / 2 and reaches below z = 0. Going down,
            row 0 is the start platform.
        nosing_boxes_m: (k, 3) rows [x_min, x_max, z_top] of the nosing boxes (NOSING_THICKNESS_M
            thick), k = n, or 0 when nosing_m = 0 or riser_m = 0.
    """

    spec: StairSpec
    riser_m: float
    step_risers_m: InitVar[ArrayLike | None] = None
    step_treads_m: InitVar[ArrayLike | None] = None
    risers_m: NDArray[np.float64] = field(init=False, repr=False)
    treads_m: NDArray[np.float64] = field(init=False, repr=False)
    total_rise_m: float = field(init=False)
    edges_x_m: NDArray[np.float64] = field(init=False, repr=False)
    top_heights_m: NDArray[np.float64] = field(init=False, repr=False)
    spawn_height_m: float = field(init=False)
    goal_x_m: float = field(init=False)
    end_x_m: float = field(init=False)
    box_length_m: float = field(init=False)
    tread_boxes_m: NDArray[np.float64] = field(init=False, repr=False)
    nosing_boxes_m: NDArray[np.float64] = field(init=False, repr=False)
    # [x_min, x_max) where the box union equals the step profile: going up, until the last box ends;
    # going down, from where the start platform begins (boxes are longer than the whole flight).
    _profile_x_m: tuple[float, float] = field(init=False, repr=False)

    def __post_init__(self, step_risers_m: ArrayLike | None, step_treads_m: ArrayLike | None) -> None:
        if not isinstance(self.spec, StairSpec):
            raise TypeError(f"spec must be a StairSpec, got {type(self.spec).__name__}")
        riser = _check_number("riser_m", self.riser_m)
        check_range("riser_m", riser, 0.0, MAX_RISER_M, unit="m", error=TerrainError)
        spec = self.spec
        n = spec.num_steps
        # Uniform risers / treads keep their closed forms (bit for bit what they were before jitter).
        if step_treads_m is None:
            treads = np.full(n - 1, spec.tread_m)
            edges = spec.start_m + spec.tread_m * np.arange(n, dtype=np.float64)
        else:
            treads = self._checked_treads(step_treads_m)
            edges = spec.start_m + np.concatenate([[0.0], np.cumsum(treads)])
        if step_risers_m is None:
            risers = np.full(n, riser)
            rise = riser * np.arange(n + 1, dtype=np.float64)  # height after i risers, i = 0 .. n
        else:
            risers = self._checked_risers(step_risers_m)
            rise = np.concatenate([[0.0], np.cumsum(risers)])
        total = float(rise[-1])
        length = box_length_m(spec.max_length_m)
        if spec.direction is Direction.UP:
            tops = rise
            tread_rows = [(e, e + length, tops[i + 1]) for i, e in enumerate(edges)]
            nosing_rows = [(e - spec.nosing_m, e, tops[i + 1]) for i, e in enumerate(edges)]
        else:
            tops = rise[::-1] if step_risers_m is None else total - rise
            # Row 0: the start platform, ending at edge 0. Row i >= 1: the tread at tops[i] that
            # ends at edge i. The last tread (height 0) is the ground plane.
            tread_rows = [(e - length, e, tops[i]) for i, e in enumerate(edges)]
            nosing_rows = [(e, e + spec.nosing_m, tops[i]) for i, e in enumerate(edges)]
        if total == 0.0:  # flat ground
            tread_rows, nosing_rows = [], []
        if spec.nosing_m == 0.0:
            nosing_rows = []
        set_ = object.__setattr__
        set_(self, "riser_m", riser)
        set_(self, "risers_m", _frozen(risers))
        set_(self, "treads_m", _frozen(treads))
        set_(self, "total_rise_m", total)
        set_(self, "edges_x_m", _frozen(edges))
        set_(self, "top_heights_m", _frozen(tops))
        set_(self, "box_length_m", length)
        set_(self, "tread_boxes_m", _frozen(np.reshape(tread_rows, (-1, 3))))
        set_(self, "nosing_boxes_m", _frozen(np.reshape(nosing_rows, (-1, 3))))
        profile = (
            (-np.inf, edges[-1] + length) if spec.direction is Direction.UP else (edges[0] - length, np.inf)
        )
        set_(self, "_profile_x_m", (float(profile[0]), float(profile[1])))
        set_(self, "goal_x_m", float(edges[-1]))
        set_(self, "end_x_m", float(edges[-1] + spec.landing_m))
        set_(self, "spawn_height_m", float(self.height_at(0.0)))

    def _checked_risers(self, values: ArrayLike) -> NDArray[np.float64]:
        risers = np.asarray(values, dtype=np.float64)
        n = self.spec.num_steps
        if risers.shape != (n,) or not np.all(np.isfinite(risers)):
            raise TerrainError(f"step_risers_m must be {n} finite numbers (one per riser), got {values!r}")
        if np.any(risers < 0.0) or np.any(risers > MAX_RISER_M):
            raise TerrainError(f"every riser must be in [0, {MAX_RISER_M:g}] m, got {risers.tolist()}")
        return risers

    def _checked_treads(self, values: ArrayLike) -> NDArray[np.float64]:
        spec = self.spec
        treads = np.asarray(values, dtype=np.float64)
        n = spec.num_steps
        if treads.shape != (n - 1,) or not np.all(np.isfinite(treads)):
            raise TerrainError(
                f"step_treads_m must be {n - 1} finite numbers (one per tread between risers), got {values!r}"
            )
        if np.any(treads < MIN_TREAD_M - _EPS_M) or np.any(treads <= 2 * spec.nosing_m):
            raise TerrainError(
                f"every tread must be >= {MIN_TREAD_M:g} m and > 2 * nosing_m = {2 * spec.nosing_m:g} m, "
                f"got {treads.tolist()}"
            )
        length = spec.start_m + float(treads.sum()) + spec.landing_m
        if length > spec.max_length_m + _EPS_M:
            raise TerrainError(
                f"start_m + sum(treads) + landing_m must be <= max_length_m = {spec.max_length_m:g} m, "
                f"got {length:g} m"
            )
        return treads

    # ---- spec pass-through --------------------------------------------------------------------
    @property
    def direction(self) -> Direction:
        return self.spec.direction

    @property
    def tread_m(self) -> float:
        """Nominal tread depth (`spec.tread_m`); the per-step depths are `treads_m`."""
        return self.spec.tread_m

    @property
    def jittered(self) -> bool:
        """Whether the risers or treads were drawn per step (the spec has jitter and an rng was given)."""
        return bool(np.any(self.risers_m != self.riser_m) or np.any(self.treads_m != self.tread_m))

    @property
    def num_steps(self) -> int:
        return self.spec.num_steps

    @property
    def width_m(self) -> float:
        return self.spec.width_m

    @property
    def nosing_m(self) -> float:
        return self.spec.nosing_m

    # ---- queries ------------------------------------------------------------------------------
    def height_at(
        self, x: ArrayLike, y: ArrayLike | None = None, *, include_nosing: bool = False
    ) -> NDArray[np.float64]:
        """Surface height (metres) at x (and y), broadcast over the shapes of x and y.

        Evaluates the union of the boxes and the ground plane (z = 0), so it is exactly what a ray
        cast straight down sees in the simulator. Region boundaries are half-open: at x == edge_i
        the height is that of the tread after the edge. Without `y` the point is taken on the
        centre line; with `y`, points with |y| > width_m / 2 are on the ground plane (0).
        Nosing boxes are ignored unless `include_nosing` is true.
        """
        xs = np.asarray(x, dtype=np.float64)
        if y is not None:
            ys = np.asarray(y, dtype=np.float64)
            xs, ys = np.broadcast_arrays(xs, ys)
        if not include_nosing and np.all((xs >= self._profile_x_m[0]) & (xs < self._profile_x_m[1])):
            # Fast path (this runs every control step): inside the span where the box union is the
            # step profile `top_heights_m`, the height is a lookup of the region index.
            heights = self.top_heights_m[np.searchsorted(self.edges_x_m, xs, side="right")]
        else:
            heights = self._box_union_height(xs, include_nosing)
        if y is not None:
            heights = np.where(np.abs(ys) <= self.width_m / 2, heights, 0.0)
        return heights

    def pitch_at(self, x_m: float, window_m: float = 0.5, samples: int = 9) -> float:
        """The surface's mean slope along +x around `x_m`, as an angle in rad (> 0: rising ahead).

        The least-squares line through `samples` heights evenly spread over [x_m - window_m / 2,
        x_m + window_m / 2] on the centre line: a staircase reads as its mean slope, atan(riser /
        tread) up to a ripple as edges enter and leave the window, and fades to 0 over a window
        length onto the landings.
        """
        xs = x_m + np.linspace(-window_m / 2, window_m / 2, samples)
        offsets = xs - x_m
        slope = float(np.dot(offsets, self.height_at(xs)) / np.dot(offsets, offsets))
        return math.atan(slope)

    def _box_union_height(self, xs: NDArray[np.float64], include_nosing: bool) -> NDArray[np.float64]:
        """Height of the union of the boxes and the ground plane at x (any x, slow)."""
        boxes = self.tread_boxes_m
        if include_nosing and len(self.nosing_boxes_m):
            boxes = np.concatenate([boxes, self.nosing_boxes_m])
        heights = np.zeros(xs.shape, dtype=np.float64)
        for x_min, x_max, z_top in boxes:
            inside = (xs >= x_min) & (xs < x_max)
            heights = np.where(inside, np.maximum(heights, z_top), heights)
        return heights

    def distance_to_edge_m(self, x: ArrayLike) -> NDArray[np.float64]:
        """Horizontal distance (m, >= 0) from each x to the nearest riser plane (`edges_x_m`), same
        shape as `x`: a foot this close to one stands on a tread's lip or against a riser's foot."""
        xs = np.asarray(x, dtype=np.float64)
        return np.min(np.abs(xs[..., None] - self.edges_x_m), axis=-1)

    def steps_crossed(self, x: ArrayLike) -> NDArray[np.int64]:
        """Number of risers with edge x <= x (0 .. num_steps), same shape as `x`."""
        xs = np.asarray(x, dtype=np.float64)
        return np.searchsorted(self.edges_x_m, xs, side="right").astype(np.int64)


def plan_flight(
    spec: StairSpec, riser_m: float | None = None, rng: np.random.Generator | None = None
) -> Flight:
    """Geometry of one episode's flight for `spec`, optionally with another riser height.

    `riser_m` (metres) replaces `spec.riser_m`; it may be 0.0 (flat ground, curriculum difficulty
    0) and must be in [0, MAX_RISER_M] (`TerrainError` otherwise).

    With `spec.riser_jitter_m` > 0 and an `rng`, each of the n risers is drawn from
    U(riser_m - j, riser_m + j), where j = min(riser_jitter_m, riser_m, MAX_RISER_M - riser_m): a
    `riser_m` override near 0 or MAX_RISER_M narrows the jitter so every riser stays in range (flat
    ground stays flat). With `spec.tread_jitter_m` > 0 and an `rng`, each of the n - 1 treads is
    drawn from U(tread_m - tread_jitter_m, tread_m + tread_jitter_m). Risers are drawn first, then
    treads; nothing is drawn for a jitter of 0, so a spec without jitter leaves `rng` untouched.
    Without `rng` the flight is the nominal (uniform) one.
    """
    riser = spec.riser_m if riser_m is None else _check_number("riser_m", riser_m)
    if rng is None or not spec.has_jitter:
        return Flight(spec=spec, riser_m=riser)
    check_range("riser_m", riser, 0.0, MAX_RISER_M, unit="m", error=TerrainError)
    n = spec.num_steps
    risers = treads = None
    if spec.riser_jitter_m > 0.0:
        jitter = max(0.0, min(spec.riser_jitter_m, riser, MAX_RISER_M - riser))
        risers = np.clip(rng.uniform(riser - jitter, riser + jitter, size=n), 0.0, MAX_RISER_M)
    if spec.tread_jitter_m > 0.0:
        jitter = spec.tread_jitter_m
        treads = rng.uniform(spec.tread_m - jitter, spec.tread_m + jitter, size=n - 1)
    return Flight(spec=spec, riser_m=riser, step_risers_m=risers, step_treads_m=treads)
