"""The assignment service: stickiness, concurrency, the split, layers and targeting.

The pure hashing (bucket, ranges, GrowthBook vectors) is tested in test_assignment.py; here the
service that stores the first answer is checked end to end.
"""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.utils import timezone
from scipy.stats import binomtest, chisquare

from experiments import services
from experiments.models import Assignment, Experiment, Status
from experiments.selectors import assignment_counts, experiment_config
from experiments.services import assignment_get_or_create, choose_for
from tests.conftest import require_services
from tests.factories import running_experiment


def _gb_fnv1a32(text: str) -> int:
    # Written out from GrowthBook's published hash v2 (not imported), for the wiring check.
    h = 0x811C9DC5
    for ch in text:
        h = ((h ^ ord(ch)) * 0x01000193) & 0xFFFFFFFF
    return h


def _gb_bucket(seed: str, customer_id: str) -> float:
    return _gb_fnv1a32(str(_gb_fnv1a32(seed + customer_id))) % 10000 / 10000


def _assign(key: str, customer_id: str, **attributes):
    return assignment_get_or_create(
        config=experiment_config(key), customer_id=customer_id, attributes=attributes
    )


# --- stickiness ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_assignment_is_sticky_when_traffic_grows():
    experiment = running_experiment("pp-timing", traffic_percent=20)
    ids = [f"c-{i}" for i in range(800)]
    before = {cid: _assign("pp-timing", cid) for cid in ids}
    inside_before = {cid: r.variant.key for cid, r in before.items() if r.in_experiment}
    assert 0.15 < len(inside_before) / len(ids) < 0.25

    services.experiment_update(experiment=experiment, traffic_percent=100)

    after = {cid: _assign("pp-timing", cid) for cid in ids}
    assert all(after[cid].variant.key == key for cid, key in inside_before.items())
    assert all(after[cid].in_experiment for cid in ids)
    assert sum(r.new for r in after.values()) == len(ids) - len(inside_before)
    assert Assignment.objects.count() == len(ids)


@pytest.mark.django_db
def test_assignment_is_sticky_when_traffic_falls():
    experiment = running_experiment("pp-timing", traffic_percent=100)
    ids = [f"c-{i}" for i in range(500)]
    before = {cid: _assign("pp-timing", cid).variant.key for cid in ids}

    services.experiment_update(experiment=experiment, traffic_percent=5)

    after = {cid: _assign("pp-timing", cid) for cid in ids}
    # Nobody already in is dropped or moved, even though 95 % would now be outside the pilot.
    assert {cid: r.variant.key for cid, r in after.items()} == before
    assert all(r.in_experiment and not r.new for r in after.values())
    # A new customer meets the lowered traffic.
    newcomers = [_assign("pp-timing", f"new-{i}") for i in range(1000)]
    share = sum(r.in_experiment for r in newcomers) / len(newcomers)
    assert 0.02 < share < 0.09
    assert {r.reason for r in newcomers if not r.in_experiment} == {"outside_traffic"}


@pytest.mark.django_db
def test_assignment_is_sticky_when_the_customer_no_longer_matches_targeting():
    running_experiment("pp-timing", targeting=[{"attribute": "tier", "op": "eq", "value": "gold"}])
    first = _assign("pp-timing", "c-1", tier="gold")
    assert first.in_experiment
    later = _assign("pp-timing", "c-1", tier="bronze")
    assert later.in_experiment
    assert later.variant.key == first.variant.key


@pytest.mark.django_db
def test_stored_variant_is_growthbooks_choice_for_the_experiments_seed():
    running_experiment("pp-timing", delays=(0, 24, 48), weights=[2, 1, 1], hash_seed="seed-7")
    running_experiment("keyed", delays=(0, 24), traffic_percent=50)
    weights3 = [(0.0, 0.5), (0.5, 0.75), (0.75, 1.0)]
    half = [(0.0, 0.25), (0.5, 0.75)]
    for i in range(300):
        cid = f"cust-{i}"
        b = _gb_bucket("seed-7", cid)
        expected = next(k for k, (lo, hi) in enumerate(weights3) if lo <= b < hi)
        result = _assign("pp-timing", cid)
        assert result.variant.key == ("control", "delay-24", "delay-48")[expected]

        b = _gb_bucket("keyed", cid)  # no hash_seed: the key is the seed
        inside = [k for k, (lo, hi) in enumerate(half) if lo <= b < hi]
        result = _assign("keyed", cid)
        assert result.in_experiment == bool(inside)
        if inside:
            assert result.variant.key == ("control", "delay-24")[inside[0]]


