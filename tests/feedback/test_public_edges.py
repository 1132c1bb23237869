"""Public feedback endpoints at the edges: CORS, throttling, and the hosted page."""

import time

import pytest
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from feedback.services import survey_for_offer
from tests.feedback.conftest import make_offer

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example"


@pytest.fixture
def token(survey, offer) -> str:
    return survey_for_offer(offer=offer)["token"]


@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = [SHOP]


def test_configured_storefront_origin_gets_cors_headers_without_credentials(anon, cors, token):
    res = anon.get(f"/api/v1/feedback/surveys/{token}", HTTP_ORIGIN=SHOP)
    assert res.status_code == 200
    assert res["Access-Control-Allow-Origin"] == SHOP
    assert "Access-Control-Allow-Credentials" not in res

    preflight = anon.options(
        "/api/v1/feedback/responses",
        HTTP_ORIGIN=SHOP,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == SHOP
    assert "content-type" in preflight["Access-Control-Allow-Headers"].lower()


def test_other_origins_get_no_cors_headers(anon, cors, token):
    res = anon.get(f"/api/v1/feedback/surveys/{token}", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in res
    res = anon.post(
        "/api/v1/feedback/responses",
        {"token": token, "answers": {}},
        format="json",
        HTTP_ORIGIN="https://evil.example",
    )
    assert "Access-Control-Allow-Origin" not in res


def test_staff_survey_list_is_not_cors_enabled(staff, cors):
    res = staff.get("/api/v1/feedback/surveys", HTTP_ORIGIN=SHOP)
    assert res.status_code == 200
    assert "Access-Control-Allow-Origin" not in res


def rates(monkeypatch, **scopes):
    """DRF reads the rates once at import; patch them where the throttles look.

    The clock is held 30 s into a minute: the fixed windows cannot roll over mid-test.
    """
    frozen = time.time() // 60 * 60 + 30
    monkeypatch.setattr(SimpleRateThrottle, "timer", lambda self: frozen)
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **scopes}
    )
    cache.clear()


def test_default_rates_come_from_settings():
    assert SimpleRateThrottle.THROTTLE_RATES["survey_token"]
    assert SimpleRateThrottle.THROTTLE_RATES["survey_ip"]


def test_a_token_is_throttled_across_ips(anon, token, monkeypatch):
    rates(monkeypatch, survey_token="3/min")
    codes = [
        anon.get(f"/api/v1/feedback/surveys/{token}", REMOTE_ADDR=f"10.0.0.{i}").status_code
        for i in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]


def test_an_ip_is_throttled_across_tokens(anon, survey, monkeypatch):
    rates(monkeypatch, survey_ip="4/min")
    tokens = [survey_for_offer(offer=make_offer())["token"] for _ in range(6)]
    codes = [
        anon.post(
            "/api/v1/feedback/responses",
            {"token": t, "answers": {"helpful": 4}},
            format="json",
            REMOTE_ADDR="192.0.2.7",
        ).status_code
        for t in tokens
    ]
    assert codes == [200, 200, 200, 200, 429, 429]
    # Another IP is unaffected.
    other = anon.get(f"/api/v1/feedback/surveys/{tokens[5]}", REMOTE_ADDR="192.0.2.8")
    assert other.status_code == 200


def test_hosted_page_renders_the_widget_for_a_valid_token(anon, token):
    res = anon.get(f"/feedback/s/{token}")
    html = res.content.decode()
    assert res.status_code == 200
    assert f'data-token="{token}"' in html
    assert "feedback/widget.js" in html
    assert 'name="viewport"' in html
    assert res["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self'" in res["Content-Security-Policy"]
    assert "no-store" in res["Cache-Control"]


def test_hosted_page_for_a_bad_token_says_so_without_detail(anon, token):
    res = anon.get(f"/feedback/s/{token[:-4]}")
    assert res.status_code == 403
    assert "not valid or has expired" in res.content.decode()
    assert "widget.js" not in res.content.decode()


def test_widget_script_is_served_as_a_static_file(client):
    res = client.get("/static/feedback/widget.js")
    assert res.status_code == 200
    body = b"".join(res.streaming_content) if res.streaming else res.content
    assert b"attachShadow" in body
