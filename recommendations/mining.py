"""Co-purchase mining: pair statistics of order baskets, computed in SQL, written for review.

A basket is one `order_placed` event (its distinct skus) in the rolling window. Baskets with
more than OFFERLAB_MINING_MAX_BASKET distinct skus are left out entirely (bulk or B2B orders
would dominate the pair counts and cost quadratic work). For a pair (A, B) bought together in
`n_ab` of `N` baskets, with A in `n_a` and B in `n_b`:

    support = n_ab / N          confidence(A→B) = n_ab / n_a      confidence(B→A) = n_ab / n_b
    lift    = n_ab · N / (n_a · n_b)

Pairs seen in at least OFFERLAB_MINING_MIN_SUPPORT_COUNT baskets become relations in both
directions, kind `complement` (bought together = completes the purchase), origin `mined`,
status `pending`, score = confidence(source→target). Upgrades and ecosystem links are sequences
and product families rather than same-basket purchases, so they are curated by people.
Re-mining refreshes the figures of existing relations and never changes a person's decision
(status, pin, the score of a curated relation); pending candidates nobody reviewed that no
longer reach the thresholds are removed from the queue.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from experiments.models import EventType
from recommendations.models import (
    Product,
    ProductRelation,
    RelationKind,
    RelationOrigin,
    RelationStatus,
)
from recommendations.selectors import invalidate_catalog

Progress = Callable[[int, str], None]
SAMPLE_ORDERS = 2
_BATCH = 1000
_MINING_LOCK = 0x6D696E65  # pg_advisory_xact_lock key for relations_mine ("mine")

# Baskets: order events in the window with at most `max_basket` distinct skus. Written as joins
# on the base table (not a CTE scanned twice), so each side of the self-join can use the
# event_id index whatever the planner's row estimates — a bulk load without ANALYZE yet must
# not turn the nightly job into a quadratic nested loop. A line has its event's type, so the
# lines of a basket need no second type filter (one the planner would AND with the type index).
_BASKETS = """
SELECT event_id FROM experiments_eventitem
WHERE type = %s AND occurred_at >= %s AND occurred_at <= %s
GROUP BY event_id
HAVING COUNT(DISTINCT sku) <= %s
"""

_ITEM_COUNTS_SQL = f"""
SELECT NULL, COUNT(*) FROM ({_BASKETS}) baskets
UNION ALL
SELECT i.sku, COUNT(DISTINCT i.event_id)
FROM ({_BASKETS}) baskets
JOIN experiments_eventitem i ON i.event_id = baskets.event_id
GROUP BY i.sku
"""

# The self-join: every pair of distinct skus in one basket, counted once per basket (a < b).
_PAIR_COUNTS_SQL = f"""
SELECT a.sku, b.sku, COUNT(DISTINCT a.event_id),
       MIN(NULLIF(e.order_id, '')), MAX(NULLIF(e.order_id, ''))
