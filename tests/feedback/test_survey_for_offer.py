"""survey_for_offer: which served offers carry a survey, and what the Display records."""

import threading
import time
from urllib.parse import urlparse

import pytest
from django.db import connection, transaction
from django.test import override_settings

from feedback.models import Display
from feedback.services import survey_for_offer
from feedback.tokens import survey_token_read
from tests.conftest import require_services
from tests.factories import running_experiment
from tests.feedback.conftest import days_ago, make_offer, make_survey

pytestmark = pytest.mark.django_db


@override_settings(OFFERLAB_PUBLIC_BASE_URL="https://feedback.shop.example/")
def test_offer_gets_token_and_hosted_page_url(survey, offer):
    result = survey_for_offer(offer=offer)

    assert set(result) == {"token", "url"}
    url = urlparse(result["url"])
    assert (url.scheme, url.netloc) == ("https", "feedback.shop.example")
    assert url.path == f"/feedback/s/{result['token']}"
    fields = survey_token_read(result["token"])
    display = Display.objects.get(offer=offer)
    assert fields.display_id == display.pk
    assert fields.offer_uuid_hex == offer.offer_id.hex
    assert offer.customer_id not in result["token"]


def test_display_is_stamped_with_the_offers_experiment_and_variant(survey):
    experiment = running_experiment("survey-stamp")
    treatment = experiment.variants.get(is_control=False)
    offer = make_offer(experiment=experiment, variant=treatment)

    survey_for_offer(offer=offer)

    display = Display.objects.get(offer=offer)
    assert (display.experiment_id, display.variant_id) == (experiment.pk, treatment.pk)
    assert display.customer_id == offer.customer_id


def test_no_active_survey_means_no_survey(offer):
    make_survey(active=False)
    assert survey_for_offer(offer=offer) is None
    assert not Display.objects.exists()


def test_second_offer_within_cooldown_is_not_surveyed_even_from_another_survey(survey):
    first = make_offer(customer_id="alice")
    assert survey_for_offer(offer=first) is not None
    make_survey(key="other-survey")
    second = make_offer(customer_id="alice", channel="email")

    assert survey_for_offer(offer=second) is None
    assert Display.objects.filter(customer_id="alice").count() == 1


def test_customer_is_asked_again_after_the_cooldown(survey):
    first = make_offer(customer_id="bob")
    survey_for_offer(offer=first)
    Display.objects.filter(offer=first).update(created_at=days_ago(31))

    assert survey_for_offer(offer=make_offer(customer_id="bob")) is not None
    assert Display.objects.filter(customer_id="bob").count() == 2


def test_cooldown_zero_asks_every_time():
    make_survey(cooldown_days=0)
    offers = [make_offer(customer_id="carol") for _ in range(3)]
    assert all(survey_for_offer(offer=o) is not None for o in offers)


def test_calling_twice_for_one_offer_reuses_the_display(survey, offer):
    first = survey_for_offer(offer=offer)
    second = survey_for_offer(offer=offer)
    assert survey_token_read(first["token"]) == survey_token_read(second["token"])
    assert Display.objects.count() == 1


def test_sampling_rate_is_respected_and_identical_across_arms():
    make_survey(sampling_rate=0.3, cooldown_days=0)
    experiment = running_experiment("survey-sampling")
    control, treatment = experiment.variants.order_by("position")
    asked = {control.pk: 0, treatment.pk: 0}
    n = 1000
    for i in range(n):
        variant = control if i % 2 == 0 else treatment
        offer = make_offer(experiment=experiment, variant=variant)
        if survey_for_offer(offer=offer) is not None:
            asked[variant.pk] += 1
    # Binomial(500, 0.3): mean 150, sd ≈ 10.2; ±5 sd can only fail if sampling is broken.
    for count in asked.values():
        assert 99 <= count <= 201
    assert Display.objects.count() == sum(asked.values())


def test_sampling_decision_is_deterministic_per_offer():
    survey = make_survey(sampling_rate=0.5, cooldown_days=0)
    offers = [make_offer() for _ in range(40)]
    first = [survey_for_offer(offer=o) is not None for o in offers]
    Display.objects.all().delete()
    second = [survey_for_offer(offer=o) is not None for o in offers]
    assert first == second
    assert 0 < sum(first) < 40
    survey.sampling_rate = 0.0
    survey.save()
    Display.objects.all().delete()
    assert not any(survey_for_offer(offer=o) for o in offers)


@pytest.mark.django_db(transaction=True)
def test_two_offers_served_at_once_to_one_customer_get_one_survey():
    """The cooldown holds under concurrency: the per-customer lock serialises the decision."""
    if connection.vendor != "postgresql":
        require_services("concurrent transactions need PostgreSQL (set DATABASE_URL)")
    make_survey(key="race")
    barrier = threading.Barrier(2)
    results, errors = [], []

    def serve():
        try:
            with transaction.atomic():
                offer = make_offer(customer_id="dana")
                barrier.wait(timeout=10)
                results.append(survey_for_offer(offer=offer))
                # Keep the transaction open so an unlocked check would miss the other's row.
                time.sleep(0.3)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=serve) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert not errors
    assert sum(r is not None for r in results) == 1
    assert Display.objects.filter(customer_id="dana").count() == 1


def test_serving_costs_no_query_when_not_sampled_and_three_when_asked(
    django_assert_num_queries,
):
    make_survey(sampling_rate=0.0, key="never")
    offer = make_offer()
    survey_for_offer(offer=offer)  # warms the active-survey cache
    with django_assert_num_queries(0):
        assert survey_for_offer(offer=offer) is None

    make_survey(key="always")
    survey_for_offer(offer=make_offer())  # re-warm after the new survey cleared the cache
    offer = make_offer(customer_id="erin")
    lock = 1 if connection.vendor == "postgresql" else 0
    with django_assert_num_queries(lock + 2):  # lock, cooldown/idempotency read, insert
        assert survey_for_offer(offer=offer) is not None


def test_deactivating_a_survey_stops_it_at_once(survey):
    assert survey_for_offer(offer=make_offer()) is not None
    survey.active = False
    survey.save()
    assert survey_for_offer(offer=make_offer()) is None
