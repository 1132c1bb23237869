"""Malformed JSON bodies are 400s on every endpoint, never 500s."""

import pytest

pytestmark = pytest.mark.django_db

BODIES = [
    "[" * 100_000 + "]" * 100_000,  # deeper than Python's recursion limit
    '{"customer_id": NaN, "experiment": "x"}',
    '{"customer_id": Infinity}',
    "\xff\xfe not utf-8",
    '{"unterminated": ',
]


@pytest.mark.parametrize("body", BODIES, ids=["deep", "nan", "infinity", "encoding", "truncated"])
@pytest.mark.parametrize("path", ["/api/v1/assignments", "/api/v1/offers", "/api/v1/products"])
def test_storefront_endpoints_answer_400_to_malformed_json(storefront, path, body):
    data = body.encode("latin-1") if body.startswith("\xff") else body.encode()
    response = storefront.generic("POST", path, data, content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize("body", BODIES[:2], ids=["deep", "nan"])
def test_staff_and_public_endpoints_answer_400_to_malformed_json(staff, anon, body):
    response = staff.generic("POST", "/api/v1/experiments", body, content_type="application/json")
    assert response.status_code == 400
    response = anon.generic(
        "POST", "/api/v1/feedback/responses", body, content_type="application/json"
    )
    assert response.status_code == 400
