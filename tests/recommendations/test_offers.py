"""POST /api/v1/offers: windows, assignment, products, message, caps and bad input."""

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from experiments.models import Assignment, EventType
from feedback.models import Display, Question, Survey
from recommendations.apis.offers import _utc_iso
from recommendations.models import CustomerCap, Offer, Product
from recommendations.offers import render_message
from recommendations.selectors import invalidate_catalog
from tests.factories import running_experiment

from .conftest import make_product, order, relate

pytestmark = pytest.mark.django_db

URL = "/api/v1/offers"


def ask(client, customer="c-1", trigger="post_purchase", skus=("tent",), **context):
    body = {"customer_id": customer, "trigger": trigger, "context": {"skus": list(skus), **context}}
    return client.post(URL, body, format="json")


def iso(dt):
    return dt.isoformat()


# --- the offer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 8, 9, 30, tzinfo=UTC),
        datetime(2026, 12, 8, 9, 30, 5, 123456, tzinfo=UTC),
        datetime(2026, 6, 1, 23, 59, 59, tzinfo=ZoneInfo("Europe/Berlin")),
    ],
)
def test_send_at_is_written_as_drf_writes_a_datetime(value):
    assert _utc_iso(value) == serializers.DateTimeField().to_representation(value)


def test_offer_carries_the_variant_timing_channel_message_and_ranked_products(storefront, shop):
    experiment = running_experiment("pp-timing", delays=(0, 24))
    moment = timezone.now() - timedelta(hours=1)
    response = ask(storefront, occurred_at=iso(moment))
    assert response.status_code == 201
    body = response.json()
    assert body["experiment"] == "pp-timing"
    assert body["variant"] in {"control", "delay-24"}
    delay = 0 if body["variant"] == "control" else 24
    assert parse_datetime(body["send_at"]) == moment + timedelta(hours=delay)
    assert body["channel"] == "email"
    # completion first (stakes 0.9, footprint 0.5), then the next strategy fills the offer
    assert [(p["sku"], p["strategy"]) for p in body["products"]] == [
        ("stakes", "completion"),
        ("footprint", "completion"),
        ("stove", "ecosystem"),
    ]
    assert body["products"][0] == {
        "sku": "stakes",
        "name": "Tent Stakes",
        "category": "accessories",
        "price": "12.50",
        "strategy": "completion",
        "score": 0.9,
    }
    assert body["message"]["body"] == "Try Tent Stakes, Footprint, Camp Stove"
    assert body["survey"] is None
    offer = Offer.objects.get(offer_id=body["offer_id"])
    assert offer.experiment == experiment
    assert offer.variant.key == body["variant"]
    assert offer.customer_id == "c-1" and offer.products == body["products"]


def test_experiment_strategy_decides_which_kind_comes_first(storefront, shop):
    running_experiment("pp-evolution", strategy="evolution")
    products = ask(storefront).json()["products"]
    assert products[0] == {**products[0], "sku": "tent-pro", "strategy": "evolution"}


def test_offer_and_assignments_endpoint_share_one_sticky_variant(storefront, shop):
    running_experiment("pp-timing", delays=(0, 24))
    variants = set()
    for i in range(12):
        customer = hashlib.md5(str(i).encode()).hexdigest()  # varied ids spread over buckets
        if i % 2:
            first = storefront.post(
                "/api/v1/assignments",
                {"customer_id": customer, "experiment": "pp-timing"},
                format="json",
            ).json()["variant"]
            offered = ask(storefront, customer=customer).json()["variant"]
        else:
            offered = ask(storefront, customer=customer).json()["variant"]
            first = storefront.post(
                "/api/v1/assignments",
                {"customer_id": customer, "experiment": "pp-timing"},
                format="json",
            ).json()["variant"]
        assert offered == first
        variants.add(offered)
    assert variants == {"control", "delay-24"}
    assert Assignment.objects.count() == 12


def test_customer_gets_the_first_running_experiment_they_are_assigned_into(storefront, shop):
    running_experiment("nobody", traffic_percent=0)
    running_experiment("everybody")
    assert ask(storefront).json()["experiment"] == "everybody"


