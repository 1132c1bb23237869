"""Staff experiments API: create, list, detail, update and start/pause/stop, as DESIGN.md shows."""

import copy
import json
import threading
from unittest import mock

import pytest
from django.db import connection, connections

from experiments.models import Experiment, Status
from experiments.selectors import experiment_config
from experiments.services import assignment_get_or_create
from tests.conftest import require_services
from tests.factories import ExperimentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The staff fixture hashes a password; PBKDF2's default cost is ~1.5 s here per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


MESSAGE = {"subject": "Complete your kit", "body": "Try {products}", "cta": "See {count} picks"}
DESIGN_BODY = {
    "key": "pp-email-timing",
    "name": "Post-purchase email timing",
    "hypothesis": "A next-day email lands when the customer has unpacked.",
    "factor": "timing",
    "trigger": "post_purchase",
    "strategy": "completion",
    "traffic_percent": 20,
    "layer": "post-purchase-email",
    "targeting": [{"attribute": "loyalty_tier", "op": "in", "value": ["gold", "silver"]}],
    "primary_metric": "acceptance_rate",
    "guardrail_metrics": ["return_rate", "cart_abandonment_rate"],
    "baseline_rate": 0.10,
    "mde": 0.02,
    "alpha": 0.05,
    "power": 0.8,
    "min_days": 14,
    "safe_peeking": False,
    "variants": [
        {
            "key": "now",
            "name": "Right away",
            "is_control": True,
            "weight": 1,
            "timing": {"delay_hours": 0, "window_hours": 48},
            "channel": "email",
            "message": MESSAGE,
        },
        {
            "key": "next-day",
            "name": "Next day",
            "weight": 1,
            "timing": {"delay_hours": 24, "window_hours": 48},
            "channel": "email",
            "message": MESSAGE,
        },
    ],
}


def body(**changes) -> dict:
    data = copy.deepcopy(DESIGN_BODY)
    data.update(changes)
    return data


def create(staff, **changes):
    return staff.post("/api/v1/experiments", body(**changes), format="json")


def test_create_returns_201_with_the_experiment_as_get_shows_it(staff):
    response = create(staff)
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created == staff.get("/api/v1/experiments/pp-email-timing").json()
    assert created["status"] == "draft"
    assert created["started_at"] is None
    assert created["traffic_percent"] == 20
    assert created["layer"] == "post-purchase-email"
    assert created["layer_slice"] == [0.0, 1.0]
    assert created["targeting"] == DESIGN_BODY["targeting"]
    assert created["guardrail_metrics"] == ["return_rate", "cart_abandonment_rate"]
    assert [v["key"] for v in created["variants"]] == ["now", "next-day"]
    assert created["variants"][0]["is_control"] is True
    assert created["variants"][1]["timing"] == {"delay_hours": 24, "window_hours": 48}
    assert created["variants"][1]["message"] == MESSAGE
    assert created["assignment_counts"] == {"now": 0, "next-day": 0}


def test_creator_is_recorded(staff, staff_user):
    create(staff)
    assert Experiment.objects.get(key="pp-email-timing").created_by == staff_user


def test_planned_sample_size_is_evan_millers_1030_for_20_percent_plus_5_points(staff):
    response = create(staff, baseline_rate=0.20, mde=0.05, alpha=0.05, power=0.8)
    assert response.json()["planned_sample_size_per_variant"] == 1030


def test_planned_sample_size_for_the_design_example(staff):
    # Evan Miller's calculator, 10 % baseline, +2 points absolute, 95 % / 80 %: 3,623 per variant
    # (the formula worked by hand: (1.95996·√0.18 + 0.84162·√0.1956)² / 0.02² = 3622.6).
    assert create(staff).json()["planned_sample_size_per_variant"] == 3623


def test_list_shows_every_experiment_newest_first(staff):
    create(staff)
    create(staff, key="second-test", layer="")
    listed = staff.get("/api/v1/experiments").json()
    assert [e["key"] for e in listed] == ["second-test", "pp-email-timing"]
    assert all("assignment_counts" in e for e in listed)


