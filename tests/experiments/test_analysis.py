"""analysis_run end to end: the DESIGN JSON, numbers against independent references, edge cases."""

import json
import math
import uuid
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy import stats as sps
from statsmodels.duration.survfunc import survdiff
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from experiments import analysis, metrics
from experiments.analysis import analysis_request, analysis_run
from experiments.models import AnalysisRun, Assignment, EventItem, OutcomeEvent, Status
from experiments.selectors import latest_analysis
from tests.experiments.analysis_data import T0, days, hours, offer, survey_answer
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db

END = T0 + days(21)
METRIC_NAMES = [
    "acceptance_rate",
    "time_to_secondary_purchase",
    "category_expansion_rate",
    "cross_sell_aov",
    "revenue_per_customer",
    "return_rate",
    "cart_abandonment_rate",
    "csat",
    "intrusiveness",
    "survey_response_rate",
]


def populate(exp, variant: str, customers: list[dict]) -> None:
    """Bulk rows: each customer dict has accepted, revenue, pre, order_hours, segment, day."""
    v = exp.variants.get(key=variant)
    assignments, events = [], []
    for i, c in enumerate(customers):
        cid = f"{variant}-{i}"
        at = T0 + days(c.get("day", 0))
        assignments.append(
            Assignment(
                experiment=exp,
                variant=v,
                customer_id=cid,
                segment=c.get("segment", ""),
                assigned_at=at,
            )
        )
        if c.get("accepted"):
            events.append(("offer_accepted", cid, at + hours(1), None))
        if c.get("revenue"):
            when = at + hours(c.get("order_hours", 2))
            events.append(("order_placed", cid, when, c["revenue"]))
        if c.get("pre"):
            events.append(("order_placed", cid, at - days(3), c["pre"]))
    Assignment.objects.bulk_create(assignments)
    rows = OutcomeEvent.objects.bulk_create(
        OutcomeEvent(
            event_id=uuid.uuid4(),
            type=t,
            customer_id=cid,
            occurred_at=when,
            amount=None if amount is None else Decimal(str(amount)),
        )
        for t, cid, when, amount in events
    )
    EventItem.objects.bulk_create(
        EventItem(
            event=row,
            type=row.type,
            customer_id=row.customer_id,
            occurred_at=row.occurred_at,
            sku="sku-1",
            category="cat-1",
        )
        for row in rows
        if row.type == "order_placed"
    )


def metric(result: dict, name: str, where: list | None = None) -> dict:
    return next(m for m in (where or result["metrics"]) if m["metric"] == name)


def comparison(result: dict, name: str, variant: str, where=None) -> dict:
    return next(c for c in metric(result, name, where)["comparisons"] if c["variant"] == variant)


@pytest.fixture
def three_arms():
    """Control vs two treatments, 200 customers each, with known acceptance and revenue."""
    rng = np.random.default_rng(7)
    exp = running_experiment("three", delays=(0, 24, 48), started_at=T0)
    raw = {}
    for key, accepted in (("control", 40), ("delay-24", 60), ("delay-48", 45)):
        revenue = np.round(rng.gamma(2.0, 20.0, size=200) * (rng.random(200) < 0.5), 2)
        pre = np.round(revenue * 0.6 + rng.gamma(2.0, 5.0, size=200), 2)
        order_hours = rng.integers(1, 170, size=200)  # all inside the window
        customers = [
            {
                "accepted": i < accepted,
                "revenue": float(revenue[i]),
                "pre": float(pre[i]),
                "order_hours": int(order_hours[i]),
                "segment": "gold" if i % 2 else "silver",
                "day": i % 14,
            }
            for i in range(200)
        ]
        populate(exp, key, customers)
        raw[key] = {"revenue": revenue, "pre": pre, "customers": customers}
    exp.refresh_from_db()
    return exp, raw