def test_customer_outside_every_experiment_gets_the_default_offer(storefront, shop):
    running_experiment("nobody", traffic_percent=0)
    body = ask(storefront).json()
    assert (body["experiment"], body["variant"], body["channel"]) == (None, None, "web")
    assert body["message"] == {
        "subject": "Picked for you",
        "body": "You might also like Tent Stakes, Footprint, Camp Stove.",
        "cta": "Take a look",
    }
    assert Offer.objects.get().experiment is None


def test_default_offers_can_be_switched_off(storefront, shop, settings):
    settings.OFFERLAB_DEFAULT_OFFERS = False
    response = ask(storefront)
    assert response.status_code == 200
    assert response.json() == {"offer": None, "reason": "not_eligible"}
    assert not Offer.objects.exists()


def test_survey_is_attached_when_one_is_active(storefront, shop):
    survey = Survey.objects.create(key="helpful", name="Helpful?", sampling_rate=1.0)
    Question.objects.create(survey=survey, key="helpful", type="rating", text="Helpful?")
    body = ask(storefront).json()
    assert body["survey"]["token"]
    assert body["survey"]["url"].endswith(body["survey"]["token"])
    assert Display.objects.get().offer.offer_id.hex == body["offer_id"].replace("-", "")


def test_order_id_stands_in_for_skus(storefront, shop):
    order("c-1", ["tent"], order_id="o-77")
    products = ask(storefront, skus=(), order_id="o-77").json()["products"]
    assert [p["sku"] for p in products] == ["stakes", "footprint", "stove"]
    assert ask(storefront, customer="c-2", skus=(), order_id="o-77").json() == {
        "offer": None,
        "reason": "no_recommendations",
    }  # another customer's order id finds nothing


# --- message rendering ---------------------------------------------------------------------


def test_product_names_with_braces_are_inserted_literally(storefront, shop):
    make_product("mug", name="Mug {count} {product} {{__class__}} {products}")
    relate("tent", "mug", "complement", score=5)
    body = ask(storefront).json()
    assert body["message"]["body"].startswith(
        "You might also like Mug {count} {product} {{__class__}} {products}, Tent Stakes"
    )


def test_render_message_fills_each_placeholder_once():
    template = {"subject": "{count} picks", "body": "{product}! Also {products}", "cta": "Go"}
    rendered = render_message(template, ["A {product}", "B"])
    assert rendered == {
        "subject": "2 picks",
        "body": "A {product}! Also A {product}, B",
        "cta": "Go",
    }


# --- windows and moments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "hours_ago", "served"),
    [
        ("post_purchase", 47.9, True),
        ("post_purchase", 48.1, False),
        ("cart_abandonment", 3.9, True),
        ("cart_abandonment", 4.1, False),
        ("support_resolution", 25, False),
        ("seasonal", 24 * 60, True),
    ],
)
def test_requests_outside_the_moments_window_are_refused(
    storefront, shop, trigger, hours_ago, served
):
    moment = timezone.now() - timedelta(hours=hours_ago)
    response = ask(storefront, trigger=trigger, occurred_at=iso(moment))
    if served:
        assert response.status_code == 201
    else:
        assert response.status_code == 200
        assert response.json() == {"offer": None, "reason": "outside_window"}
        assert not Offer.objects.exists()


def test_window_refusal_happens_before_assignment(storefront, shop):
    running_experiment("exp")
    moment = timezone.now() - timedelta(hours=49)
    assert ask(storefront, occurred_at=iso(moment)).json()["reason"] == "outside_window"
    assert not Assignment.objects.exists()


def test_window_is_configurable(storefront, shop, settings):
    settings.OFFERLAB_MOMENT_WINDOW_HOURS = {"post_purchase": 2.0}
    moment = timezone.now() - timedelta(hours=3)
    assert ask(storefront, occurred_at=iso(moment)).json()["reason"] == "outside_window"


