"""The scale-readiness report in three formats: text (terminal), JSON, and HTML with charts.

The same context feeds the admin results page and the standalone HTML export, so what a
growth team sees in admin is exactly what they can send around as a file.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.template.loader import render_to_string

from experiments import charts
from experiments.models import AnalysisRun, Experiment
from experiments.readiness import (
    DO_NOT_SCALE,
    KEEP_TESTING,
    READY,
    comparison_sentence,
    format_difference,
    format_p,
    format_value,
    metric_label,
    normalise,
    readiness_for_run,
)
from experiments.selectors import latest_analysis

FORMATS = ("text", "json", "html")
CHART_CACHE_SECONDS = 7 * 24 * 3600

CRITERION_LABELS = {
    "min_duration": "Ran long enough",
    "sample_size": "Planned sample reached",
    "srm": "Customers split as planned",
    "acceptance_above_baseline": "Primary metric beats control",
    "consistency": "Better every complete week",
    "return_rate": "Returns not worse",
    "customer_feedback": "Customers like it",
    "segments": "Works across pilot segments",
    "guardrails": "Guardrails hold",
}
VERDICT_LABELS = {
    READY: "Ready to scale",
    KEEP_TESTING: "Keep testing",
    DO_NOT_SCALE: "Do not scale",
}
STATUS_LABELS = {"pass": "PASS", "fail": "FAIL", "pending": "PENDING"}
NBSP = "\u00a0"
STATUS_SYMBOLS = {"pass": "✓", "fail": "✗", "pending": "…"}


def how_to_analyse(key: str) -> str:
    return (
        f"Experiment '{key}' has not been analysed yet. Run an analysis with "
        f"`python manage.py analyze {key}`, POST /api/v1/experiments/{key}/analyze, or the "
        "Analyze now button in admin, then ask for the report again."
    )


class NeverAnalysed(Exception):
    """The experiment has no successful analysis yet; the message says how to run one."""

    def __init__(self, key: str):
        super().__init__(how_to_analyse(key))
        self.key = key


@dataclass
class Report:
    experiment: Experiment
    run: AnalysisRun
    readiness: dict

    @property
    def result(self) -> dict:
        return self.run.result or {}


def report_for(experiment: Experiment) -> Report:
    """The readiness report of the latest successful analysis; NeverAnalysed if there is none."""
    run = latest_analysis(experiment)
    if run is None:
        raise NeverAnalysed(experiment.key)
    # Runs stored before readiness existed (or whose report failed) are judged now.
    readiness = run.readiness or readiness_for_run(run)
    return Report(experiment=experiment, run=run, readiness=readiness)


# --- JSON ----------------------------------------------------------------------------------------


def render_json(report: Report) -> str:
    return json.dumps(report.readiness, indent=2, ensure_ascii=False) + "\n"


# --- shared view model ---------------------------------------------------------------------------


def _when(value) -> str:
    if not value:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _day(value) -> str:
    return _when(value)[:10]


def _count(value) -> str:
    try:
        return f"{int(value or 0):,}"
    except (TypeError, ValueError):
        return "?"


def metric_rows(result: dict) -> list[dict]:
    """One row per metric and variant, with the comparison against control where there is one."""
    result = normalise(result)
    primary = (result.get("experiment_info") or {}).get("primary_metric")
    alpha = (result.get("experiment_info") or {}).get("alpha") or 0.05
    rows = []
    for metric in result.get("metrics") or []:
        kind = metric.get("kind", "mean")
        comparisons = {c.get("variant"): c for c in metric.get("comparisons") or []}
        tags = []
        if metric.get("metric") == primary:
            tags.append("primary")
        if metric.get("guardrail"):
            tags.append("guardrail")
        if metric.get("direction") == "lower":
            tags.append("lower is better")
        for i, variant in enumerate(metric.get("variants") or []):
            c = comparisons.get(variant.get("variant"))
            row = {
                "metric": metric_label(metric.get("metric")),
                "tags": ", ".join(tags),
                "first": i == 0,
                "span": len(metric.get("variants") or []),
                "variant": str(variant.get("variant") or "?"),
                "is_control": bool(variant.get("is_control")),
                "n": _count(variant.get("n")),
                "value": format_value(kind, variant.get("value")),
                "difference": "",
                "ci": "",
                "p": "",
                "verdict": "control" if variant.get("is_control") else "",
                "sentence": "",
            }
            if c is not None:
                if c.get("difference") is None:
                    row["verdict"] = c.get("note") or "not enough data"
                else:
                    row["difference"] = format_difference(kind, c.get("difference"))
                    if c.get("ci_low") is not None and c.get("ci_high") is not None:
                        lo = format_difference(kind, c["ci_low"]).split(" ")[0]
                        hi = format_difference(kind, c["ci_high"])
                        row["ci"] = f"{lo} to {hi}"
                    adjusted = c.get("p_value_adjusted")
                    p = format_p(adjusted if adjusted is not None else c.get("p_value"))
                    row["p"] = p.removeprefix("p = ").replace("p < ", "< ")
                    row["verdict"] = _comparison_verdict(metric, c)
                    row["sentence"] = comparison_sentence(metric, c, alpha=alpha)
            rows.append(row)
    return rows


def _comparison_verdict(metric: dict, comparison: dict) -> str:
    diff = comparison.get("difference")
    if not comparison.get("significant") or diff is None or diff == 0:
        return "no clear difference"
    better = (diff > 0) != (metric.get("direction") == "lower")
    return "better" if better else "worse"


def charts_for_run(run: AnalysisRun) -> list[dict]:
    """The run's charts; a run's result never changes, so they are drawn once and cached."""
    if run.pk is None:
        return charts.all_charts(run.result)
    key = f"offerlab:readiness-charts:{run.pk}:{charts.CHARTS_VERSION}"
    return cache.get_or_set(key, lambda: charts.all_charts(run.result), CHART_CACHE_SECONDS)


def context_for(report: Report, *, with_charts: bool = True) -> dict:
    """Everything the text and HTML renderings show."""
    result = normalise(report.result)
    info = result.get("experiment_info") or {}
    readiness = report.readiness
    experiment = report.experiment
    criteria = [
        {
            **c,
            "label": CRITERION_LABELS.get(c["key"], c["key"]),
            "status_label": STATUS_LABELS.get(c["status"], c["status"]),
            "symbol": STATUS_SYMBOLS.get(c["status"], "?"),
        }
        for c in readiness.get("criteria") or []
    ]
    days = info.get("days_running")
    window = result.get("window") or {}
    return {
        "experiment": experiment,
        "run": report.run,
        "readiness": readiness,
        "verdict": readiness.get("verdict"),
        "verdict_label": VERDICT_LABELS.get(readiness.get("verdict"), readiness.get("verdict")),
        "recommended_variant": readiness.get("recommended_variant"),
        "control": info.get("control"),
        "next_step": readiness.get("next_step"),
        "criteria": criteria,
        "counts": {s: sum(c["status"] == s for c in criteria) for s in STATUS_LABELS},
        "metric_rows": metric_rows(result),
        "charts": charts_for_run(report.run) if with_charts else [],
        "analysed_at": _when(report.run.finished_at or result.get("computed_at")),
        "window_start": _day(window.get("start")),
        "window_end": _day(window.get("end")),
        "days_running": None if days is None else int(days),
        "traffic_percent": f"{experiment.traffic_percent:g}",
        "generated_at": _when(readiness.get("generated_at")),
    }


# --- text ----------------------------------------------------------------------------------------


def _wrap(text: str, width: int, **kw) -> list[str]:
    # Keep "95 % CI", "+2.2 pts", "4.2 / 5" and "p = 0.01" on one line.
    glued = re.sub(r" (?=%|pts\b|CI\b|= |/ 5)|(?<==) |(?<=/) (?=5)", NBSP, text)
    lines = textwrap.wrap(glued, width=width, break_on_hyphens=False, **kw)
    return [line.replace(NBSP, " ") for line in lines]


def render_text(report: Report, *, width: int = 100) -> str:
    ctx = context_for(report, with_charts=False)
    e = ctx["experiment"]
    lines = [
        f"Scale-readiness report: {e.name} ({e.key})",
        f"Factor {e.factor} · traffic {ctx['traffic_percent']} % · "
        + (f"{ctx['days_running']} days running · " if ctx["days_running"] is not None else "")
        + f"analysed {ctx['analysed_at']} (window {ctx['window_start']} → {ctx['window_end']})",
        "",
        f"VERDICT: {ctx['verdict_label'].upper()}"
        + (
            f" — recommended variant: {ctx['recommended_variant']}"
            + (" (the control)" if ctx["recommended_variant"] == ctx["control"] else "")
            if ctx["recommended_variant"]
            else ""
        ),
        *_wrap(f"Next step: {ctx['next_step']}", width, subsequent_indent="           "),
        "",
        f"Criteria ({ctx['counts']['pass']} pass, {ctx['counts']['fail']} fail, "
        f"{ctx['counts']['pending']} pending):",
    ]
    label_width = max(len(c["label"]) for c in ctx["criteria"]) if ctx["criteria"] else 10

    indent = " " * (4 + 8 + label_width + 2)
    for c in ctx["criteria"]:
        head = f"  {c['symbol']} {c['status_label']:<8}{c['label']:<{label_width}}  "
        lines += _wrap(c["detail"], width, initial_indent=head, subsequent_indent=indent) or [head]
    rows = ctx["metric_rows"]
    if rows:
        lines += ["", "Metrics (each variant vs the control; p after Holm correction):"]
        header = (
            f"  {'metric':<27} {'variant':<12} {'customers':>9} {'value':>9} "
            f"{'difference':>10} {'95 % CI':>19} {'p':>7}  verdict"
        )
        lines += [header, "  " + "-" * (len(header) - 2)]
        for row in rows:
            name = row["metric"] if row["first"] else ""
            variant = row["variant"] + (" (ctl)" if row["is_control"] else "")
            lines.append(
                f"  {name:<27} {variant:<12} {row['n']:>9} {row['value']:>9} "
                f"{row['difference']:>10} {row['ci']:>19} {row['p']:>7}  {row['verdict']}".rstrip()
            )
    lines += ["", "Charts: the experiment's Results page in admin, or export them with"]
    lines.append(f"  python manage.py readiness_report {e.key} --format html --output report.html")
    return "\n".join(lines) + "\n"


# --- HTML ----------------------------------------------------------------------------------------


def render_html(report: Report) -> str:
    """A standalone page: inline CSS and SVG, no scripts, nothing loaded from elsewhere."""
    return render_to_string("experiments/results_standalone.html", context_for(report))


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "html":
        return render_html(report)
    if fmt == "text":
        return render_text(report)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
