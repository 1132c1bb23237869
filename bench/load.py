"""Mixed load without loss: gunicorn + a real Celery worker on Redis + PostgreSQL, then reconcile.

    .venv/bin/python bench/load.py            # 60 s; exit 1 on any loss, 5xx or < 500 requests/s

Creates (drops first) its own PostgreSQL database `offerlab_bench_load`, migrates it, and uses
Redis database 11 (broker) and 12 (cache) on 127.0.0.1:6379 (`--redis-url` to change). Starts
gunicorn with the deployed worker layout (config/gunicorn.py: sync workers, two per core; DEBUG off;
--web-worker-class gthread --web-workers 4 --web-threads 4 for the earlier layout) and one Celery
worker as plain processes,
seeds through the management commands and the public API (API key, staff token, a catalogue
with approved relations, an active survey, two running experiments), then drives a bounded mixed
load on 127.0.0.1 from keep-alive client threads until the time or the request budget runs out:

    offers        POST /api/v1/offers for new customers (the 3-per-7-days cap makes repeat
                  customers `frequency_capped`); the survey token an offer carries feeds
    survey        GET /api/v1/feedback/surveys/{token} + POST /api/v1/feedback/responses
                  (complete; one in ten posted twice, which must still be one response)
    assignments   POST /api/v1/assignments (customers drawn with repeats: must stay sticky)
    events        POST /api/v1/events, 10 events per batch (shown/accepted for received offers,
                  orders with lines); one batch in twenty is re-sent whole (all duplicates)
    analyze       POST /api/v1/experiments/{key}/analyze every few seconds (staff)

Then it waits for the queued analyses and reconciles with the database: every event the
generator was told `accepted` is stored exactly once (and nothing else is stored), every survey
answer that got 200 is one finished response with its answers, every offer id received exists
(and no other offer), every assignment is stored once with the variant the API said, every
analysis run succeeded — and no 5xx. Before the load it measures a baseline with the same
client threads (an unauthenticated request: the stack's floor cost); the machine is shared and
noisy, so compare the ratio across runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _support as support

OFFER_EXPERIMENT = "bench-pp-timing"
ASSIGN_EXPERIMENT = "bench-browse-channel"
MIX = (("offer", 34), ("assignment", 30), ("events", 18), ("survey", 18))
EVENTS_PER_BATCH = 10


class Stats:
    """Per-thread tallies, merged at the end (no lock on the hot path)."""

    def __init__(self):
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter] = defaultdict(Counter)
        self.server_errors: list[str] = []
        self.transport_errors: list[str] = []
        self.offer_ids: set[str] = set()
        self.no_offer: Counter = Counter()
        self.accepted_events: list[str] = []
        self.duplicate_events: list[str] = []
        self.rejected_events: list[str] = []
        self.answered_offers: set[str] = set()
        self.assignments: dict[str, str | None] = {}
        self.sticky_violations = 0
        self.analysis_jobs: set[int] = set()


class Client:
    """One keep-alive connection, reopened after a transport error."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: object | None, headers: dict) -> tuple[int, bytes]:
        payload = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                # a keep-alive connection the server closed between requests: retry once, but
                # only requests that are safe to repeat (all of ours are idempotent or counted
                # by what the server answered, so a lost answer is reported, not guessed)
                if attempt == 2 or method != "GET":
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()