def test_variant_window_shorter_than_the_moments_applies(storefront, shop):
    experiment = running_experiment("short")
    experiment.variants.update(timing={"delay_hours": 0, "window_hours": 2})
    moment = timezone.now() - timedelta(hours=3)
    assert ask(storefront, occurred_at=iso(moment)).json()["reason"] == "outside_window"


def test_browse_needs_three_views(storefront, shop):
    assert ask(storefront, trigger="browse", views=2).json() == {
        "offer": None,
        "reason": "not_eligible",
    }
    assert ask(storefront, trigger="browse", views=3).status_code == 201


def test_browse_counts_product_viewed_events_when_views_are_not_sent(storefront, shop):
    for _ in range(2):
        order("c-1", ["tent"], event_type=EventType.PRODUCT_VIEWED)
    assert ask(storefront, trigger="browse").json()["reason"] == "not_eligible"
    order("c-1", ["tent"], event_type=EventType.PRODUCT_VIEWED)
    assert ask(storefront, trigger="browse").status_code == 201


def test_usage_milestone_below_75_percent_is_not_eligible(storefront, shop):
    assert ask(storefront, trigger="usage_milestone", usage_percent=50).json()["reason"] == (
        "not_eligible"
    )
    body = ask(storefront, trigger="usage_milestone", usage_percent=80).json()
    assert body["products"][0]["strategy"] == "evolution"


# --- exclusions ----------------------------------------------------------------------------


def test_already_bought_cart_and_context_products_are_left_out(storefront, shop):
    order("c-1", ["stakes"])
    order("c-2", ["stakes"])  # someone else's order changes nothing for c-1
    body = ask(storefront, skus=("tent", "stove"), cart=["footprint"]).json()
    skus = [p["sku"] for p in body["products"]]
    assert skus == ["tent-pro"]


def test_unservable_products_are_left_out(storefront, shop):
    Product.objects.filter(sku="stakes").update(in_stock=False)
    Product.objects.filter(sku="footprint").update(price=0)
    Product.objects.filter(sku="stove").update(active=False)
    invalidate_catalog()  # a bulk update sends no signal
    assert [p["sku"] for p in ask(storefront).json()["products"]] == ["tent-pro"]


def test_nothing_to_recommend_writes_nothing(storefront, shop):
    running_experiment("exp")
    response = ask(storefront, skus=("lamp",))
    assert response.json() == {"offer": None, "reason": "no_recommendations"}
    assert not Offer.objects.exists()
    assert not Assignment.objects.exists()
    assert not CustomerCap.objects.exists()


def test_unknown_skus_are_ignored_with_a_warning(storefront, shop):
    body = ask(storefront, skus=("ghost", "tent")).json()
    assert body["products"]
    assert body["warnings"] == ["Unknown sku(s) ignored: ghost."]
    only_unknown = ask(storefront, customer="c-2", skus=("ghost",)).json()
    assert only_unknown["reason"] == "no_recommendations"
    assert only_unknown["warnings"] == ["Unknown sku(s) ignored: ghost."]


# --- frequency caps ------------------------------------------------------------------------


def test_one_offer_per_channel_per_day(storefront, shop):
    assert ask(storefront).status_code == 201
    second = ask(storefront)
    assert second.status_code == 200
    assert second.json() == {"offer": None, "reason": "frequency_capped"}
    assert Offer.objects.count() == 1
    assert ask(storefront, customer="c-2").status_code == 201  # caps are per customer


def test_three_offers_per_seven_days_across_channels(storefront, shop, settings):
    settings.OFFERLAB_FREQUENCY_CAP_PER_CHANNEL_PER_DAY = 10
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(3):
            assert ask(storefront).status_code == 201
            clock.shift(timedelta(days=1))
        assert ask(storefront).json()["reason"] == "frequency_capped"
        clock.move_to(start + timedelta(days=7, minutes=1))
        assert ask(storefront).status_code == 201  # the first offer left the 7-day window
    assert Offer.objects.count() == 4


