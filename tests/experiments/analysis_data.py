"""Builders of outcome rows for the analysis tests (written straight to the tables)."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from experiments.models import AnalysisRun, Assignment, EventItem, Experiment, OutcomeEvent
from feedback.models import Answer, Display, Question, Response, Survey
from recommendations.models import Offer

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def assign(experiment: Experiment, variant: str, customer: str, at: datetime, segment: str = ""):
    return Assignment.objects.create(
        experiment=experiment,
        variant=experiment.variants.get(key=variant),
        customer_id=customer,
        segment=segment,
        assigned_at=at,
    )


def offer(experiment: Experiment | None, variant: str | None, customer: str, at, skus=()):
    row = Offer.objects.create(
        customer_id=customer,
        trigger="post_purchase",
        occurred_at=at,
        experiment=experiment,
        variant=experiment.variants.get(key=variant) if experiment and variant else None,
        channel="email",
        send_at=at,
        products=[{"sku": s, "name": s, "category": "x", "price": "1.00"} for s in skus],
    )
    Offer.objects.filter(pk=row.pk).update(created_at=at)
    row.refresh_from_db()
    return row


def event(type_: str, customer: str, at, *, amount=None, offer_id=None, items=(), order=""):
    row = OutcomeEvent.objects.create(
        event_id=uuid.uuid4(),
        type=type_,
        customer_id=customer,
        occurred_at=at,
        offer_id=offer_id,
        order_id=order,
        amount=None if amount is None else Decimal(str(amount)),
        currency="EUR" if amount is not None else "",
    )
    for sku, category in items:
        EventItem.objects.create(
            event=row,
            type=type_,
            customer_id=customer,
            occurred_at=at,
            sku=sku,
            category=category,
            quantity=1,
            price=Decimal("1.00"),
        )
    return row


def survey_answer(
    offer_row: Offer, *, metric: str, value, finished=True, qtype="rating", survey=None
):
    survey = survey or Survey.objects.get_or_create(key=f"s-{metric}-{qtype}", name="S")[0]
    question = Question.objects.get_or_create(
        survey=survey, key=f"q-{metric}", defaults={"type": qtype, "text": "?", "metric": metric}
    )[0]
    display = Display.objects.create(
        survey=survey,
        offer=offer_row,
        customer_id=offer_row.customer_id,
        experiment=offer_row.experiment,
        variant=offer_row.variant,
    )
    Display.objects.filter(pk=display.pk).update(created_at=offer_row.created_at)
    if value is None:
        return display
    response = Response.objects.create(
        display=display, survey=survey, offer=offer_row, finished=finished
    )
    Answer.objects.create(response=response, question=question, numeric_value=value)
    return display


def last_run(experiment: Experiment) -> AnalysisRun:
    return AnalysisRun.objects.filter(experiment=experiment).order_by("-id").first()
