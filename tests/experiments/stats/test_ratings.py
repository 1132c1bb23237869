"""Ratings: Mann–Whitney U from histograms equals scipy on the expanded ratings."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from experiments.stats import RatingHistogram, compare_ratings, mann_whitney_from_histograms

CONTROL = RatingHistogram((10, 15, 30, 25, 20))
TREATMENT = RatingHistogram((5, 10, 25, 35, 25))


def expand(histogram):
    values = np.arange(len(histogram.counts)) + histogram.first_value
    return np.repeat(values, histogram.counts).astype(float)


def scipy_mwu(a, b):
    return stats.mannwhitneyu(expand(a), expand(b), method="asymptotic", use_continuity=True)


def compare(control, treatment, **kwargs):
    return compare_ratings(control, treatment, variant="B", baseline="A", **kwargs)


def test_reference_case_5():
    u, p = mann_whitney_from_histograms(TREATMENT, CONTROL)
    assert u == pytest.approx(5812.5, rel=5e-4)
    assert p == pytest.approx(0.04056, rel=5e-4)
    result = compare(CONTROL, TREATMENT)
    assert result.test == "mann_whitney_u"
    assert result.p_value == pytest.approx(0.04056, rel=5e-4)
    assert result.significant is True


def test_difference_is_mean_rating_difference_with_welch_ci():
    result = compare(CONTROL, TREATMENT)
    a, b = expand(CONTROL), expand(TREATMENT)
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(usevar="unequal")
    assert result.difference == pytest.approx(b.mean() - a.mean(), rel=1e-12)
    assert result.ci_low == pytest.approx(low, rel=1e-9)
    assert result.ci_high == pytest.approx(high, rel=1e-9)
    assert result.relative_lift == pytest.approx((b.mean() - a.mean()) / a.mean(), rel=1e-12)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((1, 0, 0, 0, 9), (3, 3, 3, 3, 3)),
        ((0, 0, 50, 0, 0), (0, 1, 48, 1, 0)),
        ((100, 0, 0, 0, 0), (99, 1, 0, 0, 0)),
        ((2, 7, 1, 0, 40), (12, 4, 4, 4, 0)),
        ((30, 70), (45, 55)),
    ],
)
def test_matches_scipy_on_expanded_data(a, b):
    ha, hb = RatingHistogram(a), RatingHistogram(b)
    u, p = mann_whitney_from_histograms(ha, hb)
    expected = scipy_mwu(ha, hb)
    assert u == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_yes_no_answers_as_zero_one():
    control = RatingHistogram((70, 30), first_value=0)
    treatment = RatingHistogram((55, 45), first_value=0)
    result = compare(control, treatment)
    assert result.difference == pytest.approx(0.15)
    assert result.relative_lift == pytest.approx(0.5)
    assert result.p_value == pytest.approx(scipy_mwu(treatment, control).pvalue, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=5, max_size=5),
    st.lists(st.integers(0, 40), min_size=5, max_size=5),
)
def test_property_histogram_mwu_equals_scipy(a, b):
    ha, hb = RatingHistogram(tuple(a)), RatingHistogram(tuple(b))
    assume(ha.n > 0 and hb.n > 0)
    assume(len({v for v in np.r_[expand(ha), expand(hb)]}) > 1)
    u, p = mann_whitney_from_histograms(ha, hb)
    expected = scipy_mwu(ha, hb)
    assert u == pytest.approx(expected.statistic, rel=1e-12, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    ("control", "treatment", "why"),
    [
        (RatingHistogram((0, 0, 0, 0, 0)), TREATMENT, "no ratings in A"),
        (CONTROL, RatingHistogram((0, 0, 0, 0, 0)), "no ratings in B"),
        (RatingHistogram((0, 0, 0, 0, 1)), TREATMENT, "fewer than 2 ratings in A"),
        (RatingHistogram((0, 0, 9, 0, 0)), RatingHistogram((0, 0, 4, 0, 0)), "same"),
    ],
)
def test_degenerate_histograms_give_empty_comparison(control, treatment, why):
    result = compare(control, treatment)
    assert result.p_value is None and result.difference is None
    assert result.significant is False
    assert result.note.startswith("not enough data: ") and why in result.note


def test_no_spread_within_arms_keeps_p_value_but_no_interval():
    result = compare(RatingHistogram((0, 0, 10, 0, 0)), RatingHistogram((0, 0, 0, 0, 10)))
    assert result.difference == pytest.approx(2.0)
    assert result.p_value == pytest.approx(
        scipy_mwu(RatingHistogram((0, 0, 0, 0, 10)), RatingHistogram((0, 0, 10, 0, 0))).pvalue
    )
    assert result.ci_low is None and result.ci_high is None
    assert "no variance" in result.note
