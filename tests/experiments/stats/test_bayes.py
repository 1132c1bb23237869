"""Chance to beat control (normal approximation, flat prior)."""

import math

import pytest

from experiments.stats import chance_to_beat_control


def test_is_the_normal_cdf_of_diff_over_se():
    # Φ(1.959964) = 0.975, by the normal table
    assert chance_to_beat_control(1.959964, 1.0) == pytest.approx(0.975, rel=1e-6)
    assert chance_to_beat_control(0.0, 2.0) == 0.5
    assert chance_to_beat_control(-0.25, 0.10458250331675945) == pytest.approx(1 - 0.9916, rel=5e-3)


@pytest.mark.parametrize("se", [0.0, -1.0, math.inf, math.nan])
def test_undefined_without_a_positive_finite_se(se):
    assert chance_to_beat_control(0.1, se) is None


def test_undefined_for_non_finite_difference():
    assert chance_to_beat_control(math.nan, 1.0) is None
