"""Readiness rules, text report and chart drawing vs serialising the analysis snapshot.

    DEBUG=1 .venv/bin/python bench/report.py

Builds one analysis result by hand in the contract shape (tests/experiments/readiness_results.py:
two arms, five metrics, three weeks, two segments, 21 days of cumulative lift) and times, each
the best of several repeats in this process:

  baseline: json.dumps(result)              — the cost of just serialising the snapshot
  rules:    readiness.evaluate(result, …)   — the nine criteria, verdict and next step
  text:     the terminal report without charts (rules + formatting)
  charts:   the four SVG charts (matplotlib, Agg)
  cached:   the charts of a run read back from Django's cache (what a second page view costs)

Figures are ratios to the baseline measured in the same run: the machine is shared with other
engineers' test runs, so absolute times move; the ratios move much less.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    import django

    django.setup()
    from django.core.cache import cache

    from experiments import charts
    from experiments.models import AnalysisRun, Experiment
    from experiments.readiness import ReadinessSettings, evaluate
    from experiments.report import Report, render_text
    from tests.experiments.readiness_results import healthy_result

    result = healthy_result()
    cfg = ReadinessSettings(traffic_percent=10.0)
    experiment = Experiment(key="bench", name="Bench", factor="timing", traffic_percent=10.0)
    run = AnalysisRun(experiment=experiment, result=result)
    readiness = evaluate(result, cfg)
    report = Report(experiment=experiment, run=run, readiness=readiness)

    charts.all_charts(result)  # first draw loads fonts; not what a page view pays
    svgs = charts.all_charts(result)
    cache.set("bench:charts", svgs, 60)

    timings = {
        "baseline json.dumps(result)": best_of(lambda: json.dumps(result), 200),
        "rules (evaluate)": best_of(lambda: evaluate(result, cfg), 200),
        "text report": best_of(lambda: render_text(report), 100),
        "4 charts drawn": best_of(lambda: charts.all_charts(result), 3),
        "4 charts from cache": best_of(lambda: cache.get("bench:charts"), 50),
    }
    base = timings["baseline json.dumps(result)"]
    size = sum(len(c["svg"] or "") for c in svgs)
    print(
        f"result JSON {len(json.dumps(result)) / 1024:.0f} KiB, 4 SVG charts {size / 1024:.0f} KiB"
    )
    print(f"{'step':<30} {'best (ms)':>10} {'× baseline':>11}")
    for name, seconds in timings.items():
        print(f"{name:<30} {seconds * 1000:>10.2f} {seconds / base:>11.1f}")


if __name__ == "__main__":
    main()
