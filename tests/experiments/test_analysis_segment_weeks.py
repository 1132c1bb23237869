"""The segment × week breakdown of the primary metric (``segments[].weekly``), checked against
statsmodels on counts written straight to the tables."""

import json
import uuid

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from experiments import analysis
from experiments.analysis import analysis_run
from experiments.models import Assignment, OutcomeEvent
from tests.experiments.analysis_data import T0, days, hours
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db

END = T0 + days(21)  # T0 is Monday 2 November 2026, 09:00 UTC: W45 is partial, W46/W47 complete


def customers(exp, variant: str, segment: str, day: int, n: int, accepted: int) -> None:
    """``n`` customers of ``segment`` assigned on day ``day``; the first ``accepted`` accept."""
    v = exp.variants.get(key=variant)
    at = T0 + days(day)
    prefix = f"{variant}-{segment}-{day}-{uuid.uuid4().hex[:6]}"
    Assignment.objects.bulk_create(
        Assignment(
            experiment=exp, variant=v, customer_id=f"{prefix}-{i}", segment=segment, assigned_at=at
        )
        for i in range(n)
    )
    OutcomeEvent.objects.bulk_create(
        OutcomeEvent(
            event_id=uuid.uuid4(),
            type="offer_accepted",
            customer_id=f"{prefix}-{i}",
            occurred_at=at + hours(1),
        )
        for i in range(accepted)
    )


# (segment, day, control n, control accepted, treatment n, treatment accepted)
CELLS = [
    ("gold", 1, 40, 8, 40, 18),  # W45
    ("gold", 8, 30, 6, 30, 9),  # W46
    ("gold", 15, 12, 3, 12, 3),  # W47
    ("silver", 2, 25, 5, 25, 5),  # W45; no silver customer in W46
    ("silver", 16, 20, 2, 20, 8),  # W47
]


@pytest.fixture
def result():
    exp = running_experiment("segweeks", started_at=T0)
    for segment, day, cn, ca, tn, ta in CELLS:
        customers(exp, "control", segment, day, cn, ca)
        customers(exp, "delay-24", segment, day, tn, ta)
    run = analysis_run(experiment=exp, at=END)
    assert run.status == run.RunStatus.SUCCEEDED, run.error
    return run.result


def segment(result: dict, name: str) -> dict:
    return next(s for s in result["segments"] if s["segment"] == name)


def week(entry: dict, name: str) -> dict:
    return next(w for w in entry["weekly"] if w["week"] == name)


def primary(part: dict) -> dict:
    (metric,) = part["metrics"]
    return metric


def test_segment_weeks_list_only_the_weeks_with_customers_and_the_primary_metric(result):
    gold, silver = segment(result, "gold"), segment(result, "silver")

    assert [w["week"] for w in gold["weekly"]] == ["2026-W45", "2026-W46", "2026-W47"]
    assert [w["week"] for w in silver["weekly"]] == ["2026-W45", "2026-W47"]
    assert [w["complete"] for w in gold["weekly"]] == [False, True, True]
    assert (week(gold, "2026-W46")["start"], week(gold, "2026-W46")["end"]) == (
        "2026-11-09",
        "2026-11-15",
    )
    for w in gold["weekly"] + silver["weekly"]:
        assert [m["metric"] for m in w["metrics"]] == ["acceptance_rate"]
    # The whole-window breakdown is as before: every metric, per segment.
    assert len(gold["metrics"]) == len(analysis.METRICS)
    json.dumps(result, allow_nan=False)