def test_result_has_the_design_shape_and_no_nan(three_arms):
    exp, _ = three_arms
    run = analysis_run(experiment=exp, at=END)
    assert run.status == AnalysisRun.RunStatus.SUCCEEDED, run.error
    result = run.result
    json.dumps(result, allow_nan=False)
    assert set(result) >= {
        "experiment",
        "computed_at",
        "window",
        "srm",
        "power",
        "metrics",
        "segments",
        "weekly",
        "daily",
        "experiment_info",
    }
    assert result["experiment"] == "three"
    assert set(result["power"]) >= {
        "metric",
        "baseline",
        "mde",
        "required_per_variant",
        "days_remaining",
        "current_min_per_variant",
        "daily_rate_per_variant",
    }
    assert [m["metric"] for m in result["metrics"]] == METRIC_NAMES
    kinds = {m["metric"]: (m["kind"], m["direction"], m["guardrail"]) for m in result["metrics"]}
    assert kinds["acceptance_rate"] == ("proportion", "higher", False)
    assert kinds["time_to_secondary_purchase"] == ("time_to_event", "lower", False)
    assert kinds["return_rate"] == ("proportion", "lower", True)
    assert kinds["cart_abandonment_rate"] == ("proportion", "lower", True)
    assert kinds["csat"] == ("rating", "higher", False)
    for m in result["metrics"]:
        assert [v["variant"] for v in m["variants"]] == ["control", "delay-24", "delay-48"]
        assert [c["variant"] for c in m["comparisons"]] == ["delay-24", "delay-48"]
        for c in m["comparisons"]:
            assert set(c) >= {
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
            }
    assert [s["segment"] for s in result["segments"]] == ["gold", "silver"]
    assert [w["week"] for w in result["weekly"]] == ["2026-W45", "2026-W46"]
    assert [w["complete"] for w in result["weekly"]] == [False, True]  # starts Monday 09:00
    assert result["weekly"][1]["start"] == "2026-11-09"
    assert result["weekly"][1]["end"] == "2026-11-15"
    assert result["daily"][0]["date"] == "2026-11-02"
    assert result["daily"][-1]["date"] == END.date().isoformat()
    assert result["daily"][-1]["counts"] == {"control": 200, "delay-24": 200, "delay-48": 200}
    info = result["experiment_info"]
    assert info["control"] == "control" and info["primary_metric"] == "acceptance_rate"
    assert info["days_running"] == pytest.approx(21.0)
    assert run.readiness["experiment"] == "three"  # the readiness report ran on the snapshot


def test_proportions_match_statsmodels_with_holm(three_arms):
    exp, _ = three_arms
    result = analysis_run(experiment=exp, at=END).result
    p = {}
    for key, accepted in (("delay-24", 60), ("delay-48", 45)):
        _z, p[key] = proportions_ztest([accepted, 40], [200, 200])
        c = comparison(result, "acceptance_rate", key)
        assert c["p_value"] == pytest.approx(p[key], rel=1e-4)
        assert c["difference"] == pytest.approx((accepted - 40) / 200, rel=1e-9)
        assert c["relative_lift"] == pytest.approx((accepted - 40) / 40, rel=1e-9)
    _, adjusted, _, _ = multipletests([p["delay-24"], p["delay-48"]], method="holm")
    assert comparison(result, "acceptance_rate", "delay-24")["p_value_adjusted"] == (
        pytest.approx(adjusted[0], rel=1e-4)
    )
    assert comparison(result, "acceptance_rate", "delay-48")["p_value_adjusted"] == (
        pytest.approx(adjusted[1], rel=1e-4)
    )
    assert comparison(result, "acceptance_rate", "delay-24")["significant"] is True
    assert comparison(result, "acceptance_rate", "delay-48")["significant"] is False


def test_revenue_is_cuped_adjusted_and_matches_welch_on_raw_data(three_arms):
    exp, raw = three_arms
    result = analysis_run(experiment=exp, at=END).result
    y = {k: raw[k]["revenue"] for k in raw}
    x = {k: raw[k]["pre"] for k in raw}
    all_x, all_y = np.concatenate(list(x.values())), np.concatenate(list(y.values()))
    theta = np.cov(all_y, all_x, ddof=1)[0, 1] / np.var(all_x, ddof=1)
    c = comparison(result, "revenue_per_customer", "delay-24")
    adj = {k: y[k] - theta * x[k] for k in y}
    t = sps.ttest_ind(adj["delay-24"], adj["control"], equal_var=False)
    assert c["cuped"]["theta"] == pytest.approx(theta, rel=1e-6)
    assert c["difference"] == pytest.approx(
        adj["delay-24"].mean() - adj["control"].mean(), rel=1e-6
    )
    assert c["p_value"] == pytest.approx(t.pvalue, rel=1e-4)
    plain = sps.ttest_ind(y["delay-24"], y["control"], equal_var=False)
    assert c["cuped"]["raw"]["p_value"] == pytest.approx(plain.pvalue, rel=1e-4)
    assert c["cuped"]["raw"]["difference"] == pytest.approx(
        y["delay-24"].mean() - y["control"].mean(), rel=1e-6
    )
    values = {v["variant"]: v["value"] for v in metric(result, "revenue_per_customer")["variants"]}
    assert values["control"] == pytest.approx(y["control"].mean(), rel=1e-9)


