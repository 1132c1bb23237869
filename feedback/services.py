"""Writes for customer feedback: attaching a survey to a served offer, saving answers."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from experiments.assignment import bucket, fnv1a32
from feedback.models import Display, Survey
from feedback.selectors import surveys_for_serving
from feedback.tokens import survey_token_make
from recommendations.models import Offer

logger = logging.getLogger(__name__)


def survey_sampled(*, survey: Survey, offer: Offer) -> bool:
    """Whether `offer` falls in `survey`'s sample.

    Deterministic: a hash of the survey key and the offer's public id, the same GrowthBook-style
    bucket the assignment uses, compared with the sampling rate. The offer id is random, so the
    sample is random across offers, yet re-evaluating one offer always gives the same answer, and
    the rule never looks at the experiment or variant, so both arms are sampled alike.
    """
    if survey.sampling_rate >= 1.0:
        return True
    if survey.sampling_rate <= 0.0:
        return False
    return bucket(f"survey:{survey.key}:", offer.offer_id.hex) < survey.sampling_rate


def _lock_customer(customer_id: str) -> None:
    """Serialise survey decisions for one customer until the surrounding transaction ends.

    Two offers served at once to the same customer could otherwise both pass the cooldown
    check. On SQLite the write transaction (BEGIN IMMEDIATE) already serialises writers.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # One bigint key: a feedback namespace in the high bits, the customer's hash below.
            key = (0x0FEED << 32) | fnv1a32(customer_id)
            cursor.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [key])


def customer_in_cooldown(*, customer_id: str, days: int, now=None) -> bool:
    """True when any survey was offered to this customer within the last `days` days.

    Counted on the server from Display rows, across devices, channels and surveys.
    """
    if days <= 0:
        return False
    now = now or timezone.now()
    return Display.objects.filter(
        customer_id=customer_id, created_at__gte=now - timedelta(days=days)
    ).exists()


def survey_url(token: str) -> str:
    return f"{settings.OFFERLAB_PUBLIC_BASE_URL.rstrip('/')}/feedback/s/{token}"


def _survey_payload(display: Display, offer: Offer) -> dict:
    token = survey_token_make(display_id=display.pk, offer_uuid_hex=offer.offer_id.hex)
    return {"token": token, "url": survey_url(token)}


def survey_for_offer(*, offer: Offer) -> dict | None:
    """Attach at most one survey to a just-served offer; return `{"token", "url"}` or None.

    Called by the offers service inside the offer's transaction, right after the Offer row is
    created (so the Display commits or rolls back with it). Active surveys with questions are
    considered newest first; the first whose sampling draw includes the offer is used, unless the
    customer was offered any survey within that survey's cooldown. The Display is stamped with
    the offer's experiment and variant now and never re-derived; creating it is not an exposure.

    The token is issued at serve time whatever the survey's trigger; `trigger` tells the
    storefront when to show it (with the offer, or once the customer accepted it). Calling this
    twice for one offer returns the same display's token.
    """
    existing = Display.objects.filter(offer=offer).select_related("survey").first()
    if existing is not None:
        return _survey_payload(existing, offer)
    surveys = [s for s in surveys_for_serving() if survey_sampled(survey=s, offer=offer)]
    if not surveys:
        return None
    survey = surveys[0]
    _lock_customer(offer.customer_id)
    if customer_in_cooldown(customer_id=offer.customer_id, days=survey.cooldown_days):
        return None
    try:
        with transaction.atomic():
            display = Display.objects.create(
                survey=survey,
                offer=offer,
                customer_id=offer.customer_id,
                experiment_id=offer.experiment_id,
                variant_id=offer.variant_id,
            )
    except IntegrityError:
        # The same offer was handled concurrently: answer with the display that won.
        display = Display.objects.get(survey=survey, offer=offer)
    return _survey_payload(display, offer)
