"""SQL sufficient statistics: each metric's definition, checked on a hand-built history."""

import pytest

from experiments.metrics import NO_SEGMENT, Selection, collect_metrics, metric_stats
from tests.experiments.analysis_data import T0, assign, days, event, hours, offer, survey_answer
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db

END = T0 + days(10)


@pytest.fixture
def history():
    """Four customers whose outcomes are worked out by hand in the tests below."""
    exp = running_experiment("m-timing", started_at=T0)
    other = running_experiment("other-exp", started_at=T0)
    # c1, control, gold: bought audio before; accepts, buys the recommended cable, returns it.
    assign(exp, "control", "c1", T0, "gold")
    o1 = offer(exp, "control", "c1", T0 + hours(0.5), skus=["cable"])
    event("order_placed", "c1", T0 - days(3), amount=40, items=[("hp", "audio")])
    event("offer_accepted", "c1", T0 + hours(1), offer_id=o1.offer_id)
    event("order_placed", "c1", T0 + hours(5), amount=30, items=[("cable", "audio")])
    event("order_returned", "c1", T0 + days(2), items=[("cable", "audio")])
    survey_answer(o1, metric="csat", value=4)
    # c2, control, silver: assigned a day later, does nothing (censored at the window end).
    assign(exp, "control", "c2", T0 + days(1), "silver")
    # c3, treatment, gold: old audio order (outside the 14-day pre-period), then a first
    # video order 2.5 h after assignment containing the recommended tv; abandons a cart;
    # accepts an offer of ANOTHER experiment (not counted).
    assign(exp, "delay-24", "c3", T0, "gold")
    o3 = offer(exp, "delay-24", "c3", T0 + hours(0.2), skus=["tv", "remote"])
    o_other = offer(other, "control", "c3", T0 + hours(0.3), skus=["x"])
    event("order_placed", "c3", T0 - days(20), amount=500, items=[("hp", "audio")])
    event("order_placed", "c3", T0 + hours(2.5), amount=100, items=[("tv", "video")])
    event("cart_abandoned", "c3", T0 + days(1), items=[("remote", "video")])
    event("offer_accepted", "c3", T0 + hours(3), offer_id=o_other.offer_id)
    survey_answer(o3, metric="csat", value=5, finished=False)
    # c4, treatment, no segment: ordered 1 day before assignment (pre-period), accepts an
    # offer without an offer id, orders only after the window end.
    assign(exp, "delay-24", "c4", T0 + days(2))
    event("order_placed", "c4", T0 + days(1), amount=20, items=[("pen", "office")])
    event("offer_accepted", "c4", T0 + days(2) + hours(1))
    event("order_placed", "c4", END + hours(1), amount=999, items=[("car", "auto")])
    # Someone never assigned: ignored.
    event("offer_accepted", "stranger", T0 + hours(1))
    exp.refresh_from_db()
    return exp


def _table(tte) -> dict:
    """{hours: (orders, censored)}."""
    return {t: (e, c) for t, e, c in zip(tte.times, tte.events, tte.censored, strict=True)}


def _ids(exp):
    return {v.key: v.id for v in exp.variants.all()}


def test_each_metric_counts_what_the_readme_defines(history):
    data = collect_metrics(experiment=history, window_start=T0, window_end=END)
    by = metric_stats(data, Selection())
    ids = _ids(history)
    c, t = ids["control"], ids["delay-24"]

    assert (by["acceptance_rate"][c].n, by["acceptance_rate"][c].successes) == (2, 1)
    assert (by["acceptance_rate"][t].n, by["acceptance_rate"][t].successes) == (2, 1)
    assert by["category_expansion_rate"][c].successes == 0  # audio was not new to c1
    assert by["category_expansion_rate"][t].successes == 1  # video was new to c3
    assert by["cart_abandonment_rate"][t].successes == 1
    assert by["cart_abandonment_rate"][c].successes == 0
    assert (by["return_rate"][c].n, by["return_rate"][c].successes) == (1, 1)
    assert (by["return_rate"][t].n, by["return_rate"][t].successes) == (1, 0)

    rev_c, rev_t = by["revenue_per_customer"][c], by["revenue_per_customer"][t]
    assert (rev_c.n, rev_c.sum, rev_c.sum_sq) == (2, 30.0, 900.0)
    assert (rev_c.covariate.sum_x, rev_c.covariate.sum_x2, rev_c.covariate.sum_xy) == (
        40.0,
        1600.0,
        1200.0,
    )
    assert (rev_t.n, rev_t.sum, rev_t.sum_sq) == (2, 100.0, 10000.0)  # 500 and 999 are outside
    assert (rev_t.covariate.sum_x, rev_t.covariate.sum_xy) == (20.0, 0.0)

    xs_c, xs_t = by["cross_sell_aov"][c], by["cross_sell_aov"][t]
    assert (xs_c.n, xs_c.sum) == (1, 30.0)
    assert (xs_t.n, xs_t.sum, xs_t.sum_sq) == (1, 100.0, 10000.0)

    tte_c, tte_t = by["time_to_secondary_purchase"][c], by["time_to_secondary_purchase"][t]
    # c1 ordered after 5 h; c2 is censored at 9 days; c3 after 2.5 h (rounded up to 3 h);
    # c4 censored at 8 days.
    assert _table(tte_c) == {5.0: (1, 0), 216.0: (0, 1)}
    assert _table(tte_t) == {3.0: (1, 0), 192.0: (0, 1)}

    assert by["csat"][c].counts == (0, 0, 0, 1, 0)
    assert by["csat"][t].counts == (0, 0, 0, 0, 1)  # partial answers count
    assert by["intrusiveness"][c].n == 0
    assert (by["survey_response_rate"][c].n, by["survey_response_rate"][c].successes) == (1, 1)
    assert (by["survey_response_rate"][t].n, by["survey_response_rate"][t].successes) == (1, 0)