def test_time_to_order_matches_statsmodels_log_rank(three_arms):
    exp, raw = three_arms
    result = analysis_run(experiment=exp, at=END).result

    def durations(key):
        times, events = [], []
        for c in raw[key]["customers"]:
            assigned = T0 + days(c["day"])
            if c["revenue"]:
                times.append(c["order_hours"])
                events.append(1)
            else:
                times.append((END - assigned).total_seconds() / 3600)
                events.append(0)
        return np.array(times), np.array(events)

    tc, ec = durations("control")
    tt, et = durations("delay-24")
    _chi2, p = survdiff(np.r_[tc, tt], np.r_[ec, et], np.r_[np.zeros(200), np.ones(200)])
    c = comparison(result, "time_to_secondary_purchase", "delay-24")
    assert c["test"] == "log_rank"
    assert c["p_value"] == pytest.approx(p, rel=1e-4)


def test_srm_counts_match_scipy_chisquare():
    exp = running_experiment("srm", started_at=T0)
    populate(exp, "control", [{}] * 60)
    populate(exp, "delay-24", [{}] * 40)
    result = analysis_run(experiment=exp, at=END).result
    assert result["srm"]["counts"] == {"control": 60, "delay-24": 40}
    assert result["srm"]["p_value"] == pytest.approx(sps.chisquare([60, 40]).pvalue, rel=1e-6)
    assert result["srm"]["passed"] is True  # p = 0.046 > 0.001


def test_ratings_match_scipy_mann_whitney():
    exp = running_experiment("ratings", started_at=T0)
    populate(exp, "control", [{}] * 20)
    populate(exp, "delay-24", [{}] * 20)
    answers = {
        "control": [1, 2, 3, 3, 4, 4, 4, 5, 5, 2],
        "delay-24": [3, 4, 4, 5, 5, 5, 5, 4, 3, 5],
    }
    for key, values in answers.items():
        for i, value in enumerate(values):
            survey_answer(offer(exp, key, f"{key}-{i}", T0 + hours(1)), metric="csat", value=value)
    result = analysis_run(experiment=exp, at=END).result
    reference = sps.mannwhitneyu(answers["delay-24"], answers["control"], method="asymptotic")
    c = comparison(result, "csat", "delay-24")
    assert c["p_value"] == pytest.approx(reference.pvalue, rel=1e-4)
    assert c["difference"] == pytest.approx(
        np.mean(answers["delay-24"]) - np.mean(answers["control"])
    )
    control = metric(result, "csat")["variants"][0]
    assert control["histogram"] == [1, 2, 2, 3, 2]
    rate = metric(result, "survey_response_rate")
    assert [v["n"] for v in rate["variants"]] == [10, 10]


@pytest.mark.parametrize(
    ("control", "treatment", "why"),
    [
        ([], [], "no customers"),
        ([{"accepted": True}] * 30, [], "one variant empty"),
        ([{"accepted": True}] * 30, [{"accepted": True}] * 30, "everyone accepted"),
        ([{}] * 30, [{}] * 30, "nobody accepted"),
        ([{"revenue": 10}] * 30, [{"revenue": 10}] * 30, "zero variance"),
        ([{"accepted": True}] * 5, [{}] * 5, "fewer than 8"),
    ],
)
def test_degenerate_data_says_not_enough_data_without_failing(control, treatment, why):
    exp = running_experiment("edge", started_at=T0)
    populate(exp, "control", control)
    populate(exp, "delay-24", treatment)
    run = analysis_run(experiment=exp, at=END)
    assert run.status == AnalysisRun.RunStatus.SUCCEEDED, (why, run.error)
    json.dumps(run.result, allow_nan=False)
    c = comparison(run.result, "acceptance_rate", "delay-24")
    assert c["p_value"] is None and c["note"].startswith("not enough data"), why
    csat = comparison(run.result, "csat", "delay-24")  # nobody answered a rating question
    assert csat["note"].startswith("not enough data") and csat["difference"] is None
    for segment in run.result["segments"]:
        json.dumps(segment, allow_nan=False)


