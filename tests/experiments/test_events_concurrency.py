"""Concurrent batches: the same event sent by two storefront calls at once is stored once.

On PostgreSQL the posts really run at the same time (threads, committed transactions). SQLite
takes one writer at a time, so there the same calls run one after another.
"""

import random
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from experiments.events import events_ingest
from experiments.models import EventItem, OutcomeEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _events(n: int) -> list[dict]:
    at = (timezone.now() - timedelta(hours=1)).isoformat()
    events = []
    for i in range(n):
        event = {
            "event_id": str(uuid.uuid4()),
            "type": "order_placed",
            "customer_id": f"c-{i}",
            "occurred_at": at,
            "order_id": f"o-{i}",
            "amount": "30.00",
            "currency": "EUR",
            "items": [
                {"sku": "a", "category": "x", "quantity": 1, "price": "10.00"},
                {"sku": "b", "category": "y", "quantity": 2, "price": "10.00"},
            ],
        }
        events.append(event)
    return events


def _in_parallel(calls: list) -> list:
    """Run the calls at the same moment (PostgreSQL) or one by one (SQLite)."""
    if connection.vendor != "postgresql":
        return [call() for call in calls]
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = calls[i]()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a batch never finished (deadlock?)"
    if errors:
        raise errors[0]
    return results


def test_two_concurrent_posts_of_the_same_batch_store_each_event_once(api_key):
    events = _events(300)

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
        return client.post("/api/v1/events", {"events": events}, format="json")

    first, second = _in_parallel([post, post])

    assert first.status_code == second.status_code == 200
    bodies = [first.json(), second.json()]
    assert sum(b["accepted"] for b in bodies) == 300
    assert sum(b["duplicates"] for b in bodies) == 300
    for a, b in zip(bodies[0]["results"], bodies[1]["results"], strict=True):
        assert {a["status"], b["status"]} == {"accepted", "duplicate"}
    assert OutcomeEvent.objects.count() == 300
    assert EventItem.objects.count() == 600


def test_overlapping_batches_in_different_orders_all_finish_and_store_once():
    events = _events(400)
    rng = random.Random(5)
    batches = []
    for _ in range(4):
        batch = rng.sample(events, 250)  # overlapping subsets, each in its own order
        batches.append(batch)
    sent = {e["event_id"] for batch in batches for e in batch}

    results = _in_parallel(
        [lambda b=batch: events_ingest(events=b, api_key_id=None) for batch in batches]
    )

    assert sum(r.accepted for r in results) == len(sent)
    assert sum(r.accepted + r.duplicates for r in results) == 4 * 250
    assert OutcomeEvent.objects.count() == len(sent)
    assert EventItem.objects.count() == 2 * len(sent)
