"""Scale-readiness rules on analysis results built by hand in the contract shape."""

from datetime import UTC, datetime

import pytest

from experiments.readiness import (
    CRITERIA,
    ReadinessSettings,
    evaluate,
    readiness_for_run,
)
from tests.experiments.readiness_results import (
    acceptance,
    cart_abandonment,
    comparison,
    csat,
    drop_metric,
    healthy_result,
    intrusiveness,
    metric,
    not_enough,
    replace_metric,
    return_rate,
    segment,
    week,
)

PILOT = ReadinessSettings(traffic_percent=10.0)
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def report(result, cfg=PILOT):
    return evaluate(result, cfg, generated_at=NOW)


def criterion(readiness, key):
    return next(c for c in readiness["criteria"] if c["key"] == key)


def statuses(readiness):
    return {c["key"]: c["status"] for c in readiness["criteria"]}


# --- the whole report ---------------------------------------------------------------------------


def test_healthy_pilot_is_ready_to_scale_and_says_raise_traffic():
    readiness = report(healthy_result())

    assert readiness["verdict"] == "ready_to_scale"
    assert readiness["recommended_variant"] == "B"
    assert readiness["next_step"] == "raise traffic from 10 % to 50 %"
    assert set(statuses(readiness).values()) == {"pass"}
    assert readiness["experiment"] == "pp-email-timing"
    assert readiness["generated_at"] == "2026-11-22T10:00:00Z"


def test_report_has_exactly_the_design_keys_and_nine_criteria_in_order():
    readiness = report(healthy_result())

    assert set(readiness) == {
        "experiment",
        "verdict",
        "recommended_variant",
        "criteria",
        "next_step",
        "generated_at",
    }
    assert [c["key"] for c in readiness["criteria"]] == [
        "min_duration",
        "sample_size",
        "srm",
        "acceptance_above_baseline",
        "consistency",
        "return_rate",
        "customer_feedback",
        "segments",
        "guardrails",
    ]
    assert list(CRITERIA) == [c["key"] for c in readiness["criteria"]]
    for c in readiness["criteria"]:
        assert set(c) == {"key", "status", "detail"}
        assert c["detail"].endswith(".")


def test_primary_evidence_reads_like_the_issue_example():
    detail = criterion(report(healthy_result()), "acceptance_above_baseline")["detail"]

    assert detail.startswith(
        "B's acceptance rate is 11.8 % vs 9.6 % for A (+2.2 pts, 95 % CI +0.9 to +3.5 pts, "
        "p = 0.001)"
    )
    assert "significantly better" in detail


@pytest.mark.parametrize(
    ("traffic", "step"),
    [
        (5.0, "raise traffic from 5 % to 10 %"),
        (20.0, "raise traffic from 20 % to 50 %"),
        (50.0, "raise traffic from 50 % to 100 %"),
        (100.0, "ship B to every customer and stop the experiment"),
    ],
)
def test_next_step_of_a_ready_experiment_climbs_the_traffic_ladder(traffic, step):
    readiness = report(healthy_result(), ReadinessSettings(traffic_percent=traffic))

    assert readiness["next_step"] == step


# --- min_duration -------------------------------------------------------------------------------


def test_short_run_is_pending_and_keeps_testing_with_days_left():
    result = healthy_result()
    result["experiment_info"]["days_running"] = 9.2

    readiness = report(result)

    c = criterion(readiness, "min_duration")
    assert c["status"] == "pending"
    assert "Ran 9 of the 14 days" in c["detail"]
    assert readiness["verdict"] == "keep_testing"
    assert readiness["next_step"] == "about 5 more days at today's traffic"


def test_min_duration_follows_the_experiment_setting():
    result = healthy_result()
    result["experiment_info"]["days_running"] = 9.2

    readiness = report(result, ReadinessSettings(traffic_percent=10, min_days=7))

    assert criterion(readiness, "min_duration")["status"] == "pass"
    assert readiness["verdict"] == "ready_to_scale"


def test_experiment_not_started_is_pending_not_an_error():
    result = healthy_result()
    result["experiment_info"]["days_running"] = None

    c = criterion(report(result), "min_duration")

    assert c["status"] == "pending"
    assert "not started" in c["detail"]


# --- sample_size and the GrowthBook-style gate --------------------------------------------------


def _short_of_sample(result, days_remaining=7.6):
    result["power"].update(current_min_per_variant=2000, days_remaining=days_remaining)
    return result


