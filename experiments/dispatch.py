"""Getting analysis jobs to a worker even when the broker or a worker fails.

The database is the record of an analysis request (an AnalysisRun row); the broker message is only
a wake-up call. `analysis_publish` sends that message and, when the broker is down, leaves the run
`queued` with a message that says so instead of failing the request. `analysis_runs_requeue`
(beat, every minute) sends the message again for runs that no worker holds:

- `queued` runs whose message could not be sent, at once;
- `queued` runs older than QUEUED_GRACE (a message lost with a Redis restart without persistence);
- `running` runs older than RUNNING_GRACE whose task no live worker reports holding
  (a worker killed outright: Redis would redeliver it only after the visibility timeout).

A message sent twice is harmless: `analysis_run` returns a finished run unchanged and computes an
active one into the same row, so there is still exactly one result per run.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from experiments.models import AnalysisRun

logger = logging.getLogger(__name__)

RunStatus = AnalysisRun.RunStatus
BROKER_DOWN = "waiting for the job queue (broker unavailable); it starts when the queue is back"
QUEUED_GRACE = timedelta(minutes=10)
RUNNING_GRACE = timedelta(minutes=2)
# Fail fast while the broker is down: the request is recorded in the database anyway.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}


def analysis_publish(*, run_id: int, task_id: str) -> bool:
    """Send the task for run ``run_id``; False (and the run says why) if the broker is down."""
    from experiments.tasks import analyze_experiment

    try:
        analyze_experiment.apply_async(
            args=[run_id], task_id=task_id, retry=True, retry_policy=PUBLISH_RETRY
        )
    except (BrokerError, OSError) as exc:
        logger.warning("analysis run %s not queued, broker unavailable: %s", run_id, exc)
        AnalysisRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            progress_message=BROKER_DOWN
        )
        return False
    return True


def _tasks_held_by_workers() -> set[str] | None:
    """Task ids active, reserved or scheduled (retry countdown) on live workers.

    None when no worker answers (then nobody can tell what is stranded).
    """
    from config.celery import app

    inspector = app.control.inspect(timeout=2.0)
    held: set[str] = set()
    answered = False
    for reply in (inspector.active(), inspector.reserved(), inspector.scheduled()):
        if reply is None:
            continue
        answered = True
        for tasks in reply.values():
            held.update(task.get("request", task).get("id") for task in tasks)
    return held if answered else None


def analysis_runs_requeue(
    *,
    queued_grace: timedelta = QUEUED_GRACE,
    running_grace: timedelta = RUNNING_GRACE,
) -> list[int]:
    """Send the task again for runs no worker holds (see the module doc); returns their ids."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return []
    now = timezone.now()
    waiting = AnalysisRun.objects.filter(status=RunStatus.QUEUED).filter(
        progress_message=BROKER_DOWN
    ) | AnalysisRun.objects.filter(status=RunStatus.QUEUED, created_at__lte=now - queued_grace)
    candidates = list(waiting.values_list("pk", "task_id").distinct())
    stranded = list(
        AnalysisRun.objects.filter(
            status=RunStatus.RUNNING, started_at__lte=now - running_grace
        ).values_list("pk", "task_id")
    )
    if stranded:
        held = _tasks_held_by_workers()
        if held is not None:
            candidates += [(pk, task_id) for pk, task_id in stranded if task_id not in held]
    requeued = []
    for pk, task_id in candidates:
        if analysis_publish(run_id=pk, task_id=task_id):
            AnalysisRun.objects.filter(
                pk=pk, status=RunStatus.QUEUED, progress_message=BROKER_DOWN
            ).update(progress_message="queued")
            requeued.append(pk)
    if requeued:
        logger.warning("re-sent analysis runs %s to the job queue", requeued)
    return requeued


@shared_task(acks_late=True, ignore_result=True)
def requeue_analyses() -> int:
    """Beat: re-send analysis runs that no worker holds; returns how many were sent."""
    return len(analysis_runs_requeue())
