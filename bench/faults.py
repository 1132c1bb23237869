"""Survived faults: real processes, real faults, PASS/FAIL lines and the records reconciled.

    .venv/bin/python bench/faults.py                 # all four faults, about 3 minutes
    .venv/bin/python bench/faults.py --only a,c,d    # without the PostgreSQL restart

Not for CI: fault (b) restarts the machine's PostgreSQL cluster (a few seconds in which every other
user of it sees errors too). Runs on its own database `offerlab_bench_faults` (dropped and
re-created) and its own redis-server on a free loopback port (broker db 0, cache db 1 — the
production layout, one Redis for both), gunicorn with the deployed worker layout
(config/gunicorn.py: sync workers, two per core; DEBUG off) and a Celery worker (prefork,
concurrency 2), all on 127.0.0.1.

(a) SIGKILL the pool process running an analysis → it is requeued and completes, one run;
    SIGKILL the whole worker → after a restart, the requeue sweep completes it, one run.
(b) restart PostgreSQL during traffic → 503 (never 500) while it is down, 2xx again after,
    an analysis caught by the restart retries and succeeds, nothing accepted is lost.
(c) stop Redis during traffic → offers, assignments, events and survey answers still 2xx and
    stored; an analysis requested meanwhile is a queued run that runs once Redis is back.
(d) the same analysis task delivered twice → one result, not recomputed; mining delivered twice
    at the same time → the same relations as one run.
Every phase runs storefront traffic (the bench/load.py generator) and everything it was told was
stored is checked at the end: 0 lost, 0 doubled.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _support as support
import load

from config import gunicorn as deployed_gunicorn

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str) -> bool:
    RESULTS.append((name, ok, detail))
    print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)
    return ok


class TimedLoad(load.LoadThread):
    """The load generator's thread, also recording (time, endpoint, status) of each request."""

    def __init__(self, index, ctx, stop_at, budget, lock):
        super().__init__(index, ctx, stop_at, budget, lock)
        self.timeline: list[tuple[float, str, int]] = []

    def _do(self, endpoint, method, path, body, headers):
        started = time.monotonic()
        status, data = super()._do(endpoint, method, path, body, headers)
        self.timeline.append((started, endpoint, status))
        return status, data

    def analyze(self):  # analyses are requested by the fault scenarios themselves
        return None


class Traffic:
    """A few generator threads in the background for one phase."""

    phase = 0

    def __init__(self, ctx: dict, seconds: float, threads: int = 4):
        Traffic.phase += 1
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds
        self.threads = [
            TimedLoad(100 * Traffic.phase + i, ctx, stop_at, [10**6], lock) for i in range(threads)
        ]
        for t in self.threads:
            t.start()

    def join(self) -> tuple[load.Stats, list[tuple[float, str, int]]]:
        for t in self.threads:
            t.join(timeout=120)
        timeline = sorted(e for t in self.threads for e in t.timeline)
        return load._merge([t.stats for t in self.threads]), timeline


