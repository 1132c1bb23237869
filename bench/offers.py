"""Offer serving: POST /api/v1/offers on gunicorn + PostgreSQL vs a bare DRF endpoint.

    .venv/bin/python bench/offers.py [--duration 10] [--connections 16]
    .venv/bin/python bench/offers.py --profile 300   # in-process: where one offer's time goes

Needs PostgreSQL (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres, is used to
drop and create the database `offerlab_bench_offers`). Seeds a catalogue (products, approved
complement / upgrade / ecosystem relations), order history for some customers, a running timing
experiment on post_purchase (80 % traffic, targeted by country) and an active survey sampled at 20
% (--survey-rate). Then starts gunicorn with the deployed worker layout (DEBUG off; sync workers,
two per core, as config/gunicorn.py has it; --worker-class gthread --workers 2 --threads 8 for the
earlier layout) with a bench-only urlconf (bench/offers_urls.py) that adds `POST /bench/bare` —
API-key auth, JSON in and out, nothing else — and drives both endpoints with the same number of
client connections (kept alive where the server keeps them; a sync worker closes each) for the same
time, alternating in short rounds (--rounds) so that a change in the shared host's speed reaches
both alike: offers for distinct customers (so every request takes the full path: assignment,
exclusions, caps, offer row, survey) with 1–3 skus in the context, a recent `occurred_at` and
customer attributes. Prints requests/s, p50/p99 latency, the throughput ratio per round and over
all rounds, the CPU per request of gunicorn, of the database's PostgreSQL backends and of the load
generator (from /proc, which depends far less on the host's load than wall time), how the gunicorn
workers shared the CPU in each round, and the SQL statements and round trips per offer read
in-process on the wire (libpq's trace). The seed's writes are flushed by a CHECKPOINT before the
timing, and the checkpoints during it are counted: one spreads its writes and fsyncs over minutes,
beside the COMMITs being timed. It also prints the transactions the database committed and rolled
back while the server ran (pg_stat_database): a refused offer commits its undo, so none should roll
back. With --repeat F a share F of the offer requests goes to a customer the same connection has
already served (frequency-capped: a 200 with the reason), as a storefront's returning customers do.

With --profile N it starts no server: it serves N offers in-process through the whole stack
(middleware, DRF, the service) on the same seeded database, one at a time, and prints the wall
time per offer split into database waits (statements and COMMIT, timed around each call) and
the rest (Python CPU), then cProfile's top functions; BENCH_CALLERS=REGEX or BENCH_CALLEES=REGEX
also print who calls, or what is called by, the functions matching REGEX.

Run by hand, not in CI. The machine is shared (other engineers run tests), and the load
generator shares its CPUs with the server: compare the ratio, measured in the same run.
"""

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as support

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
DB_NAME = "offerlab_bench_offers"
CATEGORIES = support.CATEGORIES


def customer_id(i: int) -> str:
    """Distinct, well-spread customer ids, like a storefront's opaque ids."""
    return "cust-" + hashlib.blake2b(str(i).encode(), digest_size=8).hexdigest()


def _env(database_url: str) -> dict:
    # Eager Celery (no broker): serving an offer queues no job. "testserver": in-process clients.
    return support.server_env(
        database=database_url,
        broker="",
        extra={"ALLOWED_HOSTS": "127.0.0.1,localhost,testserver"},
    )