def test_significant_winner_before_planned_sample_keeps_testing():
    readiness = report(_short_of_sample(healthy_result()))

    c = criterion(readiness, "sample_size")
    assert c["status"] == "pending"
    assert "2,000 of 3,843" in c["detail"]
    assert "52 %" in c["detail"]
    assert readiness["verdict"] == "keep_testing"
    assert readiness["next_step"] == "about 8 more days at today's traffic"
    # The winner is still named: it is the one to keep watching.
    assert readiness["recommended_variant"] == "B"


def test_safe_peeking_lifts_the_sample_size_gate():
    cfg = ReadinessSettings(traffic_percent=10, safe_peeking=True)

    readiness = report(_short_of_sample(healthy_result()), cfg)

    assert criterion(readiness, "sample_size")["status"] == "pass"
    assert "Safe peeking" in criterion(readiness, "sample_size")["detail"]
    assert readiness["verdict"] == "ready_to_scale"


def test_months_to_go_suggests_raising_traffic_instead_of_waiting():
    readiness = report(_short_of_sample(healthy_result(), days_remaining=120.2))

    assert readiness["next_step"] == (
        "raise traffic from 10 % to 50 %: at today's traffic the planned sample needs about "
        "121 more days"
    )


def test_no_planned_sample_size_is_pending_with_what_to_set():
    result = healthy_result()
    result["power"]["required_per_variant"] = None

    c = criterion(report(result), "sample_size")

    assert c["status"] == "pending"
    assert "minimum detectable effect" in c["detail"]


# --- srm ----------------------------------------------------------------------------------------


def test_sample_ratio_mismatch_is_do_not_scale_and_says_fix_assignment():
    result = healthy_result()
    result["srm"] = {
        "p_value": 1.2e-9,
        "passed": False,
        "counts": {"A": 5000, "B": 3870},
        "expected": {"A": 4435.0, "B": 4435.0},
    }

    readiness = report(result)

    c = criterion(readiness, "srm")
    assert c["status"] == "fail"
    assert "p < 0.001" in c["detail"]
    assert readiness["verdict"] == "do_not_scale"
    # (3870 − 4435) / 4435 = −12.7 %
    assert readiness["next_step"] == "fix assignment: B has 13 % fewer customers than expected"
    assert readiness["recommended_variant"] == "A"


def test_srm_not_judged_with_few_customers_is_pending():
    result = healthy_result()
    result["srm"] = {
        "p_value": None,
        "passed": None,
        "counts": {"A": 5, "B": 3},
        "expected": {"A": 4.0, "B": 4.0},
    }

    assert criterion(report(result), "srm")["status"] == "pending"


# --- acceptance_above_baseline ------------------------------------------------------------------


def test_primary_not_significant_keeps_testing_and_recommends_control():
    result = replace_metric(healthy_result(), acceptance(diff=0.004, ci=(-0.008, 0.016), p=0.51))

    readiness = report(result)

    c = criterion(readiness, "acceptance_above_baseline")
    assert c["status"] == "pending"
    assert "not significant yet" in c["detail"]
    assert readiness["verdict"] == "keep_testing"
    assert readiness["recommended_variant"] == "A"


def test_no_difference_at_the_planned_sample_says_keep_control_or_test_bolder():
    result = replace_metric(healthy_result(), acceptance(diff=0.002, ci=(-0.01, 0.014), p=0.74))

    readiness = report(result)

    assert readiness["verdict"] == "keep_testing"
    assert readiness["next_step"] == (
        "no clear difference at the planned sample size: keep A, or test a bolder change"
    )


def test_primary_significantly_worse_is_do_not_scale():
    result = replace_metric(healthy_result(), acceptance(diff=-0.02, ci=(-0.033, -0.007), p=0.003))

    readiness = report(result)

    assert criterion(readiness, "acceptance_above_baseline")["status"] == "fail"
    assert readiness["verdict"] == "do_not_scale"
    assert readiness["recommended_variant"] == "A"
    assert readiness["next_step"] == "stop B and keep A: it lowers the acceptance rate"


def test_primary_uses_the_holm_corrected_significance():
    # Raw p 0.03 but adjusted 0.06 across two treatments: not significant after correction.
    result = replace_metric(
        healthy_result(), acceptance(diff=0.012, ci=(0.001, 0.023), p=0.03, p_value_adjusted=0.06)
    )

    c = criterion(report(result), "acceptance_above_baseline")

    assert c["status"] == "pending"
    assert "p = 0.060 after correction" in c["detail"]


