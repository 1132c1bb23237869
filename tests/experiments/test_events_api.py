"""POST /api/v1/events: idempotent batches, per-event statuses, limits and the envelope errors."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from experiments.models import EventItem, OutcomeEvent
from recommendations.models import Offer

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


def _when(minutes_ago: float = 10) -> str:
    return (timezone.now() - timedelta(minutes=minutes_ago)).isoformat()


def order(**fields) -> dict:
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "order_placed",
        "customer_id": "c-1",
        "occurred_at": _when(),
        "order_id": "o-1001",
        "amount": "64.90",
        "currency": "EUR",
        "items": [
            {"sku": "tent-2p", "category": "tents", "quantity": 1, "price": "49.90"},
            {"sku": "peg-set", "category": "accessories", "quantity": 3, "price": 5},
        ],
    }
    event.update(fields)
    return event


def shown(**fields) -> dict:
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "offer_shown",
        "customer_id": "c-1",
        "occurred_at": _when(),
    }
    event.update(fields)
    return event


def _post(client, events):
    # json.dumps escapes what UTF-8 cannot carry (lone surrogates), as a storefront's encoder would.
    return client.post(URL, json.dumps({"events": events}), content_type="application/json")


def test_batch_is_stored_with_items_and_the_sending_key(storefront, api_key):
    events = [order(), shown(customer_id="c-2")]

    response = _post(storefront, events)

    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert body["duplicates"] == 0
    assert body["rejected"] == []
    assert body["results"] == [
        {"event_id": events[0]["event_id"], "status": "accepted"},
        {"event_id": events[1]["event_id"], "status": "accepted"},
    ]
    stored = OutcomeEvent.objects.get(event_id=events[0]["event_id"])
    assert stored.type == "order_placed"
    assert stored.amount == Decimal("64.90")
    assert stored.currency == "EUR"
    assert stored.order_id == "o-1001"
    assert stored.api_key_id == APIKey.objects.get_from_key(api_key).id
    items = {i.sku: i for i in EventItem.objects.filter(event=stored)}
    assert set(items) == {"tent-2p", "peg-set"}
    assert items["peg-set"].quantity == 3
    assert items["peg-set"].price == Decimal("5")
    # Items carry the event's type, customer and time so SQL can aggregate them alone.
    assert items["tent-2p"].type == "order_placed"
    assert items["tent-2p"].customer_id == "c-1"
    assert items["tent-2p"].occurred_at == stored.occurred_at


def test_resent_batch_is_all_duplicate_and_changes_nothing(storefront):
    events = [order(), order(customer_id="c-2"), shown()]
    assert _post(storefront, events).json()["accepted"] == 3
    counts = (OutcomeEvent.objects.count(), EventItem.objects.count())

    response = _post(storefront, events)

    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 0
    assert body["duplicates"] == 3
    assert [r["status"] for r in body["results"]] == ["duplicate"] * 3
    assert [r["event_id"] for r in body["results"]] == [e["event_id"] for e in events]
    assert (OutcomeEvent.objects.count(), EventItem.objects.count()) == counts == (3, 4)


def test_one_bad_event_does_not_cost_the_others(storefront):
    good_before, good_after = order(), shown()
    bad = order(currency="EURO")

    body = _post(storefront, [good_before, bad, good_after]).json()

    assert body["accepted"] == 2
    assert body["rejected"] == [
        {
            "index": 1,
            "errors": {
                "currency": ["Unknown currency: expected an ISO 4217 code such as EUR or USD."]
            },
        }
    ]
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    assert body["results"][1]["event_id"] == bad["event_id"]
    assert set(OutcomeEvent.objects.values_list("event_id", flat=True)) == {
        uuid.UUID(good_before["event_id"]),
        uuid.UUID(good_after["event_id"]),
    }
    assert EventItem.objects.count() == 2  # only the good order's lines


def test_statuses_line_up_with_input_order_in_a_mixed_batch(storefront):
    old = shown()
    _post(storefront, [old])
    new = shown()
    batch = [new, shown(type="nope"), old, order(), new]

    body = _post(storefront, batch).json()

    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "rejected",
        "duplicate",
        "accepted",
        "duplicate",  # the same id twice in one batch counts once
    ]
    assert [r["event_id"] for r in body["results"]] == [e["event_id"] for e in batch]
    assert (body["accepted"], body["duplicates"], len(body["rejected"])) == (2, 2, 1)
    assert OutcomeEvent.objects.filter(event_id=new["event_id"]).count() == 1


def test_event_ids_are_matched_whatever_their_spelling(storefront):
    event = shown()
    _post(storefront, [event])
    respelled = dict(event, event_id=event["event_id"].upper().replace("-", ""))

    body = _post(storefront, [respelled]).json()

    assert body["results"] == [{"event_id": event["event_id"], "status": "duplicate"}]


def test_a_full_batch_of_the_maximum_size_is_accepted(storefront):
    events = [shown(customer_id=f"c-{i}") for i in range(1000)]

    body = _post(storefront, events).json()

    assert body["accepted"] == 1000
    assert OutcomeEvent.objects.count() == 1000


def test_batch_over_the_limit_is_413_and_stores_nothing(storefront):
    events = [shown(customer_id=f"c-{i}") for i in range(1001)]

    response = _post(storefront, events)

    assert response.status_code == 413
    assert "events" in response.json()
    assert "1,000" in response.json()["events"][0]
    assert OutcomeEvent.objects.count() == 0


def test_limit_follows_the_setting(storefront, settings):
    settings.OFFERLAB_EVENT_MAX_BATCH = 2

    response = _post(storefront, [shown(), shown(), shown()])

    assert response.status_code == 413
    assert OutcomeEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "non_field_errors"),
        ("events", "non_field_errors"),
        (42, "non_field_errors"),
        (None, "non_field_errors"),
        ({}, "events"),
        ({"event": []}, "events"),
        ({"events": []}, "events"),
        ({"events": None}, "events"),
        ({"events": {"0": {}}}, "events"),
        ({"events": "[]"}, "events"),
    ],
)
def test_envelope_errors_are_400_naming_the_field(storefront, body, field):
    response = storefront.post(URL, json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert field in response.json()
    assert OutcomeEvent.objects.count() == 0


def test_storefront_key_is_required(anon, staff):
    assert _post(anon, [shown()]).status_code in (401, 403)
    assert _post(staff, [shown()]).status_code in (401, 403)
    bad_key = APIClient()
    bad_key.credentials(HTTP_AUTHORIZATION="Api-Key nope.nope")
    assert _post(bad_key, [shown()]).status_code in (401, 403)
    assert OutcomeEvent.objects.count() == 0


def _offer(customer_id: str = "c-1") -> Offer:
    now = timezone.now()
    return Offer.objects.create(
        customer_id=customer_id,
        trigger="post_purchase",
        occurred_at=now,
        channel="email",
        send_at=now,
    )


def test_offer_id_must_name_an_existing_offer(storefront):
    offer = _offer()
    real = shown(offer_id=str(offer.offer_id))
    made_up = shown(offer_id=str(uuid.uuid4()))

    body = _post(storefront, [made_up, real]).json()

    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert body["rejected"] == [{"index": 0, "errors": {"offer_id": ["No offer with this id."]}}]
    assert OutcomeEvent.objects.get().offer_id == offer.offer_id


def _errors_for(client, event) -> dict:
    body = _post(client, [event, shown()]).json()
    assert body["accepted"] == 1, body  # the good neighbour is always kept
    assert body["results"][0]["status"] == "rejected"
    assert [r["index"] for r in body["rejected"]] == [0]
    return body["rejected"][0]["errors"]


def _without(event: dict, key: str) -> dict:
    return {k: v for k, v in event.items() if k != key}


def _future(seconds: float) -> str:
    return (timezone.now() + timedelta(seconds=seconds)).isoformat()


BAD_EVENTS = [
    ("unknown type", lambda: shown(type="offer_liked"), "type"),
    ("type with wrong case", lambda: shown(type="OFFER_SHOWN"), "type"),
    ("missing type", lambda: _without(shown(), "type"), "type"),
    ("missing customer", lambda: _without(shown(), "customer_id"), "customer_id"),
    ("empty customer", lambda: shown(customer_id=""), "customer_id"),
    ("numeric customer", lambda: shown(customer_id=42), "customer_id"),
    ("customer over 255 chars", lambda: shown(customer_id="c" * 256), "customer_id"),
    ("NUL in customer", lambda: shown(customer_id="c\x00-1"), "customer_id"),
    ("lone surrogate in customer", lambda: shown(customer_id="c-\ud800"), "customer_id"),
    ("missing event id", lambda: _without(shown(), "event_id"), "event_id"),
    ("malformed event id", lambda: shown(event_id="not-a-uuid"), "event_id"),
    ("numeric event id", lambda: shown(event_id=12345), "event_id"),
    ("malformed offer id", lambda: shown(offer_id="offer-7"), "offer_id"),
    ("negative quantity", lambda: order(items=[{"sku": "a", "quantity": -1}]), "items"),
    ("zero quantity", lambda: order(items=[{"sku": "a", "quantity": 0}]), "items"),
    ("fractional quantity", lambda: order(items=[{"sku": "a", "quantity": 1.5}]), "items"),
    ("item without sku", lambda: order(items=[{"quantity": 1}]), "items"),
    ("item not an object", lambda: order(items=["tent-2p"]), "items"),
    ("items not a list", lambda: order(items={"sku": "a"}), "items"),
    ("amount without currency", lambda: _without(order(), "currency"), "currency"),
    ("price without currency", lambda: _without(order(amount=None), "currency"), "items"),
    ("unknown currency", lambda: order(currency="ABC"), "currency"),
    ("withdrawn currency", lambda: order(currency="DEM"), "currency"),
    ("negative amount", lambda: order(amount="-5.00"), "amount"),
    ("amount with 5 decimals", lambda: order(amount="1.00001"), "amount"),
    ("amount in words", lambda: order(amount="ten euros"), "amount"),
    ("amount as boolean", lambda: order(amount=True), "amount"),
    ("order without amount", lambda: _without(order(), "amount"), "amount"),
    ("order without order id", lambda: _without(order(), "order_id"), "order_id"),
    ("more than 5 minutes ahead", lambda: shown(occurred_at=_future(6 * 60)), "occurred_at"),
    ("older than the horizon", lambda: shown(occurred_at=_when(401 * 24 * 60)), "occurred_at"),
    ("naive timestamp", lambda: shown(occurred_at="2026-01-05T10:00:00"), "occurred_at"),
    ("date only", lambda: shown(occurred_at="2026-01-05"), "occurred_at"),
    ("epoch number", lambda: shown(occurred_at=1767607200), "occurred_at"),
    ("not a date", lambda: shown(occurred_at="yesterday"), "occurred_at"),
    ("year 9999", lambda: shown(occurred_at="9999-12-31T23:59:59-14:00"), "occurred_at"),
    ("year 1", lambda: shown(occurred_at="0001-01-01T00:00:00+14:00"), "occurred_at"),
    ("items on offer_shown", lambda: shown(items=[{"sku": "a"}]), "items"),
    (
        "items on support_resolved",
        lambda: shown(type="support_resolved", items=[{"sku": "a"}]),
        "items",
    ),
    ("event is a list", lambda: [shown()], "non_field_errors"),
    ("event is null", lambda: None, "non_field_errors"),
]


@pytest.mark.parametrize(
    ("event_factory", "field"),
    [pytest.param(f, field, id=name) for name, f, field in BAD_EVENTS],
)
def test_bad_event_is_rejected_naming_the_field_and_neighbours_kept(
    storefront, event_factory, field
):
    errors = _errors_for(storefront, event_factory())

    assert field in errors
    assert OutcomeEvent.objects.count() == 1


def test_number_too_big_for_a_float_is_rejected_not_infinite(storefront):
    event = json.dumps(order(amount="AMOUNT")).replace('"AMOUNT"', "1e400")
    body = f'{{"events": [{event}]}}'

    response = storefront.generic("POST", URL, body, content_type="application/json")

    assert response.status_code == 200
    assert response.json()["rejected"][0]["errors"] == {"amount": ["Must be a finite number."]}


def test_item_errors_point_at_the_bad_line(storefront):
    event = order(items=[{"sku": "ok", "quantity": 1}, {"sku": "bad", "quantity": -2}])

    errors = _errors_for(storefront, event)

    assert errors == {"items": [{}, {"quantity": ["Must be at least 1."]}]}


def test_timestamps_at_the_edges_of_the_window(storefront):
    in_a_minute = shown(occurred_at=_future(60))
    almost_horizon = shown(occurred_at=_when(399 * 24 * 60))

    body = _post(storefront, [in_a_minute, almost_horizon]).json()

    assert body["accepted"] == 2


def test_horizon_follows_the_setting(storefront, settings):
    settings.OFFERLAB_EVENT_HORIZON_DAYS = 30

    errors = _errors_for(storefront, shown(occurred_at=_when(31 * 24 * 60)))

    assert errors["occurred_at"] == ["Is older than 30 days (OFFERLAB_EVENT_HORIZON_DAYS)."]


def test_timezone_offsets_are_kept_as_the_same_instant(storefront):
    event = shown(occurred_at="2026-11-22T09:30:00+05:30")
    _post(storefront, [event])

    stored = OutcomeEvent.objects.get().occurred_at

    assert stored == datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def test_amounts_keep_the_minor_units_of_their_currency(storefront):
    dinar = order(amount="12.345", currency="BHD", items=[{"sku": "a", "price": "12.345"}])
    unidad = order(amount=0.0001, currency="clf", items=[])

    body = _post(storefront, [dinar, unidad]).json()

    assert body["accepted"] == 2
    stored = {e.currency: e for e in OutcomeEvent.objects.all()}
    assert stored["BHD"].amount == Decimal("12.345")
    assert EventItem.objects.get().price == Decimal("12.345")
    assert stored["CLF"].amount == Decimal("0.0001")  # lower-case code accepted, stored upper


def test_numbers_as_strings_are_read_as_numbers(storefront):
    event = order(amount="19.99", items=[{"sku": "a", "quantity": "2", "price": "9.995"}])

    body = _post(storefront, [event]).json()

    assert body["accepted"] == 1
    item = EventItem.objects.get()
    assert (item.quantity, item.price) == (2, Decimal("9.995"))


def test_text_is_stored_exactly_as_sent(storefront):
    tricky = 'c "quoted" \\ back\\slash, ü, 🎁, \u200c, \n, \'; DROP TABLE x; --'
    event = order(customer_id=tricky, order_id=tricky, items=[{"sku": tricky, "category": "ß"}])
    event["amount"], event["currency"] = "1.00", "EUR"

    assert _post(storefront, [event]).json()["accepted"] == 1

    stored = OutcomeEvent.objects.get()
    assert (stored.customer_id, stored.order_id) == (tricky, tricky)
    item = EventItem.objects.get()
    assert (item.sku, item.category, item.customer_id) == (tricky, "ß", tricky)


def test_unknown_fields_are_ignored(storefront):
    event = shown(channel="email", extra={"nested": [1, 2, {"x": None}]})

    assert _post(storefront, [event]).json()["accepted"] == 1


WEIRD_EVENTS = [
    {"event_id": None, "type": None, "customer_id": None, "occurred_at": None},
    {"event_id": ["a"], "type": {"x": 1}, "customer_id": [], "occurred_at": {}},
    {"event_id": {"$oid": "x"}, "type": ["order_placed"], "items": [[[[]]]]},
    {"event_id": str(uuid.uuid4()), "type": "order_placed", "amount": {"value": 1}},
    {"event_id": "x" * 100_000, "customer_id": "y" * 1_000_000, "type": "z" * 10_000},
    {"event_id": 1.5, "occurred_at": 1e308, "amount": -0.0, "currency": 978},
    {"event_id": True, "occurred_at": True, "offer_id": False, "items": True},
    {"": "", "events": [{"events": []}]},
    {"type": "order_placed", "items": [{"sku": None, "quantity": None, "price": None}]},
    {"type": "order_placed", "items": [{"sku": ["a"], "quantity": "1e3", "price": "1e3"}]},
    {"type": "order_placed", "items": [{"quantity": "²", "price": "NaN"}] * 600},
    {"occurred_at": "2026-11-22T10:00:00+99:00", "currency": "€"},
    {"occurred_at": "\ud800", "order_id": 12, "amount": "1" * 1000},
    {"offer_id": "0" * 32, "currency": "eur\x00"},
    {"event_id": "\ud800", "customer_id": "\udfff"},
    "event",
    17,
    [],
    True,
]


@pytest.mark.parametrize("weird", WEIRD_EVENTS, ids=range(len(WEIRD_EVENTS)))
def test_weird_json_is_rejected_never_a_500(storefront, weird):
    response = _post(storefront, [weird, shown()])

    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert body["rejected"][0]["index"] == 0
    assert body["rejected"][0]["errors"]
    echoed = body["results"][0]["event_id"]
    assert echoed is None or len(echoed) <= 100


@pytest.mark.parametrize(
    "raw",
    [
        b'{"events": [',
        b'{"events": [NaN]}',
        b'{"events": [Infinity]}',
        b"\xff\xfe\x00garbage",
        b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"events": [{"a": ' * 50_000 + b"1" + b"}]" * 50_000 + b"}",
    ],
    ids=["truncated", "nan", "infinity", "bad-encoding", "deep-lists", "deep-objects"],
)
def test_unparseable_bodies_are_400(storefront, raw):
    response = storefront.generic("POST", URL, raw, content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()


def test_oversized_body_is_413_before_parsing(storefront, settings):
    settings.OFFERLAB_EVENT_MAX_BATCH = 2  # allows 32 KiB
    padding = "x" * 40_000

    response = _post(storefront, [shown(note=padding)])

    assert response.status_code == 413
    assert OutcomeEvent.objects.count() == 0


def test_non_json_content_type_is_415(storefront):
    response = storefront.post(URL, {"events": "x"}, format="multipart")

    assert response.status_code == 415
