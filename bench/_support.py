"""Process management shared by bench/load.py and bench/faults.py.

Starts the real processes an operator runs — gunicorn (web), a Celery worker, an optional private
redis-server — with production-style settings (DEBUG off) on free loopback ports, each against a
bench PostgreSQL database of its own, and stops exactly the processes it started (by pid).
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def recreate_database(name: str) -> str:
    """Drop and create database ``name`` (bench databases only); returns its URL."""
    if not name.startswith("offerlab_bench"):
        raise SystemExit(
            f"refusing to recreate {name!r}: bench databases start with offerlab_bench"
        )
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


def checkpoint() -> str | None:
    """Write every dirty buffer out now (``CHECKPOINT``), before a timing starts.

    Loading a bench's data (or an earlier bench's) leaves PostgreSQL a checkpoint to do, which it
    spreads over minutes (``checkpoint_completion_target``), its writes and fsyncs sharing the
    disk with every COMMIT being timed. Returns why not, when it could not (it needs superuser
    or the pg_checkpoint role); the timing goes ahead either way.
    """
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


def checkpoints() -> int | None:
    """Checkpoints the server has started so far (timed and requested), None if unreadable."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        query = (
            "SELECT num_timed + num_requested FROM pg_stat_checkpointer"
            if conn.info.server_version >= 170000
            else "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        )
        try:
            return conn.execute(query).fetchone()[0]
        except psycopg.Error:
            return None


def server_env(
    *, database: str, broker: str, cache: str | None = None, extra: dict | None = None
) -> dict:
    """Production-style settings for a process on loopback (plain HTTP, DEBUG off)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": broker,
        "DEBUG": "0",
        "SECRET_KEY": "bench-not-a-secret-" + "x" * 40,
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "OFFERLAB_MANIFEST_STATIC": "0",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        # One load generator on one IP with one key: lift the per-key / per-IP throttles, which
        # protect against a single abusive client, not against the aggregate this bench sends.
        "OFFERLAB_STOREFRONT_RATE": "10000000/min",
        "OFFERLAB_STOREFRONT_IP_RATE": "10000000/min",
        "OFFERLAB_SURVEY_IP_RATE": "10000000/min",
    }
    if cache:
        env["CACHE_URL"] = cache
    else:
        env.pop("CACHE_URL", None)
    env.update(extra or {})
    return env


def manage(env: dict, *args: str, timeout: float = 300) -> str:
    """Run ``manage.py args`` with ``env``; returns stdout (raises with stderr on failure)."""
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


class Proc:
    """A child process we started, logging to a file; stopped by its own pid only."""

    def __init__(self, name: str, argv: list[str], env: dict, logdir: Path):
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we signal the group we created
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        """What this process wrote (a restarted one may share the file with its predecessor)."""
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, "rb") as f:
            f.seek(self._start)
            return f.read().decode(errors="replace")

    def wait_for_log(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return
            if not self.alive():
                break
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready ({needle!r}):\n{self.log_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL, group: bool = True) -> None:
        """Send ``sig`` to this process (and its children, when ``group``)."""
        if not self.alive():
            return
        try:
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(timeout=10)
        else:
            # children of a killed leader may linger in its group: end them too
            self.kill(signal.SIGKILL)
        self._log.close()


# --- CPU accounting (Linux /proc) ------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn master + workers, celery main + pool)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        path = Path(f"/proc/{p}/task/{p}/children")
        try:
            todo += [int(c) for c in path.read_text().split()]
        except OSError:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 where it is gone or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def transactions(database: str) -> tuple[int, int] | None:
    """(committed, rolled back) transactions of ``database`` so far, from pg_stat_database
    (None when it cannot be read). Backends report theirs when a transaction ends, or within
    about a second when busy, so read it after the run's connections have gone idle."""
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s",
                (database,),
            ).fetchone()
    except psycopg.Error:
        return None
    return (int(row[0]), int(row[1])) if row else None