def test_day_cap_frees_the_channel_after_24_hours(storefront, shop):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        assert ask(storefront).status_code == 201
        clock.shift(timedelta(hours=23))
        assert ask(storefront).json()["reason"] == "frequency_capped"
        clock.shift(timedelta(hours=1, minutes=1))
        assert ask(storefront).status_code == 201


def test_old_cap_entries_are_forgotten(storefront, shop, settings):
    settings.OFFERLAB_FREQUENCY_CAP_PER_WEEK = 100
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(12):
            assert ask(storefront).status_code == 201
            clock.shift(timedelta(days=2))
    entries = [e for e in CustomerCap.objects.get(customer_id="c-1").served.split(";") if e]
    assert len(entries) < 12


def test_capped_requests_are_not_exposures_and_do_not_assign(storefront, shop):
    running_experiment("exp")
    ask(storefront)
    ask(storefront)
    assert Offer.objects.count() == 1 and Assignment.objects.count() == 1


# --- hot path --------------------------------------------------------------------------------


# --- refusals take their writes back and commit ----------------------------------------


@pytest.fixture
def rollbacks(monkeypatch):
    """The names of the rollbacks the connection is asked for (the test's own transaction
    turns the offer's atomic block into a savepoint, so both kinds are watched)."""
    db = connections[DEFAULT_DB_ALIAS]
    seen = []
    for name in ("rollback", "savepoint_rollback"):
        original = getattr(db, name)

        def watched(*args, _original=original, _name=name, **kwargs):
            seen.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(db, name, watched)
    return seen


def test_a_capped_request_leaves_the_ledger_as_it_was_without_a_rollback(
    storefront, shop, rollbacks
):
    running_experiment("exp")
    assert ask(storefront).status_code == 201
    before = CustomerCap.objects.values_list("served", "customer_id").get()
    assert ask(storefront).json()["reason"] == "frequency_capped"
    assert CustomerCap.objects.values_list("served", "customer_id").get() == before
    assert Assignment.objects.count() == 1 and Offer.objects.count() == 1
    assert rollbacks == []


@pytest.mark.parametrize(
    "setup, skus, reason",
    [
        # new assignment (in the cap statement on PostgreSQL), then nothing to recommend
        (lambda s: running_experiment("exp"), ("lamp",), "no_recommendations"),
        # new assignment into the second experiment (its own statement), then nothing either
        (
            lambda s: (
                running_experiment("nobody", traffic_percent=0),
                running_experiment("everybody"),
            ),
            ("lamp",),
            "no_recommendations",
        ),
        # new assignment, then the variant's own window is shorter than the moment's age
        (
            lambda s: running_experiment("short").variants.update(
                timing={"delay_hours": 0, "window_hours": 0.5}
            ),
            ("tent",),
            "outside_window",
        ),
        # in no experiment, and default offers are off
        (
            lambda s: (
                running_experiment("nobody", traffic_percent=0),
                setattr(s, "OFFERLAB_DEFAULT_OFFERS", False),
            ),
            ("tent",),
            "not_eligible",
        ),
    ],
)
def test_a_refusal_leaves_no_assignment_and_no_ledger_without_a_rollback(
    storefront, shop, settings, rollbacks, setup, skus, reason
):
    setup(settings)
    response = ask(storefront, skus=skus, occurred_at=iso(timezone.now() - timedelta(hours=1)))
    assert response.json()["reason"] == reason
    assert not Assignment.objects.exists()
    assert not CustomerCap.objects.exists()
    assert not Offer.objects.exists()
    assert rollbacks == []


def test_a_refusal_after_the_ledger_was_pruned_gives_back_every_entry(storefront, shop, rollbacks):
    """Allowed by the caps, the ledger is rewritten without its old entries; then nothing is
    left to recommend, and the undo puts back exactly what was committed before."""
    old = int((timezone.now() - timedelta(days=30)).timestamp())
    served = "".join(f"{old + i}:email;" for i in range(9))
    CustomerCap.objects.create(customer_id="c-1", served=served, updated_at=timezone.now())
    assert ask(storefront, skus=("lamp",)).json()["reason"] == "no_recommendations"
    assert CustomerCap.objects.get(customer_id="c-1").served == served
    assert rollbacks == []
    assert ask(storefront).status_code == 201  # and a servable request prunes for real
    assert CustomerCap.objects.get(customer_id="c-1").served.count(";") == 1


