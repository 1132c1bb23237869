"""Real processes for the fault tests: Celery workers on a queue of their own, a private Redis."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from tests.conftest import ROOT, require_services


def conninfo() -> str:
    db = connection.settings_dict
    return (
        f"postgresql://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:"
        f"{db.get('PORT') or 5432}/{db['NAME']}"
    )


class Worker:
    """`celery worker --pool=prefork` on a queue of its own, logging to a file."""

    def __init__(self, queue: str, log: Path, broker_url: str, concurrency: int = 1):
        self.log = log
        env = {
            **os.environ,
            "DATABASE_URL": conninfo().replace("postgresql://", "postgres://", 1),
            "CELERY_BROKER_URL": broker_url,
            "SECRET_KEY": "test-worker",
            "DEBUG": "1",
        }
        celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
        argv = [celery, "-A", "config.celery:app", "worker", "--pool=prefork"]
        argv += [f"--concurrency={concurrency}"]
        argv += ["--loglevel=INFO", "-Q", queue, "--without-gossip", "--without-mingle"]
        argv += ["--hostname", f"{queue}-{time.monotonic_ns()}@%h"]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_log("ready.", 60)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"worker log never said {needle!r}:\n{self.text()[-3000:]}")

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def worker_queue(tmp_path):
    if connection.vendor != "postgresql":
        require_services("a real Celery worker needs PostgreSQL (set DATABASE_URL)")
    if not settings.CELERY_BROKER_URL:
        require_services("a real Celery worker needs a broker (set CELERY_BROKER_URL)")
    queue = f"faults-{os.getpid()}-{time.monotonic_ns()}"
    previous = celery_app.conf.task_default_queue, celery_app.conf.task_always_eager
    celery_app.conf.task_default_queue = queue
    celery_app.conf.task_always_eager = False
    started: list[Worker] = []

    def start(broker_url: str | None = None, concurrency: int = 1) -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = Worker(queue, log, broker_url or settings.CELERY_BROKER_URL, concurrency)
        started.append(worker)
        return worker

    yield start
    celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = previous
    for worker in started:
        worker.stop()


class RedisServer:
    """A private redis-server on a free loopback port: stopping it disturbs nobody else."""

    def __init__(self, port: int, log: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            require_services("redis-server is not installed")
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no"]
        self.argv, self.log = argv, log
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if "Ready to accept connections" in self.log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        pytest.fail(f"redis-server did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def point_celery_at(url: str) -> None:
    """Make this process publish to ``url`` (drops the pooled broker connections)."""
    celery_app.conf.broker_url = url
    celery_app.conf.broker_write_url = url
    celery_app.conf.broker_read_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of our own; this process's Celery app publishes to it meanwhile."""
    server = RedisServer(free_port(), tmp_path / "redis.log")
    previous = celery_app.conf.broker_url
    point_celery_at(server.url)
    yield server
    point_celery_at(previous)
    server.stop()