def test_segments_and_weeks_split_the_same_customers(history):
    data = collect_metrics(experiment=history, window_start=T0, window_end=END)
    ids = _ids(history)
    assert data.segments() == ["gold", NO_SEGMENT, "silver"]
    gold = metric_stats(data, Selection(segment="gold"))["acceptance_rate"]
    assert (gold[ids["control"]].n, gold[ids["delay-24"]].n) == (1, 1)
    none = metric_stats(data, Selection(segment=NO_SEGMENT))["acceptance_rate"]
    assert none[ids["delay-24"]].successes == 1
    first_day = metric_stats(data, Selection(until=T0.date()))["acceptance_rate"]
    assert (first_day[ids["control"]].n, first_day[ids["delay-24"]].n) == (1, 1)
    week = metric_stats(data, Selection(week=T0.date()))["time_to_secondary_purchase"]
    assert week[ids["control"]].n == 2


def test_window_end_cuts_assignments_and_outcomes(history):
    end = T0 + days(1) + hours(12)
    data = collect_metrics(experiment=history, window_start=T0, window_end=end)
    by = metric_stats(data, Selection())
    ids = _ids(history)
    assert by["acceptance_rate"][ids["delay-24"]].n == 1  # c4 assigned later
    assert by["acceptance_rate"][ids["control"]].n == 2
    assert by["return_rate"][ids["control"]].successes == 0  # the return came on day 2


def test_yes_no_intrusiveness_is_a_rate_of_yes(history):
    o = offer(history, "control", "c2", T0 + days(1), skus=["a"])
    survey_answer(o, metric="intrusiveness", value=1, qtype="yes_no")
    data = collect_metrics(experiment=history, window_start=T0, window_end=END)
    stats_ = metric_stats(data, Selection())["intrusiveness"][_ids(history)["control"]]
    assert (stats_.n, stats_.successes) == (1, 1)


def test_no_data_gives_empty_statistics_not_errors():
    exp = running_experiment("empty", started_at=T0)
    data = collect_metrics(experiment=exp, window_start=T0, window_end=END)
    by = metric_stats(data, Selection())
    assert all(s.n == 0 for metric in by.values() for s in metric.values())


def test_facts_count_from_the_first_assignment_even_before_the_start():
    """The statement leaves out facts older than the first assignment (orders: its pre-period)
    before joining; an assignment before `started_at` still gets its outcomes and covariate."""
    exp = running_experiment("m-bounds", started_at=T0 + days(3))
    assign(exp, "control", "b1", T0)  # the first assignment, before the start
    assign(exp, "control", "b2", T0 + days(4))
    event("order_placed", "b1", T0 - days(13.9), amount=7, items=[("rake", "garden")])
    event("order_placed", "b1", T0 - days(14.1), amount=1000)  # outside the pre-period
    event("offer_accepted", "b1", T0 + hours(1))
    event("order_placed", "b1", T0 + hours(2), amount=11, items=[("hoe", "garden")])
    event("offer_accepted", "b2", T0 + days(3))  # before b2's own assignment
    event("order_placed", "b2", T0 + days(5), amount=5, items=[("pen", "office")])
    data = collect_metrics(experiment=exp, window_start=T0 + days(3), window_end=END)
    by = metric_stats(data, Selection())
    c = _ids(exp)["control"]
    assert by["acceptance_rate"][c].successes == 1  # b1 only
    assert by["category_expansion_rate"][c].successes == 1  # b2's office; garden was b1's
    revenue = by["revenue_per_customer"][c]
    assert (revenue.sum, revenue.covariate.sum_x, revenue.covariate.sum_xy) == (16.0, 7.0, 77.0)
    assert _table(by["time_to_secondary_purchase"][c]) == {2.0: (1, 0), 24.0: (1, 0)}
