"""Full analysis vs one join-scan aggregate, and the worker's peak memory, at 100k and 1M customers.

    .venv/bin/python bench/analysis.py                      # 100,000 then 1,000,000 customers
    .venv/bin/python bench/analysis.py --sizes 200000       # other sizes

Needs PostgreSQL (BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres). Each size
runs in a fresh child process on a freshly created database `offerlab_bench_analysis`: the
child migrates it, generates N assigned customers (3 segments, 28 days, two variants) and 3·N
outcome events (orders with one line, offers shown and accepted, abandoned carts) plus one offer
for every third customer with `generate_series`, runs VACUUM ANALYZE and a CHECKPOINT (so that
no checkpoint of the load's writes is spread over the timing), then times

  floor: SELECT variant_id, count(*), sum(amount) FROM assignments JOIN events … GROUP BY variant
  full:  analysis_run(...) — metrics SQL, every statistic, segments, weeks, daily chart,
         readiness, the AnalysisRun row (what the Celery worker does)

the floor once to warm the cache, then --rounds rounds (default 3) of the floor followed by the
analysis; each round's ratio compares two timings a few seconds apart, so a change in the
shared host's speed reaches both alike, and the median round is the figure. The child's peak RSS
(getrusage ru_maxrss) is the worker's memory for that size. The machine is shared and has
2 cores: compare the ratio and the RSS, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "offerlab_bench_analysis"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(n: int) -> int:
    """Rows for one experiment with ``n`` customers; returns the experiment id."""
    from django.db import connection

    from experiments.models import Assignment, EventItem, Experiment, OutcomeEvent, Status, Variant
    from recommendations.models import Offer

    experiment = Experiment.objects.create(
        key="bench",
        name="bench",
        factor="timing",
        trigger="post_purchase",
        status=Status.RUNNING,
        baseline_rate=0.10,
        mde=0.01,
    )
    control = Variant.objects.create(experiment=experiment, key="control", is_control=True)
    treatment = Variant.objects.create(experiment=experiment, key="next-day", position=1)
    a, e, i, o = (
        Assignment._meta.db_table,
        OutcomeEvent._meta.db_table,
        EventItem._meta.db_table,
        Offer._meta.db_table,
    )
    start = "now() - interval '28 days'"
    with connection.cursor() as cur:
        # Bulk load as pg_restore does: plain indexes dropped first, rebuilt after the load.
        cur.execute(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
               WHERE i.tablename = ANY(%s) AND NOT EXISTS (
                   SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
            [[a, e, i, o]],
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("SELECT setseed(0.42)")
        cur.execute(
            f"""
            INSERT INTO {a} (experiment_id, variant_id, customer_id, segment, attributes,
                             assigned_at)
            SELECT %s, CASE WHEN g %% 2 = 0 THEN %s ELSE %s END, 'c' || g,
                   (ARRAY['gold', 'silver', 'bronze'])[1 + g %% 3], '{{}}'::jsonb,
                   {start} + (g %% 28) * interval '1 day' + (g %% 86400) * interval '1 second'
            FROM generate_series(1, %s) g
            """,
            [experiment.id, control.id, treatment.id, n],
        )
        # 3·n events; customer k = 1 + (g·7919 mod n); 40 % orders, 30 % shown, 20 % accepted,
        # 10 % abandoned carts; times spread over 6 weeks (some before assignment: CUPED).
        cur.execute(
            f"""
            INSERT INTO {e} (event_id, type, customer_id, occurred_at, offer_id, order_id,
                             amount, currency, received_at)
            SELECT md5(g::text || random()::text)::uuid,
                   CASE WHEN r < 0.4 THEN 'order_placed' WHEN r < 0.7 THEN 'offer_shown'
                        WHEN r < 0.9 THEN 'offer_accepted' ELSE 'cart_abandoned' END,
                   'c' || (1 + (g::bigint * 7919) %% %s),
                   now() - interval '42 days' + random() * interval '42 days',
                   NULL,
                   CASE WHEN r < 0.4 THEN 'o' || g ELSE '' END,
                   CASE WHEN r < 0.4 THEN round((5 + random() * 120)::numeric, 2) END,
                   CASE WHEN r < 0.4 THEN 'EUR' ELSE '' END,
                   now()
            FROM (SELECT g, random() AS r FROM generate_series(1, %s) g) s
            """,
            [n, 3 * n],
        )
        cur.execute(
            f"""
            INSERT INTO {i} (event_id, type, customer_id, occurred_at, sku, category, quantity,
                             price)
            SELECT id, type, customer_id, occurred_at, 'sku-' || (id %% 400),
                   'cat-' || (id %% 12), 1, amount
            FROM {e} WHERE type = 'order_placed'
            """,
            [],
        )
        cur.execute(
            f"""
            INSERT INTO {o} (offer_id, customer_id, trigger, occurred_at, context, experiment_id,
                             variant_id, channel, send_at, message, products, created_at)
            SELECT md5('offer' || g)::uuid, 'c' || g, 'post_purchase', now(), '{{}}'::jsonb,
                   %s, CASE WHEN g %% 2 = 0 THEN %s ELSE %s END, 'email', now(), '{{}}'::jsonb,
                   jsonb_build_array(jsonb_build_object('sku', 'sku-' || (g %% 400)),
                                     jsonb_build_object('sku', 'sku-' || ((g + 7) %% 400))),
                   now() - interval '1 day'
            FROM generate_series(1, %s, 3) g
            """,
            [experiment.id, control.id, treatment.id, n],
        )
        for _, definition in indexes:
            cur.execute(definition)
        # As autovacuum leaves a table in steady state (and so that it does not start in the
        # middle of a timing): pages marked all-visible, so scans skip per-row visibility checks.
        for table in (a, e, i, o):
            cur.execute(f"VACUUM ANALYZE {table}")
    return experiment.id


def _floor(experiment_id: int) -> float:
    from django.db import connection

    from experiments.models import Assignment, OutcomeEvent

    sql = f"""
        SELECT a.variant_id, count(*), sum(e.amount)
        FROM {Assignment._meta.db_table} a
        JOIN {OutcomeEvent._meta.db_table} e ON e.customer_id = a.customer_id
        WHERE a.experiment_id = %s
        GROUP BY a.variant_id"""
    with connection.cursor() as cur:
        started = time.perf_counter()
        cur.execute(sql, [experiment_id])
        cur.fetchall()
    return time.perf_counter() - started


def _full(experiment_id: int) -> tuple[float, float, str]:
    from experiments.analysis import analysis_run
    from experiments.metrics import collect_metrics
    from experiments.models import Experiment

    experiment = Experiment.objects.get(pk=experiment_id)
    started = time.perf_counter()
    run = analysis_run(experiment=experiment)
    total = time.perf_counter() - started
    if run.status != "succeeded":
        raise SystemExit(f"analysis failed: {run.error}")
    started = time.perf_counter()
    collect_metrics(experiment=experiment, window_start=run.window_start, window_end=run.window_end)
    return total, time.perf_counter() - started, run.status


def child(n: int, reuse: bool = False, rounds: int = 3) -> dict:
    from bench._support import checkpoint, checkpoints, database_url, recreate_database

    url = database_url(DB_NAME) if reuse else recreate_database(DB_NAME)
    os.environ.update(
        {"DATABASE_URL": url, "DEBUG": "0", "SECRET_KEY": "bench-analysis-not-secret" * 2}
    )
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from experiments.models import AnalysisRun, Experiment

    started = time.perf_counter()
    existing = Experiment.objects.filter(key="bench").first() if reuse else None
    if existing is not None and existing.assignments.count() == n:
        AnalysisRun.objects.filter(experiment=existing).delete()
        experiment_id = existing.id
    elif reuse:
        raise SystemExit(f"--reuse: {DB_NAME} does not hold {n:,} customers; run without it")
    else:
        experiment_id = _generate(n)
    generated = time.perf_counter() - started
    # The load's writes flushed now, not by a checkpoint spread over the timing.
    checkpoint_problem = checkpoint()
    checkpoints_before = checkpoints()
    rss_before = _rss_mb()
    _floor(experiment_id)  # warm the cache
    pairs = []
    for _ in range(rounds):
        floor = _floor(experiment_id)
        pairs.append((_full(experiment_id), floor))
    checkpoints_after = checkpoints()
    ratios = sorted(full[0] / floor for full, floor in pairs)
    (full, floor) = sorted(pairs, key=lambda p: p[0][0] / p[1])[len(pairs) // 2]
    return {
        "customers": n,
        "events": 3 * n,
        "generate_s": generated,
        "floor_s": floor,
        "full_s": full[0],
        "metrics_sql_s": full[1],
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _rss_mb(),
        "checkpoint_problem": checkpoint_problem,
        "checkpoints_during": (
            None
            if checkpoints_before is None or checkpoints_after is None
            else checkpoints_after - checkpoints_before
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the bench database when it already holds the last size (one size only)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="floor + analysis pairs (median)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, reuse=args.reuse, rounds=max(args.rounds, 1))))
        return
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(n),
                "--rounds",
                str(args.rounds),
                *(["--reuse"] if args.reuse else []),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=1800,
        )
        if out.returncode != 0:
            raise SystemExit(f"size {n} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"{r['customers']:>9,} customers {r['events']:>9,} events | floor {r['floor_s']:6.2f} s"
            f" | full analysis {r['full_s']:6.2f} s (metrics SQL {r['metrics_sql_s']:6.2f} s)"
            f" | ratio {r['ratio']:4.2f}× (median of {len(r['ratios'])} rounds:"
            f" {', '.join(f'{x:.2f}' for x in r['ratios'])}; target ≤ 4×)"
            f" | peak RSS {r['peak_rss_mb']:5.0f} MB"
            f" (before analysis {r['rss_before_mb']:4.0f} MB; target < 300 MB)"
            f" | data generated in {r['generate_s']:.0f} s"
            + (
                ""
                if r["checkpoints_during"] is None
                else f" | PostgreSQL checkpoints during the timing: {r['checkpoints_during']}"
            )
            + (f" | no CHECKPOINT: {r['checkpoint_problem']}" if r["checkpoint_problem"] else ""),
            flush=True,
        )
    print("(shared 2-core machine: compare the ratio and RSS, not the seconds)")


if __name__ == "__main__":
    main()
