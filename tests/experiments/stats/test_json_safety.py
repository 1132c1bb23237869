"""Every comparison serialises to strict JSON: finite floats or null, never NaN/inf."""

import json

import pytest

from experiments.stats import (
    Comparison,
    CovariateStats,
    MeanStats,
    ProportionStats,
    RatingHistogram,
    TimeToEventStats,
    compare_means,
    compare_proportions,
    compare_ratings,
    compare_time_to_event,
    srm_check,
)

FIELDS = {
    "variant",
    "baseline",
    "difference",
    "ci_low",
    "ci_high",
    "relative_lift",
    "relative_ci",
    "p_value",
    "p_value_adjusted",
    "significant",
    "chance_to_beat_control",
    "test",
    "cuped",
    "note",
}

ONE_EVENT = TimeToEventStats((1.0,), (1,), (0,))
CENSORED = TimeToEventStats((1.0,), (0,), (5,))
LATE_EVENT = TimeToEventStats((2.0,), (1,), (0,))

CASES = [
    (compare_proportions, ProportionStats(0, 0), ProportionStats(0, 0)),
    (compare_proportions, ProportionStats(10, 0), ProportionStats(10, 10)),
    (compare_proportions, ProportionStats(1, 1), ProportionStats(1, 0)),
    (compare_proportions, ProportionStats(50, 0), ProportionStats(50, 5)),
    (compare_means, MeanStats(0, 0.0, 0.0), MeanStats(0, 0.0, 0.0)),
    (compare_means, MeanStats(1, 5.0, 25.0), MeanStats(3, 3.0, 5.0)),
    (compare_means, MeanStats(2, 1e308, 1e308), MeanStats(2, -1e308, 1e308)),
    (
        compare_means,
        MeanStats(5, 10.0, 30.0, CovariateStats(5.0, 5.0, 10.0)),
        MeanStats(5, 12.0, 40.0, CovariateStats(5.0, 5.0, 12.0)),
    ),
    (compare_ratings, RatingHistogram((0,) * 5), RatingHistogram((0,) * 5)),
    (compare_ratings, RatingHistogram((0, 0, 3, 0, 0)), RatingHistogram((0, 0, 0, 0, 3))),
    (compare_ratings, RatingHistogram((1, 0)), RatingHistogram((0, 1))),
    (compare_time_to_event, TimeToEventStats((), (), ()), TimeToEventStats((), (), ())),
    (compare_time_to_event, ONE_EVENT, ONE_EVENT),
    (compare_time_to_event, CENSORED, LATE_EVENT),
]


@pytest.mark.parametrize(("compare", "control", "treatment"), CASES)
def test_edge_cases_never_raise_and_serialise_strictly(compare, control, treatment):
    result = compare(control, treatment, variant="B", baseline="A")
    payload = result.to_dict()
    json.dumps(payload, allow_nan=False)
    assert set(payload) == FIELDS
    if result.p_value is None:
        assert result.significant is False and result.note


def test_non_finite_numbers_become_null():
    comparison = Comparison(
        variant="B",
        baseline="A",
        difference=float("nan"),
        ci_low=float("-inf"),
        ci_high=float("inf"),
        relative_lift=None,
        relative_ci=(float("nan"), 1.0),
        p_value=0.5,
        p_value_adjusted=0.5,
        significant=False,
        chance_to_beat_control=None,
        test="welch_t",
        cuped={"theta": float("nan"), "raw": {"difference": float("inf")}},
    )
    payload = comparison.to_dict()
    assert payload["difference"] is None and payload["ci_low"] is None
    assert payload["relative_ci"] == [None, 1.0]
    assert payload["cuped"] == {"theta": None, "raw": {"difference": None}}
    json.dumps(payload, allow_nan=False)


def test_srm_result_serialises():
    payload = srm_check({"A": 3, "B": 4}, {"A": 1, "B": 1}).to_dict()
    assert payload["passed"] is None and payload["p_value"] is None
    json.dumps(payload, allow_nan=False)
