"""Storefront API keys: required, hashed at rest, created by command or admin, revocable."""

import hashlib
import io
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from experiments import apikeys
from tests.conftest import require_services
from tests.factories import running_experiment

pytestmark = pytest.mark.django_db

URL = "/api/v1/assignments"
BODY = {"customer_id": "c-1", "experiment": "pp-timing"}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _experiment():
    running_experiment("pp-timing")


def _call(authorization: str | None):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.post(URL, BODY, format="json")


def test_a_valid_key_is_accepted(api_key):
    assert _call(f"Api-Key {api_key}").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Api-Key",
        "Api-Key ",
        "Api-Key not-a-key",
        "Api-Key abcdefgh.wrongsecretwrongsecretwrongsec",
        "Bearer abc",
        "api-key abc",
        "Api-Key " + "x" * 5000,
        "Api-Key abc\x00def",
        "Api-Key ÿÿÿÿÿÿÿÿ.ÿÿÿ",
    ],
)
def test_missing_or_wrong_key_is_401(authorization):
    response = _call(authorization)
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Api-Key"


def test_a_key_with_a_wrong_secret_but_a_real_prefix_is_401(api_key):
    prefix = api_key.split(".")[0]
    assert _call(f"Api-Key {prefix}.{'z' * 32}").status_code == 401


def test_staff_token_is_not_a_storefront_key(staff):
    response = staff.post(URL, BODY, format="json")
    assert response.status_code == 401


def test_key_is_hashed_at_rest(api_key):
    stored = APIKey.objects.get()
    secret = api_key.split(".", 1)[1]
    for column in (stored.id, stored.hashed_key, stored.prefix, stored.name):
        assert secret not in column
    assert stored.hashed_key == "sha512$$" + hashlib.sha512(api_key.encode()).hexdigest()


def test_revoked_key_is_refused_at_once_through_the_cache_clearing_signal(api_key):
    assert _call(f"Api-Key {api_key}").status_code == 200  # now cached in-process
    stored = APIKey.objects.get()
    stored.revoked = True
    stored.save()  # what the admin's "Revoked" checkbox does
    assert _call(f"Api-Key {api_key}").status_code == 401


def test_a_revocation_the_cache_missed_takes_effect_when_the_entry_expires(api_key):
    # Another process revoked the key: this process's cache did not hear about it.
    assert _call(f"Api-Key {api_key}").status_code == 200
    APIKey.objects.update(revoked=True)  # no signal
    now = apikeys.time.monotonic()
    with mock.patch.object(apikeys.time, "monotonic", return_value=now + 1):
        assert _call(f"Api-Key {api_key}").status_code == 200
    with mock.patch.object(apikeys.time, "monotonic", return_value=now + 5.5):
        assert _call(f"Api-Key {api_key}").status_code == 401


def test_deleted_key_is_refused(api_key):
    assert _call(f"Api-Key {api_key}").status_code == 200
    APIKey.objects.get().delete()
    assert _call(f"Api-Key {api_key}").status_code == 401


def test_expired_key_is_refused():
    _, key = APIKey.objects.create_key(
        name="old-shop", expiry_date=timezone.now() - timedelta(minutes=1)
    )
    assert _call(f"Api-Key {key}").status_code == 401


def test_key_expiring_while_cached_is_refused_after_its_expiry(api_key):
    stored = APIKey.objects.get()
    stored.expiry_date = timezone.now() + timedelta(seconds=2)
    stored.save()
    assert _call(f"Api-Key {api_key}").status_code == 200
    later = timezone.now() + timedelta(seconds=3)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert _call(f"Api-Key {api_key}").status_code == 401


def test_the_client_knows_which_key_called(api_key):
    client = apikeys.client_for_key(api_key)
    stored = APIKey.objects.get()
    assert client.api_key_id == stored.id
    assert client.name == "test-storefront"
    assert client.is_authenticated and not client.is_staff


def test_create_api_key_prints_the_key_alone_on_its_last_line():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "web-shop", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    key = lines[-1]
    assert key == key.strip() and " " not in key and len(key) > 30
    assert key not in err.getvalue()
    assert "web-shop" in err.getvalue()
    stored = APIKey.objects.get()
    assert stored.name == "web-shop"
    assert key.startswith(stored.prefix + ".")
    assert _call(f"Api-Key {key}").status_code == 200


@pytest.mark.parametrize("name", ["", "   ", "x" * 51])
def test_create_api_key_refuses_a_bad_name(name):
    with pytest.raises(CommandError, match="name"):
        call_command("create_api_key", name, stdout=io.StringIO(), stderr=io.StringIO())
    assert not APIKey.objects.exists()


def test_admin_creates_a_key_and_shows_it_once(client, staff_user):
    client.force_login(staff_user)
    response = client.post(
        "/admin/rest_framework_api_key/apikey/add/", {"name": "email-sender"}, follow=True
    )
    stored = APIKey.objects.get(name="email-sender")
    shown = [str(m) for m in response.context["messages"]]
    key = next(m for m in shown if stored.prefix in m).split(": ")[1].split(". ")[0]
    assert _call(f"Api-Key {key}").status_code == 200


def test_admin_revocation_stops_the_key(client, staff_user, api_key):
    assert _call(f"Api-Key {api_key}").status_code == 200
    stored = APIKey.objects.get()
    client.force_login(staff_user)
    response = client.post(
        f"/admin/rest_framework_api_key/apikey/{stored.pk}/change/",
        {"name": stored.name, "revoked": "on", "expiry_date_0": "", "expiry_date_1": ""},
    )
    assert response.status_code == 302
    assert APIKey.objects.get().revoked
    assert _call(f"Api-Key {api_key}").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_key_cached_by_a_request_during_the_revoking_transaction_is_dropped_on_commit(api_key):
    if connection.vendor != "postgresql":
        require_services("a concurrent reader during a write needs PostgreSQL (set DATABASE_URL)")
    seen = []

    def concurrent_request() -> None:
        seen.append(apikeys.client_for_key(api_key))  # reads the committed, unrevoked row
        connections.close_all()

    with transaction.atomic():
        stored = APIKey.objects.get()
        stored.revoked = True
        stored.save()
        reader = threading.Thread(target=concurrent_request)
        reader.start()
        reader.join(timeout=30)
    assert seen and seen[0] is not None  # the request in between still passed, and was cached
    assert apikeys.client_for_key(api_key) is None