def test_primary_without_enough_data_is_pending_with_the_reason():
    result = healthy_result()
    result["metrics"][0]["comparisons"] = [not_enough("B")]

    c = criterion(report(result), "acceptance_above_baseline")

    assert c["status"] == "pending"
    assert "not enough data" in c["detail"]


def test_best_significant_winner_is_recommended_among_several_treatments():
    result = healthy_result()
    result["experiment_info"]["variants"] = ["A", "B", "C"]
    result["metrics"][0] = metric(
        "acceptance_rate",
        "proportion",
        {"A": (5000, 0.096), "B": (5000, 0.076), "C": (5000, 0.121)},
        [
            comparison("B", -0.02, (-0.032, -0.008), 0.002),
            comparison("C", 0.025, (0.012, 0.038), 0.001),
        ],
    )
    for other in result["metrics"][1:]:
        other["variants"].append({**other["variants"][1], "variant": "C"})
        other["comparisons"].append({**other["comparisons"][0], "variant": "C"})
    for part in result["weekly"] + result["segments"]:
        first = part["metrics"][0]["comparisons"][0]
        part["metrics"][0]["comparisons"].append({**first, "variant": "C"})

    readiness = report(result)

    assert readiness["recommended_variant"] == "C"
    assert readiness["verdict"] == "ready_to_scale"
    assert criterion(readiness, "acceptance_above_baseline")["detail"].startswith(
        "C's acceptance rate is 12.1 % vs 9.6 % for A"
    )


# --- consistency --------------------------------------------------------------------------------


def test_a_complete_week_without_lift_fails_consistency_and_keeps_testing():
    result = healthy_result()
    result["weekly"][1] = week("2026-W46", -0.004, p=0.7)

    readiness = report(result)

    c = criterion(readiness, "consistency")
    assert c["status"] == "fail"
    assert "2026-W46" in c["detail"]
    assert "better in 2 of 3 complete weeks" in c["detail"]
    assert readiness["verdict"] == "keep_testing"


def test_incomplete_week_does_not_count_for_consistency():
    result = healthy_result()  # its running week W48 is negative

    c = criterion(report(result), "consistency")

    assert c["status"] == "pass"
    assert "2026-W48" not in c["detail"]


def test_no_complete_week_is_pending():
    result = healthy_result()
    result["weekly"] = [week("2026-W47", 0.02, complete=False)]

    assert criterion(report(result), "consistency")["status"] == "pending"


# --- return_rate (non-inferiority) ---------------------------------------------------------------


def test_significantly_more_returns_is_do_not_scale():
    result = replace_metric(healthy_result(), return_rate(diff=0.031, ci=(0.012, 0.05), p=0.002))

    readiness = report(result)

    c = criterion(readiness, "return_rate")
    assert c["status"] == "fail"
    assert "significantly worse" in c["detail"]
    assert readiness["verdict"] == "do_not_scale"
    assert readiness["next_step"] == "stop B and keep A: it worsens the return rate"


def test_more_returns_that_are_not_significant_still_pass():
    result = replace_metric(healthy_result(), return_rate(diff=0.006, ci=(-0.004, 0.016), p=0.24))

    c = criterion(report(result), "return_rate")

    assert c["status"] == "pass"
    assert "not worse" in c["detail"]


@pytest.mark.parametrize("how", ["missing", "all_zero"])
def test_no_returns_data_is_pending_with_the_reason(how):
    result = healthy_result()
    if how == "missing":
        drop_metric(result, "return_rate")
    else:
        # As the analysis reports it: both arms at 0 and a comparison it could not compute.
        replace_metric(result, return_rate(a=0.0, diff=None, ci=None, p=None, significant=False))
        result["metrics"][1]["comparisons"][0]["note"] = "not enough data: no variance"

    readiness = report(result)

    c = criterion(readiness, "return_rate")
    assert c["status"] == "pending"
    assert "no returns recorded yet (send order_returned events)" in c["detail"]
    assert readiness["verdict"] == "keep_testing"


# --- customer_feedback --------------------------------------------------------------------------


def test_no_survey_is_pending_and_says_how_to_get_answers():
    result = drop_metric(drop_metric(healthy_result(), "csat"), "intrusiveness")

    readiness = report(result)

    c = criterion(readiness, "customer_feedback")
    assert c["status"] == "pending"
    assert "No survey answers" in c["detail"]
    assert readiness["verdict"] == "keep_testing"
    assert "survey" in readiness["next_step"]


