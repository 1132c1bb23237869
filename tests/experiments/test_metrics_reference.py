"""The metrics SQL against a brute-force Python reading of the definitions, on random data."""

import itertools
import math
import random
import threading
from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import connection, transaction

from experiments import metrics
from experiments.metrics import NO_SEGMENT, collect_metrics, week_start
from tests.conftest import require_services
from tests.experiments.analysis_data import T0, assign, days, event, hours, offer
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db

END = T0 + days(12)
PRE = timedelta(days=14)
SKUS = ("a", "b", "c", "d", "e")
CATEGORIES = ("audio", "video", "")
EVENT_TYPES = ("order_placed", "order_placed", "order_returned", "offer_accepted")
EVENT_TYPES += ("cart_abandoned", "offer_shown")


def _history(seed: int):
    """Random customers, events, items and offers (duplicate skus, two-item orders)."""
    rnd = random.Random(seed)
    exp = running_experiment(f"ref-{seed}", started_at=T0)
    other = running_experiment(f"ref-other-{seed}", started_at=T0)
    customers, events, offers = [], [], []

    def at(lo: float, hi: float):
        return T0 + timedelta(seconds=rnd.uniform(lo, hi) * 86400)

    for k in range(40):
        cid = f"r{k}"
        variant = rnd.choice(["control", "delay-24"])
        assigned = at(0, 11)
        customers.append((cid, variant, assigned, rnd.choice(["gold", "silver", ""])))
        for _ in range(rnd.randint(0, 2)):
            skus = rnd.sample(SKUS, 2) + ([rnd.choice(SKUS)] if rnd.random() < 0.3 else [])
            created = at(-3, 14)
            offers.append((exp, variant, cid, created, skus))
        if rnd.random() < 0.3:
            offers.append((other, "control", cid, at(0, 10), [rnd.choice(SKUS)]))
        for _ in range(rnd.randint(0, 8)):
            type_ = rnd.choice(EVENT_TYPES)
            when = at(-20, 14)
            items = ()
            if type_ in ("order_placed", "order_returned", "cart_abandoned"):
                items = [
                    (rnd.choice(SKUS), rnd.choice(CATEGORIES)) for _ in range(rnd.randint(0, 2))
                ]
            amount = round(rnd.uniform(1, 200), 2) if type_ == "order_placed" else None
            if type_ == "order_placed" and rnd.random() < 0.1:
                amount = None
            events.append((type_, cid, when, amount, items, rnd.random()))
        # Acceptances and returns of recommended skus after assignment, so return_rate has
        # cases on both sides of every condition.
        soon = assigned + timedelta(seconds=rnd.uniform(-0.5, 2) * 86400)
        if rnd.random() < 0.5:
            events.append(("offer_accepted", cid, soon, None, (), rnd.random()))
        if rnd.random() < 0.5:
            returned = [(rnd.choice(SKUS), "audio")]
            events.append(("order_returned", cid, soon + hours(5), None, returned, 0.0))
    for cid, variant, assigned, segment in customers:
        assign(exp, variant, cid, assigned, segment)
    made = [(o[0], o[2], o[3], o[4], offer(*o)) for o in offers]
    ours = [m[4].offer_id for m in made if m[0] == exp]
    theirs = [m[4].offer_id for m in made if m[0] != exp]
    rows = []
    for type_, cid, when, amount, items, r in events:
        offer_id = None
        if type_ == "offer_accepted":
            offer_id = rnd.choice(ours) if r < 0.5 and ours else None
            offer_id = rnd.choice(theirs) if r > 0.8 and theirs else offer_id
        event(type_, cid, when, amount=amount, offer_id=offer_id, items=items)
        rows.append((type_, cid, when, amount, items, offer_id))
    recommended = {(m[1], s) for m in made if m[0] == exp and m[2] <= END for s in m[3]}
    exp.refresh_from_db()
    return exp, customers, rows, set(ours), recommended


def _expected(customers, rows, ours, recommended, variant_ids):
    """{(variant id, segment, day): cell} and {(variant id, segment, week): {(h, o): n}}."""
    cells = defaultdict(lambda: [0.0] * 13)
    survival = defaultdict(lambda: defaultdict(int))
    for cid, variant, assigned, segment in customers:
        mine = [r for r in rows if r[1] == cid and r[2] <= END]
        after = [r for r in mine if r[2] >= assigned]
        orders = [r for r in after if r[0] == "order_placed"]
        accepted = any(r[0] == "offer_accepted" and (r[5] is None or r[5] in ours) for r in after)
        abandoned = any(r[0] == "cart_abandoned" for r in after)
        first_per_category = {}
        for r in mine:
            if r[0] == "order_placed":
                for _, category in r[4]:
                    if category:
                        first = first_per_category.get(category, r[2])
                        first_per_category[category] = min(first, r[2])
        expanded = any(first >= assigned for first in first_per_category.values())
        rec = [r for r in after if any((cid, sku) in recommended for sku, _ in r[4])]
        rec_returned = any(r[0] == "order_returned" for r in rec)
        rec_orders = [r[3] or 0.0 for r in rec if r[0] == "order_placed"]
        revenue = math.fsum(r[3] or 0.0 for r in orders)
        pre = math.fsum(
            r[3] or 0.0
            for r in mine
            if r[0] == "order_placed" and assigned - PRE <= r[2] < assigned
        )
        key = (variant_ids[variant], segment or NO_SEGMENT, assigned.date())
        cell = cells[key]
        values = [1, accepted, abandoned, expanded, accepted and rec_returned, revenue]
        values += [revenue * revenue, pre, pre * pre, revenue * pre]
        if rec_orders:
            xs = math.fsum(rec_orders) / len(rec_orders)
            values += [1, xs, xs * xs]
        else:
            values += [0, 0.0, 0.0]
        for i, v in enumerate(values):
            cell[i] += float(v)
        first_order = min((r[2] for r in orders), default=None)
        elapsed = ((first_order or END) - assigned).total_seconds() / 3600
        group = (float(math.ceil(elapsed - 0.001)), int(first_order is not None))
        survival[(key[0], key[1], week_start(key[2]))][group] += 1
    return cells, survival


