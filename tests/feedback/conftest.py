"""Fixtures for the feedback tests: offers made directly, and a two-question survey."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from feedback.models import Question, Survey
from recommendations.models import Offer

_customers = itertools.count(1)


def make_offer(*, customer_id: str | None = None, experiment=None, variant=None, **fields) -> Offer:
    now = timezone.now()
    defaults = {
        "customer_id": customer_id or f"cust-{next(_customers)}",
        "trigger": "post_purchase",
        "occurred_at": now,
        "channel": "web",
        "send_at": now,
        "message": {"subject": "You might like", "body": "Try Lens cloth", "cta": "Add"},
        "products": [
            {"sku": "CLOTH-1", "name": "Lens cloth", "category": "care", "price": "4.90"},
            {"sku": "CASE-2", "name": "Hard case", "category": "cases", "price": "19.00"},
        ],
        "experiment": experiment,
        "variant": variant,
    }
    defaults.update(fields)
    return Offer.objects.create(**defaults)


def make_survey(*, key: str = "post-offer", with_text: bool = True, **fields) -> Survey:
    survey = Survey.objects.create(
        key=key,
        name=fields.pop("name", "Post-offer check"),
        **{"sampling_rate": 1.0, "cooldown_days": 30, **fields},
    )
    Question.objects.create(
        survey=survey,
        key="helpful",
        type="rating",
        text="How helpful was this suggestion?",
        metric="csat",
        low_label="Not helpful",
        high_label="Very helpful",
        position=0,
    )
    Question.objects.create(
        survey=survey,
        key="pushy",
        type="yes_no",
        text="Did it feel pushy?",
        position=1,
    )
    Question.objects.create(
        survey=survey,
        key="why",
        type="single_choice",
        text="What mattered most?",
        choices=["Price", "Fit with my purchase", "Timing"],
        position=2,
    )
    if with_text:
        Question.objects.create(
            survey=survey, key="comment", type="text", text="Anything else?", position=3
        )
    return survey


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


@pytest.fixture
def survey(db) -> Survey:
    return make_survey()


@pytest.fixture
def offer(db) -> Offer:
    return make_offer()