def test_too_few_survey_answers_is_pending():
    result = replace_metric(healthy_result(), csat(n=12))

    c = criterion(report(result), "customer_feedback")

    assert c["status"] == "pending"
    assert "Only 12 survey answers" in c["detail"]


def test_csat_significantly_worse_is_do_not_scale():
    result = replace_metric(healthy_result(), csat(a=4.4, b=4.0, ci=(-0.6, -0.2), p=0.001))

    readiness = report(result)

    assert criterion(readiness, "customer_feedback")["status"] == "fail"
    assert readiness["verdict"] == "do_not_scale"


def test_csat_below_the_floor_fails_but_keeps_testing():
    result = replace_metric(healthy_result(), csat(a=3.7, b=3.8, ci=(-0.1, 0.3), p=0.4))

    readiness = report(result)

    c = criterion(readiness, "customer_feedback")
    assert c["status"] == "fail"
    assert "below the floor of 4.0 / 5" in c["detail"]
    assert readiness["verdict"] == "keep_testing"
    assert readiness["next_step"] == "improve the offer: B's CSAT 3.80 / 5 is below the 4.0 floor"


def test_csat_floor_is_configurable():
    cfg = ReadinessSettings(traffic_percent=10, csat_floor=4.5)

    assert criterion(report(healthy_result(), cfg), "customer_feedback")["status"] == "fail"


def test_significantly_pushier_offer_fails_feedback():
    result = replace_metric(healthy_result(), intrusiveness(a=2.0, b=2.9, ci=(0.5, 1.3), p=0.001))

    readiness = report(result)

    c = criterion(readiness, "customer_feedback")
    assert c["status"] == "fail"
    assert "pushier" in c["detail"]
    assert readiness["verdict"] == "do_not_scale"


def test_survey_without_an_intrusiveness_question_is_judged_on_csat():
    c = criterion(report(drop_metric(healthy_result(), "intrusiveness")), "customer_feedback")

    assert c["status"] == "pass"
    assert "intrusiveness was not asked" in c["detail"]


# --- segments -----------------------------------------------------------------------------------


def test_a_segment_significantly_harmed_after_correction_fails():
    result = healthy_result()
    result["segments"] = [
        segment("new", 0.03, p=0.001),
        segment("loyal", 0.04, p=0.001),
        segment("vip", -0.05, p=0.0004),
    ]

    readiness = report(result)

    c = criterion(readiness, "segments")
    assert c["status"] == "fail"
    assert "segment vip" in c["detail"]
    # Holm: smallest p 0.0004 × 3 = 0.0012
    assert "p = 0.001 after correction across 3 segments" in c["detail"]
    assert readiness["verdict"] == "keep_testing"
    assert "vip" in readiness["next_step"]


def test_a_segment_harm_that_holm_explains_away_is_not_a_fail():
    # Holm on p = (0.02, 0.03, 0.50): 0.02×3 = 0.06, max(0.06, 0.03×2) = 0.06 → none < 0.05.
    result = healthy_result()
    result["segments"] = [
        segment("new", 0.03, p=0.03),
        segment("loyal", 0.02, p=0.5),
        segment("vip", -0.04, p=0.02),
    ]

    c = criterion(report(result), "segments")

    assert c["status"] == "pass"
    assert "2 of 3 segments" in c["detail"]


def test_lift_in_only_a_minority_of_segments_fails():
    result = healthy_result()
    result["segments"] = [
        segment("new", 0.03, p=0.3),
        segment("loyal", -0.01, p=0.4),
        segment("vip", -0.01, p=0.5),
    ]

    c = criterion(report(result), "segments")

    assert c["status"] == "fail"
    assert "only 1 of 3 segments" in c["detail"]


def test_weak_segments_before_the_planned_sample_are_pending_not_failed():
    result = _short_of_sample(healthy_result())
    result["segments"] = [segment("new", 0.03, p=0.3), segment("loyal", -0.01, p=0.4)]

    c = criterion(report(result), "segments")

    assert c["status"] == "pending"
    assert "So far B improved the acceptance rate in 1 of 2 segments" in c["detail"]


def test_a_variant_named_in_the_plural_reads_naturally():
    result = healthy_result()
    result["metrics"][0] = acceptance(variant="features")

    detail = criterion(report(result), "acceptance_above_baseline")["detail"]

    assert detail.startswith("features' acceptance rate is 11.8 % vs 9.6 % for A")


