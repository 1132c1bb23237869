"""A Celery worker killed with SIGKILL in the middle of an analysis: the analysis still completes,
into the same run, exactly once. Real worker processes on the real broker (CI: Redis)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from experiments.analysis import analysis_request
from experiments.dispatch import analysis_runs_requeue
from experiments.models import AnalysisRun, Assignment
from tests.conftest import ROOT, require_services
from tests.factories import running_experiment

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

RunStatus = AnalysisRun.RunStatus


def _conninfo() -> str:
    db = connection.settings_dict
    return (
        f"postgresql://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:"
        f"{db.get('PORT') or 5432}/{db['NAME']}"
    )


class Worker:
    """`celery worker --pool=prefork -c 1` on a queue of its own, logging to a file."""

    def __init__(self, queue: str, log: Path):
        self.log = log
        env = {
            **os.environ,
            "DATABASE_URL": _conninfo().replace("postgresql://", "postgres://", 1),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SECRET_KEY": "test-worker",
            "DEBUG": "1",
        }
        celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
        argv = [celery, "-A", "config.celery:app", "worker", "--pool=prefork", "--concurrency=1"]
        argv += ["--loglevel=INFO", "-Q", queue, "--without-gossip", "--without-mingle"]
        argv += ["--hostname", f"{queue}-{time.monotonic_ns()}@%h"]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_log("ready.", 60)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"worker log never said {needle!r}:\n{self.text()[-3000:]}")

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def worker_queue(tmp_path):
    if connection.vendor != "postgresql":
        require_services("a real Celery worker needs PostgreSQL (set DATABASE_URL)")
    if not settings.CELERY_BROKER_URL:
        require_services("a real Celery worker needs a broker (set CELERY_BROKER_URL)")
    queue = f"faults-{os.getpid()}-{time.monotonic_ns()}"
    previous = celery_app.conf.task_default_queue, celery_app.conf.task_always_eager
    celery_app.conf.task_default_queue = queue
    celery_app.conf.task_always_eager = False
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(queue, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = previous
    for worker in started:
        worker.stop()


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
        self.conn = psycopg.connect(_conninfo())
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
