"""OpenAPI 3 at /api/schema/ renders, validates without warnings; Swagger UI at /api/docs/."""

import io

import pytest
import yaml
from django.core.management import call_command

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
