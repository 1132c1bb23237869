"""Event ingestion throughput: POST /api/v1/events on gunicorn vs plain psycopg executemany.

    .venv/bin/python bench/ingest.py                      # a fresh database each run
    .venv/bin/python bench/ingest.py --keep --events 150000   # append: measure a grown table

Needs PostgreSQL (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres). Each run
drops and creates its own database `offerlab_bench_ingest` and migrates it, so runs compare the
same empty tables; with --keep it appends to the one the last run left (the events it adds are
never deleted, so each run meets a larger table, as a real one grows).
Starts gunicorn with production-style settings (DEBUG off) on a free loopback port, posts batches
of realistic events (orders with 1–4 lines, offers shown and accepted) from several client
threads, then inserts the same number of events and lines with plain psycopg `executemany`
(a fresh set of event ids, same batch size, same number of concurrent writers) and prints both
rates and their ratio, and the CPU time each way spent per 1,000 events (gunicorn workers and
PostgreSQL backends, read from /proc on Linux). Run by hand; the machine is shared, so compare
the ratio and the CPU per event rather than the rates.
"""

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _support as support  # noqa: E402

DB_NAME = "offerlab_bench_ingest"
CATEGORIES = support.CATEGORIES
SKUS = [(f"sku-{i:04d}", CATEGORIES[i % len(CATEGORIES)]) for i in range(400)]


def _cpu_seconds(pids) -> float:
    return sum(support.cpu_seconds(pid) for pid in pids)


def _server_env(database_url: str) -> dict:
    # Eager Celery (no broker): ingestion queues no job.
    return support.server_env(database=database_url, broker="")


