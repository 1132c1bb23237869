"""Every change to an experiment is audited (who, when, what) — from the API and the admin."""

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from experiments.models import Experiment, Variant
from tests.experiments import adminforms
from tests.experiments.test_experiments_api import body

pytestmark = pytest.mark.django_db

URL = "/api/v1/experiments/pp-email-timing"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _entries(model, **filters):
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(model), **filters
    ).order_by("timestamp", "id")


def test_api_create_is_audited_with_the_staff_user(staff, staff_user):
    staff.post("/api/v1/experiments", body(), format="json")
    experiment = Experiment.objects.get()
    created = _entries(Experiment, object_pk=str(experiment.pk), action=LogEntry.Action.CREATE)
    assert created.count() == 1
    assert created.get().actor == staff_user
    variant_entries = _entries(Variant, action=LogEntry.Action.CREATE)
    assert variant_entries.count() == 2
    assert {e.actor for e in variant_entries} == {staff_user}


def test_api_update_records_what_changed_and_who(staff, staff_user):
    staff.post("/api/v1/experiments", body(), format="json")
    staff.patch(URL, {"traffic_percent": 60, "name": "Renamed"}, format="json")
    update = _entries(Experiment, action=LogEntry.Action.UPDATE).last()
    assert update.actor == staff_user
    assert update.changes_dict["traffic_percent"] == ["20.0", "60.0"]
    assert update.changes_dict["name"][1] == "Renamed"
    assert update.timestamp is not None


def test_api_status_changes_are_audited(staff, staff_user):
    staff.post("/api/v1/experiments", body(), format="json")
    staff.post(f"{URL}/start")
    staff.post(f"{URL}/stop")
    statuses = [
        e.changes_dict["status"]
        for e in _entries(Experiment, action=LogEntry.Action.UPDATE)
        if "status" in e.changes_dict
    ]
    assert statuses == [["draft", "running"], ["running", "stopped"]]
    assert {e.actor for e in _entries(Experiment)} == {staff_user}


def test_refused_change_leaves_no_audit_entry(staff):
    staff.post("/api/v1/experiments", body(), format="json")
    staff.post(f"{URL}/start")
    before = LogEntry.objects.count()
    assert staff.patch(URL, {"factor": "channel"}, format="json").status_code == 400
    assert LogEntry.objects.count() == before


def test_admin_add_and_change_are_audited_with_the_admin_user(client, staff_user):
    client.force_login(staff_user)
    response = client.post(adminforms.ADD_URL, adminforms.experiment_form())
    assert response.status_code == 302, adminforms.form_errors(response)
    experiment = Experiment.objects.get()
    form = adminforms.change_form(experiment, traffic_percent="35")
    response = client.post(adminforms.change_url(experiment), form)
    assert response.status_code == 302, adminforms.form_errors(response)

    entries = list(_entries(Experiment, object_pk=str(experiment.pk)))
    assert [e.action for e in entries] == [LogEntry.Action.CREATE, LogEntry.Action.UPDATE]
    assert {e.actor for e in entries} == {staff_user}
    assert entries[1].changes_dict["traffic_percent"] == ["100.0", "35.0"]
    assert {e.actor for e in _entries(Variant)} == {staff_user}


def test_admin_start_action_is_audited(client, staff_user):
    client.force_login(staff_user)
    client.post(adminforms.ADD_URL, adminforms.experiment_form())
    experiment = Experiment.objects.get()
    client.post(
        adminforms.LIST_URL,
        {"action": "start_experiments", "_selected_action": [experiment.pk]},
    )
    start = _entries(Experiment, action=LogEntry.Action.UPDATE).get()
    assert start.changes_dict["status"] == ["draft", "running"]
    assert start.actor == staff_user


def test_audit_trail_is_visible_on_the_experiment_page(client, staff, staff_user):
    staff.post("/api/v1/experiments", body(), format="json")
    staff.patch(URL, {"traffic_percent": 60}, format="json")
    experiment = Experiment.objects.get()
    client.force_login(staff_user)
    page = client.get(adminforms.change_url(experiment)).content.decode()
    assert "Audit trail" in page
    assert "traffic_percent: 20.0 → 60.0" in page
    assert staff_user.username in page
    assert "create variant" in page.lower()


def test_admin_sessions_get_the_audit_context_and_storefront_calls_skip_it(
    client, staff_user, storefront, monkeypatch
):
    import auditlog.middleware

    entered = []
    real = auditlog.middleware.set_extra_data

    def recording(context_data):
        entered.append(context_data["actor"])
        return real(context_data=context_data)

    monkeypatch.setattr(auditlog.middleware, "set_extra_data", recording)
    response = storefront.post("/api/v1/assignments", {"customer_id": "c-1", "experiment": "none"})
    assert entered == []
    # without a session cookie the session is never loaded, so the answer does not vary by it
    assert "Cookie" not in response.headers.get("Vary", "")
    client.force_login(staff_user)
    assert client.get(adminforms.LIST_URL).status_code == 200
    assert entered == [staff_user]
