"""Exceptions raised for bad user input.

Every message says what was wrong and what is allowed, so a user can fix a preset, a command line or
a robot description without reading the source.
"""

from __future__ import annotations


class StairbotError(Exception):
    """Base class of all errors stairbot raises on purpose."""


class ConfigError(StairbotError, ValueError):
    """A preset, recipe or override has an unknown key or a value outside its allowed range."""


class RobotSpecError(ConfigError):
    """A robot spec disagrees with its URDF (a joint or link it names is missing) or is malformed."""


class TerrainError(ConfigError):
    """A stair specification is out of range (non-positive riser, tread too short, too many steps)."""
