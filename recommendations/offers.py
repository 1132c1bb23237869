"""Serving an offer at a cross-sell moment: window, assignment, products, caps, message, record.

One request, in order:
1. the moment's window (and, for browse / usage milestones, proof the moment happened) — no
   database work when the request is already too late;
2. in one transaction: the customer's variant in the first running experiment on the trigger
   they are assigned into (sticky, shared with POST /api/v1/assignments), the frequency caps
   (a per-customer row locked by the statement that records the offer, which also reads the
   customer's past purchases), the ranked products, the Offer row and its survey. A "no offer"
   outcome inside the transaction takes its writes back with statements (the cap entry, a new
   assignment) and commits, so a refused request leaves no assignment, no cap use and no
   exposure behind — without a ROLLBACK, on which psycopg forgets every prepared statement of
   the connection (see `_take_back`).
On PostgreSQL that transaction costs two round trips: BEGIN leaves with the cap statement and
COMMIT with the Offer row (`_offer_transaction`, psycopg's pipeline mode).
"""

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone
from psycopg import pq

from experiments.models import Channel, EventType
from experiments.moments import (
    DEFAULT_STRATEGY,
    Trigger,
    browse_min_views,
    usage_milestone_percent,
    window_hours,
)
from experiments.selectors import ExperimentConfig, VariantConfig, running_experiments_for_trigger
from experiments.services import (
    AssignmentResult,
    AssignmentStep,
    assignment_get_or_create,
    assignment_resolve,
    assignment_step,
)
from feedback.services import survey_for_offer, survey_lock_key
from recommendations.models import Offer
from recommendations.selectors import (
    STRATEGY_ORDER,
    catalog,
    order_skus,
    rank_recommendations,
    views_count,
)

MAX_FUTURE_SKEW = timedelta(minutes=5)
_TRIGGERS = frozenset(Trigger.values)  # Django's `Choices.values` builds a new list on each read
DEFAULT_MESSAGE = {
    "subject": "Picked for you",
    "body": "You might also like {products}.",
    "cta": "Take a look",
}
_PLACEHOLDER = re.compile(r"\{(products|product|count)\}")


class Reason:
    FREQUENCY_CAPPED = "frequency_capped"
    NO_RECOMMENDATIONS = "no_recommendations"
    OUTSIDE_WINDOW = "outside_window"
    NOT_ELIGIBLE = "not_eligible"


@dataclass
class OfferResult:
    offer: Offer | None
    reason: str | None = None
    experiment: str | None = None
    variant: str | None = None
    survey: dict | None = None
    warnings: list[str] = field(default_factory=list)


class _NoOffer(Exception):
    def __init__(self, reason: str):
        self.reason = reason


