"""The growth lead's admin: add an experiment with variants inline, start it, see live counts."""

import pytest

from experiments.models import Experiment, Status
from experiments.selectors import experiment_config
from experiments.services import assignment_get_or_create
from tests.experiments import adminforms
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_add_form_creates_a_draft_with_its_variants(admin_client, staff_user):
    assert admin_client.get(adminforms.ADD_URL).status_code == 200
    form = adminforms.experiment_form(
        traffic_percent="20",
        layer="pp-email",
        layer_start="0",
        layer_end="0.5",
        targeting='[{"attribute": "tier", "op": "in", "value": ["gold"]}]',
        guardrail_metrics='["return_rate"]',
    )
    response = admin_client.post(adminforms.ADD_URL, form)
    assert response.status_code == 302, adminforms.form_errors(response)
    experiment = Experiment.objects.get(key="admin-timing")
    assert experiment.status == Status.DRAFT
    assert experiment.created_by == staff_user
    assert experiment.traffic_percent == 20
    assert (experiment.layer, experiment.layer_start, experiment.layer_end) == ("pp-email", 0, 0.5)
    assert experiment.targeting == [{"attribute": "tier", "op": "in", "value": ["gold"]}]
    variants = list(experiment.variants.order_by("position", "id"))
    assert [(v.key, v.is_control, v.timing["delay_hours"]) for v in variants] == [
        ("now", True, 0),
        ("next-day", False, 24),
    ]


def test_add_form_shows_the_one_factor_error_and_saves_nothing(admin_client):
    variants = adminforms.default_variants()
    variants[1]["channel"] = "sms"
    response = admin_client.post(adminforms.ADD_URL, adminforms.experiment_form(variants))
    assert response.status_code == 200
    page = response.content.decode()
    assert "differ only in timing" in page
    assert "in channel" in page
    assert not Experiment.objects.exists()


@pytest.mark.parametrize(
    ("variants_change", "words"),
    [
        ({0: {"is_control": False}}, "Exactly one variant must be the control"),
        ({1: {"is_control": True}}, "Exactly one variant must be the control"),
        ({1: {"key": "now"}}, "duplicate"),
        ({0: {"message": {"subject": "Hi {first_name}"}}}, "{first_name}"),
    ],
)
def test_add_form_applies_the_apis_variant_rules(admin_client, variants_change, words):
    variants = adminforms.default_variants()
    for index, change in variants_change.items():
        variants[index].update(change)
    if "message" in variants_change.get(0, {}):
        variants[1]["message"] = variants[0]["message"]
    response = admin_client.post(adminforms.ADD_URL, adminforms.experiment_form(variants))
    assert response.status_code == 200
    assert words in adminforms.form_errors(response)
    assert not Experiment.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("targeting", '[{"attribute": "tier"}]'),
        ("targeting", '[{"attribute": "tier", "op": "like", "value": "g"}]'),
        ("targeting", '{"tier": "gold"}'),
        ("targeting", '["gold"]'),
        ("guardrail_metrics", '["bounce_rate"]'),
        ("guardrail_metrics", "5"),
        ("guardrail_metrics", '"return_rate"'),
        ("layer_end", "0"),
        ("traffic_percent", "150"),
    ],
)
def test_add_form_refuses_bad_settings_naming_the_field(admin_client, field, value):
    response = admin_client.post(adminforms.ADD_URL, adminforms.experiment_form(**{field: value}))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors, adminforms.form_errors(response)
    assert not Experiment.objects.exists()


def _start_action(admin_client, *experiments):
    return admin_client.post(
        adminforms.LIST_URL,
        {"action": "start_experiments", "_selected_action": [e.pk for e in experiments]},
        follow=True,
    )


def test_start_action_starts_the_experiment(admin_client):
    admin_client.post(adminforms.ADD_URL, adminforms.experiment_form())
    experiment = Experiment.objects.get()
    response = _start_action(admin_client, experiment)
    experiment.refresh_from_db()
    assert experiment.status == Status.RUNNING
    assert experiment.started_at is not None
    assert "admin-timing: start done." in [str(m) for m in response.context["messages"]]
    assert experiment_config("admin-timing").is_running


def test_start_action_reports_a_layer_clash_and_leaves_the_draft(admin_client):
    running_experiment("email-a", layer="pp-email")
    admin_client.post(adminforms.ADD_URL, adminforms.experiment_form(layer="pp-email"))
    draft = Experiment.objects.get(key="admin-timing")
    response = _start_action(admin_client, draft)
    messages = " ".join(str(m) for m in response.context["messages"])
    assert "admin-timing:" in messages
    assert "overlaps 'email-a'" in messages
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT


def test_pause_and_stop_actions(admin_client):
    experiment = running_experiment("pp-timing")
    admin_client.post(
        adminforms.LIST_URL,
        {"action": "pause_experiments", "_selected_action": [experiment.pk]},
    )
    experiment.refresh_from_db()
    assert experiment.status == Status.PAUSED
    admin_client.post(
        adminforms.LIST_URL,
        {"action": "stop_experiments", "_selected_action": [experiment.pk]},
    )
    experiment.refresh_from_db()
    assert experiment.status == Status.STOPPED


def test_live_counts_on_the_list_and_the_experiment_page(admin_client):
    experiment = running_experiment("pp-timing")
    config = experiment_config("pp-timing")
    keys = [
        assignment_get_or_create(config=config, customer_id=f"c-{i}").variant.key
        for i in range(1234)
    ]
    expected = f"control: {keys.count('control'):,}, delay-24: {keys.count('delay-24'):,}"
    assert expected in admin_client.get(adminforms.LIST_URL).content.decode()
    page = admin_client.get(adminforms.change_url(experiment)).content.decode()
    assert expected in page
    assert "Assigned customers" in page


def test_non_staff_cannot_open_the_admin(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="u", password="p"))
    response = client.get(adminforms.ADD_URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