def test_a_segment_week_comparison_matches_statsmodels_on_that_cell_alone(result):
    metric = primary(week(segment(result, "gold"), "2026-W46"))
    (c,) = metric["comparisons"]

    # gold, W46: control 6 of 30 accepted, delay-24 9 of 30.
    _z, p = proportions_ztest([9, 6], [30, 30])
    low, high = confint_proportions_2indep(9, 30, 6, 30, compare="diff")
    assert [(v["variant"], v["n"]) for v in metric["variants"]] == [
        ("control", 30),
        ("delay-24", 30),
    ]
    assert metric["variants"][0]["value"] == pytest.approx(6 / 30)
    assert c["difference"] == pytest.approx(3 / 30, rel=1e-9)
    assert c["p_value"] == pytest.approx(p, rel=1e-6)
    assert (c["ci_low"], c["ci_high"]) == (pytest.approx(low, rel=1e-6), pytest.approx(high))
    assert c["relative_lift"] == pytest.approx(0.5, rel=1e-9)

    silver_w47 = primary(week(segment(result, "silver"), "2026-W47"))["comparisons"][0]
    _z, p = proportions_ztest([8, 2], [20, 20])
    assert silver_w47["difference"] == pytest.approx(6 / 20) and silver_w47["p_value"] == (
        pytest.approx(p, rel=1e-6)
    )


def test_segment_weeks_add_up_to_the_segment(result):
    for entry in result["segments"]:
        whole = {
            v["variant"]: (v["n"], v["value"] * v["n"])
            for v in next(m for m in entry["metrics"] if m["metric"] == "acceptance_rate")[
                "variants"
            ]
        }
        for variant, (n, accepted) in whole.items():
            parts = [
                next(v for v in primary(w)["variants"] if v["variant"] == variant)
                for w in entry["weekly"]
            ]
            assert sum(v["n"] for v in parts) == n
            assert sum(v["n"] * v["value"] for v in parts) == pytest.approx(accepted)
    expected_gold = sum(cn for s, _, cn, *_ in CELLS if s == "gold")
    assert sum(primary(w)["variants"][0]["n"] for w in segment(result, "gold")["weekly"]) == (
        expected_gold
    )


def test_small_segment_weeks_say_not_enough_data_instead_of_a_number(result):
    (c,) = primary(week(segment(result, "gold"), "2026-W47"))["comparisons"]
    assert c["difference"] is not None  # 12 per arm is enough

    exp = running_experiment("tiny", started_at=T0)
    customers(exp, "control", "gold", 8, 5, 1)
    customers(exp, "delay-24", "gold", 8, 5, 2)
    tiny = analysis_run(experiment=exp, at=END).result
    (c,) = primary(week(segment(tiny, "gold"), "2026-W46"))["comparisons"]
    assert c["difference"] is None and "fewer than 8" in c["note"]
    json.dumps(tiny, allow_nan=False)


def test_segments_beyond_the_cap_are_merged_under_other_week_by_week():
    exp = running_experiment("manysegs", started_at=T0)
    kept = analysis.MAX_SEGMENTS - 1
    for i in range(kept):  # larger segments, all kept by name
        for variant in ("control", "delay-24"):
            customers(exp, variant, f"s{i:02d}", 8, 12, 2)
    # Three small segments, in three different weeks, end up in "(other)".
    for name, day, n in (("t1", 1, 9), ("t2", 8, 10), ("t3", 9, 11)):
        customers(exp, "control", name, day, n, 1)
        customers(exp, "delay-24", name, day, n, 4)

    result = analysis_run(experiment=exp, at=END).result

    other = result["segments"][-1]
    assert other["segment"] == analysis.OTHER_SEGMENTS
    assert len(result["segments"]) == analysis.MAX_SEGMENTS
    assert [w["week"] for w in other["weekly"]] == ["2026-W45", "2026-W46"]
    w45, w46 = (primary(w) for w in other["weekly"])
    assert [v["n"] for v in w45["variants"]] == [9, 9]
    assert [v["n"] for v in w46["variants"]] == [21, 21]  # t2 and t3 added up
    _z, p = proportions_ztest([8, 2], [21, 21])
    assert w46["comparisons"][0]["p_value"] == pytest.approx(p, rel=1e-6)
    assert not any(s["segment"] in ("t1", "t2", "t3") for s in result["segments"])