def test_a_request_that_fails_still_rolls_back_everything(storefront, shop, monkeypatch):
    running_experiment("exp")

    def broken(offer):
        raise RuntimeError("the offer row could not be written")

    monkeypatch.setattr("recommendations.offers._offer_insert", broken)
    storefront.raise_request_exception = False
    assert ask(storefront).status_code == 500
    assert not Assignment.objects.exists() and not CustomerCap.objects.exists()


def test_a_warm_offer_reads_no_configuration_from_the_database(storefront, shop):
    running_experiment("exp")
    ask(storefront, customer="warm-up")
    with CaptureQueriesContext(connection) as queries:
        assert ask(storefront, customer="c-new").status_code == 201
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    for table in ("experiments_experiment", "experiments_variant", "recommendations_product"):
        assert table not in sql  # configuration and catalogue come from the in-process cache
    assert "rest_framework_api_key" not in sql  # so does the verified API key
    ours = [
        q["sql"]
        for q in queries.captured_queries
        if "feedback_" not in q["sql"] and "SAVEPOINT" not in q["sql"]
    ]
    # the assignment insert, the cap ledger (which also reads past orders), the offer row
    assert len(ours) <= 3, ours


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": "c", "trigger": "birthday", "context": {}}, "trigger"),
        ({"trigger": "post_purchase"}, "customer_id"),
        ({"customer_id": "", "trigger": "post_purchase"}, "customer_id"),
        ({"customer_id": "x" * 256, "trigger": "post_purchase"}, "customer_id"),
        ({"customer_id": "c", "trigger": "post_purchase", "context": {"skus": "tent"}}, "context"),
        ({"customer_id": "c", "trigger": "post_purchase", "context": []}, "context"),
        (
            {"customer_id": "c", "trigger": "post_purchase", "context": {"occurred_at": "soon"}},
            "context",
        ),
        (
            {"customer_id": "c", "trigger": "browse", "context": {"views": -1}},
            "context",
        ),
        ({"customer_id": "c", "trigger": "post_purchase", "attributes": {"a": {}}}, "attributes"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(storefront, shop, body, field):
    response = storefront.post(URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_a_moment_in_the_future_is_a_400(storefront, shop):
    response = ask(storefront, occurred_at=iso(timezone.now() + timedelta(hours=2)))
    assert response.status_code == 400
    assert "occurred_at" in response.json()["context"]


def test_offers_need_an_api_key(anon, staff, shop):
    assert ask(anon).status_code in (401, 403)
    assert ask(staff).status_code in (401, 403)


def test_attributes_with_a_nul_character_are_a_400(storefront, shop):
    running_experiment("exp")
    body = {
        "customer_id": "c-1",
        "trigger": "post_purchase",
        "context": {"skus": ["tent"]},
        "attributes": {"tier": "gold\x00"},
    }
    response = storefront.post(URL, body, format="json")
    assert response.status_code == 400 and "attributes" in response.json()


@pytest.mark.parametrize("field", ["views", "usage_percent"])
def test_booleans_are_not_numbers(storefront, shop, field):
    response = ask(storefront, trigger="browse", **{field: True})
    assert response.status_code == 400 and field in response.json()["context"]


@pytest.mark.parametrize(
    "context", [{"cart": [0]}, {"skus": [12]}, {"order_id": 5}, {"views": "3"}, {"views": True}]
)
def test_a_context_value_of_the_wrong_json_type_is_400(storefront, shop, context):
    response = storefront.post(
        URL, {"customer_id": "c", "trigger": "browse", "context": context}, format="json"
    )
    assert response.status_code == 400
    assert set(context) <= set(response.json()["context"])
