"""GET /api/v1/experiments/{key}/readiness."""

import pytest
from django.utils import timezone

from experiments.models import AnalysisRun
from experiments.readiness import readiness_for_run
from tests.experiments.readiness_results import acceptance, healthy_result, replace_metric
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db

URL = "/api/v1/experiments/{}/readiness"


def analysed(experiment, result, *, status=AnalysisRun.RunStatus.SUCCEEDED, minutes_ago=0):
    run = AnalysisRun.objects.create(
        experiment=experiment,
        status=status,
        result=result,
        finished_at=timezone.now() - timezone.timedelta(minutes=minutes_ago),
    )
    if status == AnalysisRun.RunStatus.SUCCEEDED:
        run.readiness = readiness_for_run(run)
        run.save(update_fields=["readiness"])
    return run


def test_readiness_returns_the_latest_runs_report(staff):
    experiment = running_experiment("pp-email-timing", traffic_percent=10.0)
    older = replace_metric(healthy_result(), acceptance(diff=0.004, ci=(-0.01, 0.018), p=0.6))
    analysed(experiment, older, minutes_ago=60)
    analysed(experiment, healthy_result())

    response = staff.get(URL.format("pp-email-timing"))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "experiment",
        "verdict",
        "recommended_variant",
        "criteria",
        "next_step",
        "generated_at",
    }
    assert body["experiment"] == "pp-email-timing"
    assert body["verdict"] == "ready_to_scale"
    assert body["recommended_variant"] == "B"
    assert body["next_step"] == "raise traffic from 10 % to 50 %"
    assert [c["key"] for c in body["criteria"]][:3] == ["min_duration", "sample_size", "srm"]
    assert all(set(c) == {"key", "status", "detail"} for c in body["criteria"])


def test_a_failed_newer_run_does_not_hide_the_last_good_report(staff):
    experiment = running_experiment("pp-email-timing")
    analysed(experiment, healthy_result(), minutes_ago=30)
    AnalysisRun.objects.create(
        experiment=experiment, status=AnalysisRun.RunStatus.FAILED, error="database went away"
    )

    response = staff.get(URL.format("pp-email-timing"))

    assert response.status_code == 200
    assert response.json()["verdict"] == "ready_to_scale"


def test_never_analysed_is_404_saying_how_to_run_an_analysis(staff):
    running_experiment("pp-email-timing")

    response = staff.get(URL.format("pp-email-timing"))

    assert response.status_code == 404
    body = response.json()
    assert "not been analysed" in body["detail"]
    assert "manage.py analyze pp-email-timing" in body["detail"]
    assert body["how_to_run"] == "POST /api/v1/experiments/pp-email-timing/analyze"


def test_unknown_experiment_is_404(staff):
    response = staff.get(URL.format("no-such-test"))

    assert response.status_code == 404
    assert response.json() == {"detail": "No experiment with key 'no-such-test'."}


def test_readiness_is_for_staff_only(anon, storefront):
    running_experiment("pp-email-timing")

    assert anon.get(URL.format("pp-email-timing")).status_code in (401, 403)
    assert storefront.get(URL.format("pp-email-timing")).status_code in (401, 403)