def database_backends(conninfo: str, database: str) -> list[int]:
    """PostgreSQL backend pids connected to ``database``, other than this query's own."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return [r[0] for r in rows]


class Wire:
    """The protocol messages a psycopg connection exchanges while the block runs (libpq's
    trace): ``messages`` is [(direction F/B, message type, the rest of the line)]."""

    def __init__(self, connection: psycopg.Connection):
        self.pgconn = connection.pgconn
        self.messages: list[tuple[str, str, str]] = []

    def __enter__(self) -> Wire:
        self._file = tempfile.TemporaryFile(mode="w+")
        self.pgconn.trace(self._file.fileno())
        self.pgconn.set_trace_flags(
            psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE
        )
        return self

    def __exit__(self, *exc) -> None:
        self.pgconn.untrace()
        self._file.seek(0)
        for line in self._file:
            direction, _, kind, *rest = line.rstrip("\n").split("\t")
            self.messages.append((direction, kind.strip(), " ".join(rest).strip()))
        self._file.close()

    def round_trips(self) -> int:
        """Times the client sent something and then waited for the server's answer."""
        trips, previous = 0, None
        for direction, _, _ in self.messages:
            trips += direction == "B" and previous == "F"
            previous = direction
        return trips


def add_web_arguments(parser, *, prefix: str = "", threads: int = 8) -> None:
    """The gunicorn layout options every bench that starts a web process takes: by default the
    deployed worker class and count (config/gunicorn.py: sync workers, two per core). The
    benches start gunicorn without that module's access log, so as not to time log lines."""
    parser.add_argument(
        f"--{prefix}workers",
        type=int,
        help="gunicorn workers (default: config/gunicorn.py's, two per core)",
    )
    parser.add_argument(
        f"--{prefix}worker-class",
        choices=("sync", "gthread"),
        default="sync",
        help="gunicorn worker class (default sync, as deployed)",
    )
    parser.add_argument(
        f"--{prefix}threads", type=int, default=threads, help="threads per gthread worker"
    )


def web_layout(args, *, prefix: str = "") -> dict:
    """``start_gunicorn``'s layout keywords from the options of ``add_web_arguments``."""
    attr = prefix.replace("-", "_")
    workers = getattr(args, f"{attr}workers")
    worker_class = getattr(args, f"{attr}worker_class")
    if workers is None:
        from config import gunicorn as deployed

        workers = deployed.workers
    threads = getattr(args, f"{attr}threads") if worker_class == "gthread" else 1
    return {"workers": workers, "threads": threads, "worker_class": worker_class}


def describe_web(layout: dict) -> str:
    if layout["worker_class"] == "sync":
        return f"gunicorn {layout['workers']} sync workers"
    return f"gunicorn {layout['workers']} gthread workers × {layout['threads']} threads"


def start_gunicorn(
    env: dict,
    logdir: Path,
    *,
    workers: int,
    threads: int = 1,
    port: int | None = None,
    worker_class: str = "sync",
) -> tuple[Proc, int]:
    port = port or free_port()
    proc = Proc(
        "gunicorn",
        [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--keep-alive",
            "30",
            "--backlog",
            "256",
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
        ],
        env,
        logdir,
    )
    try:
        wait_http(port, "/healthz", timeout=120, proc=proc)
    except BaseException:
        proc.stop()  # never leave a server behind when start-up fails
        raise
    return proc, port


