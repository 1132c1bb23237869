"""The web process as deployed: gunicorn with `config.gunicorn` (sync workers, two per core).

These tests start the command that docker-compose, the Dockerfile and `make serve` run, on the
test database, wait until every worker has booted and opened its database connection, and then
send concurrent storefront traffic over HTTP. Each worker is a process of its own with its own
connection and its own in-process caches, so a frequency cap must hold across processes.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from recommendations.models import Offer
from tests.conftest import ROOT, _database_url_for_subprocess, require_services
from tests.factories import running_experiment

pytestmark = pytest.mark.services

WORKERS = 3
APPLICATION_NAME = "offerlab-web-process-test"  # how its connections are told apart


def _request(port: int, method: str, path: str, body=None, key: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Api-Key {key}"
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, dict(response.getheaders()), payload
    finally:
        conn.close()


def _burst(port: int, calls: list[tuple[str, str, dict | None, str | None]]) -> list:
    """All ``calls`` (method, path, body, api key) sent at the same moment, one thread each."""
    barrier = threading.Barrier(len(calls))

    def one(call):
        barrier.wait(timeout=30)
        return _request(port, *call)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def _server_backends() -> int:
    """The web workers' sessions on the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s",
            [APPLICATION_NAME],
        )
        return cursor.fetchone()[0]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:  # it died on its own (start-up failed): nothing to stop
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def web_process(transactional_db, tmp_path):
    """`gunicorn -c python:config.gunicorn config.wsgi:application` on the test database, every
    worker booted and connected; yields the port."""
    if connection.vendor != "postgresql":
        require_services("the web process test needs PostgreSQL (set DATABASE_URL)")
    env = {
        **os.environ,
        "DATABASE_URL": f"{_database_url_for_subprocess()}?application_name={APPLICATION_NAME}",
        "CELERY_BROKER_URL": "",  # eager (and not refilled from a developer's .env)
        "SECRET_KEY": "test-web-process",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback; TLS ends at the load balancer
        "OFFERLAB_MANIFEST_STATIC": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_CONCURRENCY": str(WORKERS),
    }
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    log = tmp_path / "gunicorn.log"
    # The listening socket is made here and handed over, so no other process can take the port
    # between choosing it and binding it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    with listener, log.open("wb") as out:
        proc = subprocess.Popen(
            [
                gunicorn,
                *("-c", "python:config.gunicorn", "config.wsgi:application"),
                *("--bind", f"fd://{listener.fileno()}"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
            start_new_session=True,
        )
    try:
        # /healthz answers as soon as one worker has booted; send it concurrently until every
        # worker has answered one (each opens its database connection on its first request).
        deadline = time.monotonic() + 120
        while _server_backends() < WORKERS:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn's workers did not all start:\n{log.read_text()[-3000:]}")
            try:
                _burst(port, [("GET", "/healthz", None, None)] * (2 * WORKERS))
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        _stop(proc)


def _offer_calls(api_key: str, customers: list[str]) -> list:
    return [
        (
            "POST",
            "/api/v1/offers",
            {"customer_id": c, "trigger": "post_purchase", "context": {"skus": ["tent"]}},
            api_key,
        )
        for c in customers
    ]


def test_the_deployed_web_process_serves_concurrent_offers(web_process, api_key, shop):
    port = web_process
    running_experiment("web-process")
    status, headers, payload = _request(port, "GET", "/healthz")
    assert status == 200 and json.loads(payload)["database"] == "ok"
    # A sync worker answers one request per connection; the load balancer keeps its own.
    assert headers.get("Connection") == "close"

    customers = [f"web-{i}" for i in range(24)]
    results = [(s, json.loads(p)) for s, _, p in _burst(port, _offer_calls(api_key, customers))]
    assert [status for status, _ in results] == [201] * len(customers)
    assert {body["experiment"] for _, body in results} == {"web-process"}
    stored = dict(
        Offer.objects.filter(customer_id__in=customers).values_list("offer_id", "customer_id")
    )
    assert sorted(str(offer_id) for offer_id in stored) == sorted(
        body["offer_id"] for _, body in results
    )
    assert sorted(stored.values()) == sorted(customers)
    assert _server_backends() == WORKERS  # one connection per worker, none leaked


def test_a_frequency_cap_holds_across_worker_processes(web_process, api_key, shop):
    port = web_process
    running_experiment("web-process-cap")
    results = [
        (s, json.loads(p))
        for s, _, p in _burst(port, _offer_calls(api_key, ["busy-customer"] * 20))
    ]
    served = [body for status, body in results if status == 201]
    capped = [body for status, body in results if body.get("reason") == "frequency_capped"]
    assert len(served) == 1
    assert len(capped) == 19
    assert Offer.objects.filter(customer_id="busy-customer").count() == 1
