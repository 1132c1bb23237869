"""Admin: "Analyze now" on an experiment, its latest runs, and the read-only analysis runs."""

import pytest
from django.test import Client
from django.urls import reverse

from experiments.models import AnalysisRun
from tests.experiments.analysis_data import T0
from tests.experiments.test_analysis import populate
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def experiment():
    exp = running_experiment("admin-timing", started_at=T0)
    populate(exp, "control", [{"accepted": i < 10} for i in range(30)])
    populate(exp, "delay-24", [{"accepted": i < 15} for i in range(30)])
    return exp


def test_analyze_now_button_queues_a_run_and_the_page_shows_it(
    admin_client_, experiment, django_capture_on_commit_callbacks
):
    change = reverse("admin:experiments_experiment_change", args=[experiment.pk])
    page = admin_client_.get(change).content.decode()
    assert "Analyze now" in page and "Never analysed" in page

    analyze = reverse("admin:experiments_experiment_analyze", args=[experiment.pk])
    assert admin_client_.get(analyze).status_code == 405  # only a POST starts a job
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(analyze)
    assert response.status_code == 302 and response["Location"] == change
    run = AnalysisRun.objects.get(experiment=experiment)
    assert run.status == AnalysisRun.RunStatus.SUCCEEDED and run.requested_by is not None

    page = admin_client_.get(change).content.decode()
    assert f"#{run.pk}" in page and "succeeded" in page


def test_admin_action_analyses_selected_experiments(
    admin_client_, experiment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_client_.post(
            reverse("admin:experiments_experiment_changelist"),
            {"action": "analyze_experiments", "_selected_action": [experiment.pk]},
        )
    assert AnalysisRun.objects.filter(experiment=experiment, status="succeeded").count() == 1


def test_analysis_run_admin_is_read_only_and_shows_the_results(
    admin_client_, experiment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_client_.post(reverse("admin:experiments_experiment_analyze", args=[experiment.pk]))
    run = AnalysisRun.objects.get(experiment=experiment)
    listing = admin_client_.get(reverse("admin:experiments_analysisrun_changelist"))
    assert listing.status_code == 200 and "admin-timing" in listing.content.decode()
    detail = admin_client_.get(reverse("admin:experiments_analysisrun_change", args=[run.pk]))
    body = detail.content.decode()
    assert detail.status_code == 200
    assert "acceptance_rate" in body and "33.33 %" in body and "50.00 %" in body
    assert 'name="_save"' not in body  # nothing to edit
    assert admin_client_.get(reverse("admin:experiments_analysisrun_add")).status_code == 403
