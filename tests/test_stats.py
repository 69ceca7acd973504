"""stairbot.stats: the Wilson interval the reports put beside a success rate."""

from __future__ import annotations

import pytest

from stairbot.stats import wilson_interval


@pytest.mark.parametrize(
    ("successes", "episodes", "expected"),
    [
        # Reference values of the Wilson score interval at z = 1.96.
        (10, 20, (0.2993, 0.7007)),
        (0, 20, (0.0, 0.1611)),
        (20, 20, (0.8389, 1.0)),
        (69, 100, (0.5937, 0.7722)),
    ],
)
def test_wilson_interval_matches_reference_values(
    successes: int, episodes: int, expected: tuple[float, float]
) -> None:
    assert wilson_interval(successes, episodes) == pytest.approx(expected, abs=1e-4)


def test_wilson_interval_narrows_with_episodes() -> None:
    low20, high20 = wilson_interval(18, 20)
    low200, high200 = wilson_interval(180, 200)
    assert low20 < low200 < 0.9 < high200 < high20


@pytest.mark.parametrize(("successes", "episodes"), [(1, 0), (-1, 5), (6, 5)])
def test_wilson_interval_rejects_impossible_counts(successes: int, episodes: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        wilson_interval(successes, episodes)
