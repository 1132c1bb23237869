"""Redis (the broker) stopped: storefronts and customers are still served and their records
stored; an analysis requested meanwhile is kept as a queued run and runs when Redis is back."""

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.dispatch import BROKER_DOWN, analysis_runs_requeue
from experiments.models import AnalysisRun, Assignment, OutcomeEvent
from feedback.models import Question, Response, Survey
from recommendations.models import Offer
from tests.factories import running_experiment
from tests.recommendations.conftest import make_product, relate

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

RunStatus = AnalysisRun.RunStatus


@pytest.fixture
def shop():
    for sku in ("tent", "stakes", "lamp"):
        make_product(sku)
    relate("tent", "stakes")
    relate("tent", "lamp")
    survey = Survey.objects.create(key="after", name="After", sampling_rate=1.0, cooldown_days=0)
    Question.objects.create(survey=survey, key="helpful", type="rating", text="Helpful?")
    return running_experiment("broker-down", started_at=timezone.now() - timedelta(days=1))


def test_with_the_broker_down_the_storefront_is_served_and_analyses_wait_in_the_database(
    shop, private_redis, worker_queue, storefront, staff, anon
):
    private_redis.stop()

    assignment = storefront.post(
        "/api/v1/assignments",
        {"customer_id": "c-1", "experiment": "broker-down"},
        format="json",
    )
    offer = storefront.post(
        "/api/v1/offers",
        {"customer_id": "c-2", "trigger": "post_purchase", "context": {"skus": ["tent"]}},
        format="json",
    )
    assert assignment.status_code == 200, assignment.content
    assert offer.status_code == 201, offer.content
    event_id = str(uuid.uuid4())
    events = storefront.post(
        "/api/v1/events",
        {
            "events": [
                {
                    "event_id": event_id,
                    "type": "offer_accepted",
                    "customer_id": "c-2",
                    "occurred_at": timezone.now().isoformat(),
                    "offer_id": offer.json()["offer_id"],
                }
            ]
        },
        format="json",
    )
    answer = anon.post(
        "/api/v1/feedback/responses",
        {"token": offer.json()["survey"]["token"], "answers": {"helpful": 5}, "complete": True},
        format="json",
    )
    analyze = staff.post("/api/v1/experiments/broker-down/analyze")
    health = anon.get("/healthz")

    assert events.status_code == 200 and events.json()["accepted"] == 1, events.content
    assert answer.status_code == 200, answer.content
    assert Assignment.objects.filter(customer_id="c-1").count() == 1
    assert Offer.objects.filter(offer_id=offer.json()["offer_id"]).count() == 1
    assert OutcomeEvent.objects.filter(event_id=event_id).count() == 1
    assert Response.objects.filter(finished=True).count() == 1
    # the request is recorded, and the answer says it waits for the queue (not a 500)
    assert analyze.status_code == 202, analyze.content
    job = analyze.json()
    assert job["status"] == "queued" and job["progress_message"] == BROKER_DOWN
    assert health.status_code == 200 and health.json()["broker"].startswith("down")

    # Redis is back, a worker too: the beat sweep sends the waiting run
    private_redis.start()
    worker_queue(private_redis.url)
    assert analysis_runs_requeue() == [job["job_id"]]
    run = AnalysisRun.objects.get(pk=job["job_id"])
    deadline = time.monotonic() + 120
    while run.status in (RunStatus.QUEUED, RunStatus.RUNNING) and time.monotonic() < deadline:
        time.sleep(0.3)
        run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.status, run.error, run.progress_message)
    assert AnalysisRun.objects.filter(experiment=shop).count() == 1
    assert analysis_runs_requeue() == []
