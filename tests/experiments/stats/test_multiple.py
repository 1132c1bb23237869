"""Holm adjustment against REFERENCES.md case 7 (hand computation)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from experiments.stats import ProportionStats, apply_holm, compare_proportions, holm

P = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
HOLM = [0.01, 0.072, 0.312, 0.312, 0.312, 0.312, 0.312, 0.615, 0.615, 0.615]


def test_reference_case_7():
    assert holm(P) == pytest.approx(HOLM, rel=5e-4)


def test_order_is_kept_and_none_passes_through():
    shuffled = [P[3], None, P[0], P[9], float("nan")]
    # three real tests: 0.001·3, 0.041·2, 0.216·1 (monotone step-down)
    assert holm(shuffled) == [pytest.approx(0.082), None, pytest.approx(0.003), 0.216, None]


def test_empty_input():
    assert holm([]) == []
    assert holm([None]) == [None]


def hand_holm(p_values):
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def test_apply_holm_sets_adjusted_p_and_significance():
    control = ProportionStats(1000, 100)
    comparisons = [
        compare_proportions(control, ProportionStats(1000, s), variant=v, baseline="A")
        for v, s in (("B", 128), ("C", 132), ("D", 130))
    ]
    assert all(c.significant for c in comparisons)  # each alone at 0.05
    expected = hand_holm([c.p_value for c in comparisons])
    adjusted = apply_holm(comparisons, alpha=0.05)
    assert [c.p_value_adjusted for c in adjusted] == pytest.approx(expected, rel=1e-12)
    assert [c.p_value for c in adjusted] == [c.p_value for c in comparisons]
    assert [c.significant for c in adjusted] == [p < 0.05 for p in expected]
    assert not all(c.significant for c in adjusted)  # Holm removes at least one


def test_apply_holm_leaves_missing_p_values_insignificant():
    empty = compare_proportions(
        ProportionStats(0, 0), ProportionStats(10, 1), variant="B", baseline="A"
    )
    (result,) = apply_holm([empty])
    assert result.p_value_adjusted is None and result.significant is False


def test_a_single_test_is_not_adjusted():
    # Holm with one test leaves its p-value unchanged (statsmodels agrees).
    assert holm([0.0312]) == [pytest.approx(0.0312, rel=1e-12)]
    assert holm([None, 0.7, None]) == [None, pytest.approx(0.7, rel=1e-12), None]


@pytest.mark.parametrize(
    "p_values",
    [[0.04, 0.01, 0.03], [0.5, 0.5], [0.9], [0.0004, 0.2, 0.01, 0.04], [0.9, 0.8, 0.7]],
)
def test_holm_equals_statsmodels_multipletests(p_values):
    _, expected, _, _ = multipletests(p_values, method="holm")
    assert holm(p_values) == pytest.approx(list(expected), rel=1e-12)
    padded = holm([None, *p_values, None])
    assert padded[0] is None and padded[-1] is None
    assert padded[1:-1] == pytest.approx(list(expected), rel=1e-12)


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=12))
def test_holm_equals_statsmodels_for_any_p_values(p_values):
    _, expected, _, _ = multipletests(p_values, method="holm")
    assert holm(p_values) == pytest.approx(list(expected), rel=1e-9, abs=1e-15)