def test_no_segments_is_pending():
    result = healthy_result(segments=[])

    c = criterion(report(result), "segments")

    assert c["status"] == "pending"
    assert "segment" in c["detail"]


# --- guardrails ---------------------------------------------------------------------------------


def test_cart_abandonment_significantly_worse_is_do_not_scale():
    result = replace_metric(
        healthy_result(), cart_abandonment(diff=0.03, ci=(0.015, 0.045), p=0.0001)
    )

    readiness = report(result)

    c = criterion(readiness, "guardrails")
    assert c["status"] == "fail"
    assert "cart abandonment rate" in c["detail"]
    assert readiness["verdict"] == "do_not_scale"


def test_no_cart_abandonment_data_is_pending():
    result = drop_metric(healthy_result(), "cart_abandonment_rate")

    readiness = report(result)

    assert criterion(readiness, "guardrails")["status"] == "pending"
    assert readiness["verdict"] == "keep_testing"


# --- missing data never raises ------------------------------------------------------------------


def test_one_variant_only_is_pending_not_an_exception():
    result = healthy_result()
    result["experiment_info"]["variants"] = ["A"]
    for m in result["metrics"]:
        m["variants"] = m["variants"][:1]
        m["comparisons"] = []
    result["segments"] = []
    result["weekly"] = []
    result["srm"] = {"p_value": None, "passed": None, "counts": {"A": 900}, "expected": {}}

    readiness = report(result)

    assert readiness["verdict"] == "keep_testing"
    assert readiness["recommended_variant"] == "A"
    assert readiness["next_step"].startswith("add a variant to compare with the control")
    c = criterion(readiness, "acceptance_above_baseline")
    assert c["status"] == "pending"
    assert "only one variant" in c["detail"]


def test_empty_result_says_to_run_an_analysis():
    readiness = report(None)

    assert readiness["verdict"] == "keep_testing"
    assert "analyze" in readiness["next_step"]
    assert set(statuses(readiness).values()) == {"pending"}


# --- entry point on a stored run ----------------------------------------------------------------


@pytest.mark.django_db
def test_readiness_for_run_uses_the_experiment_settings_and_csat_floor(settings):
    from experiments.models import AnalysisRun
    from tests.factories import running_experiment

    experiment = running_experiment("pp-email-timing", traffic_percent=20.0)
    run = AnalysisRun.objects.create(
        experiment=experiment, status=AnalysisRun.RunStatus.SUCCEEDED, result=healthy_result()
    )

    assert readiness_for_run(run)["next_step"] == "raise traffic from 20 % to 50 %"

    settings.OFFERLAB_CSAT_FLOOR = 4.5
    readiness = readiness_for_run(run)
    assert criterion(readiness, "customer_feedback")["status"] == "fail"
    assert readiness["verdict"] == "keep_testing"


@pytest.mark.django_db
def test_readiness_for_run_needs_the_configured_number_of_survey_answers(settings):
    from experiments.models import AnalysisRun
    from tests.factories import running_experiment

    run = AnalysisRun.objects.create(
        experiment=running_experiment("pp-email-timing"),
        status=AnalysisRun.RunStatus.SUCCEEDED,
        result=healthy_result(),  # 150 answers per arm
    )
    settings.OFFERLAB_MIN_SURVEY_ANSWERS = 200

    c = criterion(readiness_for_run(run), "customer_feedback")

    assert c["status"] == "pending"
    assert "Only 150 survey answers" in c["detail"]
    assert "at least 200" in c["detail"]


def _paths(node, prefix=()):
    """Every key / index path in a JSON tree."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


@pytest.mark.parametrize("mutation", ["delete", "none", "empty_string"])
def test_any_missing_or_null_part_of_the_result_gives_a_report_not_an_exception(mutation):
    import copy

    base = healthy_result()
    paths = list(_paths(base))
    assert len(paths) > 500
    for path in paths:
        result = copy.deepcopy(base)
        parent = result
        for key in path[:-1]:
            parent = parent[key]
        if mutation == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = None if mutation != "empty_string" else ""

        readiness = report(result)

        assert readiness["verdict"] in ("ready_to_scale", "keep_testing", "do_not_scale"), path
        assert [c["key"] for c in readiness["criteria"]] == list(CRITERIA), path
        assert readiness["next_step"], path