class LoadThread(threading.Thread):
    def __init__(self, index: int, ctx: dict, stop_at: float, budget: list, lock):
        super().__init__(name=f"load-{index}", daemon=True)
        self.index = index
        self.ctx = ctx
        self.stop_at = stop_at
        self.budget = budget
        self.lock = lock
        self.rng = random.Random(1000 + index)
        self.stats = Stats()
        self.client = Client(ctx["port"])
        self.sf = {"Content-Type": "application/json", "Authorization": f"Api-Key {ctx['key']}"}
        self.staff = {"Content-Type": "application/json", "Authorization": f"Token {ctx['token']}"}
        self.public = {"Content-Type": "application/json"}
        self.customers = 0
        self.my_offers: list[str] = []  # offers received, for events
        self.tokens: list[tuple[str, str]] = []  # (offer_id, survey token) not yet answered
        self.sent_batches: list[dict] = []

    # -- bookkeeping ----------------------------------------------------------------------

    def _take(self) -> bool:
        with self.lock:
            if self.budget[0] <= 0:
                return False
            self.budget[0] -= 1
            return True

    def _do(self, endpoint: str, method: str, path: str, body, headers) -> tuple[int, object]:
        started = time.perf_counter()
        try:
            status, raw = self.client.call(method, path, body, headers)
        except (http.client.HTTPException, OSError) as exc:
            self.stats.transport_errors.append(f"{endpoint}: {exc!r}")
            self.stats.status[endpoint]["transport-error"] += 1
            return 0, None
        self.stats.latency[endpoint].append(time.perf_counter() - started)
        self.stats.status[endpoint][status] += 1
        if status >= 500:
            self.stats.server_errors.append(f"{endpoint} {status}: {raw[:300]!r}")
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    # -- operations -----------------------------------------------------------------------

    def offer(self):
        self.customers += 1
        customer = f"cust-{self.index}-{self.customers}"
        skus = self.rng.sample(self.ctx["skus"], 2)
        body = {
            "customer_id": customer,
            "trigger": "post_purchase",
            "context": {"skus": skus, "order_id": f"o-{customer}"},
            "attributes": {"segment": self.rng.choice(["new", "returning", "vip"])},
        }
        status, data = self._do("offers", "POST", "/api/v1/offers", body, self.sf)
        if status == 201:
            offer_id = data["offer_id"]
            self.stats.offer_ids.add(offer_id)
            self.my_offers.append((offer_id, customer))
            if data.get("survey"):
                self.tokens.append((offer_id, data["survey"]["token"]))
        elif status == 200:
            self.stats.no_offer[data.get("reason")] += 1

    def assignment(self):
        # a bounded customer space, so some customers come back and must keep their variant
        customer = f"asg-{self.rng.randrange(40_000)}"
        body = {
            "customer_id": customer,
            "experiment": ASSIGN_EXPERIMENT,
            "attributes": {"segment": "returning"},
        }
        status, data = self._do("assignments", "POST", "/api/v1/assignments", body, self.sf)
        if status == 200:
            variant = data.get("variant")
            seen = self.ctx["assigned"].setdefault(customer, variant)
            if seen != variant:
                self.stats.sticky_violations += 1
            self.stats.assignments[customer] = variant

    def _new_events(self) -> list[dict]:
        now = datetime.now(UTC)
        events = []
        for _ in range(EVENTS_PER_BATCH):
            at = (now - timedelta(seconds=self.rng.uniform(0, 60))).isoformat()
            event = {"event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4))}
            if self.my_offers and self.rng.random() < 0.5:
                offer_id, customer = self.rng.choice(self.my_offers)
                kind = "offer_shown" if self.rng.random() < 0.7 else "offer_accepted"
                event.update(type=kind, customer_id=customer, occurred_at=at, offer_id=offer_id)
            else:
                customer = (
                    self.rng.choice(self.my_offers)[1] if self.my_offers else f"cust-{self.index}-0"
                )
                lines = [
                    {
                        "sku": sku,
                        "category": "tents",
                        "quantity": self.rng.randint(1, 3),
                        "price": f"{self.rng.randint(5, 90)}.50",
                    }
                    for sku in self.rng.sample(self.ctx["skus"], self.rng.randint(1, 3))
                ]
                amount = sum(line["quantity"] * float(line["price"]) for line in lines)
                event.update(
                    type="order_placed",
                    customer_id=customer,
                    occurred_at=at,
                    order_id=f"ord-{event['event_id'][:12]}",
                    amount=f"{amount:.2f}",
                    currency="EUR",
                    items=lines,
                )
            events.append(event)
        return events

    def events(self):
        resend = self.sent_batches and self.rng.random() < 0.05
        body = self.rng.choice(self.sent_batches) if resend else {"events": self._new_events()}
        status, data = self._do("events", "POST", "/api/v1/events", body, self.sf)
        if status != 200:
            return
        if not resend and len(self.sent_batches) < 50:
            self.sent_batches.append(body)
        for result in data["results"]:
            bucket = {
                "accepted": self.stats.accepted_events,
                "duplicate": self.stats.duplicate_events,
                "rejected": self.stats.rejected_events,
            }[result["status"]]
            bucket.append(result["event_id"])

    def survey(self):
        if not self.tokens:
            return self.offer()
        offer_id, token = self.tokens.pop()
        status, _ = self._do(
            "survey_get", "GET", f"/api/v1/feedback/surveys/{token}", None, self.public
        )
        if status != 200:
            return None
        body = {
            "token": token,
            "answers": {
                "helpful": self.rng.randint(1, 5),
                "pushy": self.rng.randint(1, 5),
                "comment": "ok",
            },
            "complete": True,
        }
        for _ in range(2 if self.rng.random() < 0.1 else 1):
            status, _ = self._do(
                "survey_answer", "POST", "/api/v1/feedback/responses", body, self.public
            )
            if status == 200:
                self.stats.answered_offers.add(offer_id)
        return None

    def analyze(self):
        key = self.rng.choice([OFFER_EXPERIMENT, ASSIGN_EXPERIMENT])
        status, data = self._do(
            "analyze", "POST", f"/api/v1/experiments/{key}/analyze", None, self.staff
        )
        if status == 202:
            self.stats.analysis_jobs.add(data["job_id"])

    def run(self):
        ops = [name for name, _ in MIX]
        weights = [w for _, w in MIX]
        next_analyze = time.monotonic() + 5
        try:
            while time.monotonic() < self.stop_at and self._take():
                if self.index == 0 and time.monotonic() >= next_analyze:
                    next_analyze += 10
                    self.analyze()
                    continue
                getattr(self, self.rng.choices(ops, weights)[0])()
        finally:
            self.client.close()


BASELINE = "GET /api/v1/experiments without credentials (403: the whole stack, no database)"


def measure_baseline(port: int, threads: int, seconds: float) -> float:
    """Requests/s of BASELINE with the same client threads: the server's floor cost."""
    count = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def loop():
        client = Client(port)
        n = 0
        while time.monotonic() < stop_at:
            status, _ = client.call("GET", "/api/v1/experiments", None, {})
            if status in (401, 403):
                n += 1
        client.close()
        with lock:
            count[0] += n

    ts = [threading.Thread(target=loop) for _ in range(threads)]
    start = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return count[0] / (time.monotonic() - start)


class CpuMeter:
    """CPU seconds spent by the web and worker process trees and by this database's backends.

    The machine is shared, so wall-clock rates depend on everyone else; CPU per request does not
    (much), and says what two CPUs given to the service alone would carry.
    """

    def __init__(self, conninfo: str, database: str, web: int, worker: int):
        self.conninfo, self.database, self.roots = (
            conninfo,
            database,
            {"web": web, "worker": worker},
        )

    def sample(self) -> dict[str, dict[int, float]]:
        out = {
            name: {p: support.cpu_seconds(p) for p in support.process_tree(pid)}
            for name, pid in self.roots.items()
        }
        backends = support.database_backends(self.conninfo, self.database)
        out["postgres"] = {p: support.cpu_seconds(p) for p in backends}
        out["client"] = {0: time.process_time()}
        return out

    @staticmethod
    def spent(before: dict, after: dict) -> dict[str, float]:
        return {
            name: sum(max(cpu - before[name].get(p, 0.0), 0.0) for p, cpu in after[name].items())
            for name in after
        }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_for_analyses(conninfo: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            rows = dict(
                conn.execute(
                    "SELECT status, count(*) FROM experiments_analysisrun GROUP BY status"
                ).fetchall()
            )
            if not rows.get("queued") and not rows.get("running"):
                return rows
            if time.monotonic() > deadline:
                return rows
            time.sleep(1)


def reconcile(
    conninfo: str, total: Stats, assigned: dict, *, exact: bool = True
) -> list[tuple[str, bool, str]]:
    """PASS/FAIL lines. ``exact``: the tables hold nothing but what this generator was told was
    stored (off under faults, where a request may commit and then fail to answer: stored, not
    lost, and its retry is a duplicate)."""
    checks: list[tuple[str, bool, str]] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        accepted = total.accepted_events
        accepted_once = len(set(accepted)) == len(accepted)
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM experiments_outcomeevent "
            "WHERE event_id = ANY(%s::uuid[])",
            (accepted,),
        ).fetchone()
        all_rows = conn.execute("SELECT count(*) FROM experiments_outcomeevent").fetchone()[0]
        lost = len(set(accepted)) - stored[1]
        doubled = stored[0] - stored[1] + (len(accepted) - len(set(accepted)))
        checks.append(
            (
                "events: every accepted event stored exactly once",
                lost == 0
                and doubled == 0
                and accepted_once
                and (all_rows == len(accepted) or not exact),
                f"{len(accepted):,} accepted, {stored[1]:,} found, lost {lost}, doubled "
                f"{doubled}, rows in table {all_rows:,}, re-sent → duplicate "
                f"{len(total.duplicate_events):,}, rejected {len(total.rejected_events)}",
            )
        )
        dup_never_accepted = set(total.duplicate_events) - set(accepted)
        checks.append(
            (
                "events: a re-sent event is a duplicate of one accepted before",
                not dup_never_accepted,
                f"{len(dup_never_accepted)} duplicates of events never accepted",
            )
        )

        offers = list(total.offer_ids)
        found = conn.execute(
            "SELECT count(*) FROM recommendations_offer WHERE offer_id = ANY(%s::uuid[])",
            (offers,),
        ).fetchone()[0]
        offer_rows = conn.execute("SELECT count(*) FROM recommendations_offer").fetchone()[0]
        checks.append(
            (
                "offers: every offer id received exists (and no other offer)",
                found == len(offers) and (offer_rows == len(offers) or not exact),
                f"{len(offers):,} received, {found:,} found, rows in table {offer_rows:,}",
            )
        )

        answered = list(total.answered_offers)
        rows = conn.execute(
            """
            SELECT o.offer_id::text, count(DISTINCT r.id), bool_and(r.finished),
                   count(a.id)
            FROM recommendations_offer o
            JOIN feedback_response r ON r.offer_id = o.id
            LEFT JOIN feedback_answer a ON a.response_id = r.id
            WHERE o.offer_id = ANY(%s::uuid[])
            GROUP BY o.offer_id
            """,
            (answered,),
        ).fetchall()
        by_offer = {r[0]: r[1:] for r in rows}
        missing = [o for o in answered if o not in by_offer]
        doubled_resp = [o for o, (n, _, _) in by_offer.items() if n != 1]
        unfinished = [o for o, (_, fin, _) in by_offer.items() if not fin]
        short = [o for o, (_, _, answers) in by_offer.items() if answers != 3]
        resp_rows = conn.execute("SELECT count(*) FROM feedback_response").fetchone()[0]
        checks.append(
            (
                "survey: every answered token is one finished response with its 3 answers",
                not (missing or doubled_resp or unfinished or short)
                and (resp_rows == len(answered) or not exact),
                f"{len(answered):,} answered, lost {len(missing)}, doubled {len(doubled_resp)}, "
                f"unfinished {len(unfinished)}, incomplete answers {len(short)}, "
                f"responses in table {resp_rows:,}",
            )
        )

        customers = list(assigned)
        rows = conn.execute(
            """
            SELECT a.customer_id, v.key, count(*) OVER (PARTITION BY a.customer_id)
            FROM experiments_assignment a
            JOIN experiments_experiment e ON e.id = a.experiment_id
            JOIN experiments_variant v ON v.id = a.variant_id
            WHERE e.key = %s AND a.customer_id = ANY(%s)
            """,
            (ASSIGN_EXPERIMENT, customers),
        ).fetchall()
        stored_variant = {r[0]: r[1] for r in rows}
        doubled_asg = sum(1 for r in rows if r[2] != 1)
        wrong = sum(1 for c, v in assigned.items() if v is not None and stored_variant.get(c) != v)
        checks.append(
            (
                "assignments: one stored row per customer, the variant the API answered",
                wrong == 0 and doubled_asg == 0 and total.sticky_violations == 0,
                f"{len(customers):,} customers, {len(rows):,} rows, wrong variant {wrong}, "
                f"doubled {doubled_asg}, answers that changed variant {total.sticky_violations}",
            )
        )
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=90_000, help="request budget")
    parser.add_argument("--threads", type=int, default=16, help="client threads")
    support.add_web_arguments(parser, prefix="web-", threads=4)
    parser.add_argument("--database", default="offerlab_bench_load")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--redis-db", type=int, default=11, help="broker db; cache uses db+1")
    parser.add_argument("--target-rps", type=float, default=500.0)
    args = parser.parse_args()

    logs = support.logdir("load")
    db_url = support.recreate_database(args.database)
    broker = f"{args.redis_url}/{args.redis_db}"
    cache = f"{args.redis_url}/{args.redis_db + 1}"
    env = support.server_env(database=db_url, broker=broker, cache=cache)
    _flush_redis(args.redis_url, args.redis_db)
    print(f"database {args.database} (fresh), broker {broker}, cache {cache}, logs {logs}")
    support.manage(env, "migrate", "--noinput", "-v", "0")
    key, token = support.seed_credentials(env)
    procs: list[support.Proc] = []
    try:
        layout = support.web_layout(args, prefix="web-")
        web, port = support.start_gunicorn(env, logs, **layout)
        procs.append(web)
        procs.append(support.start_worker(env, logs, concurrency=1))
        skus = support.seed_catalogue(port, key, token)
        support.seed_survey(port, token)
        support.seed_experiment(
            port, token, OFFER_EXPERIMENT, trigger="post_purchase", factor="timing", layer="pp"
        )
        support.seed_experiment(
            port, token, ASSIGN_EXPERIMENT, trigger="browse", factor="channel", layer="browse"
        )
        print(
            f"{support.describe_web(layout)} on 127.0.0.1:"
            f"{port}, 1 Celery worker; {args.threads} client threads; 2-CPU shared machine"
        )
        baseline = measure_baseline(port, args.threads, 5.0)
        print(f"baseline {BASELINE}: {baseline:,.0f} requests/s")

        conninfo = db_url.replace("postgres://", "postgresql://", 1)
        meter = CpuMeter(conninfo, args.database, web.pid, procs[1].pid)
        ctx = {"port": port, "key": key, "token": token, "skus": skus, "assigned": {}}
        lock = threading.Lock()
        budget = [args.max_requests]
        started = time.monotonic()
        stop_at = started + args.duration
        threads = [LoadThread(i, ctx, stop_at, budget, lock) for i in range(args.threads)]
        cpu_before = meter.sample()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.duration + 60)
        elapsed = time.monotonic() - started
        cpu = CpuMeter.spent(cpu_before, meter.sample())
        total = _merge([t.stats for t in threads])
        runs = wait_for_analyses(db_url.replace("postgres://", "postgresql://", 1), 120)
        checks = reconcile(
            db_url.replace("postgres://", "postgresql://", 1), total, ctx["assigned"]
        )
    finally:
        for proc in reversed(procs):
            proc.stop()

    return report(args, total, elapsed, baseline, runs, checks, logs, cpu)


