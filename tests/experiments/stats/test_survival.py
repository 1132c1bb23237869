"""Time to event: log-rank against REFERENCES.md case 6 and statsmodels on raw data."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from experiments.stats import (
    TimeToEventStats,
    compare_time_to_event,
    log_rank_test,
    median_time,
)

TIMES_1 = [3, 1, 2, 3, 2, 1, 5, 3]
EVENTS_1 = [0, 1, 1, 1, 0, 0, 1, 0]
TIMES_2 = [1, 1, 2, 3, 7, 1, 5, 3, 9]
EVENTS_2 = [0, 1, 0, 0, 1, 0, 1, 0, 1]


def from_rows(times, events):
    """Sufficient statistics (what SQL would return) from per-customer rows."""
    event_counts = Counter(t for t, e in zip(times, events, strict=True) if e)
    censor_counts = Counter(t for t, e in zip(times, events, strict=True) if not e)
    distinct = sorted(set(times))
    return TimeToEventStats(
        times=tuple(float(t) for t in distinct),
        events=tuple(event_counts[t] for t in distinct),
        censored=tuple(censor_counts[t] for t in distinct),
    )


def compare(control, treatment, **kwargs):
    return compare_time_to_event(control, treatment, variant="B", baseline="A", **kwargs)


def test_reference_case_6():
    chi2, p = log_rank_test(from_rows(TIMES_1, EVENTS_1), from_rows(TIMES_2, EVENTS_2))
    assert chi2 == pytest.approx(2.147, rel=5e-4)
    assert p == pytest.approx(0.1429, rel=5e-4)
    result = compare(from_rows(TIMES_1, EVENTS_1), from_rows(TIMES_2, EVENTS_2))
    assert result.test == "log_rank"
    assert result.p_value == pytest.approx(0.1429, rel=5e-4)
    assert result.significant is False


def test_median_difference_matches_statsmodels_kaplan_meier():
    rng = np.random.default_rng(8)
    t_a = np.round(rng.exponential(40, 300))
    t_b = np.round(rng.exponential(30, 300))
    e_a = (rng.random(300) < 0.8).astype(int)
    e_b = (rng.random(300) < 0.8).astype(int)
    result = compare(from_rows(t_a, e_a), from_rows(t_b, e_b))
    median_a = SurvfuncRight(t_a, e_a).quantile(0.5)
    median_b = SurvfuncRight(t_b, e_b).quantile(0.5)
    assert result.difference == pytest.approx(median_b - median_a)
    assert result.relative_lift == pytest.approx((median_b - median_a) / median_a)
    _, p_expected = survdiff(np.r_[t_a, t_b], np.r_[e_a, e_b], np.r_[[0] * 300, [1] * 300])
    assert result.p_value == pytest.approx(p_expected, rel=1e-9)
    assert result.ci_low is None and result.chance_to_beat_control is None


def test_median_is_first_time_survival_reaches_one_half():
    # S(1) = 3/4, S(2) = 1/2 exactly: the textbook median is 2 (statsmodels says 3, R 2.5)
    assert median_time(from_rows([1, 2, 3, 4], [1, 1, 1, 1])) == 2.0
    # S(0) = 7/8, S(1) = 7/8 · 4/7 = 1/2 (0.49999999999999994 in floats)
    rows = [0, 1, 1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 1, 1, 1]
    assert median_time(from_rows(*rows)) == 1.0
    # censorings shrink the risk set: S(2) = 2/3, then S(5) = 0
    assert median_time(from_rows([1, 2, 3, 5], [0, 1, 0, 1])) == 5.0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=1, max_size=25),
    st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=1, max_size=25),
)
def test_property_log_rank_and_median_equal_statsmodels(rows_a, rows_b):
    t_a = [float(t) for t, _ in rows_a]
    e_a = [int(e) for _, e in rows_a]
    t_b = [float(t) for t, _ in rows_b]
    e_b = [int(e) for _, e in rows_b]
    assume(sum(e_a) + sum(e_b) > 0)
    groups = np.r_[[0] * len(t_a), [1] * len(t_b)]
    try:
        chi2, p = survdiff(np.r_[t_a, t_b], np.r_[e_a, e_b], groups)
    except np.linalg.LinAlgError:  # statsmodels: zero variance
        chi2, p = np.nan, np.nan
    ours = log_rank_test(from_rows(t_a, e_a), from_rows(t_b, e_b))
    if not np.isfinite(chi2):
        assert ours is None
    else:
        assert ours.chi2 == pytest.approx(chi2, rel=1e-9, abs=1e-12)
        assert ours.p_value == pytest.approx(p, rel=1e-9, abs=1e-12)
    km = SurvfuncRight(np.array(t_a), np.array(e_a))
    if sum(e_a) and not np.any(np.isclose(km.surv_prob, 0.5, rtol=0, atol=1e-9)):
        expected = km.quantile(0.5)
        got = median_time(from_rows(t_a, e_a))
        assert (got is None and np.isnan(expected)) or got == expected


def test_median_not_reached_keeps_p_value_and_says_why():
    control = from_rows([1, 2, 3, 10, 10, 10, 10, 10], [1, 1, 1, 0, 0, 0, 0, 0])
    treatment = from_rows([1, 1, 1, 2, 2, 2, 3, 4], [1, 1, 1, 1, 1, 1, 1, 1])
    result = compare(control, treatment)
    assert median_time(control) is None
    assert result.difference is None and result.p_value is not None
    assert result.note == "median not reached in A"


@pytest.mark.parametrize(
    ("control", "treatment", "why"),
    [
        (TimeToEventStats((), (), ()), from_rows([1, 2], [1, 1]), "no customers in A"),
        (from_rows([1, 2], [1, 1]), TimeToEventStats((), (), ()), "no customers in B"),
        (from_rows([1, 2], [0, 0]), from_rows([3, 4], [0, 0]), "no events yet"),
    ],
)
def test_degenerate_inputs_give_empty_comparison(control, treatment, why):
    result = compare(control, treatment)
    assert result.p_value is None and result.difference is None
    assert result.significant is False
    assert result.note == f"not enough data: {why}"


def test_malformed_input_is_rejected():
    with pytest.raises(ValueError):
        TimeToEventStats(times=(1.0, 2.0), events=(1,), censored=(0, 0))
