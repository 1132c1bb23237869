"""Reads: the served catalogue (cached in-process), recommendations, relations for review.

The hot path never queries products or relations: approved relations whose target can be served
(active, in stock, price above zero) are held as an immutable in-process snapshot. A change to a
product or relation bumps a generation number in Django's cache once the change commits (shared
across processes when CACHE_URL points at Redis); every read compares it, and snapshots expire
after OFFERLAB_CONFIG_CACHE_SECONDS, which bounds staleness where the cache is per-process.
"""

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, Max, Q, QuerySet

from experiments.models import EventItem, EventType, Strategy
from recommendations.models import (
    STRATEGY_KIND,
    Product,
    ProductRelation,
    RelationStatus,
)

_GENERATION_KEY = "offerlab:catalog-generation"
KIND_STRATEGY = {kind: strategy for strategy, kind in STRATEGY_KIND.items()}
# Order in which other strategies fill an offer when its own strategy finds too few products.
STRATEGY_ORDER = (Strategy.COMPLETION, Strategy.ECOSYSTEM, Strategy.EVOLUTION)


@dataclass(frozen=True)
class Candidate:
    """A servable target of an approved relation."""

    sku: str
    name: str
    category: str
    price: str
    score: float
    pinned: bool


@dataclass(frozen=True)
class Recommendation:
    sku: str
    name: str
    category: str
    price: str
    strategy: str
    score: float
    pinned: bool

    def as_dict(self) -> dict:
        return {
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "price": self.price,
            "strategy": self.strategy,
            "score": self.score,
        }


@dataclass(frozen=True)
class CatalogSnapshot:
    categories: dict[str, str]  # every known sku -> its category
    related: dict[tuple[str, str], tuple[Candidate, ...]]  # (source sku, kind) -> ranked targets


def _rank_key(c: Candidate) -> tuple:
    return (not c.pinned, -c.score, c.sku)


def _fingerprint() -> tuple:
    """Changes whenever a product or relation is added, changed (`updated_at`) or deleted."""
    products = Product.objects.aggregate(n=Count("pk"), at=Max("updated_at"))
    relations = ProductRelation.objects.aggregate(n=Count("pk"), at=Max("updated_at"))
    return (products["n"], products["at"], relations["n"], relations["at"])


def _load() -> CatalogSnapshot:
    categories = dict(Product.objects.values_list("sku", "category"))
    grouped: dict[tuple[str, str], list[Candidate]] = {}
    rows = ProductRelation.objects.filter(
        status=RelationStatus.APPROVED,
        target__active=True,
        target__in_stock=True,
        target__price__gt=0,
    ).values_list(
        "source__sku",
        "kind",
        "target__sku",
        "target__name",
        "target__category",
        "target__price",
        "score",
        "pinned",
    )
    for source, kind, sku, name, category, price, score, pinned in rows.iterator(chunk_size=5000):
        grouped.setdefault((source, kind), []).append(
            Candidate(sku, name, category, f"{price:.2f}", float(score), bool(pinned))
        )
    related = {key: tuple(sorted(found, key=_rank_key)) for key, found in grouped.items()}
    return CatalogSnapshot(categories=categories, related=related)


