"""Getting analysis jobs to a worker even when the broker or a worker fails.

The database is the record of an analysis request (an AnalysisRun row); the broker message is only
a wake-up call. `analysis_publish` sends that message and, when the broker is down, leaves the run
`queued` with a message that says so instead of failing the request. `analysis_runs_requeue`
(beat, every minute) sends the message again for runs that no worker holds:

- `queued` runs whose message could not be sent, at once;
- `queued` runs older than QUEUED_GRACE (a message lost with a Redis restart without persistence);
- `running` runs older than RUNNING_GRACE whose task no live worker reports holding
  (a worker killed outright: Redis would redeliver it only after the visibility timeout).

A message sent twice is harmless: `analysis_claim` lets one process at a time compute a run, and
`analysis_run` returns a finished run unchanged, so each run is computed into its one row once
(again only if the process computing it died).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from experiments.models import AnalysisRun

logger = logging.getLogger(__name__)

RunStatus = AnalysisRun.RunStatus
BROKER_DOWN = "waiting for the job queue (broker unavailable); it starts when the queue is back"
QUEUED_GRACE = timedelta(minutes=10)
RUNNING_GRACE = timedelta(minutes=2)
ANALYSIS_LOCK = 0x616E61  # first key of the (key, run id) advisory lock ("ana")
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


@contextmanager
def analysis_claim(run_id: int) -> Iterator[None]:
    """Compute run ``run_id`` in one process at a time.

    A PostgreSQL session advisory lock held while the run is computed. A copy of the task
    delivered meanwhile waits for it, then finds the run finished and leaves it alone; a copy
    delivered after its worker died gets the lock once the dead process's connection is gone,
    and computes. Waiting is bounded below the task's soft time limit (then the lock timeout is
    a database error, and the task retries). SQLite: one process, nothing to wait for.
    """
    if connection.vendor != "postgresql":
        yield
        return
    key = (ANALYSIS_LOCK, run_id % 2**31)
    wait_ms = max(settings.CELERY_TASK_SOFT_TIME_LIMIT - 300, 1) * 1000
    with connection.cursor() as cursor:
        try:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{wait_ms}ms"])
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
        finally:
            cursor.execute("SELECT set_config('lock_timeout', '0', false)")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        except DatabaseError:
            pass  # the connection is gone, and the lock went with it


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
