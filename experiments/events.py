"""Outcome events: per-event validation and idempotent batch ingestion.

`events_ingest` is the one write path for events (POST /api/v1/events, `manage.py
import_events`, the traffic simulator). Each event is validated on its own, so a bad event never
costs the good ones; valid events are written with one `INSERT … ON CONFLICT (event_id) DO NOTHING
RETURNING` per batch, so a re-sent event is reported `duplicate` and never counted twice.

Validation is hand-written rather than a DRF serializer per event: ingestion is the hottest write
path (see bench/ingest.py) and a serializer per event costs more than the database insert.
"""

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from config.exceptions import ApplicationError
from experiments.models import EVENT_TYPES_WITH_ITEMS, EventItem, EventType, OutcomeEvent
from recommendations.models import Offer

# ISO 4217 list one (SIX, the maintenance agency), amendments up to 2025: every active code,
# including funds (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW), precious metals, SDR, the
# bond-market units and the test/no-currency codes. ANG (replaced by XCG in 2025) and BGN
# (replaced by EUR in 2026) stay accepted: orders within the 400-day event horizon may carry them.
ISO_4217_CODES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN
    BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK
    DJF DKK DOP DZD
    EGP ERN ETB EUR
    FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD
    HKD HNL HTG HUF
    IDR ILS INR IQD IRR ISK
    JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN
    NAD NGN NIO NOK NPR NZD
    OMR
    PAB PEN PGK PHP PKR PLN PYG
    QAR
    RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV
    WST
    XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX
    YER
    ZAR ZMW ZWG
    """.split()  # noqa: SIM905 — a table by initial letter reads better than 181 quoted strings
)

EVENT_TYPES = frozenset(EventType.values)
# Types whose rows the analysis reads amounts and order ids from: both are required on them.
EVENT_TYPES_NEEDING_ORDER = frozenset({EventType.ORDER_PLACED})
MAX_ITEMS_PER_EVENT = 500
MAX_QUANTITY = 1_000_000
# Column sizes from the models (amount/price: numeric(18, 4)).
MAX_CUSTOMER_ID, MAX_ORDER_ID, MAX_SKU, MAX_CATEGORY = 255, 255, 100, 100
MAX_DECIMALS = 4
_AMOUNT_LIMIT = Decimal(10) ** 14
_QUANTUM = Decimal(1).scaleb(-MAX_DECIMALS)
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_MONEY_RE = re.compile(r"[0-9]{1,14}(?:\.[0-9]{1,4})?")
_INTEGER_RE = re.compile(r"[+-]?[0-9]{1,9}")
_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# Echo a rejected event's id back only when it is short enough to be an id at all.
_ECHO_MAX = 100

REQUIRED = "This field is required."


class Item(NamedTuple):
    sku: str
    category: str
    quantity: int
    price: Decimal | str | None


class Event(NamedTuple):
    """A validated event, ready to insert."""

    event_id: str  # canonical UUID text: lower case with hyphens
    type: str
    customer_id: str
    occurred_at: datetime
    offer_id: str | None
    order_id: str
    amount: Decimal | str | None  # str: plain decimal text, see _decimal
    currency: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Window:
    """Accepted `occurred_at` range: not older than the horizon, not too far in the future."""

    earliest: datetime
    latest: datetime
    horizon_days: int
    future_seconds: int

    @classmethod
    def now(cls) -> "Window":
        now = timezone.now()
        days = settings.OFFERLAB_EVENT_HORIZON_DAYS
        seconds = settings.OFFERLAB_EVENT_MAX_FUTURE_SECONDS
        return cls(now - timedelta(days=days), now + timedelta(seconds=seconds), days, seconds)


@dataclass(frozen=True)
class IngestResult:
    """What happened to each event of a batch; `results` is in input order."""

    accepted: int
    duplicates: int
    rejected: list[dict] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "results": self.results,
        }


# --- field checks: each returns (value, error message or None) -------------------------------


def _text(value: object, max_length: int, *, required: bool) -> tuple[str, str | None]:
    # The usual case first: short ASCII text without NUL.
    if (
        type(value) is str
        and 0 < len(value) <= max_length
        and value.isascii()
        and "\x00" not in value
    ):
        return value, None
    if value is None or value == "":
        return "", (REQUIRED if required else None)
    if type(value) is not str:
        return "", "Must be a string."
    if len(value) > max_length:
        return "", f"At most {max_length} characters."
    # PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded at all.
    if "\x00" in value:
        return "", "Must not contain NUL characters."
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return "", "Must be valid Unicode text."
    return value, None


def _uuid(value: object) -> tuple[str | None, str | None]:
    """Canonical UUID text (any spelling uuid.UUID accepts; the usual one without parsing)."""
    if value is None or value == "":
        return None, REQUIRED
    if type(value) is not str or len(value) > 45:
        return None, "Must be a UUID string, e.g. 0b7e4a3c-5d1f-4c2a-9e8b-6f0d1a2b3c4d."
    if len(value) == 36 and _UUID_RE.fullmatch(value):
        return value.lower(), None
    try:
        return str(uuid.UUID(value)), None
    except ValueError:
        return None, "Must be a UUID string, e.g. 0b7e4a3c-5d1f-4c2a-9e8b-6f0d1a2b3c4d."


def _decimal(value: object) -> tuple[Decimal | str | None, str | None]:
    """A non-negative money amount from a JSON number or a numeric string.

    Plain decimal text that fits numeric(18, 4) is kept as text (the database reads it exactly);
    anything else is parsed, checked and returned as a Decimal.
    """
    kind = type(value)
    if kind is str and _MONEY_RE.fullmatch(value):
        return value, None
    try:
        if kind is int:
            number = Decimal(value)
        elif kind is float:
            if not math.isfinite(value):
                return None, "Must be a finite number."
            number = Decimal(repr(value))
        elif kind is str and len(value) <= 40 and _DECIMAL_RE.fullmatch(value):
            number = Decimal(value)
        else:
            return None, 'Must be a decimal number, e.g. 19.99 or "19.99".'
        if number < 0:
            return None, "Must not be negative."
        if number >= _AMOUNT_LIMIT:
            return None, "Must be below 100,000,000,000,000."
        quantised = number.quantize(_QUANTUM)
    except (InvalidOperation, ValueError, OverflowError):
        return None, 'Must be a decimal number, e.g. 19.99 or "19.99".'
    if quantised != number:
        return None, f"At most {MAX_DECIMALS} decimal places."
    return quantised, None


def _quantity(value: object) -> tuple[int, str | None]:
    kind = type(value)
    if value is None:
        return 1, None
    if kind is int:
        quantity = value
    elif (kind is float and value.is_integer()) or (
        kind is str and len(value) <= 10 and _INTEGER_RE.fullmatch(value)
    ):
        quantity = int(value)
    else:
        return 0, "Must be a whole number."
    if quantity < 1:
        return 0, "Must be at least 1."
    if quantity > MAX_QUANTITY:
        return 0, f"At most {MAX_QUANTITY:,}."
    return quantity, None


def _timestamp(value: object, window: Window) -> tuple[datetime | None, str | None]:
    if value is None or value == "":
        return None, REQUIRED
    if type(value) is not str or len(value) > 64:
        return None, "Must be an ISO 8601 timestamp with a timezone, e.g. 2026-11-22T10:15:00Z."
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None, "Must be an ISO 8601 timestamp with a timezone, e.g. 2026-11-22T10:15:00Z."
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None, "Must include a timezone (Z or ±hh:mm); naive times are ambiguous."
    try:
        if moment > window.latest:
            return None, f"Is more than {window.future_seconds} seconds in the future."
        if moment < window.earliest:
            return None, (
                f"Is older than {window.horizon_days} days (OFFERLAB_EVENT_HORIZON_DAYS)."
            )
    except OverflowError:
        return None, "Is out of range."
    return moment, None


def _items(value: object, currency_missing: bool) -> tuple[tuple[Item, ...], object]:
    """Line items; the error is a message, or a list of per-item error dicts (DRF style)."""
    if type(value) is not list:
        return (), "Must be a list of items."
    if len(value) > MAX_ITEMS_PER_EVENT:
        return (), f"At most {MAX_ITEMS_PER_EVENT} items per event."
    items, errors, bad = [], [], False
    for raw in value:
        if type(raw) is not dict:
            errors.append({"non_field_errors": ["Expected an item object."]})
            bad = True
            continue
        item_errors = {}
        sku, error = _text(raw.get("sku"), MAX_SKU, required=True)
        if error:
            item_errors["sku"] = [error]
        category, error = _text(raw.get("category"), MAX_CATEGORY, required=False)
        if error:
            item_errors["category"] = [error]
        quantity, error = _quantity(raw.get("quantity"))
        if error:
            item_errors["quantity"] = [error]
        price = raw.get("price")
        if price is not None:
            price, error = _decimal(price)
            if error:
                item_errors["price"] = [error]
            elif currency_missing:
                item_errors["price"] = ["A price needs the event's currency."]
        errors.append(item_errors)
        if item_errors:
            bad = True
        else:
            items.append(Item(sku, category, quantity, price))
    return tuple(items), (errors if bad else None)


def event_clean(raw: object, window: Window) -> tuple[Event | None, dict]:
    """Validate one event. Returns (event, {}) or (None, {field: [messages]})."""
    if type(raw) is not dict:
        return None, {"non_field_errors": ["Expected an event object."]}
    errors: dict[str, list] = {}
    get = raw.get

    event_id, error = _uuid(get("event_id"))
    if error:
        errors["event_id"] = [error]

    kind = get("type")
    if kind is None or kind == "":
        errors["type"] = [REQUIRED]
        kind = None
    elif type(kind) is not str or kind not in EVENT_TYPES:
        errors["type"] = [f"Unknown event type; expected one of: {', '.join(EventType.values)}."]
        kind = None

    customer_id, error = _text(get("customer_id"), MAX_CUSTOMER_ID, required=True)
    if error:
        errors["customer_id"] = [error]

    occurred_at, error = _timestamp(get("occurred_at"), window)
    if error:
        errors["occurred_at"] = [error]

    offer_id = get("offer_id")
    if offer_id is not None:
        offer_id, error = _uuid(offer_id)
        if error:
            errors["offer_id"] = [error]

    needs_order = kind in EVENT_TYPES_NEEDING_ORDER
    order_id, error = _text(get("order_id"), MAX_ORDER_ID, required=needs_order)
    if error:
        errors["order_id"] = [error]

    amount = get("amount")
    if amount is not None:
        amount, error = _decimal(amount)
        if error:
            errors["amount"] = [error]
    elif needs_order:
        errors["amount"] = [REQUIRED]

    currency = get("currency")
    if currency is None or currency == "":
        currency = ""
        if amount is not None:
            errors["currency"] = ["Required with an amount (ISO 4217 code, e.g. EUR)."]
    elif type(currency) is not str or currency.upper() not in ISO_4217_CODES:
        errors["currency"] = ["Unknown currency: expected an ISO 4217 code such as EUR or USD."]
    else:
        currency = currency.upper()

    items = get("items")
    if items is None or items == []:
        items = ()
    elif kind in EVENT_TYPES_WITH_ITEMS:
        items, error = _items(items, currency_missing=not currency)
        if error:
            errors["items"] = error if type(error) is list else [error]
    elif kind is not None:
        errors["items"] = [f"{kind} events take no items."]

    if errors:
        return None, errors
    return Event(
        event_id, kind, customer_id, occurred_at, offer_id, order_id, amount, currency, items
    ), {}


def _echo_id(raw: object) -> str | None:
    """The id to report for a rejected event: canonical when valid, else as sent (if short)."""
    if type(raw) is not dict:
        return None
    value, error = _text(raw.get("event_id"), _ECHO_MAX, required=True)
    if error:
        return None
    canonical, error = _uuid(value)
    return value if error else canonical


# --- the write ---------------------------------------------------------------------------------

_EVENTS = OutcomeEvent._meta.db_table
_ITEMS = EventItem._meta.db_table
_OFFERS = Offer._meta.db_table
_EVENT_COLUMNS = (
    "event_id",
    "type",
    "customer_id",
    "occurred_at",
    "offer_id",
    "order_id",
    "amount",
    "currency",
    "api_key_id",
    "received_at",
)
_ITEM_COLUMNS = (
    "event_id",
    "type",
    "customer_id",
    "occurred_at",
    "sku",
    "category",
    "quantity",
    "price",
)

# PostgreSQL: the batch travels as one JSON document and is written by one statement — the
# events with ON CONFLICT … RETURNING, then the lines of exactly the events that were inserted —
# so a batch costs one round trip and no per-value parameter adaptation in Python.
_PG_INSERT = f"""
WITH batch AS (
    SELECT (r->>0)::uuid AS event_id, r->>1 AS type, r->>2 AS customer_id,
           (r->>3)::timestamptz AS occurred_at, (r->>4)::uuid AS offer_id, r->>5 AS order_id,
           (r->>6)::numeric AS amount, r->>7 AS currency, r->8 AS items
    FROM jsonb_array_elements(%s::jsonb) AS r
), inserted AS (
    INSERT INTO {_EVENTS} ({", ".join(_EVENT_COLUMNS)})
    SELECT event_id, type, customer_id, occurred_at, offer_id, order_id, amount, currency, %s, %s
    FROM batch
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id, id
), lines AS (
    INSERT INTO {_ITEMS} ({", ".join(_ITEM_COLUMNS)})
    SELECT inserted.id, batch.type, batch.customer_id, batch.occurred_at, i->>0, i->>1,
           (i->>2)::integer, (i->>3)::numeric
    FROM inserted
    JOIN batch USING (event_id)
    CROSS JOIN LATERAL jsonb_array_elements(batch.items) AS i
)
SELECT event_id::text FROM inserted
"""


def _insert_postgresql(events: list[Event], api_key_id: str | None, now: datetime) -> set:
    document = json.dumps(
        [
            (
                e.event_id,
                e.type,
                e.customer_id,
                e.occurred_at.isoformat(),
                e.offer_id,
                e.order_id,
                None if e.amount is None else str(e.amount),
                e.currency,
                [
                    (i.sku, i.category, i.quantity, None if i.price is None else str(i.price))
                    for i in e.items
                ],
            )
            for e in events
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    with connection.cursor() as cursor:
        cursor.execute(_PG_INSERT, [document, api_key_id, now])
        return {row[0] for row in cursor.fetchall()}


def _insert_portable(events: list[Event], api_key_id: str | None, now: datetime) -> set:
    """SQLite (3.35+ for RETURNING): multi-row VALUES, chunked under the bound-parameter limit."""
    fields = {f.column: f for f in OutcomeEvent._meta.concrete_fields}
    prep = [fields[c].get_db_prep_save for c in _EVENT_COLUMNS]
    item_fields = {f.column: f for f in EventItem._meta.concrete_fields}
    item_prep = [item_fields[c].get_db_prep_save for c in _ITEM_COLUMNS]
    placeholders = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    per_statement = max(1, connection.features.max_query_params // len(_EVENT_COLUMNS))
    ids: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(events), per_statement):
            chunk = events[start : start + per_statement]
            params = []
            for e in chunk:
                row = (*e[:8], api_key_id, now)
                params.extend(p(v, connection) for p, v in zip(prep, row, strict=True))
            cursor.execute(
                f"INSERT INTO {_EVENTS} ({', '.join(_EVENT_COLUMNS)}) "
                f"VALUES {', '.join([placeholders] * len(chunk))} "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id, id",
                params,
            )
            for event_id, pk in cursor.fetchall():
                ids[str(uuid.UUID(str(event_id)))] = pk
        item_rows = [
            [
                p(v, connection)
                for p, v in zip(
                    item_prep,
                    (ids[e.event_id], e.type, e.customer_id, e.occurred_at, *item),
                    strict=True,
                )
            ]
            for e in events
            if e.event_id in ids
            for item in e.items
        ]
        if item_rows:
            cursor.executemany(
                f"INSERT INTO {_ITEMS} ({', '.join(_ITEM_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(_ITEM_COLUMNS))})",
                item_rows,
            )
    return set(ids)


def _known_offers(offer_ids: set[str]) -> set[str]:
    """The ids among `offer_ids` (canonical UUID text) that name a served offer."""
    if not offer_ids:
        return set()
    if connection.vendor == "postgresql":
        # One array literal instead of one adapted parameter per id (ids are hex and '-').
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT offer_id FROM {_OFFERS} WHERE offer_id = ANY(%s::uuid[])",
                ["{" + ",".join(offer_ids) + "}"],
            )
            return {str(row[0]) for row in cursor.fetchall()}
    found = Offer.objects.filter(offer_id__in=offer_ids).values_list("offer_id", flat=True)
    return {str(offer_id) for offer_id in found}


def events_ingest(*, events: list[dict], api_key_id: str | None) -> IngestResult:
    """Validate and store a batch of events; report each event's status in input order.

    Statuses: `accepted` (stored now), `duplicate` (its event_id is already stored, or appeared
    earlier in this batch), `rejected` (with field errors; nothing stored for it). Valid events
    are stored even when others are rejected. Safe under concurrency: two batches carrying the
    same event store it once (the unique event_id decides; rows are inserted in event_id order so
    overlapping batches cannot deadlock).

    Raises ValidationError when `events` is not a non-empty list, and ApplicationError (413)
    when it holds more than OFFERLAB_EVENT_MAX_BATCH events (nothing is stored then).
    """
    if type(events) is not list:
        raise ValidationError({"events": ["Expected a list of events."]})
    if not events:
        raise ValidationError({"events": ["Send at least one event."]})
    limit = settings.OFFERLAB_EVENT_MAX_BATCH
    if len(events) > limit:
        raise ApplicationError(
            f"At most {limit:,} events per batch (got {len(events):,}); nothing was stored.",
            field="events",
            status_code=413,
        )

    window = Window.now()
    cleaned: list[Event | None] = []
    rejected: list[dict] = []
    for index, raw in enumerate(events):
        event, errors = event_clean(raw, window)
        cleaned.append(event)
        if errors:
            rejected.append({"index": index, "errors": errors})

    known = _known_offers({e.offer_id for e in cleaned if e is not None and e.offer_id})
    first_seen: dict[str, int] = {}
    for index, event in enumerate(cleaned):
        if event is None:
            continue
        if event.offer_id is not None and event.offer_id not in known:
            cleaned[index] = None
            rejected.append({"index": index, "errors": {"offer_id": ["No offer with this id."]}})
            continue
        first_seen.setdefault(event.event_id, index)
    rejected.sort(key=lambda r: r["index"])

    to_insert = sorted((cleaned[i] for i in first_seen.values()), key=lambda e: e.event_id)
    stored: set[str] = set()
    if to_insert:
        insert = _insert_postgresql if connection.vendor == "postgresql" else _insert_portable
        with transaction.atomic():
            stored = insert(to_insert, api_key_id, timezone.now())

    results: list[dict] = []
    accepted = duplicates = 0
    for index, event in enumerate(cleaned):
        if event is None:
            results.append({"event_id": _echo_id(events[index]), "status": "rejected"})
        elif first_seen[event.event_id] == index and event.event_id in stored:
            accepted += 1
            results.append({"event_id": event.event_id, "status": "accepted"})
        else:
            duplicates += 1
            results.append({"event_id": event.event_id, "status": "duplicate"})
    return IngestResult(accepted, duplicates, rejected, results)