@pytest.mark.django_db
def test_assigned_at_is_filterable_by_exact_time():
    running_experiment("pp-timing")
    at = timezone.now().replace(microsecond=0) - timedelta(days=1)
    assignment_get_or_create(config=experiment_config("pp-timing"), customer_id="c-1", at=at)
    # An analysis window ending exactly at the assignment includes it (on SQLite too).
    assert Assignment.objects.filter(assigned_at__lte=at).count() == 1
    assert Assignment.objects.filter(assigned_at__gte=at, assigned_at__lt=at).count() == 0
    assert Assignment.objects.get().assigned_at == at


# --- concurrency --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_first_requests_give_one_row_and_one_variant():
    if connection.vendor != "postgresql":
        # SQLite's in-memory test database reports "table is locked" to concurrent writers.
        require_services("concurrent writers need PostgreSQL (set DATABASE_URL)")
    running_experiment("pp-timing", delays=(0, 24, 48, 72))
    config = experiment_config("pp-timing")
    barrier = threading.Barrier(20)
    results, errors = [], []

    def first_request(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(
                assignment_get_or_create(
                    config=config, customer_id="same-customer", attributes={"n": n}
                )
            )
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first_request, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(results) == 20
    assert len({r.variant.key for r in results}) == 1
    assert all(r.in_experiment for r in results)
    assert sum(r.new for r in results) == 1
    row = Assignment.objects.get(customer_id="same-customer")
    assert row.variant.key == results[0].variant.key


# --- the split ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_split_over_100000_ids_matches_the_weights():
    running_experiment("split", delays=(0, 24, 48), weights=[1, 2, 1])
    config = experiment_config("split")
    counts = Counter(choose_for(config, f"user-{i}", {})[0].key for i in range(100_000))
    observed = [counts["control"], counts["delay-24"], counts["delay-48"]]
    expected = [25_000, 50_000, 25_000]
    assert chisquare(observed, expected).pvalue > 0.001, observed


@pytest.mark.django_db
def test_split_with_pilot_traffic_matches_coverage_and_weights():
    running_experiment("pilot", delays=(0, 24), weights=[3, 1], traffic_percent=30)
    config = experiment_config("pilot")
    chosen = [choose_for(config, f"shopper-{i:06d}", {}) for i in range(100_000)]
    inside = Counter(variant.key for variant, _ in chosen if variant is not None)
    n_inside = sum(inside.values())
    assert binomtest(n_inside, 100_000, 0.30).pvalue > 0.001, n_inside
    observed = [inside["control"], inside["delay-24"]]
    assert chisquare(observed, [n_inside * 0.75, n_inside * 0.25]).pvalue > 0.001, observed
    assert {reason for variant, reason in chosen if variant is None} == {"outside_traffic"}


@pytest.mark.django_db
def test_stored_assignments_split_by_weight():
    experiment = running_experiment("stored", delays=(0, 24), weights=[1, 1])
    for i in range(4000):
        _assign("stored", f"db-{i}")
    counts = assignment_counts(experiment)
    assert sum(counts.values()) == 4000
    assert chisquare([counts["control"], counts["delay-24"]], [2000, 2000]).pvalue > 0.001


# --- layers -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_experiments_in_disjoint_slices_of_a_layer_never_share_a_customer():
    running_experiment("email-a", layer="pp-email", layer_start=0.0, layer_end=0.5)
    running_experiment("email-b", layer="pp-email", layer_start=0.5, layer_end=1.0)
    in_a, in_b = set(), set()
    for i in range(1500):
        cid = f"c-{i}"
        a, b = _assign("email-a", cid), _assign("email-b", cid)
        if a.in_experiment:
            in_a.add(cid)
        else:
            assert a.reason == "outside_layer_slice"
        if b.in_experiment:
            in_b.add(cid)
        else:
            assert b.reason == "outside_layer_slice"
    assert in_a.isdisjoint(in_b)
    # The two slices cover the layer, so with full traffic everyone is in exactly one.
    assert len(in_a) + len(in_b) == 1500
    assert binomtest(len(in_a), 1500, 0.5).pvalue > 0.001


@pytest.mark.django_db
def test_layer_slice_is_independent_of_the_variant_hash():
    # The layer hashes "__" + layer, not the experiment seed: both arms appear inside a slice.
    running_experiment("email-a", layer="pp-email", layer_start=0.0, layer_end=0.5)
    arms = Counter(
        r.variant.key for r in (_assign("email-a", f"c-{i}") for i in range(2000)) if r.variant
    )
    assert set(arms) == {"control", "delay-24"}
    assert chisquare(list(arms.values())).pvalue > 0.001


def _draft_in_layer(key: str, start: float, end: float) -> Experiment:
    experiment = running_experiment(key, layer="pp-email", layer_start=start, layer_end=end)
    experiment.status = Status.DRAFT
    experiment.save()
    return experiment


@pytest.mark.django_db
def test_starting_an_experiment_that_overlaps_a_running_one_in_its_layer_is_refused():
    running_experiment("email-a", layer="pp-email", layer_start=0.0, layer_end=0.5)
    clash = _draft_in_layer("email-b", 0.4, 1.0)
    with pytest.raises(ValidationError) as exc:
        services.experiment_transition(experiment=clash, action="start")
    assert "layer" in exc.value.message_dict
    assert "email-a" in exc.value.message_dict["layer"][0]
    clash.refresh_from_db()
    assert clash.status == Status.DRAFT


@pytest.mark.django_db
def test_a_paused_experiment_still_holds_its_layer_slice():
    paused = running_experiment("email-a", layer="pp-email", layer_start=0.0, layer_end=0.5)
    services.experiment_transition(experiment=paused, action="pause")
    with pytest.raises(ValidationError) as exc:
        services.experiment_transition(experiment=_draft_in_layer("email-b", 0, 1), action="start")
    assert "layer" in exc.value.message_dict


@pytest.mark.django_db
def test_disjoint_or_freed_slices_can_start():
    first = running_experiment("email-a", layer="pp-email", layer_start=0.0, layer_end=0.5)
    adjacent = _draft_in_layer("email-b", 0.5, 1.0)
    services.experiment_transition(experiment=adjacent, action="start")
    services.experiment_transition(experiment=first, action="stop")
    # A stopped experiment releases its slice.
    overlapping = _draft_in_layer("email-c", 0.0, 0.5)
    started = services.experiment_transition(experiment=overlapping, action="start")
    assert started.status == Status.RUNNING
    # Another layer is independent.
    other = running_experiment("sms-a", layer="pp-sms")
    assert other.status == Status.RUNNING


# --- targeting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "attributes", "targeted"),
    [
        ({"attribute": "tier", "op": "eq", "value": "gold"}, {"tier": "gold"}, True),
        ({"attribute": "tier", "op": "eq", "value": "gold"}, {"tier": "silver"}, False),
        ({"attribute": "tier", "op": "eq", "value": "gold"}, {}, False),
        ({"attribute": "tier", "op": "ne", "value": "gold"}, {"tier": "silver"}, True),
        ({"attribute": "tier", "op": "ne", "value": "gold"}, {"tier": "gold"}, False),
        ({"attribute": "tier", "op": "ne", "value": "gold"}, {}, True),
        ({"attribute": "tier", "op": "in", "value": ["gold", "silver"]}, {"tier": "silver"}, True),
        ({"attribute": "tier", "op": "in", "value": ["gold", "silver"]}, {"tier": "bronze"}, False),
        ({"attribute": "tier", "op": "in", "value": ["gold"]}, {}, False),
        ({"attribute": "tier", "op": "not_in", "value": ["gold"]}, {"tier": "bronze"}, True),
        ({"attribute": "tier", "op": "not_in", "value": ["gold"]}, {"tier": "gold"}, False),
        ({"attribute": "tier", "op": "not_in", "value": ["gold"]}, {}, True),
        ({"attribute": "orders", "op": "gte", "value": 3}, {"orders": 3}, True),
        ({"attribute": "orders", "op": "gte", "value": 3}, {"orders": 2.5}, False),
        ({"attribute": "orders", "op": "gte", "value": 3}, {"orders": "10"}, False),
        ({"attribute": "orders", "op": "gte", "value": 1}, {"orders": True}, False),
        ({"attribute": "orders", "op": "gte", "value": 3}, {}, False),
        ({"attribute": "orders", "op": "lte", "value": 3}, {"orders": 3}, True),
        ({"attribute": "orders", "op": "lte", "value": 3}, {"orders": 4}, False),
        ({"attribute": "orders", "op": "lte", "value": 3}, {"orders": None}, False),
        ({"attribute": "vip", "op": "eq", "value": True}, {"vip": True}, True),
        ({"attribute": "vip", "op": "eq", "value": True}, {"vip": 1}, False),
        ({"attribute": "orders", "op": "eq", "value": 1}, {"orders": True}, False),
        ({"attribute": "orders", "op": "eq", "value": 3}, {"orders": 3.0}, True),
        ({"attribute": "orders", "op": "in", "value": [0, 1]}, {"orders": False}, False),
        ({"attribute": "vip", "op": "ne", "value": False}, {"vip": 0}, True),
        ({"attribute": "vip", "op": "not_in", "value": [True]}, {"vip": 1}, True),
    ],
)
@pytest.mark.django_db
def test_targeting_ops(rule, attributes, targeted):
    running_experiment("targeted", targeting=[rule])
    result = _assign("targeted", "c-1", **attributes)
    assert result.in_experiment is targeted
    if not targeted:
        assert result.reason == "not_targeted"
        assert not Assignment.objects.exists()


