"""OpenAPI 3 at /api/schema/ validates, without warnings, and states what the server refuses;
Swagger UI at /api/docs/.
"""

import copy
import io
import json

import jsonschema_rs
import pytest
import yaml
from django.core.management import call_command

from config.schema import NOT_BLANK_PATTERN
from experiments.models import Experiment
from tests.experiments.test_experiments_api import DESIGN_BODY

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    # --validate checks it against the OpenAPI 3 JSON schema; --fail-on-warn makes any
    # generator warning (e.g. two components with one name overwriting each other) an error.
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(out),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/assignments" in schema["paths"]
    assert "/api/v1/experiments/{key}" in schema["paths"]


def test_schema_endpoint_serves_the_public_paths_for_staff(staff):
    response = staff.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path, method in [
        ("/api/v1/assignments", "post"),
        ("/api/v1/experiments", "post"),
        ("/api/v1/experiments", "get"),
        ("/api/v1/experiments/{key}", "patch"),
        ("/api/v1/experiments/{key}/start", "post"),
        ("/api/v1/experiments/{key}/pause", "post"),
        ("/api/v1/experiments/{key}/stop", "post"),
    ]:
        assert method in paths[path], (path, method)
    components = schema["components"]["schemas"]
    assignment = paths["/api/v1/assignments"]["post"]
    request_ref = assignment["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = components[request_ref.rsplit("/", 1)[1]]
    assert set(request["required"]) == {"customer_id", "experiment"}
    assert request["properties"]["customer_id"]["maxLength"] == 255
    response_ref = assignment["responses"]["200"]["content"]["application/json"]["schema"]
    output = components[response_ref["$ref"].rsplit("/", 1)[1]]
    assert {"experiment", "variant", "in_experiment", "offer_config"} <= set(output["properties"])


def test_assignment_endpoint_documents_api_key_auth(staff):
    schema = staff.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    security = schema["paths"]["/api/v1/assignments"]["post"]["security"]
    schemes = schema["components"]["securitySchemes"]
    names = {name for requirement in security for name in requirement}
    assert any(schemes[n]["type"] == "apiKey" for n in names)


def test_swagger_ui_renders(staff):
    response = staff.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def _component(schema, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _request_schema(schema, path: str, method: str = "post") -> dict:
    body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]
    return _component(schema, body["schema"]["$ref"])


def test_schema_states_what_the_validation_refuses(staff):
    """OpenAPI 3.1 (JSON Schema 2020-12), so attribute names can be constrained too."""
    schema = staff.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["openapi"] == "3.1.0"
    events = _request_schema(schema, "/api/v1/events")["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, 1000)
    variants = _request_schema(schema, "/api/v1/experiments")["properties"]["variants"]
    assert (variants["minItems"], variants["maxItems"]) == (2, 20)
    attributes = _request_schema(schema, "/api/v1/assignments")["properties"]["attributes"]
    names = attributes["propertyNames"]
    assert (names["minLength"], names["maxLength"]) == (1, 100)
    assert "\\u0000" in names["pattern"]
    # Every string DRF checks for NUL says so; a trimmed one that may not be blank says that too.
    source = _request_schema(schema, "/api/v1/relations")["properties"]["source"]
    assert source["pattern"] == NOT_BLANK_PATTERN
    hypothesis = _request_schema(schema, "/api/v1/experiments")["properties"]["hypothesis"]
    assert hypothesis["pattern"] == "^[^\\u0000]*$"
    answers = _request_schema(schema, "/api/v1/feedback/responses")["properties"]["answers"]
    assert answers["type"] == "object"
    question = _component(
        schema,
        _request_schema(schema, "/api/v1/feedback/surveys")["properties"]["questions"]["items"][
            "$ref"
        ],
    )
    metric_refs = [option["$ref"] for option in question["properties"]["metric"]["oneOf"]]
    assert _component(schema, metric_refs[0])["enum"] == ["csat", "intrusiveness"]


def test_schema_documents_conflicts_and_the_auth_failure_lockout(staff):
    schema = staff.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert "409" in paths["/api/v1/experiments"]["post"]["responses"]
    assert "409" in paths["/api/v1/feedback/surveys"]["post"]["responses"]
    # Staff endpoints have no rate throttle but lock out an address that fails the token often.
    staff_list = paths["/api/v1/experiments"]["get"]["responses"]["429"]
    assert "Retry-After" in staff_list["headers"]
    assert "failed authentications" in staff_list["description"]
    assert "429" in paths["/api/v1/assignments"]["post"]["responses"]


def _schema(staff) -> dict:
    return staff.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def _validator(schema, name: str):
    """jsonschema-rs (what Schemathesis validates with) on one component of the served schema."""
    root = {"$ref": f"#/components/schemas/{name}", "components": schema["components"]}
    return jsonschema_rs.Draft202012Validator(root)


def _patterns(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


def test_every_pattern_in_the_schema_is_a_regex_to_jsonschema_rs(staff):
    # One it cannot compile made Schemathesis generate NUL in attributes as valid data.
    patterns = set(_patterns(_schema(staff)))
    assert len(patterns) > 3
    for pattern in patterns:
        jsonschema_rs.validator_for({"type": "string", "pattern": pattern})


def _create(staff, **changes):
    body = {**copy.deepcopy(DESIGN_BODY), **changes}
    response = staff.post("/api/v1/experiments", json.dumps(body), content_type="application/json")
    Experiment.objects.filter(key=body["key"]).delete()
    return response


@pytest.mark.parametrize(
    ("rule", "valid"),
    [
        ({"attribute": "tier", "op": "in", "value": ["gold"]}, True),
        ({"attribute": "tier", "op": "not_in", "value": "gold"}, False),
        ({"attribute": "orders", "op": "gte", "value": 3}, True),
        ({"attribute": "orders", "op": "lte", "value": "3"}, False),
        ({"attribute": "orders", "op": "gte", "value": True}, False),
        ({"attribute": "tier", "op": "eq", "value": None}, True),
        ({"attribute": "tier", "op": "ne", "value": {"a": ["x", None, 1.5]}}, True),
        ({"attribute": "tier", "op": "eq", "value": "a\x00b"}, False),
        ({"attribute": "tier", "op": "eq", "value": [{"k\x00": 1}]}, False),
        ({"attribute": "\u001c\r", "op": "eq", "value": "x"}, False),
    ],
)
def test_targeting_rule_schema_says_what_the_server_accepts(staff, rule, valid):
    assert _validator(_schema(staff), "TargetingRuleRequest").is_valid(rule) is valid
    response = _create(staff, targeting=[rule])
    assert response.status_code == (201 if valid else 400), response.json()


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("Try {products}", True),
        ("{count} picks for {product}", True),
        ("", True),
        ("} or {", True),
        ("{{products}", True),
        ("{name}", False),
        ("{ products}", False),
        ("{products}{}", False),
        ("a\x00", False),
    ],
)
def test_message_text_schema_says_what_the_server_accepts(staff, text, valid):
    assert _validator(_schema(staff), "MessageRequest").is_valid({"body": text}) is valid
    variants = copy.deepcopy(DESIGN_BODY["variants"])
    for variant in variants:
        variant["message"] = {"body": text}
    response = _create(staff, variants=variants)
    assert response.status_code == (201 if valid else 400), response.json()


def test_variants_schema_asks_for_exactly_one_control(staff):
    validator = _validator(_schema(staff), "ExperimentInputRequest")
    for controls, valid in [((True, False), True), ((False, False), False), ((True, True), False)]:
        body = copy.deepcopy(DESIGN_BODY)
        for variant, is_control in zip(body["variants"], controls, strict=True):
            variant["is_control"] = is_control
        assert validator.is_valid(body) is valid, controls
