"""POST /api/v1/assignments: the sticky variant for a storefront, and every bad input."""

import json

import pytest

from experiments.models import Assignment, Status
from tests.factories import ExperimentFactory, running_experiment

pytestmark = pytest.mark.django_db

URL = "/api/v1/assignments"


def _assign(client, **body):
    return client.post(URL, body, format="json")


def test_running_experiment_returns_variant_with_its_offer_config(storefront):
    running_experiment("pp-timing", delays=(0, 24))

    response = _assign(storefront, customer_id="c-1", experiment="pp-timing")

    assert response.status_code == 200
    body = response.json()
    assert body["experiment"] == "pp-timing"
    assert body["in_experiment"] is True
    assert body["variant"] in {"control", "delay-24"}
    assert "reason" not in body
    delay = 0 if body["variant"] == "control" else 24
    assert body["offer_config"] == {
        "timing": {"delay_hours": delay, "window_hours": 48},
        "channel": "email",
        "message": {"subject": "You might like", "body": "Try {products}", "cta": "Shop now"},
    }
    stored = Assignment.objects.get(customer_id="c-1")
    assert stored.variant.key == body["variant"]


def test_same_customer_gets_the_same_variant_every_time(storefront):
    running_experiment("pp-timing")
    answers = {
        _assign(storefront, customer_id="c-7", experiment="pp-timing").json()["variant"]
        for _ in range(5)
    }
    assert len(answers) == 1
    assert Assignment.objects.filter(customer_id="c-7").count() == 1


def test_attributes_are_stored_with_the_assignment_and_name_the_segment(storefront):
    running_experiment("pp-timing")
    response = _assign(
        storefront,
        customer_id="c-9",
        experiment="pp-timing",
        attributes={"segment": "vip", "orders": 3, "gold": True, "nickname": None},
    )
    assert response.status_code == 200
    stored = Assignment.objects.get(customer_id="c-9")
    assert stored.segment == "vip"
    assert stored.attributes == {"segment": "vip", "orders": 3, "gold": True, "nickname": None}


def test_unknown_experiment_is_404_naming_it(storefront):
    response = _assign(storefront, customer_id="c-1", experiment="no-such-test")
    assert response.status_code == 404
    assert "no-such-test" in response.json()["experiment"][0]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (Status.DRAFT, "experiment_draft"),
        (Status.PAUSED, "experiment_paused"),
        (Status.STOPPED, "experiment_stopped"),
        (Status.SHIPPED, "experiment_shipped"),
    ],
)
def test_experiment_not_running_answers_200_out_of_experiment_with_reason(
    storefront, status, reason
):
    experiment = running_experiment("pp-timing")
    experiment.status = status
    experiment.save()

    response = _assign(storefront, customer_id="c-1", experiment="pp-timing")

    assert response.status_code == 200
    assert response.json() == {
        "experiment": "pp-timing",
        "variant": None,
        "in_experiment": False,
        "reason": reason,
        "offer_config": None,
    }
    assert not Assignment.objects.exists()


def test_customer_outside_pilot_traffic_is_told_why(storefront):
    running_experiment("pp-timing", traffic_percent=0)
    body = _assign(storefront, customer_id="c-1", experiment="pp-timing").json()
    assert body["in_experiment"] is False
    assert body["variant"] is None
    assert body["offer_config"] is None
    assert body["reason"] == "outside_traffic"


