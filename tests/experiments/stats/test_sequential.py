"""Safe peeking: asymptotic confidence sequences (Waudby-Smith et al., Theorem 2.2)."""

import math

import pytest
from scipy import optimize, stats

from experiments.stats import (
    CovariateStats,
    MeanStats,
    ProportionStats,
    compare_means,
    compare_proportions,
    confidence_sequence,
    confidence_sequence_means,
    confidence_sequence_proportions,
    optimal_rho2,
)


def paper_half_width(sigma, t, rho2, alpha):
    """Normal-mixture boundary as printed in the paper, for σ̂ per observation."""
    return sigma * math.sqrt(
        2 * (t * rho2 + 1) / (t**2 * rho2) * math.log(math.sqrt(t * rho2 + 1) / alpha)
    )


@pytest.mark.parametrize(("n_star", "alpha"), [(1_000, 0.05), (20_000, 0.05), (5_000, 0.01)])
def test_rho_minimises_the_width_at_n_star(n_star, alpha):
    found = optimize.minimize_scalar(
        lambda log_rho2: paper_half_width(1.0, n_star, math.exp(log_rho2), alpha),
        bounds=(-25, 5),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert optimal_rho2(n_star, alpha) == pytest.approx(math.exp(found.x), rel=1e-4)
    # the paper's closed-form approximation is close
    approx = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / n_star
    assert optimal_rho2(n_star, alpha) == pytest.approx(approx, rel=0.05)


@pytest.mark.parametrize("n", [10, 500, 4_000, 50_000])
def test_half_width_is_the_papers_boundary(n):
    se, n_star, alpha = 0.37, 4_000, 0.05
    interval = confidence_sequence(1.0, se, n, n_star=n_star, alpha=alpha)
    expected = paper_half_width(se * math.sqrt(n), n, optimal_rho2(n_star, alpha), alpha)
    assert interval.ci_high - 1.0 == pytest.approx(expected, rel=1e-12)
    assert 1.0 - interval.ci_low == pytest.approx(expected, rel=1e-12)
    # always wider than the fixed-horizon interval
    assert interval.multiplier > stats.norm.ppf(0.975)


def test_p_value_is_below_alpha_exactly_when_the_sequence_excludes_zero():
    se, n, n_star = 1.0, 3_000, 4_000
    boundary = confidence_sequence(0.0, se, n, n_star=n_star).multiplier * se
    at_edge = confidence_sequence(boundary, se, n, n_star=n_star)
    assert at_edge.p_value == pytest.approx(0.05, rel=1e-9)
    inside = confidence_sequence(boundary * 0.99, se, n, n_star=n_star)
    outside = confidence_sequence(boundary * 1.01, se, n, n_star=n_star)
    assert inside.p_value > 0.05 and not inside.excludes_zero
    assert outside.p_value < 0.05 and outside.excludes_zero
    assert confidence_sequence(0.0, se, n, n_star=n_star).p_value == 1.0


def test_undefined_without_standard_error():
    assert confidence_sequence(0.1, 0.0, 100, n_star=1000) is None
    assert confidence_sequence(0.1, 0.1, 0, n_star=1000) is None


def test_n_star_must_be_positive():
    with pytest.raises(ValueError, match="n_star"):
        optimal_rho2(0)


def test_compare_proportions_reports_the_sequence_and_keeps_fixed_numbers():
    control, treatment = ProportionStats(1000, 200), ProportionStats(1000, 250)
    fixed = compare_proportions(control, treatment, variant="B", baseline="A")
    peeking = compare_proportions(
        control, treatment, variant="B", baseline="A", sequential_n_star=4_000
    )
    interval = confidence_sequence_proportions(control, treatment, n_star=4_000)
    se = math.sqrt(0.2 * 0.8 / 1000 + 0.25 * 0.75 / 1000)
    assert interval.ci_high - 0.05 == pytest.approx(
        paper_half_width(se * math.sqrt(2000), 2000, optimal_rho2(4_000), 0.05), rel=1e-9
    )
    assert (peeking.ci_low, peeking.ci_high) == pytest.approx((interval.ci_low, interval.ci_high))
    assert peeking.p_value == pytest.approx(interval.p_value)
    assert peeking.ci_low < fixed.ci_low and peeking.ci_high > fixed.ci_high
    assert peeking.p_value > fixed.p_value
    assert peeking.significant is interval.excludes_zero
    assert peeking.test == "two_proportion_z"
    assert peeking.sequential["fixed"]["p_value"] == fixed.p_value
    assert peeking.sequential["n_star"] == 4_000
    assert "sequential" in peeking.to_dict() and "sequential" not in fixed.to_dict()


def test_compare_means_sequence_is_centred_on_the_cuped_estimate():
    control = MeanStats(1000, 10000, 115984, CovariateStats(9500, 104675.56, 105629.36))
    treatment = MeanStats(1000, 10500, 126234, CovariateStats(9550, 105628.06, 110904.36))
    fixed = compare_means(control, treatment, variant="B", baseline="A")
    peeking = compare_means(control, treatment, variant="B", baseline="A", sequential_n_star=2_000)
    interval = confidence_sequence_means(control, treatment, n_star=2_000)
    expected = paper_half_width(
        fixed.cuped["se"] * math.sqrt(2000), 2000, optimal_rho2(2_000), 0.05
    )
    assert peeking.difference == fixed.difference
    assert peeking.ci_high - peeking.difference == pytest.approx(expected, rel=1e-9)
    assert interval.ci_low == pytest.approx(peeking.ci_low)
    assert peeking.cuped is not None


def test_sequence_helpers_return_none_without_data():
    empty = ProportionStats(0, 0)
    assert confidence_sequence_proportions(empty, ProportionStats(5, 1), n_star=100) is None
    one = MeanStats(1, 3.0, 9.0)
    assert confidence_sequence_means(one, one, n_star=100) is None