FROM ({_BASKETS}) baskets
JOIN experiments_eventitem a ON a.event_id = baskets.event_id
JOIN experiments_eventitem b ON b.event_id = baskets.event_id AND a.sku < b.sku
JOIN experiments_outcomeevent e ON e.id = baskets.event_id
GROUP BY a.sku, b.sku
HAVING COUNT(DISTINCT a.event_id) >= %s
"""


@dataclass(frozen=True)
class PairStats:
    source: str
    target: str
    pair_count: int
    support: float
    confidence: float
    confidence_reverse: float
    lift: float
    sample_orders: tuple[str, ...]


@dataclass(frozen=True)
class MiningResult:
    window_start: datetime
    window_end: datetime
    baskets: int
    pairs: int
    created: int
    updated: int
    removed: int


def pair_statistics(
    *, since: datetime, until: datetime, max_basket: int, min_support_count: int
) -> tuple[int, list[PairStats]]:
    """(number of baskets, directed pair statistics) over order baskets in [since, until]."""
    ops = connection.ops
    window = [
        EventType.ORDER_PLACED.value,
        ops.adapt_datetimefield_value(since),
        ops.adapt_datetimefield_value(until),
        max_basket,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_ITEM_COUNTS_SQL, [*window, *window])
        item_counts, baskets = {}, 0
        for sku, n in cursor.fetchall():
            if sku is None:
                baskets = int(n)
            else:
                item_counts[sku] = int(n)
        if not baskets:
            return 0, []
        cursor.execute(_PAIR_COUNTS_SQL, [*window, min_support_count])
        rows = cursor.fetchall()
    pairs = []
    for a, b, n_ab, first_order, last_order in rows:
        n_a, n_b = item_counts[a], item_counts[b]
        samples = tuple(dict.fromkeys(o for o in (first_order, last_order) if o))
        lift = n_ab * baskets / (n_a * n_b)
        support = n_ab / baskets
        for source, target, n_s, n_t in ((a, b, n_a, n_b), (b, a, n_b, n_a)):
            pairs.append(
                PairStats(
                    source=source,
                    target=target,
                    pair_count=int(n_ab),
                    support=support,
                    confidence=n_ab / n_s,
                    confidence_reverse=n_ab / n_t,
                    lift=lift,
                    sample_orders=samples,
                )
            )
    return baskets, pairs


def _product_ids(skus: set[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    ordered = sorted(skus)
    for start in range(0, len(ordered), _BATCH):
        chunk = ordered[start : start + _BATCH]
        ids.update(Product.objects.filter(sku__in=chunk).values_list("sku", "id"))
    return ids


def relations_mine(
    *,
    window_days: int | None = None,
    max_basket: int | None = None,
    min_support_count: int | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> MiningResult:
    """Mine co-purchases over the rolling window and write them as pending candidates."""
    report = progress or (lambda percent, message: None)
    window_days = window_days or settings.OFFERLAB_MINING_WINDOW_DAYS
    max_basket = max_basket or settings.OFFERLAB_MINING_MAX_BASKET
    min_support_count = min_support_count or settings.OFFERLAB_MINING_MIN_SUPPORT_COUNT
    until = now or timezone.now()
    since = until - timedelta(days=window_days)
    report(5, "counting baskets and pairs")
    baskets, pairs = pair_statistics(
        since=since, until=until, max_basket=max_basket, min_support_count=min_support_count
    )
    report(50, f"{baskets} baskets, {len(pairs) // 2} pairs")
    ids = _product_ids({p.source for p in pairs} | {p.target for p in pairs})
    pairs = [p for p in pairs if p.source in ids and p.target in ids]
    created = updated = 0
    with transaction.atomic():
        _lock_mining()
        mined_at = timezone.now()
        for start in range(0, len(pairs), _BATCH):
            batch = pairs[start : start + _BATCH]
            c, u = _write_batch(batch, ids, mined_at)
            created, updated = created + c, updated + u
            report(50 + int(45 * (start + len(batch)) / len(pairs)), "writing candidates")
        removed, _ = ProductRelation.objects.filter(
            origin=RelationOrigin.MINED,
            status=RelationStatus.PENDING,
            reviewed_at__isnull=True,
            mined_at__lt=mined_at,
        ).delete()
        invalidate_catalog()
    report(100, "done")
    return MiningResult(
        window_start=since,
        window_end=until,
        baskets=baskets,
        pairs=len(pairs) // 2,
        created=created,
        updated=updated,
        removed=removed,
    )


def _lock_mining() -> None:
    """One mining run writes at a time (until its transaction ends).

    Two deliveries of the task at once would otherwise both insert, the later one skip the
    earlier one's rows as conflicts and then delete them as stale: every candidate lost.
    Serialised, the later run sees the earlier one's rows and updates them. (SQLite already
    serialises write transactions.)
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_MINING_LOCK])


_STAT_FIELDS = (
    "pair_count",
    "support",
    "confidence",
    "confidence_reverse",
    "lift",
    "sample_orders",
    "mined_at",
)


def _write_batch(batch: list[PairStats], ids: dict[str, int], mined_at) -> tuple[int, int]:
    kind = RelationKind.COMPLEMENT
    existing = {
        (r.source_id, r.target_id): r
        for r in ProductRelation.objects.filter(
            kind=kind,
            source_id__in={ids[p.source] for p in batch},
            target_id__in={ids[p.target] for p in batch},
        )
    }
    to_update, to_create = [], []
    for p in batch:
        figures = {
            "pair_count": p.pair_count,
            "support": p.support,
            "confidence": p.confidence,
            "confidence_reverse": p.confidence_reverse,
            "lift": p.lift,
            "sample_orders": list(p.sample_orders),
            "mined_at": mined_at,
        }
        relation = existing.get((ids[p.source], ids[p.target]))
        if relation is None:
            to_create.append(
                ProductRelation(
                    source_id=ids[p.source],
                    target_id=ids[p.target],
                    kind=kind,
                    origin=RelationOrigin.MINED,
                    status=RelationStatus.PENDING,
                    score=p.confidence,
                    **figures,
                )
            )
            continue
        for name, value in figures.items():
            setattr(relation, name, value)
        if relation.origin == RelationOrigin.MINED:
            relation.score = p.confidence
        relation.updated_at = mined_at
        to_update.append(relation)
    ProductRelation.objects.bulk_update(to_update, [*_STAT_FIELDS, "score", "updated_at"])
    ProductRelation.objects.bulk_create(to_create, ignore_conflicts=True)
    return len(to_create), len(to_update)
