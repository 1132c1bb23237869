"""The analysis job through Celery: a real worker on Redis, retries, the beat task."""

import time

import pytest
from django.db import OperationalError

from config.celery import app as celery_app
from experiments import analysis
from experiments.analysis import analysis_request
from experiments.models import AnalysisRun, Status
from experiments.tasks import analyze_experiment, analyze_running_experiments
from tests.experiments.analysis_data import T0
from tests.experiments.test_analysis import populate
from tests.factories import running_experiment


def _experiment(key: str):
    exp = running_experiment(key, started_at=T0)
    populate(exp, "control", [{"accepted": i < 10, "revenue": 5 + i % 7} for i in range(40)])
    populate(exp, "delay-24", [{"accepted": i < 16, "revenue": 6 + i % 5} for i in range(40)])
    return exp


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_requested_analysis(celery_worker_process):
    exp = _experiment("worker-timing")
    run = analysis_request(experiment=exp)  # autocommit: queued to Redis right away
    assert run.status == AnalysisRun.RunStatus.QUEUED
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status not in (AnalysisRun.RunStatus.QUEUED, AnalysisRun.RunStatus.RUNNING):
            break
        time.sleep(0.25)
    assert run.status == AnalysisRun.RunStatus.SUCCEEDED, run.error or run.status
    assert run.task_id and run.progress == 100 and run.finished_at >= run.started_at
    assert run.result["experiment"] == "worker-timing"
    acceptance = next(m for m in run.result["metrics"] if m["metric"] == "acceptance_rate")
    assert [v["n"] for v in acceptance["variants"]] == [40, 40]
    assert run.readiness["experiment"] == "worker-timing"


@pytest.fixture
def eager_retries():
    """In eager mode Celery re-runs a retried task in place when errors do not propagate."""
    previous = celery_app.conf.task_eager_propagates
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = previous


@pytest.mark.django_db
def test_database_outage_is_retried_then_the_run_succeeds(monkeypatch, eager_retries):
    exp = _experiment("retry-timing")
    real = analysis.collect_metrics
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    monkeypatch.setattr(analysis, "collect_metrics", flaky)
    run = AnalysisRun.objects.create(experiment=exp)
    analyze_experiment.apply(args=[run.pk])
    run.refresh_from_db()
    assert len(calls) == 2
    assert run.status == AnalysisRun.RunStatus.SUCCEEDED and run.result is not None


@pytest.mark.django_db
def test_a_job_that_keeps_failing_ends_failed_with_its_error(monkeypatch, eager_retries):
    exp = _experiment("down-timing")

    calls = []

    def down(**kwargs):
        calls.append(1)
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(analysis, "collect_metrics", down)
    run = AnalysisRun.objects.create(experiment=exp)
    analyze_experiment.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.status == AnalysisRun.RunStatus.FAILED
    assert "could not connect" in run.error and run.result is None
    assert len(calls) == 1 + analyze_experiment.max_retries
    # The experiment can be analysed again: the failed run does not block a new one.
    assert analysis_request(experiment=exp).pk != run.pk


@pytest.mark.django_db
def test_beat_task_requests_one_analysis_per_running_experiment(
    django_capture_on_commit_callbacks,
):
    running = _experiment("beat-running")
    paused = _experiment("beat-paused")
    paused.status = Status.PAUSED
    paused.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert analyze_running_experiments() == 1
    assert AnalysisRun.objects.get(experiment=running).status == AnalysisRun.RunStatus.SUCCEEDED
    assert not AnalysisRun.objects.filter(experiment=paused).exists()


@pytest.mark.django_db
def test_a_run_abandoned_by_a_lost_worker_does_not_block_new_requests():
    exp = _experiment("stale-timing")
    stale = AnalysisRun.objects.create(experiment=exp, status=AnalysisRun.RunStatus.RUNNING)
    AnalysisRun.objects.filter(pk=stale.pk).update(created_at=T0)
    fresh = analysis_request(experiment=exp)
    stale.refresh_from_db()
    assert fresh.pk != stale.pk
    assert stale.status == AnalysisRun.RunStatus.FAILED and "abandoned" in stale.error