class _CatalogCache:
    """The snapshot, reloaded when the generation moves, when cleared, and when it ages out.

    A change (generation moved, or cleared in this process) is waited for: every reader blocks
    until the new snapshot is loaded. Ageing out is not a change: the first reader to see it
    compares the tables' fingerprint (row counts and latest `updated_at`, one cheap statement)
    with the one the snapshot was loaded at and reloads only when it moved, while the other
    readers keep serving the snapshot they have. Loading the catalogue takes a moment (about
    0.1–0.4 s and most of it holding the GIL at 10,000 relations); reloading an unchanged one
    every OFFERLAB_CONFIG_CACHE_SECONDS was a latency spike for every thread of the worker.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._generation: int | None = None
        self._fingerprint: tuple | None = None
        self._snapshot = CatalogSnapshot(categories={}, related={})

    def _state(self) -> str:
        if not self._loaded_at or cache.get(_GENERATION_KEY, 0) != self._generation:
            return "changed"
        if time.monotonic() - self._loaded_at > settings.OFFERLAB_CONFIG_CACHE_SECONDS:
            return "aged"
        return "fresh"

    def _reload(self) -> CatalogSnapshot:
        # Both read before the load, so a change committed during it shows at the next look.
        generation = cache.get(_GENERATION_KEY, 0)
        fingerprint = _fingerprint()
        self._snapshot = _load()
        self._generation = generation
        self._fingerprint = fingerprint
        self._loaded_at = time.monotonic()
        return self._snapshot

    def _revalidate(self) -> CatalogSnapshot:
        """An aged snapshot: kept for another period when the tables have not moved."""
        if self._fingerprint is not None and _fingerprint() == self._fingerprint:
            self._loaded_at = time.monotonic()
            return self._snapshot
        return self._reload()

    def get(self) -> CatalogSnapshot:
        state = self._state()
        if state == "fresh":
            return self._snapshot
        if state == "aged":
            if not self._lock.acquire(blocking=False):
                return self._snapshot  # another thread is reloading it
            try:
                return self._revalidate() if self._state() == "aged" else self._snapshot
            finally:
                self._lock.release()
        with self._lock:
            if self._state() != "changed":
                return self._snapshot
            return self._reload()

    def clear(self) -> None:
        with self._lock:
            self._loaded_at = 0.0


_catalog = _CatalogCache()


def _bump() -> None:
    try:
        cache.incr(_GENERATION_KEY)
    except ValueError:
        cache.set(_GENERATION_KEY, 1, timeout=None)
    _catalog.clear()


def invalidate_catalog() -> None:
    """Called on every product/relation change; takes effect when the change commits."""
    _catalog.clear()
    transaction.on_commit(_bump)


def catalog() -> CatalogSnapshot:
    return _catalog.get()


def rank_recommendations(
    *,
    sources: Iterable[str],
    strategies: Iterable[str],
    exclude: set[str],
    limit: int,
    snapshot: CatalogSnapshot | None = None,
) -> list[Recommendation]:
    """Approved, servable targets of `sources`, strategy by strategy, best first.

    Within a strategy: pinned first, then the highest score any source gives the target, then
    the number of sources pointing at it, then sku. A product appears once, under the first
    strategy that found it; `exclude` skus (and the sources themselves) never appear.
    """
    snapshot = snapshot or catalog()
    sources = list(dict.fromkeys(sources))
    excluded = set(exclude) | set(sources)
    chosen: list[Recommendation] = []
    for strategy in strategies:
        kind = STRATEGY_KIND[strategy]
        best: dict[str, tuple[Candidate, int]] = {}
        for source in sources:
            for candidate in snapshot.related.get((source, kind), ()):
                if candidate.sku in excluded:
                    continue
                previous = best.get(candidate.sku)
                if previous is None:
                    best[candidate.sku] = (candidate, 1)
                else:
                    top = min(previous[0], candidate, key=_rank_key)
                    best[candidate.sku] = (top, previous[1] + 1)
        ranked = sorted(best.values(), key=lambda cn: (*_rank_key(cn[0])[:2], -cn[1], cn[0].sku))
        for candidate, _ in ranked:
            if len(chosen) >= limit:
                return chosen
            chosen.append(
                Recommendation(
                    sku=candidate.sku,
                    name=candidate.name,
                    category=candidate.category,
                    price=candidate.price,
                    strategy=str(strategy),
                    score=candidate.score,
                    pinned=candidate.pinned,
                )
            )
            excluded.add(candidate.sku)
    return chosen


def product_get(sku: str) -> Product | None:
    return Product.objects.filter(sku=sku).first()


def order_skus(*, customer_id: str, order_id: str) -> list[str]:
    """The skus of one of the customer's orders, in line order."""
    rows = (
        EventItem.objects.filter(
            customer_id=customer_id,
            type=EventType.ORDER_PLACED,
            event__order_id=order_id,
        )
        .order_by("id")
        .values_list("sku", flat=True)
    )
    return list(dict.fromkeys(rows))


def views_count(*, customer_id: str, skus: list[str], categories: list[str], start, end) -> int:
    """How many product_viewed lines of these products or categories fall in [start, end]."""
    seen = Q(sku__in=skus)
    if categories:
        seen |= Q(category__in=categories)
    return (
        EventItem.objects.filter(
            customer_id=customer_id,
            type=EventType.PRODUCT_VIEWED,
            occurred_at__gte=start,
            occurred_at__lte=end,
        )
        .filter(seen)
        .count()
    )


def relation_list(
    *,
    status: str | None = None,
    source: str | None = None,
    kind: str | None = None,
    origin: str | None = None,
) -> QuerySet[ProductRelation]:
    """The review queue: highest lift first (curated relations without lift last)."""
    qs = ProductRelation.objects.select_related("source", "target")
    if status:
        qs = qs.filter(status=status)
    if source:
        qs = qs.filter(source__sku=source)
    if kind:
        qs = qs.filter(kind=kind)
    if origin:
        qs = qs.filter(origin=origin)
    return qs.order_by(F("lift").desc(nulls_last=True), "-pinned", "id")