def _seed(n_products: int, history_customers: int, survey_rate: float) -> tuple[str, list[str]]:
    """Catalogue, relations, order history, experiment, survey; returns (api key, skus)."""
    import uuid

    from django.utils import timezone
    from rest_framework_api_key.models import APIKey

    from experiments import services as experiment_services
    from experiments.models import EventItem, OutcomeEvent
    from feedback.models import Question, Survey
    from recommendations.models import Product, ProductRelation, RelationKind

    rng = random.Random(7)
    rows = [
        {
            "sku": f"sku-{i:05d}",
            "name": f"Product {i} {{outdoor}}",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "price": f"{5 + i % 200}.99",
        }
        for i in range(n_products)
    ]
    from recommendations.services import products_upsert

    for start in range(0, len(rows), 1000):
        products_upsert(rows=rows[start : start + 1000])
    ids = dict(Product.objects.values_list("sku", "id"))
    skus = sorted(ids)
    relations = []
    for i, sku in enumerate(skus):
        for step, kind in (
            (1, "complement"),
            (2, "complement"),
            (3, "complement"),
            (4, "upgrade"),
            (5, "ecosystem"),
            (6, "complement"),
        ):
            target = skus[(i + step * 7) % len(skus)]
            relations.append(
                ProductRelation(
                    source_id=ids[sku],
                    target_id=ids[target],
                    kind=RelationKind(kind),
                    origin="curated" if step < 6 else "mined",
                    status="approved" if step < 6 else "pending",
                    score=rng.random(),
                    pinned=step == 1 and i % 10 == 0,
                )
            )
    ProductRelation.objects.bulk_create(relations, batch_size=5000)
    now = timezone.now()
    events, items = [], []
    for n in range(history_customers):
        at = now - timedelta(days=rng.uniform(1, 60))
        event = OutcomeEvent(
            event_id=uuid.uuid4(),
            type="order_placed",
            customer_id=customer_id(n * 3),
            occurred_at=at,
            order_id=f"o-{n}",
        )
        events.append(event)
    OutcomeEvent.objects.bulk_create(events, batch_size=5000)
    for event in events:
        for sku in rng.sample(skus, 2):
            items.append(
                EventItem(
                    event=event,
                    type="order_placed",
                    customer_id=event.customer_id,
                    occurred_at=event.occurred_at,
                    sku=sku,
                    category="x",
                )
            )
    EventItem.objects.bulk_create(items, batch_size=5000)
    message = {"subject": "For your {product}", "body": "Also try {products}", "cta": "Shop"}
    experiment = experiment_services.experiment_create(
        key="bench-pp-timing",
        name="Bench post-purchase timing",
        factor="timing",
        trigger="post_purchase",
        strategy="completion",
        traffic_percent=80,
        targeting=[{"attribute": "country", "op": "in", "value": ["DE", "FR", "NL"]}],
        variants=[
            {
                "key": "now",
                "is_control": True,
                "channel": "email",
                "message": message,
                "timing": {"delay_hours": 0, "window_hours": 48},
            },
            {
                "key": "later",
                "channel": "email",
                "message": message,
                "timing": {"delay_hours": 24, "window_hours": 48},
            },
        ],
    )
    experiment_services.experiment_transition(experiment=experiment, action="start")
    if survey_rate >= 0:
        survey = Survey.objects.create(
            key="bench-helpful", name="Helpful?", sampling_rate=survey_rate, cooldown_days=30
        )
        Question.objects.create(survey=survey, key="helpful", type="rating", text="Helpful?")
    _, key = APIKey.objects.create_key(name="bench-offers")
    return key, skus


def offer_body(i: int, skus: list[str], rng: random.Random) -> dict:
    moment = datetime.now(UTC) - timedelta(minutes=rng.uniform(1, 120))
    return {
        "customer_id": customer_id(i),
        "trigger": "post_purchase",
        "context": {
            "skus": rng.sample(skus, rng.randint(1, 3)),
            "order_id": f"web-{i}",
            "occurred_at": moment.isoformat(),
        },
        "attributes": {
            "country": rng.choice(["DE", "FR", "NL", "BE"]),
            "segment": rng.choice(["new", "returning", "vip"]),
            "loyalty_tier": rng.choice(["bronze", "silver", "gold"]),
        },
    }