def _flush_redis(url: str, db: int) -> None:
    import redis

    for n in (db, db + 1):
        redis.Redis.from_url(f"{url}/{n}").flushdb()


def _merge(parts: list[Stats]) -> Stats:
    total = Stats()
    for s in parts:
        for k, v in s.latency.items():
            total.latency[k].extend(v)
        for k, v in s.status.items():
            total.status[k].update(v)
        total.server_errors += s.server_errors
        total.transport_errors += s.transport_errors
        total.offer_ids |= s.offer_ids
        total.no_offer.update(s.no_offer)
        total.accepted_events += s.accepted_events
        total.duplicate_events += s.duplicate_events
        total.rejected_events += s.rejected_events
        total.answered_offers |= s.answered_offers
        total.sticky_violations += s.sticky_violations
        total.analysis_jobs |= s.analysis_jobs
    return total


def report(args, total: Stats, elapsed, baseline, runs, checks, logs, cpu) -> int:
    requests = sum(sum(c.values()) for c in total.status.values())
    rps = requests / elapsed
    print(f"\n{requests:,} requests in {elapsed:.1f} s = {rps:,.0f} requests/s")
    print(f"ratio mixed load / baseline: {rps / baseline:.2f}×")
    print(f"{'endpoint':<14}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}  statuses")
    for endpoint in ("offers", "assignments", "events", "survey_get", "survey_answer", "analyze"):
        lat = total.latency.get(endpoint, [])
        statuses = dict(sorted(total.status.get(endpoint, Counter()).items(), key=str))
        n = sum(statuses.values())
        print(
            f"{endpoint:<14}{n:>10,}{n / elapsed:>9,.0f}{percentile(lat, 0.5) * 1000:>9.1f}"
            f"{percentile(lat, 0.99) * 1000:>9.1f}  {statuses}"
        )
    server = cpu["web"] + cpu["postgres"] + cpu["worker"]
    per = {k: 1000 * v / requests for k, v in cpu.items()}
    print(
        f"CPU per request: web {per['web']:.2f} ms + PostgreSQL {per['postgres']:.2f} ms + "
        f"worker {per['worker']:.2f} ms = {1000 * server / requests:.2f} ms "
        f"(load generator {per['client']:.2f} ms more); "
        f"2 CPUs given to the server alone ≈ {2 * requests / server:,.0f} requests/s"
    )
    events = len(total.accepted_events) / elapsed
    print(f"events accepted: {len(total.accepted_events):,} ({events:,.0f}/s)")
    print(f"offers: {len(total.offer_ids):,} served; no offer: {dict(total.no_offer)}")
    print(f"analysis runs: {runs} (jobs requested {len(total.analysis_jobs)})")

    failed = False
    results = [
        *checks,
        (
            "no 5xx",
            not total.server_errors,
            f"{len(total.server_errors)} server errors {total.server_errors[:3]}",
        ),
        (
            "no transport errors",
            not total.transport_errors,
            f"{len(total.transport_errors)} {total.transport_errors[:3]}",
        ),
        (
            "analyses: every run succeeded",
            runs.get("succeeded", 0) >= 1 and set(runs) <= {"succeeded"},
            f"{runs}",
        ),
        (
            f"throughput ≥ {args.target_rps:.0f} requests/s",
            rps >= args.target_rps,
            f"{rps:,.0f} requests/s",
        ),
    ]
    print("\nreconciliation:")
    for name, ok, detail in results:
        failed |= not ok
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")
    print(f"logs: {logs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
