"""The admin Results page in real Chromium (Playwright): the charts are drawn and visible.

Set OFFERLAB_SCREENSHOTS=docs to also write docs/results-page.png for the README.
"""

import os

import pytest
from django.urls import reverse
from django.utils import timezone

from experiments.models import AnalysisRun, Status
from experiments.readiness import readiness_for_run
from tests.conftest import ROOT
from tests.experiments.readiness_results import healthy_result
from tests.factories import ExperimentFactory, VariantFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("OFFERLAB_SCREENSHOTS")


@pytest.fixture
def analysed_experiment():
    experiment = ExperimentFactory(
        key="pp-email-timing",
        name="Post-purchase email: right away vs next day",
        status=Status.RUNNING,
        traffic_percent=10.0,
        started_at=timezone.now() - timezone.timedelta(days=21),
    )
    VariantFactory(experiment=experiment, key="A", is_control=True, position=0)
    VariantFactory(
        experiment=experiment, key="B", position=1, timing={"delay_hours": 24, "window_hours": 48}
    )
    run = AnalysisRun.objects.create(
        experiment=experiment,
        status=AnalysisRun.RunStatus.SUCCEEDED,
        result=healthy_result(),
        finished_at=timezone.now(),
    )
    run.readiness = readiness_for_run(run)
    run.save(update_fields=["readiness"])
    return experiment


def test_results_page_shows_verdict_and_four_visible_charts(
    live_server, chromium, staff_user, analysed_experiment
):
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", "growth")
    page.fill("#id_password", "growth-pass-123")
    page.click("input[type=submit]")

    # From the experiment list, follow the Results link as a growth team would.
    page.goto(live_server.url + reverse("admin:experiments_experiment_changelist"))
    page.get_by_role("link", name="Results", exact=True).click()

    assert (
        page.locator(".verdict .label")
        .inner_text()
        .startswith("Ready to scale — recommended variant: B")
    )
    assert page.locator("table.criteria tbody tr").count() == 9
    charts = page.locator("figure svg.chart")
    assert charts.count() == 4
    for i in range(4):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 500 and box["height"] > 150
    assert page.locator("#chart-forest svg text", has_text="no change vs A").count() == 1
    if SCREENSHOTS:
        out = ROOT / SCREENSHOTS
        out.mkdir(exist_ok=True)
        page.screenshot(path=str(out / "results-page.png"), full_page=True)
