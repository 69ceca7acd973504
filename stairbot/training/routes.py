"""Which teacher labels an episode of a distillation: routes on the episode's reset info.

A route is a set of conditions on what an episode drew at reset (`StairClimbEnv.reset`'s info) and
the teacher (a POLICY string) that labels the episodes meeting all of them. `distill` tries the
routes in order, and the first that matches labels the episode; no match leaves it to the default
teacher. Conditions are written `key=value` separated by commas, e.g. `direction=up,min_riser_m=0.14`:

- `randomized`: `true` or `false`, whether the episode's robot and ground are randomized
  (`info["randomization"]["randomized"]`; an env without randomization draws none: `false`);
- `direction`: `up` or `down`;
- `min_riser_m` / `max_riser_m`: the flight's nominal riser in m, at least / below this;
- `min_tread_m` / `max_tread_m`: the same for its nominal tread.

Route on what the student can see where its teachers act differently: the riser, tread and
direction are in its height scan, a randomized robot only partly in its observation history, so a
student of two teachers that split on `randomized` learns a blend where it cannot tell (measured in
docs/experiments.md, "Distillation").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from stairbot.errors import ConfigError
from stairbot.terrain.stairs import Direction

DEFAULT_ROUTE = "default"


@dataclass(frozen=True)
class Route:
    """Episodes labelled by `teacher`: every condition that is not None must hold (see module)."""

    teacher: str
    randomized: bool | None = None
    direction: str | None = None
    min_riser_m: float | None = None
    max_riser_m: float | None = None
    min_tread_m: float | None = None
    max_tread_m: float | None = None

    @property
    def conditions(self) -> str:
        """The route's name in records: its conditions as `key=value,...`, one spelling per route."""
        return ",".join(
            f"{f.name}={_text(getattr(self, f.name))}"
            for f in fields(self)
            if f.name != "teacher" and getattr(self, f.name) is not None
        )

    @classmethod
    def parse(cls, conditions: str, teacher: str) -> Route:
        """A route from `key=value,key=value` (see the module docstring) and a POLICY string."""
        allowed = [f.name for f in fields(cls) if f.name != "teacher"]
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in conditions.split(","))):
            key, sep, text = item.partition("=")
            key, text = key.strip(), text.strip()
            if not sep or key not in allowed:
                raise ConfigError(
                    f"route condition {item!r}: write key=value with key one of {', '.join(allowed)}"
                )
            if key in values:
                raise ConfigError(f"route condition {key!r} is given twice in {conditions!r}")
            values[key] = _value(key, text)
        if not values:
            raise ConfigError(
                f"route {conditions!r} has no condition; give the teacher of every other episode as "
                "--teacher instead"
            )
        for low, high in (("min_riser_m", "max_riser_m"), ("min_tread_m", "max_tread_m")):
            if low in values and high in values and values[low] >= values[high]:
                raise ConfigError(f"route {conditions!r}: {low} must be below {high}")
        return cls(teacher=teacher, **values)

    def matches(self, info: dict[str, Any]) -> bool:
        """Whether an episode with this reset info is this route's."""
        if self.randomized is not None and episode_randomized(info) != self.randomized:
            return False
        if self.direction is not None and info["direction"] != self.direction:
            return False
        riser, tread = float(info["riser_m"]), float(info["tread_m"])
        return (
            (self.min_riser_m is None or riser >= self.min_riser_m)
            and (self.max_riser_m is None or riser < self.max_riser_m)
            and (self.min_tread_m is None or tread >= self.min_tread_m)
            and (self.max_tread_m is None or tread < self.max_tread_m)
        )


def episode_randomized(info: dict[str, Any]) -> bool:
    """Whether the episode with this reset info drew a randomized robot and ground."""
    randomization = info.get("randomization")
    return bool(randomization and randomization.get("randomized", True))


def route_of(routes: Sequence[Route], info: dict[str, Any]) -> str:
    """The name (`Route.conditions`) of the first route matching the episode, or DEFAULT_ROUTE."""
    for route in routes:
        if route.matches(info):
            return route.conditions
    return DEFAULT_ROUTE


def _value(key: str, text: str) -> bool | str | float:
    if key == "randomized":
        if text.lower() not in ("true", "false"):
            raise ConfigError(f"route condition randomized must be true or false, got {text!r}")
        return text.lower() == "true"
    if key == "direction":
        allowed = [d.value for d in Direction]
        if text not in allowed:
            raise ConfigError(f"route condition direction must be one of {', '.join(allowed)}, got {text!r}")
        return text
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number >= 0.0):
        raise ConfigError(f"route condition {key} must be a length in m, at least 0, got {text!r}")
    return number


def _text(value: bool | str | float) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else value
