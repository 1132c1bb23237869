"""Welch comparison of means against REFERENCES.md case 3 and scipy on raw data."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from experiments.stats import MeanStats, compare_means, sample_variance


def from_summary(mean, sd, n):
    return MeanStats(n=n, sum=mean * n, sum_sq=(n - 1) * sd**2 + n * mean**2)


def from_values(values):
    values = np.asarray(values, dtype=float)
    return MeanStats(n=len(values), sum=float(values.sum()), sum_sq=float((values**2).sum()))


def compare(control, treatment, **kwargs):
    return compare_means(control, treatment, variant="B", baseline="A", **kwargs)


def test_reference_case_3_welch():
    result = compare(from_summary(10.0, 4.0, 500), from_summary(10.6, 5.0, 480))
    assert result.test == "welch_t"
    assert result.difference == pytest.approx(0.6, rel=1e-9)
    assert result.p_value == pytest.approx(0.03881, rel=5e-4)
    assert result.ci_low == pytest.approx(0.03092, rel=5e-4)
    assert result.ci_high == pytest.approx(1.169, rel=5e-4)
    assert result.significant is True
    assert result.cuped is None


def test_matches_scipy_and_statsmodels_on_raw_data():
    rng = np.random.default_rng(7)
    a = rng.lognormal(3.0, 1.0, 400)
    b = rng.lognormal(3.1, 1.2, 350)
    result = compare(from_values(a), from_values(b))
    expected = stats.ttest_ind(b, a, equal_var=False)
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(usevar="unequal")
    assert result.difference == pytest.approx(b.mean() - a.mean(), rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    assert result.ci_low == pytest.approx(low, rel=1e-6)
    assert result.ci_high == pytest.approx(high, rel=1e-6)
    rel = (b.mean() - a.mean()) / a.mean()
    assert result.relative_lift == pytest.approx(rel, rel=1e-9)
    assert result.relative_ci[0] < rel < result.relative_ci[1]


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
def test_one_arm_without_variance_still_compares():
    result = compare(from_values([5.0] * 30), from_values(np.arange(30.0)))
    expected = stats.ttest_ind(np.arange(30.0), [5.0] * 30, equal_var=False)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6)


def test_variance_from_sums_survives_a_large_offset():
    # values 1e6 + {0,1,2,...}: SS − S²/n cancels ~12 digits but must still be right
    rng = np.random.default_rng(3)
    values = 1e6 + rng.integers(0, 10, 1000).astype(float)
    stats_ = from_values(values)
    assert sample_variance(stats_.n, stats_.sum, stats_.sum_sq) == pytest.approx(
        np.var(values, ddof=1), rel=1e-4
    )


def test_cancellation_noise_is_reported_as_zero_variance_not_negative():
    # constant 1e9: float64 sums give a tiny negative or positive SS − S²/n
    value = 123456789.123
    stats_ = MeanStats(n=3, sum=3 * value, sum_sq=value**2 + value**2 + value**2 * (1 + 1e-15))
    assert sample_variance(stats_.n, stats_.sum, stats_.sum_sq) == 0.0
    result = compare(stats_, stats_)
    assert result.p_value is None and "no variance" in result.note


@pytest.mark.parametrize(
    ("control", "treatment", "why"),
    [
        (MeanStats(0, 0.0, 0.0), from_values([1.0, 2.0, 3.0]), "no customers in A"),
        (from_values([1.0, 2.0, 3.0]), MeanStats(0, 0.0, 0.0), "no customers in B"),
        (from_values([1.0]), from_values([1.0, 2.0, 3.0]), "fewer than 2 customers in A"),
        (from_values([4.0, 4.0]), from_values([4.0, 4.0, 4.0]), "no variance"),
        (from_values([0.0] * 10), from_values([3.0] * 10), "no variance"),
        (MeanStats(5, float("nan"), float("nan")), from_values([1.0, 2.0]), "not finite"),
    ],
)
def test_degenerate_inputs_give_empty_comparison_with_reason(control, treatment, why):
    result = compare(control, treatment)
    assert result.difference is None and result.p_value is None
    assert result.significant is False
    assert result.note == f"not enough data: {why}" or why in result.note


def test_zero_control_mean_leaves_relative_lift_undefined():
    result = compare(from_values([-1.0, 1.0, -2.0, 2.0]), from_values([1.0, 2.0, 3.0, 4.0]))
    assert result.p_value is not None
    assert result.relative_lift is None and result.relative_ci is None
    assert "relative lift undefined" in result.note
