"""Staff API: POST …/analyze (202 + job), GET …/analyses/{job_id}, GET …/results."""

import pytest

from experiments.models import AnalysisRun
from tests.experiments.analysis_data import T0
from tests.experiments.test_analysis import populate
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment():
    exp = running_experiment("api-timing", started_at=T0)
    populate(exp, "control", [{"accepted": i < 10} for i in range(50)])
    populate(exp, "delay-24", [{"accepted": i < 20} for i in range(50)])
    return exp


def test_results_404_until_analysed_then_the_latest_snapshot(
    staff, experiment, django_capture_on_commit_callbacks
):
    response = staff.get("/api/v1/experiments/api-timing/results")
    assert response.status_code == 404
    assert "not been analysed" in response.json()["detail"]
    assert response.json()["analysed"] is False

    with django_capture_on_commit_callbacks(execute=True):  # the job is queued on commit
        response = staff.post("/api/v1/experiments/api-timing/analyze")
    assert response.status_code == 202
    job = response.json()
    assert isinstance(job["job_id"], int) and job["experiment"] == "api-timing"
    assert job["status"] == "queued"

    results = staff.get("/api/v1/experiments/api-timing/results")
    assert results.status_code == 200
    body = results.json()
    assert body["experiment"] == "api-timing"
    acceptance = next(m for m in body["metrics"] if m["metric"] == "acceptance_rate")
    assert [v["value"] for v in acceptance["variants"]] == [0.2, 0.4]

    status = staff.get(f"/api/v1/experiments/api-timing/analyses/{job['job_id']}")
    assert status.status_code == 200
    assert status.json()["status"] == "succeeded"  # eager Celery ran it after the commit
    assert status.json()["progress"] == 100 and status.json()["finished_at"]


def test_a_second_request_while_one_is_queued_returns_the_same_job(staff, experiment):
    AnalysisRun.objects.create(experiment=experiment, status=AnalysisRun.RunStatus.RUNNING)
    first = staff.post("/api/v1/experiments/api-timing/analyze").json()
    second = staff.post("/api/v1/experiments/api-timing/analyze").json()
    assert first["job_id"] == second["job_id"] and first["status"] == "running"
    assert AnalysisRun.objects.filter(experiment=experiment).count() == 1


def test_unknown_experiment_and_job_are_404_naming_them(staff, experiment):
    assert "nope" in staff.post("/api/v1/experiments/nope/analyze").json()["detail"]
    assert staff.get("/api/v1/experiments/nope/results").status_code == 404
    response = staff.get("/api/v1/experiments/api-timing/analyses/999999")
    assert response.status_code == 404 and "999999" in response.json()["detail"]


def test_analysis_endpoints_are_staff_only(anon, storefront, experiment):
    assert anon.post("/api/v1/experiments/api-timing/analyze").status_code in (401, 403)
    assert storefront.get("/api/v1/experiments/api-timing/results").status_code in (401, 403)
    assert not AnalysisRun.objects.exists()