def _assert_matches_reference(data, exp, customers, rows, ours, recommended):
    variant_ids = {v.key: v.id for v in exp.variants.all()}
    cells, survival = _expected(customers, rows, ours, recommended, variant_ids)

    assert set(data.cells) == set(cells)
    for key, want in cells.items():
        assert data.cells[key] == pytest.approx(want, rel=1e-9, abs=1e-9), key
    assert {k: dict(v) for k, v in data.survival.items()} == {
        k: dict(v) for k, v in survival.items()
    }
    # The random history exercises every column (else the comparison proves little).
    totals = [math.fsum(c[i] for c in cells.values()) for i in range(13)]
    assert all(t > 0 for t in totals[:5]) and totals[10] > 0, totals


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_sufficient_statistics_match_a_brute_force_reading(seed):
    exp, customers, rows, ours, recommended = _history(seed)
    data = collect_metrics(experiment=exp, window_start=T0, window_end=END)
    _assert_matches_reference(data, exp, customers, rows, ours, recommended)


@pytest.fixture
def part_calls(monkeypatch):
    """The parts run on other connections (threads); records each one's SQL."""
    calls = []
    original = metrics._part_rows

    def spy(sql, params, snapshot):
        calls.append(sql)
        return original(sql, params, snapshot)

    monkeypatch.setattr(metrics, "_part_rows", spy)
    return calls


def _postgresql_only():
    if connection.vendor != "postgresql":
        require_services("the statement runs in parts on PostgreSQL only (DATABASE_URL)")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("parts", [2, 3])
def test_the_statement_in_parts_adds_up_to_the_brute_force_reading(parts, settings, part_calls):
    _postgresql_only()
    settings.OFFERLAB_ANALYSIS_PARALLEL = parts
    exp, customers, rows, ours, recommended = _history(4)
    data = collect_metrics(experiment=exp, window_start=T0, window_end=END)
    assert len(part_calls) == parts - 1  # the other parts ran on their own connections
    assert all('hashtext(a.customer_id COLLATE "C")' in sql for sql in part_calls)
    _assert_matches_reference(data, exp, customers, rows, ours, recommended)


def test_hash_ranges_cover_every_hash_once():
    for parts in (1, 2, 3, 7):
        ranges = metrics.hash_ranges(parts)
        assert len(ranges) == parts
        assert ranges[0][0] is None and ranges[-1][1] is None
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        inner = [r[0] for r in ranges[1:]]
        assert inner == sorted(inner) and all(-(2**31) < b < 2**31 for b in inner)
    assert metrics.hash_ranges(2) == [(None, 0), (0, None)]


@pytest.mark.django_db(transaction=True)
def test_every_part_reads_the_snapshot_of_the_first(settings, part_calls, monkeypatch):
    """Customers assigned while the parts start are in none of them (one snapshot for all)."""
    _postgresql_only()
    settings.OFFERLAB_ANALYSIS_PARALLEL = 3
    exp, customers, rows, ours, recommended = _history(5)
    original = metrics._part_rows

    def late_customers_then_part(sql, params, snapshot):
        def commit_more():  # another connection, committed before this part starts
            try:
                for k in range(30):
                    assign(exp, "control", f"late-{k}-{len(sql)}", T0 + days(1))
            finally:
                connection.close()

        writer = threading.Thread(target=commit_more)
        writer.start()
        writer.join()
        return original(sql, params, snapshot)

    monkeypatch.setattr(metrics, "_part_rows", late_customers_then_part)
    data = collect_metrics(experiment=exp, window_start=T0, window_end=END)
    assert sum(cell[0] for cell in data.cells.values()) == len(customers)
    _assert_matches_reference(data, exp, customers, rows, ours, recommended)


def test_inside_a_transaction_the_statement_runs_as_one(settings, part_calls):
    """Other connections cannot see this transaction's rows, so no parts are used."""
    settings.OFFERLAB_ANALYSIS_PARALLEL = 3
    exp, customers, rows, ours, recommended = _history(6)
    with transaction.atomic():
        data = collect_metrics(experiment=exp, window_start=T0, window_end=END)
    assert part_calls == []
    _assert_matches_reference(data, exp, customers, rows, ours, recommended)


def test_a_sku_recommended_twice_counts_its_order_once():
    exp = running_experiment("ref-dup", started_at=T0)
    assign(exp, "control", "d1", T0)
    offer(exp, "control", "d1", T0, skus=["a", "a", "b"])
    offer(exp, "control", "d1", T0 + hours(1), skus=["a"])
    event("order_placed", "d1", T0 + hours(2), amount=50, items=[("a", "x"), ("b", "y")])
    event("order_placed", "d1", T0 + hours(3), amount=10, items=[("a", "x")])
    data = collect_metrics(experiment=exp, window_start=T0, window_end=END)
    (cell,) = data.cells.values()
    assert cell[10:] == [1.0, 30.0, 900.0]  # two orders, mean 30
