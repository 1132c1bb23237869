"""A task delivered twice (broker redelivery, a requeue sweep, a person pressing twice) never
writes twice: one analysis result per run, one relation per mined pair."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from experiments.models import AnalysisRun, Assignment, Experiment
from experiments.tasks import analyze_experiment
from recommendations.models import Product, ProductRelation, RelationOrigin, RelationStatus
from recommendations.tasks import mine_relations_task
from tests.factories import running_experiment
from tests.recommendations.conftest import make_product, order

RunStatus = AnalysisRun.RunStatus


def _experiment_with_customers(key: str) -> Experiment:
    experiment = running_experiment(key, started_at=timezone.now() - timedelta(days=3))
    variants = list(experiment.variants.order_by("position"))
    Assignment.objects.bulk_create(
        Assignment(
            experiment=experiment,
            variant=variants[i % 2],
            customer_id=f"c{i}",
            assigned_at=timezone.now() - timedelta(hours=i % 48),
        )
        for i in range(40)
    )
    return experiment


def _queued_run(experiment: Experiment) -> AnalysisRun:
    return AnalysisRun.objects.create(
        experiment=experiment, status=RunStatus.QUEUED, task_id=str(uuid.uuid4())
    )


@pytest.mark.django_db
def test_analysis_task_delivered_twice_keeps_the_first_result():
    experiment = _experiment_with_customers("dup-twice")
    run = _queued_run(experiment)

    analyze_experiment.apply(args=[run.pk], task_id=run.task_id).get()
    first = AnalysisRun.objects.get(pk=run.pk)
    analyze_experiment.apply(args=[run.pk], task_id=run.task_id).get()
    second = AnalysisRun.objects.get(pk=run.pk)

    assert AnalysisRun.objects.filter(experiment=experiment).count() == 1
    assert second.status == RunStatus.SUCCEEDED
    # the second delivery found the run finished and left its snapshot alone
    assert second.result["computed_at"] == first.result["computed_at"]
    assert second.finished_at == first.finished_at
    assert second.result["srm"]["counts"] == {"control": 20, "delay-24": 20}


@pytest.mark.django_db
def test_analysis_redelivered_after_a_worker_died_mid_run_completes_the_same_run():
    experiment = _experiment_with_customers("dup-died")
    run = _queued_run(experiment)
    # what a worker killed mid-analysis leaves behind: the run marked running, no result
    AnalysisRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), progress=30
    )

    analyze_experiment.apply(args=[run.pk], task_id=run.task_id).get()

    runs = list(AnalysisRun.objects.filter(experiment=experiment))
    assert [(r.pk, r.status) for r in runs] == [(run.pk, RunStatus.SUCCEEDED)]
    assert runs[0].result["experiment"] == "dup-died"
    assert runs[0].readiness is not None


@pytest.mark.django_db
def test_analysis_task_for_a_deleted_run_does_nothing():
    experiment = _experiment_with_customers("dup-gone")
    run = _queued_run(experiment)
    AnalysisRun.objects.filter(pk=run.pk).delete()

    assert analyze_experiment.apply(args=[run.pk]).get() is None
    assert not AnalysisRun.objects.filter(experiment=experiment).exists()


def _history():
    """60 orders: tent+stakes in every one, lamp with half of them, plus an approved pin."""
    for sku in ("tent", "stakes", "lamp", "mat"):
        make_product(sku)
    now = timezone.now()
    for i in range(60):
        skus = ["tent", "stakes"] + (["lamp"] if i % 2 else [])
        order(f"m{i}", skus, at=now - timedelta(hours=i + 1), order_id=f"mo{i}")
    pinned = ProductRelation.objects.create(
        source=Product.objects.get(sku="tent"),
        target=Product.objects.get(sku="mat"),
        kind="complement",
        origin=RelationOrigin.CURATED,
        status=RelationStatus.APPROVED,
        pinned=True,
        score=1.0,
    )
    return pinned


def _relations() -> dict:
    return {
        (r.source.sku, r.target.sku): (r.origin, r.status, r.pinned, r.pair_count, r.lift)
        for r in ProductRelation.objects.select_related("source", "target")
    }


@pytest.mark.django_db
def test_mining_task_delivered_twice_writes_each_pair_once():
    pinned = _history()

    mine_relations_task.apply().get()
    first = _relations()
    mine_relations_task.apply().get()
    second = _relations()

    assert second == first
    assert first[("tent", "stakes")][:2] == (RelationOrigin.MINED, RelationStatus.PENDING)
    assert first[("tent", "stakes")][3] == 60
    assert first[("tent", "mat")] == (
        RelationOrigin.CURATED,
        RelationStatus.APPROVED,
        True,
        0,
        None,
    )
    assert ProductRelation.objects.count() == len(first)
    pinned.refresh_from_db()
    assert pinned.pinned and pinned.status == RelationStatus.APPROVED


@pytest.mark.django_db(transaction=True)
def test_mining_delivered_twice_at_the_same_time_keeps_every_pair():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises whole transactions)")
    _history()
    expected = {("tent", "stakes"), ("stakes", "tent"), ("tent", "lamp"), ("lamp", "tent")}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def mine():
        try:
            barrier.wait(timeout=10)
            mine_relations_task.apply().get()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=mine) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not errors
    mined = {k for k, v in _relations().items() if v[0] == RelationOrigin.MINED}
    assert expected <= mined, f"pairs lost by the second run: {expected - mined}"
    assert ProductRelation.objects.filter(origin=RelationOrigin.MINED).count() == len(mined)