class Bench:
    def __init__(self, args):
        self.args = args
        self.logs = support.logdir("faults")
        self.db_url = support.recreate_database(args.database)
        self.conninfo = self.db_url.replace("postgres://", "postgresql://", 1)
        self.redis, self.redis_port = support.start_redis(self.logs)
        self.web = self.worker = None
        try:
            self._start(args)
        except BaseException:
            self.close()  # never leave processes behind when set-up fails
            raise

    def _start(self, args) -> None:
        self.broker = f"redis://127.0.0.1:{self.redis_port}/0"
        self.env = support.server_env(
            database=self.db_url, broker=self.broker, cache=f"redis://127.0.0.1:{self.redis_port}/1"
        )
        os.environ.update(self.env)
        import django

        django.setup()
        support.manage(self.env, "migrate", "--noinput", "-v", "0")
        self.key, self.token = support.seed_credentials(self.env)
        # The deployed layout (config/gunicorn.py): sync workers, two per core.
        self.web, self.port = support.start_gunicorn(
            self.env, self.logs, workers=deployed_gunicorn.workers
        )
        self.worker = self.start_worker()
        skus = support.seed_catalogue(self.port, self.key, self.token, n_products=40)
        support.seed_survey(self.port, self.token)
        support.seed_experiment(
            self.port, self.token, load.OFFER_EXPERIMENT, trigger="post_purchase",
            factor="timing", layer="pp",
        )  # fmt: skip
        support.seed_experiment(
            self.port, self.token, load.ASSIGN_EXPERIMENT, trigger="browse",
            factor="channel", layer="browse",
        )  # fmt: skip
        self.ctx = {"port": self.port, "key": self.key, "token": self.token, "skus": skus}
        self.ctx["assigned"] = {}
        self.stats: list[load.Stats] = []
        print(f"database {args.database}, redis 127.0.0.1:{self.redis_port}, logs {self.logs}")

    def start_worker(self, name: str = "worker") -> support.Proc:
        return support.start_worker(self.env, self.logs, name=name, concurrency=2)

    def traffic(self, seconds: float, threads: int = 4) -> Traffic:
        return Traffic(self.ctx, seconds, threads)

    def collect(self, traffic: Traffic):
        stats, timeline = traffic.join()
        self.stats.append(stats)
        return stats, timeline

    def request_analysis(self, key: str) -> int:
        status, body = support.request(
            self.port,
            "POST",
            f"/api/v1/experiments/{key}/analyze",
            headers={"Authorization": f"Token {self.token}"},
        )
        if status != 202:
            raise RuntimeError(f"analyze {key}: {status} {body}")
        return body["job_id"]

    def run_row(self, run_id: int) -> tuple[str, str, str | None]:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            return conn.execute(
                "SELECT status, progress_message, result->>'computed_at' "
                "FROM experiments_analysisrun WHERE id = %s",
                (run_id,),
            ).fetchone()

    def wait_run(self, run_id: int, statuses: set[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        status = "?"
        while time.monotonic() < deadline:
            try:
                status = self.run_row(run_id)[0]
            except psycopg.OperationalError:
                status = "database down"
            if status in statuses:
                break
            time.sleep(0.3)
        return status

    def runs_of(self, key: str) -> Counter:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            return Counter(
                dict(
                    conn.execute(
                        "SELECT r.status, count(*) FROM experiments_analysisrun r JOIN "
                        "experiments_experiment e ON e.id = r.experiment_id WHERE e.key = %s "
                        "GROUP BY r.status",
                        (key,),
                    ).fetchall()
                )
            )

    def fresh_experiment(self, key: str) -> str:
        support.seed_experiment(
            self.port, self.token, key, trigger="loyalty_milestone", factor="timing", layer=key
        )
        return key

    def close(self):
        for proc in (self.worker, self.web, self.redis):
            if proc is not None:
                proc.stop()


class EventsLocked:
    """An exclusive lock on the events table: an analysis blocks mid-aggregation meanwhile."""

    def __init__(self, conninfo: str):
        self.conn = psycopg.connect(conninfo)
        self.conn.execute("LOCK TABLE experiments_outcomeevent IN ACCESS EXCLUSIVE MODE")

    def release(self):
        try:
            self.conn.rollback()
        except psycopg.Error:
            pass  # the connection died with the server: so did the lock
        finally:
            self.conn.close()


def pool_children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


# --- (a) ------------------------------------------------------------------------------------


def fault_worker_killed(b: Bench) -> None:
    print("(a) SIGKILL the Celery worker in the middle of an analysis", flush=True)
    key = b.fresh_experiment("fault-a1")
    traffic = b.traffic(15, threads=2)
    lock = EventsLocked(b.conninfo)
    run_id = b.request_analysis(key)
    status = b.wait_run(run_id, {"running"}, 30)
    children = pool_children(b.worker.pid)
    for child in children:  # the pool processes: one is blocked in the aggregation
        os.kill(child, signal.SIGKILL)
    time.sleep(1)
    lock.release()
    final = b.wait_run(run_id, {"succeeded", "failed"}, 90)
    runs = b.runs_of(key)
    check(
        "a1 pool process SIGKILLed mid-analysis → requeued, completes, one run",
        status == "running" and final == "succeeded" and runs == Counter(succeeded=1),
        f"run was {status} when pids {children} were killed; now {final}; runs {dict(runs)}; "
        f"worker log says WorkerLostError: {'WorkerLostError' in b.worker.log_text()}",
    )

    key = b.fresh_experiment("fault-a2")
    lock = EventsLocked(b.conninfo)
    run_id = b.request_analysis(key)
    status = b.wait_run(run_id, {"running"}, 30)
    b.worker.kill(signal.SIGKILL)  # the whole worker: main process and pool
    b.worker.popen.wait(timeout=10)
    b.worker.stop()
    lock.release()
    started = time.monotonic()
    b.worker = b.start_worker("worker-restarted")
    # beat runs the sweep every minute; here it is called at once, with no grace period
    from datetime import timedelta

    from experiments.dispatch import analysis_runs_requeue

    requeued = analysis_runs_requeue(running_grace=timedelta(0))
    final = b.wait_run(run_id, {"succeeded", "failed"}, 90)
    runs = b.runs_of(key)
    check(
        "a2 whole worker SIGKILLed mid-analysis → restarted + requeue sweep, completes, one run",
        status == "running" and final == "succeeded" and runs == Counter(succeeded=1),
        f"run was {status}; sweep re-sent {requeued}; {final} {time.monotonic() - started:.1f} s "
        f"after the restart began; runs {dict(runs)}",
    )
    stats, _ = b.collect(traffic)
    check(
        "a  storefront traffic meanwhile: no 5xx",
        not stats.server_errors,
        f"{sum(sum(c.values()) for c in stats.status.values())} requests, "
        f"{len(stats.server_errors)} 5xx",
    )


# --- (b) ------------------------------------------------------------------------------------


def pg_restart() -> float:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    started = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        timeout=60,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
            break
        time.sleep(0.1)
    return time.monotonic() - started


def fault_postgres_restart(b: Bench) -> None:
    print("(b) restart PostgreSQL during traffic", flush=True)
    key = b.fresh_experiment("fault-b")
    traffic = b.traffic(20, threads=4)
    time.sleep(4)
    lock = EventsLocked(b.conninfo)
    run_id = b.request_analysis(key)
    status = b.wait_run(run_id, {"running"}, 20)
    down_at = time.monotonic()
    downtime = pg_restart()  # also ends the lock's connection
    up_at = time.monotonic()
    lock.release()
    _, timeline = b.collect(traffic)
    during = Counter(s for t, _, s in timeline if down_at - 1 <= t <= up_at + 1)
    after_rows = [(e, s) for t, e, s in timeline if t > up_at + 3]
    after = Counter(s for _, s in after_rows)
    # A survey answer posted a second time (one in ten, on purpose) is a 409 with the database up.
    after_ok = all(200 <= s < 300 or (e, s) == ("survey_answer", 409) for e, s in after_rows)
    codes_5xx = {s for s in during if s >= 500}
    check(
        "b1 while PostgreSQL restarts, failures are 503 (never 500)",
        codes_5xx <= {503} and not any(s >= 500 and s != 503 for s in after),
        f"restart took {downtime:.1f} s; statuses during {dict(during)}",
    )
    check(
        "b2 requests succeed again once it is back",
        bool(after) and after_ok,
        f"statuses from 3 s after: {dict(after)}",
    )
    final = b.wait_run(run_id, {"succeeded", "failed"}, 120)
    runs = b.runs_of(key)
    check(
        "b3 an analysis caught by the restart retries and succeeds (one run)",
        final == "succeeded" and runs == Counter(succeeded=1),
        f"run was {status} at the restart; now {final}; runs {dict(runs)}",
    )


# --- (c) ------------------------------------------------------------------------------------


def _fresh_orm() -> None:
    """This script's own ORM connection may predate a PostgreSQL restart: reconnect."""
    from django.db import connections

    connections.close_all()


def fault_redis_stopped(b: Bench) -> None:
    print("(c) stop Redis (broker and cache) during traffic", flush=True)
    _fresh_orm()
    key = b.fresh_experiment("fault-c")
    traffic = b.traffic(16, threads=4)
    time.sleep(3)
    b.redis.stop()
    down_at = time.monotonic()
    time.sleep(1)
    status, body = support.request(
        b.port,
        "POST",
        f"/api/v1/experiments/{key}/analyze",
        headers={"Authorization": f"Token {b.token}"},
    )
    health = support.request(b.port, "GET", "/healthz")
    time.sleep(6)
    b.redis, _ = support.start_redis(b.logs, port=b.redis_port)
    up_at = time.monotonic()
    _, timeline = b.collect(traffic)
    during = Counter((e, s) for t, e, s in timeline if down_at <= t <= up_at)
    ok_during = [s for (_, s), n in during.items() for _ in range(n) if 200 <= s < 300]
    check(
        "c1 with Redis down, offers / assignments / events / survey answers are served",
        ok_during and all(200 <= s < 300 or s == 409 for (_, s) in during),
        f"{dict(during)}",
    )
    check(
        "c2 an analysis requested meanwhile is accepted and kept (no 500)",
        status == 202 and body.get("status") == "queued",
        f"{status} {body.get('status') if isinstance(body, dict) else body!r}: "
        f"{body.get('progress_message') if isinstance(body, dict) else ''}; healthz {health}",
    )
    if status != 202:
        return
    run_id = body["job_id"]
    from experiments.dispatch import analysis_runs_requeue

    requeued = []
    deadline = time.monotonic() + 60
    while not requeued and time.monotonic() < deadline:
        try:
            requeued = analysis_runs_requeue()  # what beat runs every minute
        except Exception as exc:  # the worker reconnects first
            print(f"      sweep not yet: {exc!r}")
        if not requeued:
            time.sleep(1)
    final = b.wait_run(run_id, {"succeeded", "failed"}, 90)
    runs = b.runs_of(key)
    check(
        "c3 once Redis is back, the waiting analysis runs (one run)",
        final == "succeeded" and runs == Counter(succeeded=1),
        f"sweep re-sent {requeued}; now {final}; runs {dict(runs)}",
    )


# --- (d) ------------------------------------------------------------------------------------


def fault_duplicate_delivery(b: Bench) -> None:
    print("(d) duplicate task delivery", flush=True)
    _fresh_orm()
    from experiments.models import AnalysisRun, Experiment
    from experiments.tasks import analyze_experiment
    from recommendations.models import ProductRelation
    from recommendations.tasks import mine_relations_task

    key = b.fresh_experiment("fault-d")
    run = AnalysisRun.objects.create(
        experiment=Experiment.objects.get(key=key), task_id=str(uuid.uuid4())
    )
    analyze_experiment.apply_async(args=[run.pk], task_id=run.task_id)
    analyze_experiment.apply_async(args=[run.pk], task_id=run.task_id)  # the same message again
    b.wait_run(run.pk, {"succeeded", "failed"}, 60)
    first = b.run_row(run.pk)
    time.sleep(3)  # let the second copy finish too
    analyze_experiment.apply_async(args=[run.pk], task_id=run.task_id)  # and a late one
    time.sleep(3)
    last = b.run_row(run.pk)
    runs = b.runs_of(key)
    check(
        "d1 the same analysis delivered three times → one result, computed once",
        first[0] == "succeeded" and last[2] == first[2] and runs == Counter(succeeded=1),
        f"runs {dict(runs)}; computed_at {first[2]} then {last[2]}",
    )

    def mined() -> set:
        return set(
            ProductRelation.objects.filter(origin="mined").values_list(
                "source__sku", "target__sku", "pair_count"
            )
        )

    def mining_done(n: int) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if _succeeded(b, "mine_relations_task") >= n:
                return
            time.sleep(0.3)

    from experiments.models import OutcomeEvent

    if OutcomeEvent.objects.filter(type="order_placed").count() < 200:
        b.collect(b.traffic(15))  # order history to mine (when run alone)
    base = _succeeded(b, "mine_relations_task")
    mine_relations_task.apply_async()
    mining_done(base + 1)
    single = mined()
    mine_relations_task.apply_async()
    mine_relations_task.apply_async()  # two at once on a worker with two pool processes
    mining_done(base + 3)
    twice = mined()
    check(
        "d2 mining delivered twice at the same time → the same relations as one run",
        single and twice == single and _succeeded(b, "mine_relations_task") == base + 3,
        f"one run: {len(single)} mined relations; after two at once: {len(twice)} "
        f"(lost {len(single - twice)}, new {len(twice - single)}); "
        f"runs finished {_succeeded(b, 'mine_relations_task') - base}",
    )


def _succeeded(b: Bench, task: str) -> int:
    """How many runs of ``task`` the current worker logged as succeeded."""
    return sum(
        1 for line in b.worker.log_text().splitlines() if f"{task}[" in line and "succeeded" in line
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="a,b,c,d", help="comma-separated faults to run")
    parser.add_argument("--database", default="offerlab_bench_faults")
    args = parser.parse_args()
    only = set(args.only.split(","))
    b = Bench(args)
    try:
        for name, fault in (
            ("a", fault_worker_killed),
            ("b", fault_postgres_restart),
            ("c", fault_redis_stopped),
            ("d", fault_duplicate_delivery),
        ):
            if name in only:
                try:
                    fault(b)
                except Exception as exc:  # one broken scenario must not hide the others
                    check(f"{name}  scenario ran to the end", False, repr(exc))
        total = load._merge(b.stats)
        print("records (all phases):", flush=True)
        for name, ok, detail in load.reconcile(b.conninfo, total, b.ctx["assigned"], exact=False):
            check(name, ok, detail)
    finally:
        b.close()
    failed = [r for r in RESULTS if not r[1]]
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    print(f"logs: {b.logs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
