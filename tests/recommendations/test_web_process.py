"""The web process as deployed: gunicorn with `config.gunicorn` (sync workers, two per core).

These tests start the command that docker-compose, the Dockerfile and `make serve` run, on the
test database, and send it concurrent storefront traffic over HTTP. Each worker is a process of
its own with its own database connection, so a frequency cap must hold across processes.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from recommendations.models import Offer
from tests.conftest import ROOT, _database_url_for_subprocess
from tests.factories import running_experiment
from tests.hardening.conftest import free_port

pytestmark = pytest.mark.services

WORKERS = 3


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.fixture
def web_process(transactional_db, tmp_path):
    """`gunicorn -c python:config.gunicorn config.wsgi:application` on the test database."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "SECRET_KEY": "test-web-process",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback; TLS ends at the load balancer
        "OFFERLAB_MANIFEST_STATIC": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_CONCURRENCY": str(WORKERS),
    }
    env.pop("CELERY_BROKER_URL", None)  # eager: serving an offer queues nothing here
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    log = tmp_path / "gunicorn.log"
    proc = subprocess.Popen(
        [
            gunicorn,
            *("-c", "python:config.gunicorn", "config.wsgi:application"),
            *("--bind", f"127.0.0.1:{port}"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, _, _ = _request(port, "GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer /healthz:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc, port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


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


def _offers(port: int, key: str, customers: list[str]) -> list[tuple[int, dict]]:
    def one(customer: str):
        status, _, payload = _request(
            port,
            "POST",
            "/api/v1/offers",
            {"customer_id": customer, "trigger": "post_purchase", "context": {"skus": ["tent"]}},
            key,
        )
        return status, json.loads(payload)

    with ThreadPoolExecutor(max_workers=len(customers)) as pool:
        return list(pool.map(one, customers))


def test_the_deployed_web_process_serves_offers_from_every_worker(web_process, api_key, shop):
    proc, port = web_process
    running_experiment("web-process")
    assert len(_children(proc.pid)) == WORKERS

    status, headers, payload = _request(port, "GET", "/healthz")
    assert status == 200 and json.loads(payload)["database"] == "ok"
    # A sync worker answers one request per connection; the load balancer keeps its own.
    assert headers.get("Connection") == "close"

    customers = [f"web-{i}" for i in range(24)]
    results = _offers(port, api_key, customers)
    assert [status for status, _ in results] == [201] * len(customers)
    assert {body["experiment"] for _, body in results} == {"web-process"}
    stored = dict(
        Offer.objects.filter(customer_id__in=customers).values_list("offer_id", "customer_id")
    )
    assert sorted(str(offer_id) for offer_id in stored) == sorted(
        body["offer_id"] for _, body in results
    )
    assert sorted(stored.values()) == sorted(customers)


def test_a_frequency_cap_holds_across_worker_processes(web_process, api_key, shop):
    _, port = web_process
    running_experiment("web-process-cap")
    results = _offers(port, api_key, ["busy-customer"] * 20)
    served = [body for status, body in results if status == 201]
    capped = [body for status, body in results if body.get("reason") == "frequency_capped"]
    assert len(served) == 1
    assert len(capped) == 19
    assert Offer.objects.filter(customer_id="busy-customer").count() == 1