def _setup_django(database_url: str) -> None:
    os.environ.update(_server_env(database_url))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _prepare(database_url: str, offers: int) -> tuple[str, list[str]]:
    """Migrate, create an API key and some offers for shown/accepted events to point at."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=_server_env(database_url),
        check=True,
    )
    _setup_django(database_url)
    from django.utils import timezone
    from rest_framework_api_key.models import APIKey

    from recommendations.models import Offer

    _, key = APIKey.objects.create_key(name="bench-ingest")
    now = timezone.now()
    rows = [
        Offer(
            customer_id=f"bench-c{i}",
            trigger="post_purchase",
            occurred_at=now,
            channel="email",
            send_at=now,
        )
        for i in range(offers)
    ]
    Offer.objects.bulk_create(rows, batch_size=1000)
    return key, [str(o.offer_id) for o in rows]


def make_events(n: int, offer_ids: list[str], rng: random.Random) -> list[dict]:
    """A realistic mix: 50 % orders (1–4 lines), 35 % offers shown, 15 % offers accepted."""
    now = datetime.now(UTC)
    events = []
    for _ in range(n):
        customer = f"bench-c{rng.randrange(200_000)}"
        at = (now - timedelta(minutes=rng.uniform(1, 60 * 24 * 30))).isoformat()
        roll = rng.random()
        event = {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
        if roll < 0.5:
            lines = []
            for sku, category in rng.sample(SKUS, rng.randint(1, 4)):
                price = Decimal(rng.randrange(199, 19999)) / 100
                lines.append((sku, category, rng.randint(1, 3), price))
            amount = sum(q * p for _, _, q, p in lines)
            event.update(
                type="order_placed",
                customer_id=customer,
                occurred_at=at,
                order_id=f"o-{rng.getrandbits(48):x}",
                amount=str(amount),
                currency="EUR",
                items=[
                    {"sku": s, "category": c, "quantity": q, "price": str(p)}
                    for s, c, q, p in lines
                ],
            )
        else:
            event.update(
                type="offer_shown" if roll < 0.85 else "offer_accepted",
                customer_id=customer,
                occurred_at=at,
                offer_id=rng.choice(offer_ids),
            )
        events.append(event)
    return events


def _batches(events: list[dict], size: int) -> list[list[dict]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


def _run_threads(work, jobs: list, concurrency: int) -> float:
    """Run work(job) for every job from `concurrency` threads; return the wall time."""
    queue = list(reversed(jobs))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker():
        while True:
            with lock:
                if not queue or errors:
                    return
                job = queue.pop()
            try:
                work(job)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


# --- through the API -------------------------------------------------------------------------


def bench_api(bodies: list[bytes], sizes: list[int], key: str, port: int, concurrency: int):
    local = threading.local()
    headers = {"Content-Type": "application/json", "Authorization": f"Api-Key {key}"}

    def post(job):
        body, size = job
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("POST", "/api/v1/events", body, headers)
            response = conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            local.conn = None
            raise
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:300]!r}")
        result = json.loads(data)
        if result["accepted"] != size:
            counts = {k: result[k] for k in ("accepted", "duplicates")}
            raise RuntimeError(f"expected {size} accepted, got {counts}: {result['rejected'][:3]}")

    return _run_threads(post, list(zip(bodies, sizes, strict=True)), concurrency)


# --- plain psycopg ---------------------------------------------------------------------------

RAW_EVENT_SQL = (
    "INSERT INTO experiments_outcomeevent (event_id, type, customer_id, occurred_at, offer_id, "
    "order_id, amount, currency, api_key_id, received_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now()) RETURNING id"
)
RAW_ITEM_SQL = (
    "INSERT INTO experiments_eventitem (event_id, type, customer_id, occurred_at, sku, category, "
    "quantity, price) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def _raw_rows(batch: list[dict]) -> list[tuple]:
    return [
        (
            uuid.UUID(e["event_id"]),
            e["type"],
            e["customer_id"],
            datetime.fromisoformat(e["occurred_at"]),
            uuid.UUID(e["offer_id"]) if e.get("offer_id") else None,
            e.get("order_id", ""),
            Decimal(e["amount"]) if e.get("amount") else None,
            e.get("currency", ""),
            None,
        )
        for e in batch
    ]


def bench_raw(batches: list[list[tuple]], items: list[list[tuple]], url: str, concurrency: int):
    """Returns (wall seconds, CPU seconds of this client process and its PostgreSQL backends)."""
    connections = [psycopg.connect(url) for _ in range(concurrency)]
    free = list(connections)
    lock = threading.Lock()
    local = threading.local()

    def insert(job):
        rows, lines = job
        conn = getattr(local, "conn", None)
        if conn is None:
            with lock:
                conn = local.conn = free.pop()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(RAW_EVENT_SQL, rows, returning=True)
            ids = []
            while True:
                ids.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
            cur.executemany(RAW_ITEM_SQL, [(ids[i], *line) for i, line in lines], returning=False)

    backends = [c.info.backend_pid for c in connections]
    cpu_before = time.process_time() + _cpu_seconds(backends)
    try:
        seconds = _run_threads(insert, list(zip(batches, items, strict=True)), concurrency)
        return seconds, time.process_time() + _cpu_seconds(backends) - cpu_before
    finally:
        for conn in connections:
            conn.close()


def _raw_items(batch: list[dict]) -> list[tuple[int, tuple]]:
    lines = []
    for i, e in enumerate(batch):
        at = datetime.fromisoformat(e["occurred_at"])
        for item in e.get("items", ()):
            lines.append(
                (
                    i,
                    (
                        e["type"],
                        e["customer_id"],
                        at,
                        item["sku"],
                        item["category"],
                        item["quantity"],
                        Decimal(item["price"]),
                    ),
                )
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000, help="events each way")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4, help="client threads / writers")
    support.add_web_arguments(parser, threads=2)
    parser.add_argument("--seed", type=int, help="default: random (event ids must be new)")
    parser.add_argument(
        "--keep", action="store_true", help=f"append to {DB_NAME} instead of recreating it"
    )
    args = parser.parse_args()
    layout = support.web_layout(args)

    url = support.database_url(DB_NAME) if args.keep else support.recreate_database(DB_NAME)
    libpq_url = url.replace("postgres://", "postgresql://", 1)

    rng = random.Random(args.seed)
    key, offer_ids = _prepare(url, offers=2000)
    api_events = make_events(args.events, offer_ids, rng)
    raw_events = make_events(args.events, offer_ids, rng)
    lines = sum(len(e.get("items", ())) for e in api_events)
    api_batches = _batches(api_events, args.batch)
    bodies = [json.dumps({"events": b}).encode() for b in api_batches]
    sizes = [len(b) for b in api_batches]
    raw_batches = _batches(raw_events, args.batch)
    raw_rows = [_raw_rows(b) for b in raw_batches]
    raw_lines = [_raw_items(b) for b in raw_batches]
    warmup = [
        json.dumps({"events": b}).encode() for b in _batches(make_events(4000, offer_ids, rng), 500)
    ]

    print(
        f"{args.events:,} events each way ({lines:,} order lines), batches of {args.batch}, "
        f"{args.concurrency} concurrent clients; {support.describe_web(layout)}; "
        f"{os.cpu_count()} CPUs (shared machine: compare the ratio)."
    )
    server, port = support.start_gunicorn(
        _server_env(url),
        support.logdir("ingest"),
        **layout,
    )
    try:
        bench_api(warmup, [500] * len(warmup), key, port, args.concurrency)
        workers = support.process_tree(server.pid)
        backends = support.database_backends(libpq_url, libpq_url.rsplit("/", 1)[1].split("?")[0])
        before = _cpu_seconds(workers), _cpu_seconds(backends)
        api_seconds = bench_api(bodies, sizes, key, port, args.concurrency)
        web_cpu = _cpu_seconds(workers) - before[0]
        db_cpu = _cpu_seconds(backends) - before[1]
    finally:
        server.stop()
    raw_seconds, raw_cpu = bench_raw(raw_rows, raw_lines, libpq_url, args.concurrency)

    api_rate = args.events / api_seconds
    raw_rate = args.events / raw_seconds
    print(f"API (POST /api/v1/events): {api_rate:>10,.0f} events/s  ({api_seconds:.2f} s)")
    print(f"raw psycopg executemany:   {raw_rate:>10,.0f} events/s  ({raw_seconds:.2f} s)")
    print(f"ratio API / raw:           {api_rate / raw_rate:>10.2f}×")
    print("targets: ≥ 15,000 events/s through the API and ≥ 0.30× raw")
    cpus = os.cpu_count() or 1
    api_cpu = web_cpu + db_cpu
    if api_cpu and raw_cpu:
        # CPU per event does not depend on what else the machine runs; the projection assumes
        # the service had all CPUs to itself (an upper bound).
        per_k = 1e6 / args.events  # seconds for all events -> ms per 1,000 events
        print(
            f"CPU per 1,000 events: API {api_cpu * per_k:.0f} ms (gunicorn {web_cpu * per_k:.0f}"
            f" + PostgreSQL {db_cpu * per_k:.0f}), raw {raw_cpu * per_k:.0f} ms (client and "
            f"PostgreSQL); with {cpus} idle CPUs at most {cpus * args.events / api_cpu:,.0f} vs "
            f"{cpus * args.events / raw_cpu:,.0f} events/s"
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end: {load} (on {os.cpu_count()} CPUs; others' work counts too)")


if __name__ == "__main__":
    main()
