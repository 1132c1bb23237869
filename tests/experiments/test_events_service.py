"""events_ingest as the import command and the simulator call it: currencies, limits, fuzzing."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.exceptions import ApplicationError
from experiments.events import ISO_4217_CODES, events_ingest
from experiments.models import EventType, OutcomeEvent

pytestmark = pytest.mark.django_db


def _event(**fields) -> dict:
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "product_viewed",
        "customer_id": "c-1",
        "occurred_at": (timezone.now() - timedelta(hours=2)).isoformat(),
        "items": [{"sku": "tent", "category": "tents"}],
    }
    event.update(fields)
    return event


def test_currency_list_holds_the_active_codes_and_not_withdrawn_ones():
    # Active per ISO 4217 list one, including the 2021–2025 additions (VED, SLE, ZWG, XCG).
    for code in ("EUR", "USD", "GBP", "JPY", "CHF", "CNY", "INR", "BRL", "BHD", "KWD", "CLF"):
        assert code in ISO_4217_CODES
    for code in ("VED", "SLE", "ZWG", "XCG", "MRU", "STN", "VES", "BYN"):
        assert code in ISO_4217_CODES
    # Replaced before the default 400-day horizon began, or never ISO codes at all.
    for code in ("HRK", "ZWL", "DEM", "FRF", "VEF", "MRO", "STD", "BYR", "LTL", "EEK", "RMB"):
        assert code not in ISO_4217_CODES
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in ISO_4217_CODES)


@pytest.mark.parametrize("code", ["EUR", "eur", "Bhd", "XCG"])
def test_currency_codes_are_accepted_in_any_case_and_stored_upper(code):
    result = events_ingest(
        events=[_event(type="order_placed", order_id="o-1", amount="1.00", currency=code)],
        api_key_id=None,
    )

    assert result.accepted == 1
    assert OutcomeEvent.objects.get().currency == code.upper()


def test_events_without_an_api_key_are_stored_for_imports():
    result = events_ingest(events=[_event()], api_key_id=None)

    assert result.accepted == 1
    assert OutcomeEvent.objects.get().api_key_id is None


@pytest.mark.parametrize("events", [None, {}, "[]", 3, ()])
def test_anything_but_a_list_is_a_validation_error_naming_events(events):
    with pytest.raises(ValidationError) as raised:
        events_ingest(events=events, api_key_id=None)

    assert "events" in raised.value.message_dict


def test_empty_list_is_a_validation_error():
    with pytest.raises(ValidationError):
        events_ingest(events=[], api_key_id=None)


def test_over_the_limit_is_413_and_stores_nothing(settings):
    settings.OFFERLAB_EVENT_MAX_BATCH = 3

    with pytest.raises(ApplicationError) as raised:
        events_ingest(events=[_event() for _ in range(4)], api_key_id=None)

    assert raised.value.status_code == 413
    assert OutcomeEvent.objects.count() == 0


FIELDS = [
    "event_id",
    "type",
    "customer_id",
    "occurred_at",
    "offer_id",
    "order_id",
    "amount",
    "currency",
    "items",
    "sku",
    "quantity",
    "price",
    "category",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from([*EventType.values, "EUR", "12.50", "-1", "1e3", str(uuid.uuid4())]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=12,
)


@st.composite
def mangled_events(draw):
    """A valid event with some fields replaced by arbitrary JSON, or arbitrary JSON outright."""
    if draw(st.booleans()):
        return draw(json_values)
    event = _event(
        type=draw(st.sampled_from(EventType.values)),
        order_id="o-1",
        amount="10.00",
        currency="EUR",
        items=[{"sku": "a", "quantity": 2, "price": "5.00"}],
    )
    for field in draw(st.lists(st.sampled_from(FIELDS[:9]), max_size=3)):
        event[field] = draw(json_values)
    return event


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(mangled_events(), min_size=1, max_size=8))
def test_any_json_gets_one_status_per_event_and_never_an_exception(events):
    before = OutcomeEvent.objects.count()

    result = events_ingest(events=events, api_key_id=None)

    assert len(result.results) == len(events)
    statuses = [r["status"] for r in result.results]
    assert statuses.count("accepted") == result.accepted
    assert statuses.count("duplicate") == result.duplicates
    assert [i for i, s in enumerate(statuses) if s == "rejected"] == [
        r["index"] for r in result.rejected
    ]
    assert all(r["errors"] for r in result.rejected)
    assert OutcomeEvent.objects.count() == before + result.accepted
