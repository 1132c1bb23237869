"""/healthz: the database's and the broker's state; 503 when the database is down."""

import time
from unittest import mock

import pytest
from django.db import OperationalError

from config import health

pytestmark = pytest.mark.django_db


def test_healthy_in_eager_mode_reports_the_broker_as_eager(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "eager"}
    assert "no-cache" in response["Cache-Control"]


def test_database_down_is_503(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with mock.patch.object(
        health.connection, "cursor", side_effect=OperationalError("connection refused")
    ):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == "down: OperationalError"
    assert body["broker"] == "eager"


def test_broker_down_is_reported_but_the_web_process_stays_in_rotation(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with mock.patch(
        "config.celery.app.connection_for_write", side_effect=ConnectionError("refused")
    ):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["broker"] == "down: ConnectionError"
    assert response.json()["database"] == "ok"


def test_unreachable_broker_is_reported_without_a_slow_retry(client, settings):
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    real = app.connection_for_write

    def unreachable(**kwargs):
        return real(url="redis://127.0.0.1:1/0", **kwargs)  # nothing listens on port 1

    with mock.patch.object(app, "connection_for_write", unreachable):
        started = time.monotonic()
        response = client.get("/healthz")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["broker"].startswith("down: ")
    # A load balancer's check times out after a few seconds; retrying used to take 2.9 s.
    assert elapsed < 1.5


def test_real_broker_is_reported_ok(client, settings):
    if not settings.CELERY_BROKER_URL:
        from tests.conftest import require_services

        require_services("a real broker needs CELERY_BROKER_URL")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert client.get("/healthz").json()["broker"] == "ok"


def test_only_get_is_allowed(client):
    assert client.post("/healthz").status_code == 405


def test_healthz_answers_plain_http_when_ssl_redirect_is_on(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/experiments").status_code == 301
