"""Catalogue, relation and order-history builders for the recommendations tests."""

import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from experiments.models import EventItem, EventType, OutcomeEvent
from recommendations.models import Product, ProductRelation, RelationOrigin, RelationStatus


def make_product(sku: str, **fields) -> Product:
    defaults = {"name": f"Product {sku}", "category": "general", "price": Decimal("10.00")}
    return Product.objects.create(sku=sku, **{**defaults, **fields})


def relate(source: str, target: str, kind: str = "complement", **fields) -> ProductRelation:
    defaults = {
        "origin": RelationOrigin.CURATED,
        "status": RelationStatus.APPROVED,
        "score": 1.0,
    }
    return ProductRelation.objects.create(
        source=Product.objects.get(sku=source),
        target=Product.objects.get(sku=target),
        kind=kind,
        **{**defaults, **fields},
    )


def order(customer_id: str, skus, *, at=None, order_id=None, event_type=EventType.ORDER_PLACED):
    """One order_placed (or other item-carrying) event with its lines."""
    at = at or timezone.now()
    event = OutcomeEvent.objects.create(
        event_id=uuid.uuid4(),
        type=event_type,
        customer_id=customer_id,
        occurred_at=at,
        order_id=order_id or f"o-{uuid.uuid4().hex[:10]}",
    )
    EventItem.objects.bulk_create(
        EventItem(
            event=event,
            type=event_type,
            customer_id=customer_id,
            occurred_at=at,
            sku=sku,
            category="general",
        )
        for sku in skus
    )
    return event


@pytest.fixture
def shop(db):
    """A small shop: a tent with a complement, an upgrade and an ecosystem relation, plus a
    lamp that is only reachable through a pending (mined) relation."""
    make_product("tent", name="Trail Tent", category="tents", price=Decimal("199.00"))
    make_product("stakes", name="Tent Stakes", category="accessories", price=Decimal("12.50"))
    make_product("footprint", name="Footprint", category="accessories", price=Decimal("29.00"))
    make_product("tent-pro", name="Trail Tent Pro", category="tents", price=Decimal("349.00"))
    make_product("stove", name="Camp Stove", category="cooking", price=Decimal("59.00"))
    make_product("lamp", name="Lantern", category="lighting", price=Decimal("25.00"))
    relate("tent", "stakes", "complement", score=0.9)
    relate("tent", "footprint", "complement", score=0.5)
    relate("tent", "tent-pro", "upgrade")
    relate("tent", "stove", "ecosystem")
    relate("tent", "lamp", "complement", origin=RelationOrigin.MINED, status="pending")
