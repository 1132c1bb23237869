"""Two-proportion comparison against REFERENCES.md case 2 and hand formulas."""

import math

import pytest
from scipy import stats

from experiments.stats import ProportionStats, compare_proportions, relative_lift_independent

A = ProportionStats(n=1000, successes=200)
B = ProportionStats(n=1000, successes=250)


def compare(control, treatment, **kwargs):
    return compare_proportions(control, treatment, variant="B", baseline="A", **kwargs)


def test_reference_case_2_headline_numbers():
    result = compare(A, B)
    assert result.test == "two_proportion_z"
    assert result.difference == pytest.approx(0.05, rel=1e-9)
    assert result.p_value == pytest.approx(0.007420, rel=5e-4)
    # Newcombe (the statsmodels default), not Wald [0.01346, 0.08654]
    assert result.ci_low == pytest.approx(0.01340, rel=5e-4)
    assert result.ci_high == pytest.approx(0.08645, rel=5e-4)
    assert result.relative_lift == pytest.approx(0.25, rel=1e-9)
    assert result.relative_ci[0] == pytest.approx(0.04490, rel=5e-4)
    assert result.relative_ci[1] == pytest.approx(0.4551, rel=5e-4)
    assert result.chance_to_beat_control == pytest.approx(0.9916, rel=5e-4)
    assert result.significant is True
    assert result.p_value_adjusted == result.p_value
    assert result.note is None


def test_reference_case_2_relative_lift_delta_method():
    lift = relative_lift_independent(0.2, 0.2 * 0.8, 1000, 0.25, 0.25 * 0.75, 1000)
    assert lift.se == pytest.approx(0.1046, rel=5e-4)
    assert lift.p_value == pytest.approx(0.01692, rel=5e-4)


def test_p_value_is_the_pooled_z_test_by_hand():
    control, treatment = ProportionStats(843, 97), ProportionStats(811, 121)
    pa, pb = 97 / 843, 121 / 811
    pooled = (97 + 121) / (843 + 811)
    z = (pb - pa) / math.sqrt(pooled * (1 - pooled) * (1 / 843 + 1 / 811))
    result = compare(control, treatment)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    # chi-square without Yates correction is z squared: same p
    chi2 = stats.chi2_contingency([[97, 843 - 97], [121, 811 - 121]], correction=False)
    assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-9)


def test_not_significant_when_p_above_alpha():
    result = compare(ProportionStats(1000, 200), ProportionStats(1000, 210))
    assert result.p_value > 0.05
    assert result.significant is False
    assert result.ci_low < 0 < result.ci_high


def test_alpha_sets_the_interval_level():
    wide = compare(A, B, alpha=0.01)
    narrow = compare(A, B, alpha=0.05)
    assert wide.ci_low < narrow.ci_low and wide.ci_high > narrow.ci_high


@pytest.mark.parametrize(
    ("control", "treatment", "why"),
    [
        (ProportionStats(0, 0), ProportionStats(100, 10), "no customers in A"),
        (ProportionStats(100, 10), ProportionStats(0, 0), "no customers in B"),
        (ProportionStats(0, 0), ProportionStats(0, 0), "no customers in A"),
        (ProportionStats(100, 0), ProportionStats(120, 0), "no variance"),
        (ProportionStats(100, 100), ProportionStats(120, 120), "no variance"),
    ],
)
def test_degenerate_inputs_give_empty_comparison_with_reason(control, treatment, why):
    result = compare(control, treatment)
    assert result.difference is None and result.p_value is None and result.ci_low is None
    assert result.significant is False
    assert result.note.startswith("not enough data: ")
    assert why in result.note


def test_zero_control_rate_leaves_relative_lift_undefined():
    result = compare(ProportionStats(200, 0), ProportionStats(200, 12))
    assert result.difference == pytest.approx(0.06)
    assert result.p_value is not None and result.ci_low is not None
    assert result.relative_lift is None and result.relative_ci is None
    assert "relative lift undefined" in result.note
    # falls back to the absolute difference with the unpooled standard error
    se = math.sqrt(0.06 * 0.94 / 200)
    assert result.chance_to_beat_control == pytest.approx(stats.norm.cdf(0.06 / se), rel=1e-9)


def test_input_validation_rejects_more_successes_than_customers():
    with pytest.raises(ValueError):
        ProportionStats(n=10, successes=11)


def test_arms_without_spread_keep_the_test_but_not_the_lift():
    # 10/10 vs 0/10: the pooled test is defined, a delta-method lift is not
    result = compare(ProportionStats(10, 10), ProportionStats(10, 0))
    assert result.p_value == pytest.approx(2 * stats.norm.sf(math.sqrt(20)), rel=1e-9)
    assert result.relative_lift is None and result.chance_to_beat_control is None
    assert result.note == "relative lift undefined: no variance within the arms"
