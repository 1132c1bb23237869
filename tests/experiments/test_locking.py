"""Once started, variants, weights and the setup are locked; traffic and texts can still move."""

import pytest

from experiments.models import Experiment, Variant
from tests.experiments import adminforms
from tests.experiments.test_experiments_api import DESIGN_BODY, body

pytestmark = pytest.mark.django_db

URL = "/api/v1/experiments/pp-email-timing"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def running(staff):
    assert staff.post("/api/v1/experiments", body(), format="json").status_code == 201
    assert staff.post(f"{URL}/start").status_code == 200
    return Experiment.objects.get(key="pp-email-timing")


def _variant_rows():
    return list(Variant.objects.order_by("position").values_list("key", "weight", "timing"))


def test_traffic_can_move_up_and_down_while_running(staff, running):
    up = staff.patch(URL, {"traffic_percent": 60}, format="json")
    assert up.status_code == 200, up.json()
    assert up.json()["traffic_percent"] == 60
    down = staff.patch(URL, {"traffic_percent": 5}, format="json")
    assert down.json()["traffic_percent"] == 5


def test_name_and_hypothesis_stay_editable_while_running(staff, running):
    response = staff.patch(URL, {"name": "Renamed", "hypothesis": "Sharper."}, format="json")
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["hypothesis"]) == ("Renamed", "Sharper.")


def test_variants_and_weights_are_locked_while_running(staff, running):
    before = _variant_rows()
    variants = [dict(v) for v in DESIGN_BODY["variants"]]
    variants[1]["weight"] = 3
    response = staff.patch(URL, {"variants": variants}, format="json")
    assert response.status_code == 400
    assert "variants" in response.json()
    assert "running" in response.json()["variants"][0]
    assert _variant_rows() == before


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"factor": "channel"}, ["factor"]),
        ({"trigger": "browse"}, ["trigger"]),
        ({"strategy": "ecosystem"}, ["strategy"]),
        ({"layer": "other-layer"}, ["layer"]),
        ({"layer_slice": [0, 0.5]}, ["layer_slice"]),
        ({"targeting": []}, ["targeting"]),
        ({"primary_metric": "return_rate"}, ["primary_metric"]),
        ({"guardrail_metrics": []}, ["guardrail_metrics"]),
        ({"baseline_rate": 0.3}, ["baseline_rate"]),
        ({"mde": 0.05}, ["mde"]),
        ({"alpha": 0.01}, ["alpha"]),
        ({"power": 0.9}, ["power"]),
        ({"min_days": 7}, ["min_days"]),
        ({"safe_peeking": True}, ["safe_peeking"]),
        ({"hash_seed": "reshuffle"}, ["hash_seed"]),
        ({"factor": "message", "mde": 0.1, "traffic_percent": 50}, ["factor", "mde"]),
    ],
)
def test_other_fields_are_400_naming_each_while_running(staff, running, changes, fields):
    response = staff.patch(URL, changes, format="json")
    assert response.status_code == 400
    assert sorted(response.json()) == sorted(fields)
    running.refresh_from_db()
    assert running.traffic_percent == 20  # nothing of a refused change is applied
    assert running.factor == "timing"


def test_resending_unchanged_values_is_not_a_change(staff, running):
    response = staff.patch(
        URL, {"factor": "timing", "mde": 0.02, "traffic_percent": 30}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["traffic_percent"] == 30


def test_paused_experiment_is_locked_too(staff, running):
    staff.post(f"{URL}/pause")
    assert staff.patch(URL, {"factor": "channel"}, format="json").status_code == 400
    assert staff.patch(URL, {"traffic_percent": 40}, format="json").status_code == 200


def test_stopped_experiment_keeps_only_its_texts_editable(staff, running):
    staff.post(f"{URL}/stop")
    response = staff.patch(URL, {"traffic_percent": 40}, format="json")
    assert response.status_code == 400
    assert "traffic_percent" in response.json()
    assert staff.patch(URL, {"name": "Done"}, format="json").status_code == 200


def test_admin_shows_locked_variants_read_only_and_lets_traffic_move(client, staff_user, running):
    client.force_login(staff_user)
    page = client.get(adminforms.change_url(running)).content.decode()
    assert 'name="variants-0-weight"' not in page  # weights are shown, not editable
    assert 'name="factor"' not in page
    assert 'name="traffic_percent"' in page
    form = {
        "name": running.name,
        "hypothesis": running.hypothesis,
        "traffic_percent": "75",
        "variants-TOTAL_FORMS": "2",
        "variants-INITIAL_FORMS": "2",
        "variants-MIN_NUM_FORMS": "2",
        "variants-MAX_NUM_FORMS": "1000",
    }
    for i, variant in enumerate(running.variants.order_by("position")):
        form[f"variants-{i}-id"] = str(variant.pk)
        form[f"variants-{i}-experiment"] = str(running.pk)
    response = client.post(adminforms.change_url(running), form)
    assert response.status_code == 302, adminforms.form_errors(response)
    running.refresh_from_db()
    assert running.traffic_percent == 75
    assert running.factor == "timing"


def test_admin_cannot_edit_weights_of_a_running_experiment(client, staff_user, running):
    client.force_login(staff_user)
    before = _variant_rows()
    variants = adminforms.default_variants()
    variants[1]["weight"] = 5
    form = adminforms.change_form(running, variants)
    client.post(adminforms.change_url(running), form)
    assert _variant_rows() == before


def test_admin_cannot_move_traffic_of_a_stopped_experiment(client, staff_user, running):
    client.force_login(staff_user)
    from experiments.services import experiment_transition

    experiment_transition(experiment=running, action="stop")
    page = client.get(adminforms.change_url(running)).content.decode()
    assert 'name="traffic_percent"' not in page
    assert 'name="name"' in page
