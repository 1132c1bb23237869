"""CUPED against REFERENCES.md case 8 and a direct recomputation on raw data."""

import numpy as np
import pytest
from scipy import stats

from experiments.stats import CovariateStats, MeanStats, compare_means, cuped_theta

CONTROL = MeanStats(
    n=1000,
    sum=10000,
    sum_sq=115984,
    covariate=CovariateStats(sum_x=9500, sum_x2=104675.56, sum_xy=105629.36),
)
TREATMENT = MeanStats(
    n=1000,
    sum=10500,
    sum_sq=126234,
    covariate=CovariateStats(sum_x=9550, sum_x2=105628.06, sum_xy=110904.36),
)


def from_values(y, x=None):
    y = np.asarray(y, dtype=float)
    covariate = None
    if x is not None:
        x = np.asarray(x, dtype=float)
        covariate = CovariateStats(float(x.sum()), float((x * x).sum()), float((x * y).sum()))
    return MeanStats(len(y), float(y.sum()), float((y * y).sum()), covariate)


def compare(control, treatment, **kwargs):
    return compare_means(control, treatment, variant="B", baseline="A", **kwargs)


def test_reference_case_8_theta():
    assert cuped_theta([CONTROL, TREATMENT]) == pytest.approx(0.7372, rel=5e-4)


def test_reference_case_8_adjusted_and_raw_numbers():
    result = compare(CONTROL, TREATMENT)
    assert result.difference == pytest.approx(0.4631, rel=5e-4)
    assert result.cuped["se"] == pytest.approx(0.1277, rel=5e-4)
    assert result.ci_low == pytest.approx(0.2126, rel=5e-4)
    assert result.ci_high == pytest.approx(0.7137, rel=5e-4)
    assert result.p_value == pytest.approx(2.958e-04, rel=5e-4)
    assert result.cuped["theta"] == pytest.approx(0.7372, rel=5e-4)
    raw = result.cuped["raw"]
    assert raw["difference"] == pytest.approx(0.5000, rel=5e-4)
    assert raw["se"] == pytest.approx(0.1789, rel=5e-4)
    assert raw["ci_low"] < result.ci_low  # CUPED narrows the interval
    assert result.to_dict()["cuped"]["raw"]["difference"] == pytest.approx(0.5)


def test_adjustment_matches_direct_computation_on_raw_rows():
    rng = np.random.default_rng(11)
    n_a, n_b = 600, 650
    x_a = rng.gamma(2.0, 20.0, n_a)
    x_b = rng.gamma(2.0, 20.0, n_b)
    y_a = 0.8 * x_a + rng.normal(0, 10, n_a)
    y_b = 0.8 * x_b + 3 + rng.normal(0, 10, n_b)
    x_all, y_all = np.r_[x_a, x_b], np.r_[y_a, y_b]
    theta = np.cov(y_all, x_all, ddof=1)[0, 1] / np.var(x_all, ddof=1)
    adj_a, adj_b = y_a - theta * x_a, y_b - theta * x_b
    expected = stats.ttest_ind(adj_b, adj_a, equal_var=False)
    se = np.sqrt(adj_a.var(ddof=1) / n_a + adj_b.var(ddof=1) / n_b)

    result = compare(from_values(y_a, x_a), from_values(y_b, x_b))

    assert result.cuped["theta"] == pytest.approx(theta, rel=1e-8)
    assert result.difference == pytest.approx(adj_b.mean() - adj_a.mean(), rel=1e-8)
    assert result.cuped["se"] == pytest.approx(se, rel=1e-8)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    assert result.cuped["raw"]["p_value"] == pytest.approx(
        stats.ttest_ind(y_b, y_a, equal_var=False).pvalue, rel=1e-6
    )


def test_theta_pools_all_arms_when_passed():
    rng = np.random.default_rng(5)
    arms = []
    xs, ys = [], []
    for shift in (0.0, 1.0, 5.0):
        x = rng.normal(10 + shift, 3, 300)
        y = 2 * x + rng.normal(0, 4, 300)
        xs.append(x)
        ys.append(y)
        arms.append(from_values(y, x))
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    expected = np.cov(y_all, x_all)[0, 1] / np.var(x_all, ddof=1)
    theta = cuped_theta(arms)
    assert theta == pytest.approx(expected, rel=1e-8)
    result = compare(arms[0], arms[1], theta=theta)
    assert result.cuped["theta"] == pytest.approx(expected, rel=1e-8)


def test_covariate_without_variance_gives_plain_welch():
    y_a, y_b = np.arange(20.0), np.arange(20.0) + 2
    zeros = np.zeros(20)
    result = compare(from_values(y_a, zeros), from_values(y_b, zeros))
    assert result.cuped is None
    assert result.p_value == pytest.approx(stats.ttest_ind(y_b, y_a, equal_var=False).pvalue)


def test_covariate_on_one_arm_only_gives_plain_welch():
    y = np.arange(20.0)
    result = compare(from_values(y, y), from_values(y + 1))
    assert result.cuped is None
    assert cuped_theta([from_values(y, y), from_values(y + 1)]) is None


def test_relative_lift_se_matches_its_sampling_spread():
    # The delta-method se of (adjusted difference / control mean) should match the
    # spread of that estimate across repeated experiments.
    rng = np.random.default_rng(2024)
    n = 400
    lifts, ses = [], []
    for _ in range(600):
        x_a, x_b = rng.gamma(3.0, 5.0, n), rng.gamma(3.0, 5.0, n)
        y_a = 0.9 * x_a + rng.gamma(2.0, 3.0, n)
        y_b = 1.1 * (0.9 * x_b + rng.gamma(2.0, 3.0, n))
        result = compare(from_values(y_a, x_a), from_values(y_b, x_b))
        lifts.append(result.relative_lift)
        ci = result.relative_ci
        ses.append((ci[1] - ci[0]) / (2 * stats.t.ppf(0.975, 2 * n - 2)))
    assert np.mean(ses) == pytest.approx(np.std(lifts, ddof=1), rel=0.1)