@pytest.mark.django_db
def test_all_targeting_rules_must_match():
    running_experiment(
        "targeted",
        targeting=[
            {"attribute": "tier", "op": "in", "value": ["gold", "silver"]},
            {"attribute": "orders", "op": "gte", "value": 2},
        ],
    )
    assert _assign("targeted", "a", tier="gold", orders=5).in_experiment
    assert not _assign("targeted", "b", tier="gold", orders=1).in_experiment
    assert not _assign("targeted", "c", tier="bronze", orders=5).in_experiment


@pytest.mark.django_db
def test_targeting_runs_before_traffic_so_untargeted_customers_are_never_stored():
    running_experiment("targeted", targeting=[{"attribute": "country", "op": "eq", "value": "DK"}])
    for i in range(200):
        assert _assign("targeted", f"c-{i}", country="SE").reason == "not_targeted"
    assert not Assignment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_config_read_by_a_request_during_the_start_transaction_is_refreshed_on_commit():
    if connection.vendor != "postgresql":
        require_services("a concurrent reader during a write needs PostgreSQL (set DATABASE_URL)")
    experiment = running_experiment("pp-timing")
    services.experiment_transition(experiment=experiment, action="pause")
    seen = []

    def concurrent_request() -> None:
        seen.append(experiment_config("pp-timing").status)  # the committed row: paused
        connections.close_all()

    with transaction.atomic():
        services.experiment_transition(experiment=experiment, action="start")
        reader = threading.Thread(target=concurrent_request)
        reader.start()
        reader.join(timeout=30)
    assert seen == ["paused"]
    assert experiment_config("pp-timing").status == "running"


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_experiments_started_at_once_cannot_both_run():
    if connection.vendor != "postgresql":
        require_services("concurrent starts need PostgreSQL (set DATABASE_URL)")
    first = _draft_in_layer("email-a", 0.0, 0.6)
    second = _draft_in_layer("email-b", 0.4, 1.0)
    barrier = threading.Barrier(2)
    outcomes = {}

    def start(experiment) -> None:
        try:
            barrier.wait(timeout=30)
            services.experiment_transition(experiment=experiment, action="start")
            outcomes[experiment.key] = "started"
        except ValidationError as exc:
            outcomes[experiment.key] = sorted(exc.message_dict)
        except Exception as exc:  # asserted below
            outcomes[experiment.key] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start, args=(e,)) for e in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(map(str, outcomes.values())) == ["['layer']", "started"], outcomes
    assert Experiment.objects.filter(status=Status.RUNNING).count() == 1


@pytest.mark.django_db
def test_hot_path_statements_per_request(django_assert_num_queries):
    running_experiment("pp-timing")
    config = experiment_config("pp-timing")
    with django_assert_num_queries(1):  # INSERT … ON CONFLICT DO NOTHING RETURNING
        first = assignment_get_or_create(config=config, customer_id="c-1")
    # Returning customer: PostgreSQL reads the stored row in the same statement.
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        again = assignment_get_or_create(config=config, customer_id="c-1")
    assert (first.new, again.new) == (True, False)
    assert again.variant == first.variant
