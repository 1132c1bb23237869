"""What one offer costs the database, and the cap ledger when one statement holds several steps."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from experiments.models import Assignment, Factor
from experiments.selectors import experiment_config
from experiments.services import choose_for
from feedback.models import Display, Question, Survey
from recommendations.models import CustomerCap
from tests.conftest import require_services
from tests.factories import ExperimentFactory, VariantFactory, running_experiment

pytestmark = pytest.mark.django_db

URL = "/api/v1/offers"
POSTGRES = connection.vendor == "postgresql"
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def serve(client, customer, **attributes):
    """POST one offer; (response, the statements it ran apart from transaction control)."""
    body = {
        "customer_id": customer,
        "trigger": "post_purchase",
        "context": {"skus": ["tent"]},
        "attributes": attributes,
    }
    with CaptureQueriesContext(connection) as captured:
        response = client.post(URL, body, format="json")
    # (the test's own transaction turns the offer's atomic block into a savepoint)
    sql = [q["sql"] for q in captured.captured_queries]
    return response, [s for s in sql if not s.startswith(TRANSACTION_CONTROL)]


def test_a_new_customer_in_an_experiment_costs_two_statements_on_postgresql(storefront, shop):
    running_experiment("exp")
    serve(storefront, "warm-up")
    response, statements = serve(storefront, "c-new")
    assert response.status_code == 201 and response.json()["experiment"] == "exp"
    # PostgreSQL: assignment + cap ledger + past purchases in one statement, then the offer row.
    # SQLite cannot put an INSERT in a CTE: assignment, cap ledger, offer row.
    assert len(statements) == (2 if POSTGRES else 3), statements
    assert Assignment.objects.filter(customer_id="c-new").count() == 1


def test_a_customer_outside_the_experiment_costs_the_same(storefront, shop):
    targeting = [{"attribute": "country", "op": "in", "value": ["DE"]}]
    running_experiment("exp", targeting=targeting)
    serve(storefront, "warm-up", country="DE")
    response, statements = serve(storefront, "c-fr", country="FR")
    assert response.status_code == 201 and response.json()["experiment"] is None
    # the read of an earlier assignment rides along with the cap statement on PostgreSQL
    assert len(statements) == (2 if POSTGRES else 3), statements
    assert not Assignment.objects.filter(customer_id="c-fr").exists()


def test_a_sampled_survey_adds_one_statement(storefront, shop):
    survey = Survey.objects.create(key="helpful", name="Helpful?", sampling_rate=1.0)
    Question.objects.create(survey=survey, key="helpful", type="rating", text="Helpful?")
    running_experiment("exp")
    serve(storefront, "warm-up")
    response, statements = serve(storefront, "c-survey")
    assert response.json()["survey"]["token"]
    # the customer's survey lock is taken by the cap statement; cooldown check + insert are one
    assert len(statements) == (3 if POSTGRES else 4), statements
    assert not any(s.startswith("SELECT pg_advisory") for s in statements)
    display = Display.objects.get(customer_id="c-survey")
    assert display.experiment.key == "exp" and display.created_at is not None

    again, _ = serve(storefront, "c-survey", country="x")  # capped: one offer a day on email
    assert again.json()["reason"] == "frequency_capped"


def test_a_survey_in_its_cooldown_is_not_attached_to_a_new_offer(storefront, shop, settings):
    settings.OFFERLAB_FREQUENCY_CAP_PER_CHANNEL_PER_DAY = 5
    survey = Survey.objects.create(key="helpful", name="Helpful?", sampling_rate=1.0)
    Question.objects.create(survey=survey, key="helpful", type="rating", text="Helpful?")
    first, _ = serve(storefront, "c-1")
    second, _ = serve(storefront, "c-1")
    assert first.json()["survey"] is not None
    assert second.status_code == 201 and second.json()["survey"] is None
    assert Display.objects.filter(customer_id="c-1").count() == 1


def _channel_experiment():
    experiment = ExperimentFactory(key="by-channel", factor=Factor.CHANNEL, status="running")
    VariantFactory(experiment=experiment, key="email", is_control=True, channel="email")
    VariantFactory(experiment=experiment, key="sms", channel="sms", position=1)
    return experiment


def test_the_ledger_names_the_stored_variants_channel_when_it_is_not_the_one_chosen_now(
    storefront, shop
):
    """A returning customer keeps their variant even when today's draw would differ: the cap
    entry (appended in the same statement that reads the assignment) must name its channel."""
    experiment = _channel_experiment()
    serve(storefront, "warm-up")
    customer = "c-returning"
    chosen, _ = choose_for(experiment_config("by-channel"), customer, {})
    stored = experiment.variants.exclude(pk=chosen.id).get()
    Assignment.objects.create(
        experiment=experiment, variant=stored, customer_id=customer, assigned_at=timezone.now()
    )
    # Already one offer today on the channel a fresh draw would give, none on the stored one.
    stamp = int(timezone.now().timestamp()) - 60
    CustomerCap.objects.create(
        customer_id=customer, served=f"{stamp}:{chosen.channel};", updated_at=timezone.now()
    )

    response, _ = serve(storefront, customer)

    assert response.status_code == 201
    assert (response.json()["variant"], response.json()["channel"]) == (stored.key, stored.channel)
    served = CustomerCap.objects.get(customer_id=customer).served
    assert served.endswith(f":{stored.channel};") and served.count(";") == 2
    again, _ = serve(storefront, customer)
    assert again.json()["reason"] == "frequency_capped"  # the stored channel's day is used now


def test_the_offer_insert_names_every_column_of_the_offer_table():
    from recommendations.models import Offer
    from recommendations.offers import _OFFER_COLUMNS

    columns = {Offer._meta.get_field(name).column for name in _OFFER_COLUMNS}
    assert columns | {"id"} == {f.column for f in Offer._meta.concrete_fields}


def test_the_offer_row_reads_back_as_served(storefront, shop):
    from recommendations.models import Offer

    experiment = running_experiment("exp")
    before = timezone.now()
    response, _ = serve(storefront, "c-row", country="DE")
    assert response.status_code == 201, response.content
    body = response.json()
    offer = Offer.objects.get(offer_id=body["offer_id"])  # a fresh read of the stored row
    assert offer.customer_id == "c-row"
    assert offer.trigger == "post_purchase"
    assert offer.experiment_id == experiment.id
    assert offer.variant.key == body["variant"]
    assert offer.channel == body["channel"]
    assert offer.send_at.isoformat().replace("+00:00", "Z") == body["send_at"].replace(
        "+00:00", "Z"
    )
    assert offer.message == body["message"]
    assert offer.products == body["products"]
    assert offer.context == {"skus": ["tent"]}
    assert offer.api_key_id is not None
    assert before <= offer.created_at <= timezone.now()
    assert before <= offer.occurred_at <= offer.created_at


def _prepared_on_this_connection() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


def test_the_offer_statements_stay_prepared_through_refusals(storefront, shop, settings):
    """psycopg prepares a statement once it has run DATABASE_PREPARE_THRESHOLD times, and
    forgets them all on a ROLLBACK; refusals commit their undo instead, so they survive."""
    if not POSTGRES:
        require_services("prepared statements need PostgreSQL (set DATABASE_URL)")
    threshold = settings.DATABASES["default"]["OPTIONS"].get("prepare_threshold")
    if threshold is None:
        pytest.skip("prepared statements are switched off (DATABASE_PREPARE_THRESHOLD=off)")
    running_experiment("exp")
    for i in range(threshold + 1):
        assert serve(storefront, f"c-{i}")[0].status_code == 201
    cap = [s for s in _prepared_on_this_connection() if "recommendations_customercap" in s]
    assert cap, "the cap statement was not prepared"
    for i in range(3):  # capped, then nothing to recommend: both refusals commit their undo
        assert serve(storefront, f"c-{i}")[0].json()["reason"] == "frequency_capped"
    body = {"customer_id": "c-new", "trigger": "post_purchase", "context": {"skus": ["lamp"]}}
    assert storefront.post(URL, body, format="json").json()["reason"] == "no_recommendations"
    assert serve(storefront, "c-after")[0].status_code == 201
    assert set(cap) <= set(_prepared_on_this_connection())