def start_worker(
    env: dict,
    logdir: Path,
    *,
    name: str = "worker",
    concurrency: int = 1,
    pool: str = "prefork",
    queue: str | None = None,
) -> Proc:
    argv = [
        str(BIN / "celery"),
        "-A",
        "config.celery:app",
        "worker",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "--loglevel=INFO",
        f"--hostname={name}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    if queue:
        argv += ["-Q", queue]
    proc = Proc(name, argv, env, logdir)
    try:
        proc.wait_for_log("ready.", timeout=60)
    except BaseException:
        proc.stop()
        raise
    return proc


def start_redis(logdir: Path, port: int | None = None) -> tuple[Proc, int]:
    """A private redis-server on loopback (no persistence), so stopping it disturbs nobody."""
    port = port or free_port()
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = Proc(
        f"redis-{port}",
        [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        os.environ.copy(),
        logdir,
    )
    try:
        proc.wait_for_log("Ready to accept connections", timeout=20)
    except BaseException:
        proc.stop()
        raise
    return proc, port


def wait_http(port: int, path: str, *, timeout: float, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            break
        try:
            status, body = request(port, "GET", path, timeout=30)
            if status == 200:
                return
            last = f"{status} {body}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.3)
    tail = proc.log_text()[-3000:] if proc is not None else ""
    raise RuntimeError(f"http://127.0.0.1:{port}{path} not ready: {last}\n{tail}")


def request(
    port: int,
    method: str,
    path: str,
    body: object | None = None,
    headers: dict | None = None,
    timeout: float = 30,
) -> tuple[int, object]:
    """One request on a fresh connection; returns (status, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=payload, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw) if raw else None
    except ValueError:
        return resp.status, raw.decode(errors="replace")


def logdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"offerlab-{prefix}-"))


# --- seeding through the public API --------------------------------------------------------


CATEGORIES = ["tents", "sleeping", "cooking", "lighting", "clothing", "accessories"]


def seed_credentials(env: dict) -> tuple[str, str]:
    """(storefront API key, staff token) via the management commands an operator uses."""
    key = manage(env, "create_api_key", "bench-storefront").strip().splitlines()[-1]
    user_env = {**env, "DJANGO_SUPERUSER_PASSWORD": "bench-staff-pass-1"}
    manage(
        user_env,
        "createsuperuser",
        "--noinput",
        "--username",
        "bench-staff",
        "--email",
        "bench@example.com",
    )
    out = manage(env, "drf_create_token", "bench-staff")
    token = out.strip().split()[2]  # "Generated token <key> for user bench-staff"
    return key, token


def _ok(status: int, body: object, what: str, expect: tuple[int, ...] = (200, 201)) -> object:
    if status not in expect:
        raise RuntimeError(f"seeding {what}: {status} {body}")
    return body


def seed_catalogue(port: int, api_key: str, staff_token: str, n_products: int = 120) -> list[str]:
    """Products, and approved curated complement relations sku i -> i+1..i+3."""
    sf = {"Authorization": f"Api-Key {api_key}"}
    staff = {"Authorization": f"Token {staff_token}"}
    products = [
        {
            "sku": f"sku-{i:04d}",
            "name": f"Product {i}",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "price": f"{10 + i % 90}.99",
        }
        for i in range(n_products)
    ]
    _ok(*request(port, "POST", "/api/v1/products", {"products": products}, sf), "products")
    skus = [p["sku"] for p in products]
    for i, sku in enumerate(skus):
        for step in (1, 2, 3):
            target = skus[(i + step) % len(skus)]
            body = {"source": sku, "target": target, "kind": "complement"}
            _ok(*request(port, "POST", "/api/v1/relations", body, staff), "relation")
    return skus


def seed_survey(port: int, staff_token: str) -> None:
    body = {
        "key": "bench-after-offer",
        "name": "After the offer",
        "trigger": "offer_shown",
        "sampling_rate": 1.0,
        "cooldown_days": 0,
        "active": True,
        "questions": [
            {"key": "helpful", "type": "rating", "text": "Was this helpful?", "metric": "csat"},
            {
                "key": "pushy",
                "type": "rating",
                "text": "Did it feel pushy?",
                "metric": "intrusiveness",
            },
            {"key": "comment", "type": "text", "text": "Anything else?"},
        ],
    }
    headers = {"Authorization": f"Token {staff_token}"}
    _ok(*request(port, "POST", "/api/v1/feedback/surveys", body, headers), "survey")


def _variant(key: str, control: bool, channel: str, delay: int) -> dict:
    return {
        "key": key,
        "name": key,
        "is_control": control,
        "weight": 1,
        "timing": {"delay_hours": delay, "window_hours": 48},
        "channel": channel,
        "message": {
            "subject": "Goes well with your order",
            "body": "Customers also bought {products}",
            "cta": "Add to basket",
        },
    }


def seed_experiment(
    port: int, staff_token: str, key: str, *, trigger: str, factor: str, layer: str
) -> None:
    """Create and start an experiment with two variants (control + one) on ``factor``."""
    if factor == "timing":
        variants = [_variant("now", True, "email", 0), _variant("later", False, "email", 24)]
    else:
        variants = [_variant("email", True, "email", 0), _variant("web", False, "web", 0)]
    body = {
        "key": key,
        "name": key,
        "hypothesis": "bench",
        "factor": factor,
        "trigger": trigger,
        "strategy": "completion",
        "traffic_percent": 100,
        "layer": layer,
        "primary_metric": "acceptance_rate",
        "guardrail_metrics": ["return_rate", "cart_abandonment_rate"],
        "baseline_rate": 0.10,
        "mde": 0.02,
        "min_days": 14,
        "variants": variants,
    }
    headers = {"Authorization": f"Token {staff_token}"}
    _ok(*request(port, "POST", "/api/v1/experiments", body, headers), f"experiment {key}")
    _ok(
        *request(port, "POST", f"/api/v1/experiments/{key}/start", None, headers),
        f"start {key}",
    )
