"""Frequency caps hold when 20 requests for one customer arrive at the same moment."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from recommendations.models import Offer
from tests.conftest import require_services
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db(transaction=True)

CONCURRENT = 20


def _burst(api_key: str, customer: str) -> list[dict]:
    barrier = threading.Barrier(CONCURRENT)

    def one(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
        try:
            barrier.wait(timeout=30)
            response = client.post(
                "/api/v1/offers",
                {
                    "customer_id": customer,
                    "trigger": "post_purchase",
                    "context": {"skus": ["tent"]},
                },
                format="json",
            )
            return {"status": response.status_code, **response.json()}
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        return list(pool.map(one, range(CONCURRENT)))


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        require_services("concurrent writers need PostgreSQL (set DATABASE_URL)")


def test_twenty_concurrent_requests_get_one_offer_per_channel_per_day(postgres, api_key, shop):
    running_experiment("exp")
    results = _burst(api_key, "busy-customer")
    served = [r for r in results if r["status"] == 201]
    capped = [r for r in results if r.get("reason") == "frequency_capped"]
    assert len(served) == 1
    assert len(capped) == CONCURRENT - 1
    assert Offer.objects.filter(customer_id="busy-customer").count() == 1


def test_twenty_concurrent_requests_never_exceed_the_weekly_cap(postgres, api_key, shop, settings):
    settings.OFFERLAB_FREQUENCY_CAP_PER_CHANNEL_PER_DAY = 100
    results = _burst(api_key, "busy-customer")
    assert sum(r["status"] == 201 for r in results) == 3
    assert sum(r.get("reason") == "frequency_capped" for r in results) == CONCURRENT - 3
    assert Offer.objects.filter(customer_id="busy-customer").count() == 3
