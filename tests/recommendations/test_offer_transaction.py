"""The offer's transaction on PostgreSQL outside an atomic block: two round trips, all or nothing.

BEGIN travels with the ledger statement and COMMIT with the Offer row (psycopg's pipeline
mode). These tests run as a storefront's request does (no enclosing transaction) and read the
wire itself with libpq's protocol trace.
"""

import tempfile
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, connection
from psycopg import pq

from experiments.models import Assignment
from feedback.models import Display, Question, Survey
from recommendations import offers
from recommendations.models import CustomerCap, Offer
from recommendations.offers import offer_create
from tests.conftest import require_services
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        require_services("the pipelined transaction is PostgreSQL's (set DATABASE_URL)")


@contextmanager
def wire():
    """The protocol messages the connection exchanges inside the block: [(direction, type)]."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    messages: list[tuple[str, str]] = []
    with tempfile.TemporaryFile(mode="w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield messages
        finally:
            pgconn.untrace()
            trace.seek(0)
            for line in trace:
                direction, _, kind = line.split("\t")[:3]
                messages.append((direction, kind.strip()))


def round_trips(messages) -> int:
    """Times the client sent something and then waited for the server's answer."""
    trips, previous = 0, None
    for direction, _ in messages:
        if direction == "B" and previous == "F":
            trips += 1
        previous = direction
    return trips


def statements(messages) -> list[str]:
    return [kind for direction, kind in messages if direction == "F" and kind == "Execute"]


def serve(customer: str, **context):
    return offer_create(
        customer_id=customer,
        trigger="post_purchase",
        context={"skus": ["tent"], **context},
    )


def test_an_offer_takes_two_round_trips(postgres, shop):
    running_experiment("exp")
    serve("warm-up")  # the experiment and catalogue caches, the connection
    with wire() as messages:
        result = serve("c-new")
    assert result.offer is not None and result.experiment == "exp"
    # BEGIN, ledger + assignment, Offer row, COMMIT: four statements in two round trips
    assert len(statements(messages)) == 4
    assert round_trips(messages) == 2
    offer = Offer.objects.get(customer_id="c-new")
    assert result.offer.pk == offer.pk and offer.variant_id is not None
    assert Assignment.objects.filter(customer_id="c-new").count() == 1
    assert CustomerCap.objects.get(customer_id="c-new").served.count(";") == 1


def test_a_refusal_commits_its_undo_in_the_same_two_round_trips(postgres, shop):
    running_experiment("exp")
    first = serve("c-capped")
    assert first.offer is not None
    ledger = CustomerCap.objects.get(customer_id="c-capped").served
    with wire() as messages:
        again = serve("c-capped")  # one offer a day on the variant's channel
    assert again.offer is None and again.reason == "frequency_capped"
    assert round_trips(messages) == 2
    assert ("F", "Query") not in messages  # no ROLLBACK: the prepared statements stay
    assert CustomerCap.objects.get(customer_id="c-capped").served == ledger
    assert Offer.objects.filter(customer_id="c-capped").count() == 1


def test_a_sampled_survey_adds_one_round_trip(postgres, shop):
    survey = Survey.objects.create(key="helpful", name="Helpful?", sampling_rate=1.0)
    Question.objects.create(survey=survey, key="helpful", type="rating", text="Helpful?")
    running_experiment("exp")
    serve("warm-up")
    with wire() as messages:
        result = serve("c-survey")
    assert result.survey and result.survey["token"]
    # the ledger; the Offer row and the display (whose id is in the token); COMMIT
    assert round_trips(messages) == 3
    display = Display.objects.get(customer_id="c-survey")
    assert display.offer_id == result.offer.pk == Offer.objects.get(customer_id="c-survey").pk


def _nothing_left_of(customer: str) -> bool:
    return not (
        Offer.objects.filter(customer_id=customer).exists()
        or Assignment.objects.filter(customer_id=customer).exists()
        or CustomerCap.objects.filter(customer_id=customer).exists()
    )


def test_an_error_in_the_middle_takes_everything_back(postgres, shop, monkeypatch):
    running_experiment("exp")
    serve("warm-up")

    def broken(**kwargs):
        raise RuntimeError("ranking failed")

    monkeypatch.setattr(offers, "rank_recommendations", broken)
    with pytest.raises(RuntimeError, match="ranking failed"):
        serve("c-broken")  # after the ledger statement and the assignment were sent
    assert _nothing_left_of("c-broken")
    monkeypatch.undo()
    assert serve("c-after").offer is not None  # the connection is fine


def test_a_failing_statement_at_the_commit_is_djangos_error_and_takes_everything_back(
    postgres, shop, monkeypatch
):
    running_experiment("exp")
    serve("warm-up")
    sql, fields = offers._offer_insert_plan()
    broken = sql.replace("INSERT INTO", "INSERT INTO no_such_table_but", 1)
    monkeypatch.setattr(offers, "_offer_insert_plan", lambda: (broken, fields))
    with pytest.raises(DatabaseError):
        serve("c-insert-fails")  # the Offer row is only sent with the COMMIT
    assert _nothing_left_of("c-insert-fails")
    monkeypatch.undo()
    assert serve("c-after").offer is not None