def test_detail_counts_assigned_customers_per_variant(staff):
    create(staff, traffic_percent=100, targeting=[], layer="")
    staff.post("/api/v1/experiments/pp-email-timing/start")
    config = experiment_config("pp-email-timing")
    variants = [
        assignment_get_or_create(config=config, customer_id=f"c-{i}").variant.key for i in range(60)
    ]
    counts = staff.get("/api/v1/experiments/pp-email-timing").json()["assignment_counts"]
    assert counts == {"now": variants.count("now"), "next-day": variants.count("next-day")}
    assert sum(counts.values()) == 60


def test_unknown_experiment_is_404_naming_it(staff):
    for response in (
        staff.get("/api/v1/experiments/nope"),
        staff.patch("/api/v1/experiments/nope", {"name": "x"}, format="json"),
        staff.post("/api/v1/experiments/nope/start"),
    ):
        assert response.status_code == 404
        assert "nope" in response.json()["experiment"][0]


def test_start_pause_stop_change_status(staff):
    create(staff)
    started = staff.post("/api/v1/experiments/pp-email-timing/start")
    assert started.status_code == 200
    assert started.json()["status"] == "running"
    assert started.json()["started_at"] is not None
    paused = staff.post("/api/v1/experiments/pp-email-timing/pause").json()
    assert paused["status"] == "paused"
    resumed = staff.post("/api/v1/experiments/pp-email-timing/start").json()
    assert resumed["status"] == "running"
    assert resumed["started_at"] == started.json()["started_at"]
    stopped = staff.post("/api/v1/experiments/pp-email-timing/stop").json()
    assert stopped["status"] == "stopped"
    assert stopped["ended_at"] is not None


@pytest.mark.parametrize(
    ("steps", "refused"),
    [
        ([], "pause"),
        ([], "stop"),
        (["start"], "start"),
        (["start", "stop"], "start"),
        (["start", "stop"], "pause"),
    ],
)
def test_impossible_transition_is_400_naming_status(staff, steps, refused):
    create(staff)
    for step in steps:
        assert staff.post(f"/api/v1/experiments/pp-email-timing/{step}").status_code == 200
    response = staff.post(f"/api/v1/experiments/pp-email-timing/{refused}")
    assert response.status_code == 400
    assert "status" in response.json()


def test_start_makes_the_experiment_assignable_at_once(staff, storefront):
    create(staff, traffic_percent=100, targeting=[], layer="")
    before = storefront.post(
        "/api/v1/assignments",
        {"customer_id": "c-1", "experiment": "pp-email-timing"},
        format="json",
    ).json()
    assert before["reason"] == "experiment_draft"
    staff.post("/api/v1/experiments/pp-email-timing/start")
    after = storefront.post(
        "/api/v1/assignments",
        {"customer_id": "c-1", "experiment": "pp-email-timing"},
        format="json",
    ).json()
    assert after["in_experiment"] is True
    staff.post("/api/v1/experiments/pp-email-timing/pause")
    paused = storefront.post(
        "/api/v1/assignments",
        {"customer_id": "c-1", "experiment": "pp-email-timing"},
        format="json",
    ).json()
    assert paused["reason"] == "experiment_paused"


