"""The in-process catalogue snapshot: changes are waited for, ageing out is not, and an aged
snapshot is reloaded only when the tables moved."""

import threading

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from recommendations import selectors
from recommendations.models import Product, ProductRelation
from recommendations.selectors import CatalogSnapshot


@pytest.fixture
def loads(monkeypatch):
    """Each _load() returns a new, numbered snapshot; the list records them."""
    made: list[CatalogSnapshot] = []

    def fake_load():
        made.append(CatalogSnapshot(categories={"n": str(len(made))}, related={}))
        return made[-1]

    monkeypatch.setattr(selectors, "_load", fake_load)
    cache.clear()
    return made


@pytest.fixture
def tables(monkeypatch):
    """The tables' fingerprint, as the test sets it (the real one is tested below)."""
    state = ["v1"]
    monkeypatch.setattr(selectors, "_fingerprint", lambda: (state[0],))
    return state


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: now[0])
    return now


@override_settings(OFFERLAB_CONFIG_CACHE_SECONDS=30)
def test_an_aged_snapshot_of_unchanged_tables_is_kept_without_a_reload(loads, tables, clock):
    snapshots = selectors._CatalogCache()
    first = snapshots.get()
    for _ in range(3):
        clock[0] += 31  # aged out, nothing changed
        assert snapshots.get() is first
    assert len(loads) == 1
    clock[0] += 10  # kept for a whole new period
    assert snapshots.get() is first


@override_settings(OFFERLAB_CONFIG_CACHE_SECONDS=30)
def test_an_aged_snapshot_is_served_while_another_thread_reloads_it(loads, tables, clock):
    snapshots = selectors._CatalogCache()
    first = snapshots.get()
    clock[0] += 31
    tables[0] = "v2"  # a change this process was not told about (a per-process cache)
    snapshots._lock.acquire()  # another thread is loading the new one
    try:
        served = []
        reader = threading.Thread(target=lambda: served.append(snapshots.get()))
        reader.start()
        reader.join(timeout=5)
        assert not reader.is_alive(), "a reader waited for the reload"
        assert served == [first]
    finally:
        snapshots._lock.release()
    # The first reader that finds the lock free reloads it.
    assert snapshots.get() is loads[-1] is not first
    assert len(loads) == 2


@override_settings(OFFERLAB_CONFIG_CACHE_SECONDS=30)
def test_a_change_is_waited_for_not_served_stale(loads, tables, clock):
    snapshots = selectors._CatalogCache()
    first = snapshots.get()
    cache.set(selectors._GENERATION_KEY, 7)  # another process changed a product
    snapshots._lock.acquire()
    served = []
    reader = threading.Thread(target=lambda: served.append(snapshots.get()))
    reader.start()
    reader.join(timeout=0.3)
    assert reader.is_alive(), "a reader served the snapshot from before the change"
    snapshots._lock.release()
    reader.join(timeout=5)
    assert served and served[0] is not first and len(loads) == 2


@override_settings(OFFERLAB_CONFIG_CACHE_SECONDS=30)
def test_a_fresh_snapshot_is_not_reloaded_and_a_cleared_one_is(loads, tables, clock):
    snapshots = selectors._CatalogCache()
    first = snapshots.get()
    clock[0] += 10
    assert snapshots.get() is first
    snapshots.clear()
    assert snapshots.get() is not first
    assert len(loads) == 2


@pytest.mark.django_db
def test_the_fingerprint_moves_with_every_kind_of_change():
    seen = [selectors._fingerprint()]

    def moved() -> bool:
        seen.append(selectors._fingerprint())
        return seen[-1] != seen[-2]

    cam = Product.objects.create(sku="CAM", name="Camera", category="cameras", price="499")
    assert moved()
    bag = Product.objects.create(sku="BAG", name="Bag", category="bags", price="39")
    assert moved()
    relation = ProductRelation.objects.create(source=cam, target=bag, kind="complement")
    assert moved()
    assert not moved()  # nothing changed
    Product.objects.filter(pk=bag.pk).update(price="35", updated_at=timezone.now())
    assert moved()
    relation.score = 0.9
    relation.save()
    assert moved()
    relation.delete()
    assert moved()
    bag.delete()
    assert moved()
