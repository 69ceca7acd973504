"""Evaluation conditions: the clean robot and stairs, or a preset's domain randomization.

A policy is evaluated (benchmark), watched (play) or filmed (record) in its own env preset, which
fixes what it observes and how it acts. The condition is layered on top as env overrides: clean
turns randomization and stair jitter off, a condition preset (e.g. `stairs_up_randomized`,
`stairs_up_stress`) brings its whole `randomization:` section and its stair jitter. Keeping the two
apart lets a policy trained under randomization be measured on the nominal robot, and a clean-trained
one be stressed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stairbot.envs.config import read_env_preset
from stairbot.errors import ConfigError

RANDOMIZED_PRESETS = {"up": "stairs_up_randomized", "down": "stairs_down_randomized"}
"""The condition presets of `--randomized` without PRESET, by direction."""
JITTER_KEYS = ("riser_jitter_m", "tread_jitter_m")
"""The `stairs:` keys a condition preset contributes (with its whole `randomization:` section)."""

Randomized = bool | str | Path | Mapping[str, str | Path]
"""False: clean; True: RANDOMIZED_PRESETS by direction; a preset (name or path) for every direction;
or a direction -> preset mapping."""


def _stairs_section(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    stairs = raw.get("stairs")
    return stairs if isinstance(stairs, Mapping) else {}


def condition_overrides(policy_preset: str | Path, condition_preset: str | Path | None) -> dict[str, Any]:
    """Env overrides for a condition: None is clean, otherwise the condition preset's randomization.

    Clean: stair jitter 0 and, if the policy's preset has a `randomization:` section, `{enabled:
    false}` in its place. A condition preset gives its whole `randomization:` section (replacing the
    policy's) and its `stairs.riser_jitter_m` / `stairs.tread_jitter_m` (0 where it has none); a
    preset that neither enables randomization nor jitters the stairs is a `ConfigError` (nothing to
    randomize).
    """
    policy_raw = read_env_preset(policy_preset)
    condition_raw = {} if condition_preset is None else read_env_preset(condition_preset)
    stairs = _stairs_section(condition_raw)
    randomization = condition_raw.get("randomization")
    enabled = isinstance(randomization, Mapping) and randomization.get("enabled") is True
    if condition_preset is not None and not enabled and not any(stairs.get(k) for k in JITTER_KEYS):
        raise ConfigError(
            f"condition preset '{condition_preset}' has neither `randomization: enabled: true` nor a "
            f"non-zero stairs.{' / stairs.'.join(JITTER_KEYS)}: there is nothing to randomize"
        )
    overrides: dict[str, Any] = {f"stairs.{key}": stairs.get(key, 0.0) for key in JITTER_KEYS}
    # The condition's, not the training's: a policy's env may drop the jitter in a share of episodes.
    overrides["stairs.regular_fraction"] = stairs.get("regular_fraction", 0.0)
    if randomization is not None:
        overrides["randomization"] = randomization
    elif "randomization" in policy_raw:
        overrides["randomization"] = {"enabled": False}
    return overrides


def condition_presets(randomized: Randomized, directions: Sequence[str]) -> dict[str, str]:
    """direction -> condition preset for a `randomized` argument other than False."""
    if randomized is True:
        chosen: Mapping[str, str | Path] = RANDOMIZED_PRESETS
    elif isinstance(randomized, Mapping):
        chosen = randomized
    elif isinstance(randomized, str | Path):
        chosen = dict.fromkeys(directions, randomized)
    else:
        raise ConfigError(
            f"randomized must be True, a preset or a direction -> preset mapping, got {randomized!r}"
        )
    missing = [d for d in directions if d not in chosen]
    if missing:
        raise ConfigError(f"no randomized preset for direction(s) {missing}")
    return {d: str(chosen[d]) for d in directions}


def direction_condition(policy_preset: str | Path, direction: str, randomized: Randomized) -> dict[str, Any]:
    """The env overrides of one direction's condition: clean when `randomized` is False."""
    if randomized is False:
        return condition_overrides(policy_preset, None)
    return condition_overrides(policy_preset, condition_presets(randomized, [direction])[direction])


def condition_name(randomized: Randomized, direction: str) -> str:
    """'clean', or 'randomized as <preset>' for the preset `direction_condition` uses."""
    if randomized is False:
        return "clean"
    return f"randomized as {condition_presets(randomized, [direction])[direction]}"
