"""Small statistics for the reports: how far a success rate measured on a few episodes can be trusted."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95 % interval."""


def wilson_interval(successes: int, episodes: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a success rate, as fractions in [0, 1].

    Unlike the normal approximation it stays inside [0, 1] and is not zero-width at 0 or 100 %: 20 of
    20 successes give (0.84, 1.0), so "100 % over 20 episodes" is not evidence of more than 84 %.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if not 0 <= successes <= episodes:
        raise ValueError(f"successes must be in [0, {episodes}], got {successes}")
    p = successes / episodes
    z2 = z * z
    centre = (p + z2 / (2 * episodes)) / (1 + z2 / episodes)
    half = z * math.sqrt(p * (1 - p) / episodes + z2 / (4 * episodes * episodes)) / (1 + z2 / episodes)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference_interval(
    first: Sequence[bool], second: Sequence[bool], z: float = Z_95
) -> tuple[float, float] | None:
    """Interval of success rate(second) - success rate(first), as fractions, when both were measured
    on the same seeds (episode i of each had the same stairs and spawn); None under 2 pairs.

    Pairing makes the per-seed differences (each -1, 0 or 1) the quantity that varies: their mean
    +- z standard errors (normal approximation; rough below ~30 pairs). Seeds both runs pass or both
    fail add no spread. With 90 % success on both sides and independent failures the half width is
    about 19 points at 20 pairs, 12 at 50 and 8 at 100.
    """
    if len(first) != len(second):
        raise ValueError(f"paired samples differ in length: {len(first)} and {len(second)}")
    n = len(first)
    if n < 2:
        return None
    diffs = [float(b) - float(a) for a, b in zip(first, second, strict=True)]
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    half = z * math.sqrt(variance / n)
    return mean - half, mean + half