def _client_process(args) -> dict:
    """One load-generator process: `threads` keep-alive connections until the deadline.

    With `interval` (seconds) each connection sends on a fixed schedule from a random phase and
    each latency counts from the scheduled send (open loop, no coordinated omission); without,
    the next request leaves when the answer is in (closed loop, the server at saturation).
    """
    port, path, api_key, skus, first_id, threads, deadline, seed, interval, repeat = args
    rng_lock = threading.Lock()
    counter = iter(range(first_id, first_id + 10_000_000))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    reasons: dict[str, int] = {}
    lock = threading.Lock()

    def run(thread_seed: int) -> None:
        rng = random.Random(thread_seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json", "Authorization": f"Api-Key {api_key}"}
        local, local_status, local_reasons = [], {}, {}
        next_send = time.perf_counter() + (interval or 0) * rng.random()
        sent: list[int] = []
        while time.monotonic() < deadline:
            if sent and rng.random() < repeat:
                i = rng.choice(sent)  # a customer served minutes ago: frequency-capped now
            else:
                with rng_lock:
                    i = next(counter)
                sent.append(i)
            body = json.dumps(offer_body(i, skus, rng)).encode()
            if interval is None:
                started = time.perf_counter()
            else:
                time.sleep(max(0.0, next_send - time.perf_counter()))
                started, next_send = next_send, next_send + interval
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            local.append(time.perf_counter() - started)
            local_status[response.status] = local_status.get(response.status, 0) + 1
            if response.status == 200:
                reason = json.loads(payload).get("reason", "?")
                local_reasons[reason] = local_reasons.get(reason, 0) + 1
        conn.close()
        with lock:
            latencies.extend(local)
            for k, v in local_status.items():
                statuses[k] = statuses.get(k, 0) + v
            for k, v in local_reasons.items():
                reasons[k] = reasons.get(k, 0) + v

    cpu0 = time.process_time()
    pool = [threading.Thread(target=run, args=(seed * 1000 + t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return {
        "latencies": latencies,
        "statuses": statuses,
        "reasons": reasons,
        "client_cpu": time.process_time() - cpu0,
    }


class CpuMeter:
    """CPU seconds spent by the server (gunicorn master and workers) and by this database's
    PostgreSQL backends, read from /proc around each run of `drive`."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid
        self.database_url = support.database_url(DB_NAME)

    def read(self) -> dict:
        backends = support.database_backends(self.database_url, DB_NAME)
        return {
            "server": {p: support.cpu_seconds(p) for p in support.process_tree(self.server_pid)},
            "database": {pid: support.cpu_seconds(pid) for pid in backends},
        }

    def spent(self, before: dict, after: dict) -> dict:
        # A backend that connected during the run counts from zero (its start-up is part of it).
        def deltas(kind: str) -> dict[int, float]:
            return {pid: t - before[kind].get(pid, 0.0) for pid, t in after[kind].items()}

        server = deltas("server")
        workers = sorted((t for pid, t in server.items() if pid != self.server_pid), reverse=True)
        return {
            "server_cpu": sum(server.values()),
            "database_cpu": sum(deltas("database").values()),
            # How the gunicorn workers shared the work: keep-alive connections stay with the
            # worker that accepted them, and the split can be far from even.
            "worker_split": [t / (sum(workers) or 1) for t in workers],
        }


def drive(
    port,
    path,
    api_key,
    skus,
    *,
    connections,
    processes,
    seconds,
    first_id,
    rate=None,
    meter: CpuMeter | None = None,
    repeat: float = 0.0,
) -> dict:
    """`connections` keep-alive connections for `seconds`; with `rate` (requests/s over all
    connections) each is paced at rate/connections. With `meter`, also the CPU seconds the
    server, its database backends and the load generator spent meanwhile. `repeat`: the share
    of requests for a customer this connection has already sent (refused: capped)."""
    threads = connections // processes
    deadline = time.monotonic() + seconds
    interval = connections / rate if rate else None
    jobs = [
        (
            port,
            path,
            api_key,
            skus,
            first_id + p * 1_000_000_000,  # each process its own customers
            threads,
            deadline,
            p + 1,
            interval,
            repeat,
        )
        for p in range(processes)
    ]
    before = meter.read() if meter else None
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_client_process, jobs)
    cpu = meter.spent(before, meter.read()) if meter else {}
    cpu["client_cpu"] = sum(part["client_cpu"] for part in parts)
    return _summary(
        [{"seconds": seconds, "latencies": [x for part in parts for x in part["latencies"]]}]
        + [{"statuses": part["statuses"], "reasons": part["reasons"]} for part in parts]
        + [cpu]
    )


def _summary(runs: list[dict]) -> dict:
    """Requests/s, p50/p99 and status counts over one or more runs of the same endpoint."""
    latencies = sorted(x for run in runs for x in run.get("latencies", ()))
    seconds = sum(run.get("seconds", 0) for run in runs)
    statuses: dict[int, int] = {}
    reasons: dict[str, int] = {}
    for run in runs:
        for k, v in run.get("statuses", {}).items():
            statuses[k] = statuses.get(k, 0) + v
        for k, v in run.get("reasons", {}).items():
            reasons[k] = reasons.get(k, 0) + v
    n = len(latencies)
    cpu = {
        kind: sum(run.get(kind, 0.0) for run in runs)
        for kind in ("server_cpu", "database_cpu", "client_cpu")
    }
    return {
        **cpu,
        "worker_split": next((run["worker_split"] for run in runs if "worker_split" in run), []),
        "seconds": seconds,
        "latencies": latencies,
        "requests": n,
        "rps": n / seconds,
        "p50_ms": 1000 * statistics.median(latencies) if n else float("nan"),
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else float("nan"),
        "statuses": statuses,
        "reasons": reasons,
    }


def _cpu_line(r: dict) -> str:
    per = {k: 1000 * r[k] / r["requests"] for k in ("server_cpu", "database_cpu", "client_cpu")}
    return (
        f"{sum(per.values()):>6.2f} ms = {per['server_cpu']:.2f} + {per['database_cpu']:.2f}"
        f" + {per['client_cpu']:.2f}"
    )


def count_queries(api_key: str, skus: list[str], samples: int = 100) -> dict:
    """Per served offer, in-process and read on the wire (libpq's trace): the statements the
    offer runs, the survey attachment's (feedback.services.survey_for_offer), transaction
    control (BEGIN/COMMIT/SAVEPOINT), and the round trips they take."""
    from django.db import connection
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    rng = random.Random(99)
    client.post("/api/v1/offers", offer_body(50_000_000, skus, rng), format="json")  # warm
    connection.ensure_connection()
    counts = {"offer": [], "survey": [], "transaction": [], "round_trips": []}
    names: dict[str, str] = {}  # a prepared statement's name -> its kind, from its Parse
    control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")
    for i in range(samples):
        with support.Wire(connection.connection) as wire:
            response = client.post(
                "/api/v1/offers", offer_body(60_000_000 + i, skus, rng), format="json"
            )
        kinds = {"offer": 0, "survey": 0, "transaction": 0}
        for direction, kind, rest in wire.messages:
            if direction == "F" and kind == "Parse":
                name, _, text = rest.partition(" ")
                sql = text.strip('"')
                if sql.startswith(control):
                    names[name] = "transaction"
                elif "recommendations_customercap" in sql:  # also takes the survey lock
                    names[name] = "offer"
                elif "feedback_" in sql or "pg_advisory" in sql:
                    names[name] = "survey"
                else:
                    names[name] = "offer"
                last = names[name]
            elif direction == "F" and kind == "Bind":
                last = names.get(rest.split(" ")[1], "offer")
            elif direction == "F" and kind == "Execute":
                kinds[last] += 1
            elif direction == "F" and kind == "Query":
                kinds["transaction" if rest.strip('"').startswith(control) else "offer"] += 1
        if response.status_code != 201:
            continue
        for kind, n in kinds.items():
            counts[kind].append(n)
        counts["round_trips"].append(wire.round_trips())
    return {kind: statistics.mean(ns) for kind, ns in counts.items()} | {
        "sampled": len(counts["offer"])
    }


def profile(api_key: str, skus: list[str], samples: int, top: int = 30) -> None:
    """Serve `samples` offers in-process, one at a time; print where the wall time goes."""
    import cProfile
    import pstats

    from django.db import connections

    connection = connections["default"]
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    rng = random.Random(5)
    for i in range(20):  # warm the caches and the connection
        client.post("/api/v1/offers", offer_body(70_000_000 + i, skus, rng), format="json")
    waits = {"statements": 0.0, "commit": 0.0, "n_statements": 0, "n_commits": 0}

    def timed_execute(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            waits["statements"] += time.perf_counter() - started
            waits["n_statements"] += 1

    original_commit = type(connection)._commit

    def timed_commit(self):
        started = time.perf_counter()
        try:
            return original_commit(self)
        finally:
            waits["commit"] += time.perf_counter() - started
            waits["n_commits"] += 1

    bodies = [offer_body(80_000_000 + i, skus, rng) for i in range(samples)]
    statuses: dict[int, int] = {}
    type(connection)._commit = timed_commit
    try:
        with connection.execute_wrapper(timed_execute):
            cpu0, started = time.process_time(), time.perf_counter()
            for body in bodies:
                status = client.post("/api/v1/offers", body, format="json").status_code
                statuses[status] = statuses.get(status, 0) + 1
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
            profiler = cProfile.Profile()
            profiler.enable()
            for body in [offer_body(90_000_000 + i, skus, rng) for i in range(samples)]:
                client.post("/api/v1/offers", body, format="json")
            profiler.disable()
    finally:
        type(connection)._commit = original_commit
    ms = 1000 / samples
    db = waits["statements"] / 2 + waits["commit"] / 2  # both loops were timed
    print(f"\n{samples} offers in-process, one at a time: {statuses}")
    print(
        f"wall {wall * ms:.2f} ms per offer; this process's CPU {cpu * ms:.2f} ms; database "
        f"waits {db * ms:.2f} ms ({waits['n_statements'] / 2 / samples:.2f} statements "
        f"{waits['statements'] / 2 * ms:.2f} ms, {waits['n_commits'] / 2 / samples:.2f} "
        f"COMMIT {waits['commit'] / 2 * ms:.2f} ms); the rest {(wall - db) * ms:.2f} ms"
    )
    stats = pstats.Stats(profiler)
    if os.environ.get("BENCH_CALLERS"):
        stats.print_callers(os.environ["BENCH_CALLERS"])
    if os.environ.get("BENCH_CALLEES"):
        stats.print_callees(os.environ["BENCH_CALLEES"])
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per endpoint")
    parser.add_argument(
        "--rounds", type=int, default=4, help="saturated rounds per endpoint, alternating"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--client-processes", type=int, default=4)
    support.add_web_arguments(parser)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--history-customers", type=int, default=20000)
    parser.add_argument(
        "--survey-rate", type=float, default=0.2, help="active survey's sampling rate (-1: none)"
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="profile N offers in-process, no server"
    )
    parser.add_argument(
        "--repeat",
        type=float,
        default=0.0,
        help="share of offer requests for a customer already served in the run (capped)",
    )
    parser.add_argument(
        "--paced",
        type=float,
        default=0.5,
        help="then pace both endpoints at this fraction of the saturated offer rate (0: off)",
    )
    args = parser.parse_args()
    layout = support.web_layout(args)

    database_url = support.recreate_database(DB_NAME)
    env = _env(database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        check=True,
    )
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    print(f"seeding {args.products} products, relations, {args.history_customers} orders …")
    api_key, skus = _seed(args.products, args.history_customers, args.survey_rate)

    if args.profile:
        profile(api_key, skus, args.profile)
        return

    from django.db import connections

    connections.close_all()  # no connection may cross the fork into the load generator
    if problem := support.checkpoint():  # the seed's writes flushed before the timing
        print(f"no CHECKPOINT before the timing: {problem}")
    checkpoints_before = support.checkpoints()
    transactions_before = support.transactions(DB_NAME)

    server, port = support.start_gunicorn(
        {**env, "DJANGO_SETTINGS_MODULE": "offers_settings", "PYTHONPATH": str(BENCH)},
        support.logdir("offers"),
        **layout,
    )
    try:
        common = {"connections": args.connections, "processes": args.client_processes}
        meter = CpuMeter(server.pid)
        drive(port, "/bench/bare", api_key, skus, seconds=2, first_id=0, **common)  # warm-up
        drive(port, "/api/v1/offers", api_key, skus, seconds=2, first_id=100_000, **common)
        # The endpoints alternate in short rounds, so a change in the shared host's speed
        # during the run reaches both alike; the ratio is over all rounds.
        rounds: dict[str, list[dict]] = {"bare": [], "offers": []}
        for r in range(args.rounds):
            for name, path, first in (
                ("bare", "/bench/bare", 0),
                ("offers", "/api/v1/offers", 2),
            )[:: 1 if r % 2 == 0 else -1]:
                rounds[name].append(
                    drive(
                        port,
                        path,
                        api_key,
                        skus,
                        seconds=args.duration / args.rounds,
                        first_id=first * 100_000_000 + r * 1_000_000,
                        meter=meter,
                        repeat=args.repeat if name == "offers" else 0.0,
                        **common,
                    )
                )
        bare, offers = _summary(rounds["bare"]), _summary(rounds["offers"])
        # Then both paced at a share of the offers' saturated rate: the p99 a storefront sees
        # at a load the server carries (the saturated p99 is the queue of 16 connections).
        rate = args.paced * offers["rps"]
        paced = {}
        for name, path, first in (("bare", "/bench/bare", 0), ("offers", "/api/v1/offers", 3)):
            if rate:
                paced[name] = drive(
                    port,
                    path,
                    api_key,
                    skus,
                    seconds=args.duration,
                    first_id=first * 100_000_000 + 50_000_000,
                    rate=rate,
                    meter=meter,
                    repeat=args.repeat if name == "offers" else 0.0,
                    **common,
                )
    finally:
        server.stop()
    checkpoints_after = support.checkpoints()
    # A backend reports its last transactions when it exits: wait for the server's to go.
    settle = time.monotonic() + 10
    while support.database_backends(support.PG_ADMIN_URL, DB_NAME) and time.monotonic() < settle:
        time.sleep(0.1)
    transactions_after = support.transactions(DB_NAME)

    queries = count_queries(api_key, skus)
    print(
        f"\n{args.connections} connections, {args.duration:g} s each, "
        f"{support.describe_web(layout)}, PostgreSQL; shared machine — read the ratio."
    )
    print(f"{'endpoint':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}  statuses")
    for name, r in (("bare DRF endpoint", bare), ("POST /api/v1/offers", offers)):
        print(
            f"{name:<22}{r['rps']:>9.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}  "
            f"{r['statuses']} {r['reasons'] or ''}"
        )
    per_round = ", ".join(
        f"{o['rps'] / b['rps']:.2f}" for b, o in zip(rounds["bare"], rounds["offers"], strict=True)
    )
    print(f"ratio per round ({args.rounds} × {args.duration / args.rounds:g} s each): {per_round}")
    for name in ("bare", "offers"):
        splits = " · ".join(
            "/".join(f"{share:.0%}" for share in r["worker_split"]) for r in rounds[name]
        )
        print(f"  gunicorn workers' share of the CPU per round, {name}: {splits}")
    print(
        f"throughput ratio offers / bare: {offers['rps'] / bare['rps']:.2f}× "
        f"(target ≥ 0.30×); offers p99, saturated: {offers['p99_ms']:.1f} ms (target < 40 ms)"
    )
    print("CPU per request, saturated (ms: gunicorn + PostgreSQL backends + load generator):")
    for name, r in (("bare DRF endpoint", bare), ("POST /api/v1/offers", offers)):
        print(f"{name:<22}{_cpu_line(r)}")
    if paced:
        print(
            f"\npaced: {rate:.0f} req/s offered over the same {args.connections} connections "
            f"({args.paced:.0%} of the saturated offer rate), latency from each request's "
            "scheduled time:"
        )
        for name, r in (
            ("bare DRF endpoint", paced["bare"]),
            ("POST /api/v1/offers", paced["offers"]),
        ):
            print(
                f"{name:<22}{r['rps']:>9.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}  "
                f"{r['statuses']} {r['reasons'] or ''}"
            )
        print(f"offers p99, paced: {paced['offers']['p99_ms']:.1f} ms (target < 40 ms)")
        print("CPU per request, paced:")
        for name, key in (("bare DRF endpoint", "bare"), ("POST /api/v1/offers", "offers")):
            print(f"{name:<22}{_cpu_line(paced[key])}")
    if checkpoints_before is not None and checkpoints_after is not None:
        print(
            f"PostgreSQL checkpoints during the timing: {checkpoints_after - checkpoints_before}"
            " (each shares the disk with the COMMITs timed)"
        )
    if transactions_before and transactions_after:
        commits = transactions_after[0] - transactions_before[0]
        rollbacks = transactions_after[1] - transactions_before[1]
        print(
            f"transactions in the bench's database while the server ran: {commits:,} committed, "
            f"{rollbacks:,} rolled back (a refusal commits its undo; a ROLLBACK would make "
            "psycopg forget the connection's prepared statements)"
        )
    print(
        f"SQL statements per served offer: {queries['offer']:.2f} for the offer itself "
        f"(target ≤ 4), {queries['survey']:.2f} by the survey attachment (sampled at "
        f"{args.survey_rate:.0%}), {queries['transaction']:.2f} BEGIN/COMMIT/SAVEPOINT, in "
        f"{queries['round_trips']:.2f} round trips; {queries['sampled']} offers counted "
        "in-process on the wire"
    )


if __name__ == "__main__":
    main()
