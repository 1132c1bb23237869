"""The in-process catalogue snapshot: changes are waited for, ageing out is not."""

import threading

import pytest
from django.core.cache import cache
from django.test import override_settings

from recommendations import selectors
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
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: now[0])
    return now


@override_settings(OFFERLAB_CONFIG_CACHE_SECONDS=30)
def test_an_aged_snapshot_is_served_while_another_thread_reloads_it(loads, clock):
    snapshots = selectors._CatalogCache()
    first = snapshots.get()
    clock[0] += 31  # aged out, nothing changed
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
def test_a_change_is_waited_for_not_served_stale(loads, clock):
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
def test_a_fresh_snapshot_is_not_reloaded_and_a_cleared_one_is(loads, clock):
    snapshots = selectors._CatalogCache()
    first = snapshots.get()
    clock[0] += 10
    assert snapshots.get() is first
    snapshots.clear()
    assert snapshots.get() is not first
    assert len(loads) == 2