def test_a_run_that_dies_mid_way_fails_with_its_error_and_keeps_the_last_result(
    three_arms, monkeypatch
):
    exp, _ = three_arms
    good = analysis_run(experiment=exp, at=END)

    def boom(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(analysis, "collect_metrics", boom)
    bad = analysis_run(experiment=exp, at=END)
    assert bad.status == AnalysisRun.RunStatus.FAILED
    assert "disk on fire" in bad.error and bad.result is None and bad.finished_at
    assert latest_analysis(exp) == good


def test_rerun_on_the_same_window_gives_the_same_numbers(three_arms):
    exp, _ = three_arms
    first = analysis_run(experiment=exp, at=END).result
    second = analysis_run(experiment=exp, at=END).result
    first.pop("computed_at"), second.pop("computed_at")
    assert first == second


def test_second_request_returns_the_active_job(three_arms):
    exp, _ = three_arms
    first = analysis_request(experiment=exp)
    second = analysis_request(experiment=exp)
    assert first.pk == second.pk and first.status == AnalysisRun.RunStatus.QUEUED
    assert AnalysisRun.objects.filter(experiment=exp).count() == 1
    # A synchronous analysis computes that queued run instead of starting another.
    run = analysis_run(experiment=exp, at=END)
    assert run.pk == first.pk and run.status == AnalysisRun.RunStatus.SUCCEEDED


def test_queued_job_runs_after_commit(three_arms, django_capture_on_commit_callbacks):
    exp, _ = three_arms
    with django_capture_on_commit_callbacks(execute=True):
        run = analysis_request(experiment=exp)
    run.refresh_from_db()
    assert run.status == AnalysisRun.RunStatus.SUCCEEDED and run.progress == 100
    assert run.result["experiment"] == "three" and run.finished_at >= run.started_at


def test_safe_peeking_widens_intervals_into_confidence_sequences(three_arms):
    exp, _ = three_arms
    fixed = comparison(analysis_run(experiment=exp, at=END).result, "acceptance_rate", "delay-24")
    exp.safe_peeking = True
    exp.save()
    seq = comparison(analysis_run(experiment=exp, at=END).result, "acceptance_rate", "delay-24")
    assert seq["sequential"]["n_star"] == analysis.planned_per_variant(exp) * 3
    assert seq["ci_high"] - seq["ci_low"] > fixed["ci_high"] - fixed["ci_low"]
    assert seq["sequential"]["fixed"]["p_value"] == pytest.approx(fixed["p_value"])


def test_stopped_experiment_is_analysed_up_to_its_end(three_arms):
    exp, _ = three_arms
    exp.status, exp.ended_at = Status.STOPPED, T0 + days(7)
    exp.save()
    result = analysis_run(experiment=exp).result
    assert result["window"]["end"] == (T0 + days(7)).isoformat()
    assigned_by_then = sum(1 for i in range(200) if i % 14 <= 7)  # customer i joins on day i % 14
    assert result["srm"]["counts"] == dict.fromkeys(["control", "delay-24", "delay-48"], 116)
    assert assigned_by_then == 116
    assert math.isclose(result["experiment_info"]["days_running"], 7.0)


def test_many_segments_are_capped_with_the_rest_under_other():
    exp = running_experiment("segs", started_at=T0)
    populate(exp, "control", [{"segment": f"s{i:02d}"} for i in range(30)])
    populate(exp, "delay-24", [{"segment": f"s{i:02d}"} for i in range(30)])
    result = analysis_run(experiment=exp, at=END).result
    names = [s["segment"] for s in result["segments"]]
    assert len(names) == analysis.MAX_SEGMENTS and names[-1] == analysis.OTHER_SEGMENTS
    other = metric(result, "acceptance_rate", result["segments"][-1]["metrics"])
    assert other["variants"][0]["n"] == 30 - (analysis.MAX_SEGMENTS - 1)


def test_analyze_command_prints_json_and_a_table(three_arms, capsys):
    _exp, _ = three_arms
    call_command("analyze", "three", "--json")
    printed = json.loads(capsys.readouterr().out)
    assert printed["experiment"] == "three" and len(printed["metrics"]) == 10
    call_command("analyze", "three")
    text = capsys.readouterr().out
    assert "acceptance_rate *" in text and "delay-24" in text and "Sample ratio" in text
    with pytest.raises(CommandError, match="No experiment"):
        call_command("analyze", "nope")


def test_no_segment_is_named_none():
    exp = running_experiment("noseg", started_at=T0)
    populate(exp, "control", [{}] * 10)
    populate(exp, "delay-24", [{}] * 10)
    result = analysis_run(experiment=exp, at=END).result
    assert [s["segment"] for s in result["segments"]] == [metrics.NO_SEGMENT]


def test_an_experiment_without_variants_is_analysed_as_pending():
    from tests.factories import ExperimentFactory

    exp = ExperimentFactory(key="bare")
    run = analysis_run(experiment=exp, at=END)
    assert run.status == AnalysisRun.RunStatus.SUCCEEDED, run.error
    assert run.result["srm"]["passed"] is None
    assert all(m["comparisons"] == [] for m in run.result["metrics"])