def test_customer_not_matching_targeting_is_told_why(storefront):
    running_experiment(
        "pp-timing", targeting=[{"attribute": "loyalty_tier", "op": "in", "value": ["gold"]}]
    )
    out = _assign(
        storefront, customer_id="c-1", experiment="pp-timing", attributes={"loyalty_tier": "bronze"}
    ).json()
    assert (out["in_experiment"], out["reason"]) == (False, "not_targeted")
    inside = _assign(
        storefront, customer_id="c-1", experiment="pp-timing", attributes={"loyalty_tier": "gold"}
    ).json()
    assert inside["in_experiment"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"experiment": "pp-timing"}, "customer_id"),
        ({"customer_id": "", "experiment": "pp-timing"}, "customer_id"),
        ({"customer_id": None, "experiment": "pp-timing"}, "customer_id"),
        ({"customer_id": "x" * 256, "experiment": "pp-timing"}, "customer_id"),
        ({"customer_id": ["c-1"], "experiment": "pp-timing"}, "customer_id"),
        ({"customer_id": {"id": 1}, "experiment": "pp-timing"}, "customer_id"),
        ({"customer_id": "c\x00-1", "experiment": "pp-timing"}, "customer_id"),
        ({"customer_id": "c-\ud800", "experiment": "pp-timing"}, "customer_id"),
        ({"customer_id": "c-1"}, "experiment"),
        ({"customer_id": "c-1", "experiment": ""}, "experiment"),
        ({"customer_id": "c-1", "experiment": ["pp-timing"]}, "experiment"),
        ({"customer_id": "c-1", "experiment": "pp-timing", "attributes": "gold"}, "attributes"),
        ({"customer_id": "c-1", "experiment": "pp-timing", "attributes": ["gold"]}, "attributes"),
        ({"customer_id": "c-1", "experiment": "pp-timing", "attributes": 3}, "attributes"),
        (
            {"customer_id": "c-1", "experiment": "pp-timing", "attributes": {"a": {"b": 1}}},
            "attributes",
        ),
        (
            {"customer_id": "c-1", "experiment": "pp-timing", "attributes": {"tags": ["a"]}},
            "attributes",
        ),
        (
            {"customer_id": "c-1", "experiment": "pp-timing", "attributes": {"a": "x\x00"}},
            "attributes",
        ),
        (
            {"customer_id": "c-1", "experiment": "pp-timing", "attributes": {"a\x00": "x"}},
            "attributes",
        ),
        (
            {"customer_id": "c-1", "experiment": "pp-timing", "attributes": {"a": "\udc00"}},
            "attributes",
        ),
        (
            {"customer_id": "c-1", "experiment": "pp-timing", "attributes": {"a": "x" * 256}},
            "attributes",
        ),
        (
            {
                "customer_id": "c-1",
                "experiment": "pp-timing",
                "attributes": {f"k{i}": i for i in range(51)},
            },
            "attributes",
        ),
    ],
)
def test_bad_input_is_400_naming_the_field(storefront, body, field):
    running_experiment("pp-timing")
    # json.dumps escapes lone surrogates (\\ud800) exactly as a buggy client would send them.
    response = storefront.post(URL, json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Assignment.objects.exists()


def test_customer_id_of_exactly_255_characters_is_accepted(storefront):
    running_experiment("pp-timing")
    response = _assign(storefront, customer_id="x" * 255, experiment="pp-timing")
    assert response.status_code == 200
    assert Assignment.objects.get().customer_id == "x" * 255


def test_unicode_customer_ids_are_accepted(storefront):
    running_experiment("pp-timing")
    response = _assign(storefront, customer_id="kundin-øæå-😀", experiment="pp-timing")
    assert response.status_code == 200
    assert response.json()["in_experiment"] is True


@pytest.mark.parametrize(
    "raw",
    [
        b'{"customer_id": "c-1", "experiment": "pp-timing", "attributes": {"x": 1e400}}',
        b'{"customer_id": "c-1", "experiment": "pp-timing", "attributes": {"x": NaN}}',
        b'{"customer_id": "c-1", "experiment": "pp-timing", "attributes": {"x": -Infinity}}',
    ],
)
def test_non_finite_numbers_in_attributes_are_400_not_500(storefront, raw):
    running_experiment("pp-timing")
    response = storefront.post(URL, raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert not Assignment.objects.exists()


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b'"c-1"', b"", b'{"customer_id": "c-1", "experiment":']
)
def test_malformed_body_is_400(storefront, raw):
    running_experiment("pp-timing")
    response = storefront.post(URL, raw, content_type="application/json")
    assert response.status_code == 400


def test_non_json_content_type_is_415(storefront):
    running_experiment("pp-timing")
    response = storefront.post(
        URL, "customer_id=c-1&experiment=pp-timing", content_type="text/plain"
    )
    assert response.status_code == 415


def test_experiment_without_variants_is_reported_not_crashed(storefront):
    # A started experiment always has variants, but a hand-edited database must not 500.
    ExperimentFactory(key="bare", status=Status.RUNNING)
    response = _assign(storefront, customer_id="c-1", experiment="bare")
    assert response.status_code == 200
    assert response.json()["in_experiment"] is False


def test_only_post_is_allowed(storefront):
    running_experiment("pp-timing")
    assert storefront.get(URL).status_code == 405


def test_assignment_uses_the_experiments_hash_seed(storefront):
    # Two experiments that share a seed put every customer in the same arm position.
    a = running_experiment("seed-a", hash_seed="shared")
    b = running_experiment("seed-b", hash_seed="shared")
    assert a.variants.count() == b.variants.count() == 2
    for i in range(40):
        va = _assign(storefront, customer_id=f"c-{i}", experiment="seed-a").json()["variant"]
        vb = _assign(storefront, customer_id=f"c-{i}", experiment="seed-b").json()["variant"]
        assert va == vb


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": 5, "experiment": "pp-timing"}, "customer_id"),
        ({"customer_id": "c-1", "experiment": 7}, "experiment"),
        ({"customer_id": "c-1", "experiment": "pp-timing", "attributes": {"": 1}}, "attributes"),
    ],
)
def test_values_the_schema_excludes_are_400(storefront, body, field):
    """A number is not a string (the schema says so), and attribute names are 1–100 characters
    (`propertyNames` in the schema)."""
    running_experiment("pp-timing")
    response = storefront.post(URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()