def test_draft_can_be_patched_freely(staff):
    create(staff)
    response = staff.patch(
        "/api/v1/experiments/pp-email-timing",
        {
            "factor": "channel",
            "traffic_percent": 50,
            "layer_slice": [0.25, 0.75],
            "variants": [
                {"key": "web", "is_control": True, "channel": "web", "message": MESSAGE},
                {"key": "mail", "channel": "email", "message": MESSAGE},
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    updated = response.json()
    assert updated["factor"] == "channel"
    assert updated["traffic_percent"] == 50
    assert updated["layer_slice"] == [0.25, 0.75]
    assert [v["key"] for v in updated["variants"]] == ["web", "mail"]
    assert updated["name"] == DESIGN_BODY["name"]  # untouched fields keep their values


def test_patching_the_key_is_refused(staff):
    create(staff)
    response = staff.patch("/api/v1/experiments/pp-email-timing", {"key": "renamed"}, format="json")
    assert response.status_code == 400
    assert "key" in response.json()


def test_duplicate_key_is_a_409_conflict_naming_key(staff):
    create(staff)
    response = create(staff)
    assert response.status_code == 409
    assert "key" in response.json() and "detail" in response.json()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"key": "Not a slug!"}, "key"),
        ({"key": ""}, "key"),
        ({"name": ""}, "name"),
        ({"factor": "colour"}, "factor"),
        ({"trigger": "birthday"}, "trigger"),
        ({"strategy": "random"}, "strategy"),
        ({"traffic_percent": 101}, "traffic_percent"),
        ({"traffic_percent": -1}, "traffic_percent"),
        ({"traffic_percent": "lots"}, "traffic_percent"),
        ({"layer_slice": [0.5, 0.5]}, "layer_slice"),
        ({"layer_slice": [0.7, 0.2]}, "layer_slice"),
        ({"layer_slice": [0, 1.5]}, "layer_slice"),
        ({"layer_slice": [0.5]}, "layer_slice"),
        ({"primary_metric": "clicks"}, "primary_metric"),
        ({"guardrail_metrics": ["bounce_rate"]}, "guardrail_metrics"),
        ({"guardrail_metrics": "return_rate"}, "guardrail_metrics"),
        ({"baseline_rate": 1.5}, "baseline_rate"),
        ({"mde": 0}, "mde"),
        ({"baseline_rate": 0.9, "mde": 0.2}, "mde"),
        ({"alpha": 0.9}, "alpha"),
        ({"power": 1}, "power"),
        ({"min_days": -1}, "min_days"),
        ({"targeting": {"attribute": "tier"}}, "targeting"),
        ({"targeting": [{"attribute": "tier", "op": "like", "value": "g"}]}, "targeting"),
        ({"targeting": [{"attribute": "tier", "op": "in", "value": "gold"}]}, "targeting"),
        ({"targeting": [{"attribute": "orders", "op": "gte", "value": "3"}]}, "targeting"),
        ({"targeting": [{"attribute": "", "op": "eq", "value": "x"}]}, "targeting"),
        ({"targeting": ["tier == gold"]}, "targeting"),
        # PostgreSQL's jsonb cannot hold NUL: a 500 there before, stored on SQLite.
        ({"targeting": [{"attribute": "tier", "op": "eq", "value": "a\x00"}]}, "targeting"),
        ({"targeting": [{"attribute": "t", "op": "ne", "value": [{"k\x00": 1}]}]}, "targeting"),
        ({"variants": []}, "variants"),
        ({"variants": "two"}, "variants"),
        ({"variants": [DESIGN_BODY["variants"][0]]}, "variants"),
    ],
)
def test_invalid_definition_is_400_naming_the_field(staff, changes, field):
    response = create(staff, **changes)
    assert response.status_code == 400, response.json()
    assert field in response.json(), response.json()
    assert not Experiment.objects.exists()


def _variants(**overrides_by_key):
    variants = copy.deepcopy(DESIGN_BODY["variants"])
    for variant in variants:
        variant.update(overrides_by_key.get(variant["key"], {}))
    return variants


@pytest.mark.parametrize(
    ("variants", "words"),
    [
        (_variants(**{"next-day": {"is_control": True}}), "control"),
        (_variants(now={"is_control": False}), "control"),
        (_variants(**{"next-day": {"key": "now"}}), "unique"),
        (_variants(now={"weight": 0}), "weight"),
        (_variants(now={"weight": -2}), "weight"),
        (_variants(now={"key": "has space"}), "key"),
        (_variants(now={"channel": "pigeon"}), "channel"),
        (_variants(now={"timing": {"delay_hours": -1}}), "delay_hours"),
        (_variants(now={"timing": {"delay_hours": 0, "window_hours": 0}}), "window_hours"),
        (_variants(now={"timing": "tomorrow"}), "timing"),
        (_variants(now={"message": {"subject": "Hi {name}"}}), "{name}"),
        (_variants(now={"message": {"subject": "{products.__class__}"}}), "placeholder"),
        (_variants(now={"message": "hello"}), "message"),
    ],
)
def test_invalid_variants_are_400_under_variants(staff, variants, words):
    response = create(staff, variants=variants)
    assert response.status_code == 400, response.json()
    assert "variants" in response.json()
    assert words in str(response.json()["variants"]), response.json()
    assert not Experiment.objects.exists()