def render_message(template: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    """Fill {products}, {product} and {count} in one pass over the template.

    Plain substitution, never a template engine, and a single pass so a product name that
    itself contains "{product}" or "{{…}}" is inserted literally and never expanded.
    """
    values = {
        "products": ", ".join(names),
        "product": names[0] if names else "",
        "count": str(len(names)),
    }
    rendered = {}
    for part in ("subject", "body", "cta"):
        text = template.get(part) or DEFAULT_MESSAGE[part]
        rendered[part] = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    return rendered


# The cap ledger: lock-and-append the customer's row, and read their past purchases (for the
# exclusions) in the same statement. The purchases are filtered by type in the aggregate, not
# the WHERE clause, so the planner reads the customer's lines through the customer index
# whatever its statistics say: with none it ANDed in the type index and read every order line.
_CAP_UPSERT_SQL = (
    "INSERT INTO recommendations_customercap (customer_id, served, updated_at) "
    "VALUES (%s, %s, %s) "
    "ON CONFLICT (customer_id) DO UPDATE SET "
    "served = recommendations_customercap.served || excluded.served, "
    "updated_at = excluded.updated_at "
    "RETURNING served"
)
_CAP_SET_SQL = "UPDATE recommendations_customercap SET served = %s WHERE customer_id = %s"
_CAP_DELETE_SQL = "DELETE FROM recommendations_customercap WHERE customer_id = %s"
_NO_SYNC_COMMIT_SQL = "SET LOCAL synchronous_commit = off"
_ASSIGNMENT_DELETE_SQL = (
    "DELETE FROM experiments_assignment WHERE experiment_id = %s AND customer_id = %s"
)
_BOUGHT_SQL = (
    "SELECT {agg}(DISTINCT sku) FILTER (WHERE type = %s) FROM experiments_eventitem "
    "WHERE customer_id = %s"
)


@dataclass(frozen=True)
class CapCheck:
    allowed: bool
    bought: frozenset[str]  # every sku in the customer's orders (order_placed events)


@dataclass(frozen=True)
class _Ledger:
    """The customer's cap ledger right after this request appended its entry (row locked)."""

    customer_id: str
    stamp: int
    channel: str  # the channel of the appended entry
    earlier: list[tuple[int, str]]  # every entry committed before it
    bought: frozenset[str]


def _served_text(entries: Sequence[tuple[int, str]]) -> str:
    return "".join(f"{at}:{channel};" for at, channel in entries)


def _parse_served(served: str) -> list[tuple[int, str]]:
    entries = []
    for entry in served.split(";"):
        at, _, channel = entry.partition(":")
        if at:
            entries.append((int(at), channel))
    return entries


def _ledger_append(
    *, customer_id: str, channel: str, now: datetime, step: AssignmentStep | None = None
) -> tuple[_Ledger, AssignmentResult | None]:
    """Append an entry for `channel` to the customer's ledger, locking its row until commit.

    One statement, which also returns the customer's past purchases. On PostgreSQL it also
    takes the customer's survey lock (so attaching a survey needs no statement of its own) and,
    given an assignment `step`, stores or reads the assignment in the same round trip.
    """
    conn = connections[DEFAULT_DB_ALIAS]  # not the `connection` proxy: see _offer_insert
    stamp = int(now.timestamp())
    postgres = conn.vendor == "postgresql"
    agg = "json_agg" if postgres else "json_group_array"
    cap_params = [
        customer_id,
        f"{stamp}:{channel};",
        conn.ops.adapt_datetimefield_value(now),
    ]
    bought_sql = _BOUGHT_SQL.format(agg=agg)
    bought_params = [EventType.ORDER_PLACED.value, customer_id]
    if postgres:
        ctes, params = [f"cap AS ({_CAP_UPSERT_SQL})"], [*cap_params]
        inserted_sql, read_sql = "NULL", "NULL"
        if step is not None and step.insert_sql is not None:
            ctes.append(f"assigned AS ({step.insert_sql})")
            params += step.insert_params
            inserted_sql = "(SELECT variant_id FROM assigned)"
        if step is not None:
            read_sql = f"({step.read_sql})"
        sql = (
            f"WITH {', '.join(ctes)} SELECT (SELECT served FROM cap), ({bought_sql}), "
            f"{inserted_sql}, {read_sql}, pg_advisory_xact_lock(%s::bigint)"
        )
        params += [
            *bought_params,
            *(step.read_params if step is not None else ()),
            survey_lock_key(customer_id),
        ]
    else:
        sql, params = f"{_CAP_UPSERT_SQL}, ({bought_sql})", [*cap_params, *bought_params]
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    served_text, bought = row[0], row[1]
    if isinstance(bought, str):
        bought = json.loads(bought)
    result = None
    if step is not None:
        result = assignment_resolve(step, inserted=row[2], stored=row[3])
    ledger = _Ledger(
        customer_id=customer_id,
        stamp=stamp,
        channel=channel,
        earlier=_parse_served(served_text)[:-1],  # the last entry is the one just appended
        bought=frozenset(bought or ()),
    )
    return ledger, result


def _caps_decide(ledger: _Ledger, channel: str) -> CapCheck:
    """Whether the caps allow an offer on `channel`, given the entries committed before.

    When they do and the appended entry named another channel (the assignment was read in the
    same statement that appended it) the entry is corrected; old entries are forgotten now and
    then. Either way one UPDATE, on a row this transaction already holds.
    """
    window_start = ledger.stamp - settings.OFFERLAB_FREQUENCY_CAP_WINDOW_DAYS * 86400
    day_start = ledger.stamp - 86400
    recent = [(at, ch) for at, ch in ledger.earlier if at > window_start]
    if len(recent) >= settings.OFFERLAB_FREQUENCY_CAP_PER_WEEK:
        return CapCheck(allowed=False, bought=ledger.bought)
    same_channel_today = sum(1 for at, ch in recent if ch == channel and at > day_start)
    if same_channel_today >= settings.OFFERLAB_FREQUENCY_CAP_PER_CHANNEL_PER_DAY:
        return CapCheck(allowed=False, bought=ledger.bought)
    prune = len(ledger.earlier) - len(recent) >= 8  # forget entries older than the window
    if prune or channel != ledger.channel:
        kept = [*(recent if prune else ledger.earlier), (ledger.stamp, channel)]
        with connection.cursor() as cursor:
            cursor.execute(_CAP_SET_SQL, [_served_text(kept), ledger.customer_id])
    return CapCheck(allowed=True, bought=ledger.bought)


class _Trip:
    """The offer's transaction, as `_offer_transaction` runs it.

    `pipelined`: statements are queued in psycopg's pipeline and sent when a result is read or
    at the COMMIT, so a statement whose result can wait (the Offer row's id) is read after it.
    """

    def __init__(self, *, pipelined: bool):
        self.pipelined = pipelined
        self._pending: list[Callable[[], None]] = []

    def read_later(self, read: Callable[[], None]) -> None:
        """Run `read` (it fetches a sent statement's result) at the commit, or now."""
        if self.pipelined:
            self._pending.append(read)
        else:
            read()

    def read_pending(self) -> None:
        """Run the reads left for after the COMMIT (their results came back with it)."""
        pending, self._pending = self._pending, []
        for read in pending:
            read()


_IDLE = pq.TransactionStatus.IDLE


@contextmanager
def _offer_transaction() -> Iterator[_Trip]:
    """One transaction for the offer; on PostgreSQL, two round trips in all.

    Django's atomic block sends BEGIN and COMMIT each as a round trip of its own (psycopg waits
    for BEGIN before the first statement even in pipeline mode), so an offer took four: BEGIN,
    the ledger statement, the Offer row, COMMIT. Here, on a connection in autocommit mode and
    outside any atomic block, the transaction is written out in psycopg's pipeline: BEGIN leaves
    with the ledger statement (whose result the offer needs), and the Offer row (and a refusal's
    undo) with COMMIT. An error anywhere — a statement's, or the block's own — rolls the whole
    transaction back before it propagates, as `atomic` would; database errors reach the caller
    as Django's. Elsewhere (SQLite, or inside an enclosing transaction, as in most tests) it is
    `transaction.atomic()`.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql" or conn.in_atomic_block or not conn.get_autocommit():
        with transaction.atomic():
            yield _Trip(pipelined=False)
        return
    # What Django does before a request's first cursor: the health check, then a connection.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    raw = conn.connection
    trip = _Trip(pipelined=True)
    control = raw.cursor()  # one psycopg cursor for BEGIN and COMMIT (a cursor is not free)
    with conn.wrap_database_errors:
        try:
            with raw.pipeline():
                control.execute(b"BEGIN", prepare=False)
                yield trip
                control.execute(b"COMMIT", prepare=False)
        except BaseException:
            if not raw.closed and raw.info.transaction_status != _IDLE:
                raw.rollback()
            raise
        finally:
            control.close()
    trip.read_pending()


_OFFER_COLUMNS = (
    "offer_id",
    "customer_id",
    "trigger",
    "occurred_at",
    "context",
    "experiment",
    "variant",
    "channel",
    "send_at",
    "message",
    "products",
    "api_key",
    "created_at",
)


@functools.cache
def _offer_insert_plan() -> tuple[str, tuple]:
    fields = tuple(Offer._meta.get_field(name) for name in _OFFER_COLUMNS)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = ", ".join("%s" for _ in fields)
    return f"INSERT INTO {Offer._meta.db_table} ({columns}) VALUES ({values}) RETURNING id", fields


def _offer_insert(offer: Offer, trip: _Trip) -> None:
    """Insert `offer` (every column set, `created_at` included) in one statement.

    Its id is read when `trip` reads its results (at the commit, when pipelined).

    What `Offer.objects.create` sends, without the ORM's per-call compilation of the INSERT
    (5 % of the web process's instructions per offer, counted with callgrind; the statement is
    built once per process): each value still goes through its field's
    `get_db_prep_save`, so JSON, UUIDs and datetimes are adapted exactly as the ORM adapts them.
    No signal is connected to Offer; the instance is marked saved.

    The connection itself, not Django's `connection` proxy, is handed to the fields: every
    attribute read through the proxy first fails on the proxy (an AttributeError raised and
    formatted inside Python) and then looks the connection up in asgiref's thread-local.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    sql, fields = _offer_insert_plan()
    params = [f.get_db_prep_save(getattr(offer, f.attname), conn) for f in fields]
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
    except BaseException:
        cursor.close()
        raise

    def read_id() -> None:
        with cursor:
            offer.pk = cursor.fetchone()[0]
        offer._state.adding = False
        offer._state.db = conn.alias

    trip.read_later(read_id)


def _check_window(trigger: str, occurred_at: datetime, now: datetime, hours) -> None:
    if hours is not None and now - occurred_at > timedelta(hours=float(hours)):
        raise _NoOffer(Reason.OUTSIDE_WINDOW)


def _moment_proven(*, trigger, customer_id, context, sources, snapshot, occurred_at) -> bool:
    if trigger == Trigger.BROWSE:
        views = context.get("views")
        if views is None:
            hours = window_hours(trigger) or 24
            categories = sorted({snapshot.categories[s] for s in sources} - {""})
            views = views_count(
                customer_id=customer_id,
                skus=sources,
                categories=categories,
                start=occurred_at - timedelta(hours=hours),
                end=occurred_at,
            )
        return views >= browse_min_views()
    if trigger == Trigger.USAGE_MILESTONE:
        usage = context.get("usage_percent")
        return usage is None or usage >= usage_milestone_percent()
    return True


@dataclass
class _Writes:
    """What the offer's transaction has written so far, for `_take_back` to undo."""

    ledger: _Ledger | None = None
    assigned_to: list[int] = field(default_factory=list)  # experiments newly assigned into


def _take_back(writes: _Writes, customer_id: str) -> None:
    """Undo a refused offer's writes inside its transaction, which then commits.

    What the ROLLBACK of the whole transaction would do, as statements: the cap ledger gets
    back the entries committed before this request (the row goes when there were none) and an
    assignment made by this request is deleted. Both rows are locked by this transaction, so
    no other request has seen or changed them. A ROLLBACK would make psycopg forget and
    deallocate every prepared statement of the connection, and refusals are common (frequency
    caps), so the offers path would seldom reuse one.

    On PostgreSQL the commit does not wait for its WAL to reach the disk (`synchronous_commit`
    off for this transaction): a crash that lost it would lose the writes with their undo, the
    same state.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute(_NO_SYNC_COMMIT_SQL)
        for experiment_id in writes.assigned_to:
            cursor.execute(_ASSIGNMENT_DELETE_SQL, [experiment_id, customer_id])
        if writes.ledger is not None:
            if writes.ledger.earlier:
                cursor.execute(_CAP_SET_SQL, [_served_text(writes.ledger.earlier), customer_id])
            else:
                cursor.execute(_CAP_DELETE_SQL, [customer_id])


def _assign(
    configs: Sequence[ExperimentConfig],
    customer_id: str,
    attributes: Mapping,
    now: datetime,
    writes: _Writes,
) -> tuple[ExperimentConfig | None, VariantConfig | None]:
    """The first of `configs` that the customer is (or gets) assigned into."""
    for config in configs:
        result = assignment_get_or_create(
            config=config, customer_id=customer_id, attributes=attributes, at=now
        )
        if result.new:
            writes.assigned_to.append(config.id)
        if result.in_experiment and result.variant is not None:
            return config, result.variant
    return None, None


def offer_create(
    *,
    customer_id: str,
    trigger: str,
    context: Mapping,
    attributes: Mapping | None = None,
    api_key_id: str | None = None,
) -> OfferResult:
    """Serve one offer for a cross-sell moment, or say why not (see the module docstring).

    `context`: skus (what prompted the moment), order_id (its skus are looked up when no skus
    are given), cart (skus to leave out), occurred_at (default now), views (browse),
    usage_percent (usage_milestone). Unknown skus are ignored and reported in `warnings`.
    """
    if trigger not in _TRIGGERS:
        raise ValidationError({"trigger": [f"Unknown trigger '{trigger}'."]})
    attributes = attributes or {}
    now = timezone.now()
    occurred_at = context.get("occurred_at") or now
    if occurred_at - now > MAX_FUTURE_SKEW:
        raise ValidationError({"occurred_at": ["The moment cannot be in the future."]})
    snapshot = catalog()
    given = list(dict.fromkeys(context.get("skus") or []))
    unknown = [s for s in given if s not in snapshot.categories]
    warnings = [f"Unknown sku(s) ignored: {', '.join(unknown)}."] if unknown else []
    sources = [s for s in given if s in snapshot.categories]
    try:
        _check_window(trigger, occurred_at, now, window_hours(trigger))
        if not given and context.get("order_id"):
            sources = order_skus(customer_id=customer_id, order_id=str(context["order_id"]))
        if not _moment_proven(
            trigger=trigger,
            customer_id=customer_id,
            context=context,
            sources=sources,
            snapshot=snapshot,
            occurred_at=occurred_at,
        ):
            raise _NoOffer(Reason.NOT_ELIGIBLE)
        configs = running_experiments_for_trigger(trigger)
        with _offer_transaction() as trip:
            result = _serve_or_take_back(
                customer_id=customer_id,
                trigger=trigger,
                context=context,
                attributes=attributes,
                api_key_id=api_key_id,
                sources=sources,
                occurred_at=occurred_at,
                now=now,
                snapshot=snapshot,
                warnings=warnings,
                configs=configs,
                trip=trip,
            )
        return result
    except _NoOffer as no_offer:
        return OfferResult(offer=None, reason=no_offer.reason, warnings=warnings)


def _serve_or_take_back(*, customer_id: str, warnings: list[str], **kwargs) -> OfferResult:
    """`_serve`, with a refusal's writes undone by `_take_back` (the transaction commits)."""
    writes = _Writes()
    try:
        return _serve(customer_id=customer_id, warnings=warnings, writes=writes, **kwargs)
    except _NoOffer as no_offer:
        _take_back(writes, customer_id)
        return OfferResult(offer=None, reason=no_offer.reason, warnings=warnings)


def _serve(
    *,
    customer_id,
    trigger,
    context,
    attributes,
    api_key_id,
    sources,
    occurred_at,
    now,
    snapshot,
    warnings,
    configs: Sequence[ExperimentConfig],
    trip: _Trip,
    writes: _Writes,
) -> OfferResult:
    ledger = None
    if configs and connection.vendor == "postgresql":
        # One round trip for the first experiment's assignment and the cap ledger: the entry
        # names the channel the customer is about to get, corrected if the stored variant's
        # channel (or a later experiment's) turns out to differ.
        step = assignment_step(
            config=configs[0], customer_id=customer_id, attributes=attributes, at=now
        )
        ledger, first = _ledger_append(
            customer_id=customer_id,
            channel=step.variant.channel if step.variant else Channel.WEB,
            now=now,
            step=step,
        )
        writes.ledger = ledger
        if first.new:
            writes.assigned_to.append(configs[0].id)
        if first.in_experiment and first.variant is not None:
            config, variant = configs[0], first.variant
        else:
            config, variant = _assign(configs[1:], customer_id, attributes, now, writes)
    else:
        config, variant = _assign(configs, customer_id, attributes, now, writes)
    if config is None and not settings.OFFERLAB_DEFAULT_OFFERS:
        raise _NoOffer(Reason.NOT_ELIGIBLE)
    timing = variant.timing if variant else {}
    _check_window(trigger, occurred_at, now, timing.get("window_hours"))
    channel = variant.channel if variant else Channel.WEB
    if ledger is None:
        ledger, _ = _ledger_append(customer_id=customer_id, channel=channel, now=now)
        writes.ledger = ledger
    caps = _caps_decide(ledger, channel)
    if not caps.allowed:
        raise _NoOffer(Reason.FREQUENCY_CAPPED)
    strategy = config.strategy if config else DEFAULT_STRATEGY[trigger]
    strategies = [strategy, *(s for s in STRATEGY_ORDER if s != strategy)]
    products = rank_recommendations(
        sources=sources,
        strategies=strategies,
        exclude=set(context.get("cart") or ()) | caps.bought,
        limit=settings.OFFERLAB_OFFER_MAX_PRODUCTS,
        snapshot=snapshot,
    )
    if not products:
        raise _NoOffer(Reason.NO_RECOMMENDATIONS)
    stored_context = {k: v for k, v in context.items() if k != "occurred_at" and v is not None}
    offer = Offer(
        customer_id=customer_id,
        trigger=trigger,
        occurred_at=occurred_at,
        context=stored_context,
        experiment_id=config.id if config else None,
        variant_id=variant.id if variant else None,
        channel=channel,
        send_at=occurred_at + timedelta(hours=float(timing.get("delay_hours") or 0)),
        message=render_message(variant.message if variant else {}, [p.name for p in products]),
        products=[p.as_dict() for p in products],
        api_key_id=api_key_id,
        created_at=timezone.now(),
    )
    _offer_insert(offer, trip)
    # The offer is new and the cap statement took the customer's survey lock on PostgreSQL.
    survey = survey_for_offer(offer=offer, new_offer=True, customer_locked=True)
    return OfferResult(
        offer=offer,
        experiment=config.key if config else None,
        variant=variant.key if variant else None,
        survey=survey,
        warnings=warnings,
    )
