"""Staff endpoints refuse anonymous callers, non-staff users and storefront keys (401/403)."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.experiments.test_experiments_api import body
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/v1/experiments"),
    ("post", "/api/v1/experiments"),
    ("get", "/api/v1/experiments/pp-timing"),
    ("patch", "/api/v1/experiments/pp-timing"),
    ("post", "/api/v1/experiments/pp-timing/start"),
    ("post", "/api/v1/experiments/pp-timing/pause"),
    ("post", "/api/v1/experiments/pp-timing/stop"),
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _experiment():
    running_experiment("pp-timing")


def _call(client, method, url):
    payload = body(key="new-one") if method == "post" and url.endswith("experiments") else {}
    if method == "patch":
        payload = {"traffic_percent": 1}
    return getattr(client, method)(url, payload, format="json")


def _unchanged():
    from experiments.models import Experiment

    experiment = Experiment.objects.get(key="pp-timing")
    return (
        Experiment.objects.count() == 1
        and experiment.status == "running"
        and experiment.traffic_percent == 100
    )


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_anonymous_caller_is_refused(method, url):
    response = _call(APIClient(), method, url)
    assert response.status_code in (401, 403)
    assert _unchanged()


@pytest.fixture
def non_staff(django_user_model):
    user = django_user_model.objects.create_user(username="shopper", password="pw-123456789")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_non_staff_user_is_403(non_staff, method, url):
    response = _call(non_staff, method, url)
    assert response.status_code == 403
    assert _unchanged()


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_storefront_key_is_not_staff(storefront, method, url):
    response = _call(storefront, method, url)
    assert response.status_code in (401, 403)
    assert _unchanged()


def test_wrong_token_is_refused_and_says_so():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/experiments")
    assert response.status_code in (401, 403)
    assert "token" in response.json()["detail"].lower()


def test_non_staff_session_is_403(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="u", password="p"))
    assert client.get("/api/v1/experiments").status_code == 403


def test_staff_session_reads_and_needs_csrf_to_write(staff_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.get("/api/v1/experiments").status_code == 200
    assert client.post("/api/v1/experiments/pp-timing/pause").status_code == 403
    assert _unchanged()


def test_staff_token_works(staff):
    assert staff.get("/api/v1/experiments/pp-timing").status_code == 200
