"""Sample ratio mismatch against REFERENCES.md case 4."""

import pytest
from scipy import stats

from experiments.stats import srm_check


def test_reference_case_4_two_arms_not_flagged_at_0_001():
    result = srm_check({"A": 50_000, "B": 51_000}, {"A": 1, "B": 1})
    assert result.chi2 == pytest.approx(9.901, rel=5e-4)
    assert result.p_value == pytest.approx(0.001652, rel=5e-4)
    assert result.passed is True
    assert result.expected == {"A": 50_500, "B": 50_500}


def test_reference_case_4_three_arms_with_unequal_weights():
    result = srm_check({"A": 4150, "B": 2950, "C": 2900}, {"A": 40, "B": 30, "C": 30})
    assert result.chi2 == pytest.approx(9.792, rel=5e-4)
    assert result.p_value == pytest.approx(0.007478, rel=5e-4)
    assert result.passed is True


def test_mismatch_is_flagged_with_the_worst_variant_named():
    result = srm_check({"A": 1000, "B": 850}, {"A": 1, "B": 1})
    assert result.p_value == pytest.approx(stats.chisquare([1000, 850]).pvalue, rel=1e-9)
    assert result.p_value < 0.001
    assert result.passed is False
    assert "8% fewer customers than expected in B" in result.note


def test_threshold_is_configurable():
    result = srm_check({"A": 50_000, "B": 51_000}, {"A": 1, "B": 1}, threshold=0.01)
    assert result.passed is False


@pytest.mark.parametrize("counts", [{"A": 7, "B": 30}, {"A": 0, "B": 0}, {"A": 100, "B": 3}])
def test_pending_until_every_variant_has_8_customers(counts):
    result = srm_check(counts, {"A": 1, "B": 1})
    assert result.passed is None and result.p_value is None
    assert result.note.startswith("not enough data: fewer than 8 customers")


def test_single_variant_is_pending():
    result = srm_check({"A": 100}, {"A": 1})
    assert result.passed is None


def test_variant_sets_must_agree():
    with pytest.raises(ValueError, match="different variants"):
        srm_check({"A": 10, "B": 10}, {"A": 1, "C": 1})


def test_weights_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        srm_check({"A": 10, "B": 10}, {"A": 1, "B": 0})
