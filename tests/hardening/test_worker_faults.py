"""A Celery worker killed with SIGKILL in the middle of an analysis: the analysis still completes,
into the same run, exactly once. Real worker processes on the real broker (CI: Redis)."""

import os
import signal
import time
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from experiments.analysis import analysis_request
from experiments.dispatch import analysis_runs_requeue
from experiments.models import AnalysisRun, Assignment
from experiments.tasks import analyze_experiment
from tests.factories import running_experiment

from .conftest import conninfo

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

RunStatus = AnalysisRun.RunStatus


def _experiment(key: str):
    experiment = running_experiment(key, started_at=timezone.now() - timedelta(days=2))
    variants = list(experiment.variants.order_by("position"))
    Assignment.objects.bulk_create(
        Assignment(
            experiment=experiment,
            variant=variants[i % 2],
            customer_id=f"k{i}",
            assigned_at=timezone.now() - timedelta(hours=i),
        )
        for i in range(30)
    )
    return experiment


class EventsLocked:
    """Holds an exclusive lock on the events table, so an analysis blocks mid-aggregation."""

    def __enter__(self):
        self.conn = psycopg.connect(conninfo())
        self.conn.execute("LOCK TABLE experiments_outcomeevent IN ACCESS EXCLUSIVE MODE")
        return self

    def release(self):
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()

    def __exit__(self, *exc):
        self.release()


def _wait_status(run: AnalysisRun, statuses: set[str], timeout: float) -> AnalysisRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in statuses:
            return run
        time.sleep(0.2)
    pytest.fail(f"run {run.pk} stayed {run.status} ({run.progress_message}), wanted {statuses}")


def test_sigkill_of_the_process_running_an_analysis_requeues_it_and_it_completes_once(
    worker_queue,
):
    experiment = _experiment("fault-child-kill")
    worker = worker_queue()
    with EventsLocked() as lock:
        run = analysis_request(experiment=experiment)
        _wait_status(run, {RunStatus.RUNNING}, 60)
        (child,) = worker.children()
        os.kill(child, signal.SIGKILL)  # the pool process running the task, mid-aggregation
        worker.wait_log("WorkerLostError", 30)
        lock.release()
        run = _wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED}, 120)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result["srm"]["counts"] == {"control": 15, "delay-24": 15}
    assert list(AnalysisRun.objects.filter(experiment=experiment).values_list("pk", "status")) == [
        (run.pk, RunStatus.SUCCEEDED)
    ]
    assert child not in worker.children()  # the pool replaced the killed process


def test_sigkill_of_the_whole_worker_mid_analysis_completes_after_a_restart(worker_queue):
    experiment = _experiment("fault-worker-kill")
    first = worker_queue()
    with EventsLocked() as lock:
        run = analysis_request(experiment=experiment)
        _wait_status(run, {RunStatus.RUNNING}, 60)
        os.killpg(first.proc.pid, signal.SIGKILL)  # main process and pool: nobody requeues
        first.proc.wait(timeout=10)
        lock.release()
    worker_queue()  # the restarted worker
    # Redis would hand the unacknowledged message back only after the visibility timeout
    # (40 min); the requeue sweep (beat, every minute) sees the run running on no live worker.
    assert analysis_runs_requeue(running_grace=timedelta(0)) == [run.pk]
    run = _wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED}, 120)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert AnalysisRun.objects.filter(experiment=experiment).count() == 1
    # a second sweep finds nothing left to do
    assert analysis_runs_requeue(running_grace=timedelta(0)) == []


def test_the_same_analysis_delivered_twice_at_once_is_computed_once(worker_queue):
    experiment = _experiment("fault-twice")
    worker = worker_queue(concurrency=2)
    run = AnalysisRun.objects.create(experiment=experiment, task_id="twice-" + str(time.time()))
    with EventsLocked() as lock:
        analyze_experiment.apply_async(args=[run.pk], task_id=run.task_id)
        analyze_experiment.apply_async(args=[run.pk], task_id=run.task_id)
        _wait_status(run, {RunStatus.RUNNING}, 60)
        worker.wait_log("Task experiments.tasks.analyze_experiment", 10)
        time.sleep(1)  # both copies received: one computes, one waits for it
        lock.release()
        run = _wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED}, 120)
    computed_at = run.result["computed_at"]
    deadline = time.monotonic() + 30
    while worker.text().count(f"[{run.task_id}] succeeded") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)

    assert worker.text().count(f"[{run.task_id}] succeeded") == 2
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.result["computed_at"] == computed_at  # the second copy did not recompute it
    assert AnalysisRun.objects.filter(experiment=experiment).count() == 1
