"""Variants may differ only in the experiment's factor — through the API and the admin alike."""

import pytest

from experiments.models import Experiment, Variant
from tests.experiments import adminforms
from tests.experiments.test_experiments_api import body

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


TIMING_A = {"delay_hours": 0, "window_hours": 48}
TIMING_B = {"delay_hours": 24, "window_hours": 48}
MESSAGE_A = {"subject": "A", "body": "Try {products}", "cta": "Go"}
MESSAGE_B = {"subject": "B", "body": "Try {products}", "cta": "Go"}


def _pair(factor: str, differing: dict) -> list[dict]:
    """Two variants that differ in `factor` (allowed) and in whatever `differing` sets."""
    base = {"timing": TIMING_A, "channel": "email", "message": MESSAGE_A}
    second = dict(base)
    second[factor] = {"timing": TIMING_B, "channel": "sms", "message": MESSAGE_B}[factor]
    second.update(differing)
    return [
        {"key": "control", "is_control": True, **base},
        {"key": "treatment", **second},
    ]


@pytest.mark.parametrize(
    ("factor", "differing", "field"),
    [
        ("timing", {"channel": "sms"}, "channel"),
        ("timing", {"message": MESSAGE_B}, "message"),
        ("channel", {"timing": TIMING_B}, "timing"),
        ("channel", {"message": {**MESSAGE_A, "cta": "Buy"}}, "message"),
        ("message", {"timing": {"delay_hours": 0, "window_hours": 24}}, "timing"),
        ("message", {"channel": "push"}, "channel"),
    ],
)
def test_api_refuses_variants_differing_outside_the_factor(staff, factor, differing, field):
    response = staff.post(
        "/api/v1/experiments",
        body(factor=factor, variants=_pair(factor, differing)),
        format="json",
    )
    assert response.status_code == 400
    message = response.json()["variants"][0]
    assert f"in {field}" in message
    assert f"differ only in {factor}" in message
    assert "treatment" in message
    assert not Experiment.objects.exists()


@pytest.mark.parametrize("factor", ["timing", "channel", "message"])
def test_api_accepts_variants_differing_only_in_the_factor(staff, factor):
    variants = _pair(factor, {})
    variants[1]["weight"] = 3  # weights, names and the control flag are not offer fields
    variants[1]["name"] = "Something else"
    response = staff.post(
        "/api/v1/experiments", body(factor=factor, variants=variants), format="json"
    )
    assert response.status_code == 201, response.json()


def test_api_checks_three_or_more_variants_pairwise_against_the_control(staff):
    variants = _pair("timing", {})
    variants.append({"key": "third", "timing": {"delay_hours": 72}, "channel": "push"})
    response = staff.post(
        "/api/v1/experiments", body(factor="timing", variants=variants), format="json"
    )
    assert response.status_code == 400
    assert "'third'" in response.json()["variants"][0]


def test_changing_the_factor_of_a_draft_rechecks_its_variants(staff):
    staff.post("/api/v1/experiments", body(), format="json")  # variants differ in timing only
    response = staff.patch(
        "/api/v1/experiments/pp-email-timing", {"factor": "channel"}, format="json"
    )
    assert response.status_code == 400
    assert "timing" in response.json()["variants"][0]
    assert Experiment.objects.get().factor == "timing"


def test_start_refuses_variants_that_were_made_to_differ_behind_the_apis_back(staff):
    staff.post("/api/v1/experiments", body(), format="json")
    Variant.objects.filter(key="next-day").update(channel="sms")
    response = staff.post("/api/v1/experiments/pp-email-timing/start")
    assert response.status_code == 400
    assert "channel" in response.json()["variants"][0]
    assert Experiment.objects.get().status == "draft"


@pytest.mark.parametrize(
    ("factor", "differing", "field"),
    [
        ("timing", {"channel": "sms"}, "channel"),
        ("channel", {"timing": TIMING_B}, "timing"),
        ("message", {"channel": "push"}, "channel"),
    ],
)
def test_admin_refuses_variants_differing_outside_the_factor(
    client, staff_user, factor, differing, field
):
    client.force_login(staff_user)
    form = adminforms.experiment_form(_pair(factor, differing), factor=factor)
    response = client.post(adminforms.ADD_URL, form)
    assert response.status_code == 200  # the form comes back with the error
    page = response.content.decode()
    assert f"differ only in {factor}" in page
    assert f" in {field}:" in page
    assert not Experiment.objects.exists()


def test_admin_accepts_variants_differing_only_in_the_factor(client, staff_user):
    client.force_login(staff_user)
    response = client.post(
        adminforms.ADD_URL, adminforms.experiment_form(_pair("channel", {}), factor="channel")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    experiment = Experiment.objects.get()
    assert sorted(experiment.variants.values_list("channel", flat=True)) == ["email", "sms"]