def test_targeting_value_with_a_lone_surrogate_is_400_under_targeting(staff):
    # json.dumps escapes a lone surrogate (\\udc00) as a buggy client would send it.
    rule = {"attribute": "tier", "op": "in", "value": ["gold", "\udc00"]}
    response = staff.post(
        "/api/v1/experiments", json.dumps(body(targeting=[rule])), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert "surrogate" in str(response.json()["targeting"])
    assert not Experiment.objects.exists()


def test_targeting_eq_null_is_a_rule_like_any_other(staff):
    # The schema says any JSON value for eq and ne; DRF's JSONField refused null.
    rule = {"attribute": "loyalty_tier", "op": "eq", "value": None}
    response = create(staff, targeting=[rule])
    assert response.status_code == 201, response.json()
    assert response.json()["targeting"] == [rule]


def test_allowed_placeholders_are_accepted(staff):
    message = {"subject": "{product} and more", "body": "{products}", "cta": "See {count}"}
    response = create(
        staff,
        variants=_variants(now={"message": message}, **{"next-day": {"message": message}}),
    )
    assert response.status_code == 201, response.json()


def test_variants_default_to_weight_one_and_web(staff):
    response = create(
        staff,
        factor="message",
        variants=[
            {"key": "a", "is_control": True, "message": {"subject": "A"}},
            {"key": "b", "message": {"subject": "B"}},
        ],
    )
    assert response.status_code == 201, response.json()
    variants = response.json()["variants"]
    assert [v["weight"] for v in variants] == [1.0, 1.0]
    assert [v["channel"] for v in variants] == ["web", "web"]
    assert [v["name"] for v in variants] == ["a", "b"]


def test_non_object_body_is_400(staff):
    for raw in (b"[]", b'"x"', b"nope"):
        response = staff.post("/api/v1/experiments", raw, content_type="application/json")
        assert response.status_code == 400


def test_status_cannot_be_set_by_create_or_patch(staff):
    create(staff, status="running")
    assert Experiment.objects.get().status == Status.DRAFT
    staff.patch("/api/v1/experiments/pp-email-timing", {"status": "running"}, format="json")
    assert Experiment.objects.get().status == Status.DRAFT


@pytest.mark.django_db(transaction=True)
def test_same_key_created_by_a_concurrent_request_is_409_naming_key(staff):
    if connection.vendor != "postgresql":
        require_services("a concurrent writer needs PostgreSQL (set DATABASE_URL)")

    def other_request_commits_the_key() -> None:
        ExperimentFactory(key="pp-email-timing")
        connections.close_all()

    def racing_request_wins(*args, **kwargs):
        # The other request inserts the key after this one's uniqueness checks have passed.
        if not Experiment.objects.filter(key="pp-email-timing").exists():
            other = threading.Thread(target=other_request_commits_the_key)
            other.start()
            other.join(timeout=30)

    with mock.patch.object(Experiment, "validate_unique", racing_request_wins):
        response = create(staff)
    assert response.status_code == 409
    assert "key" in response.json()
    assert Experiment.objects.filter(key="pp-email-timing").count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": 5}, "name"),
        ({"key": 123}, "key"),
        ({"safe_peeking": "true"}, "safe_peeking"),
        ({"min_days": "14"}, "min_days"),
        ({"mde": "0.02"}, "mde"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_400_not_coerced(staff, changes, field):
    """The schema says string / boolean / integer / number: DRF's form coercion is refused."""
    response = create(staff, **changes)
    assert response.status_code == 400
    assert field in response.json()
    assert not Experiment.objects.exists()
