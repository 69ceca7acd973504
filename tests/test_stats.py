"""stairbot.stats: the Wilson interval the reports put beside a success rate."""

from __future__ import annotations

import pytest

from stairbot.stats import Z_95, paired_difference_interval, wilson_interval


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


def test_paired_difference_interval_spreads_only_over_discordant_seeds() -> None:
    # Differences 0, -1, 0, +1: mean 0, sample variance 2/3.
    low, high = paired_difference_interval([True, True, True, False], [True, False, True, True]) or (0, 0)
    half = Z_95 * (2 / 3 / 4) ** 0.5
    assert (low, high) == pytest.approx((-half, half))
    # Agreement on every seed: a difference of exactly zero, whatever the success rate.
    assert paired_difference_interval([True, False] * 10, [True, False] * 10) == pytest.approx((0.0, 0.0))
    # Second always one seed better out of 4: mean +0.25.
    low, high = paired_difference_interval([False, True, True, True], [True, True, True, True]) or (0, 0)
    assert low < 0.25 < high and (low + high) / 2 == pytest.approx(0.25)


def test_paired_difference_interval_needs_two_equal_length_samples() -> None:
    assert paired_difference_interval([True], [False]) is None
    with pytest.raises(ValueError, match="differ in length: 2 and 3"):
        paired_difference_interval([True, True], [True, True, False])
