"""`manage.py analyze KEY [--json]`: analyse an experiment now and print the result."""

import json

from django.core.management.base import BaseCommand, CommandError

from experiments.analysis import analysis_run
from experiments.models import Experiment


def _fmt(kind: str, value, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "+" if signed else ""
    if kind == "proportion":
        return f"{value * 100:{sign}.2f}" + (" pp" if signed else " %")
    if kind == "time_to_event":
        return f"{value:{sign}.1f} h"
    return f"{value:{sign}.3f}"


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:+.1f} %"


def _p(value) -> str:
    return "—" if value is None else (f"{value:.4f}" if value >= 0.0001 else f"{value:.1e}")


def metric_table(metrics: list[dict], primary: str | None = None) -> list[str]:
    """One block per metric: variants with n and value, then each comparison with control."""
    header = (
        f"{'metric':<30} {'variant':<14} {'n':>9} {'value':>10} {'difference':>11} "
        f"{'95 % CI':>23} {'lift':>8} {'p':>8} {'p (Holm)':>8} {'sig':>3} {'P(beat)':>7}"
    )
    lines = [header, "-" * len(header)]
    for metric in metrics:
        kind = metric["kind"]
        label = metric["metric"] + (" *" if metric["metric"] == primary else "")
        label += " (guardrail)" if metric.get("guardrail") else ""
        by_variant = {c["variant"]: c for c in metric["comparisons"]}
        for i, v in enumerate(metric["variants"]):
            c = by_variant.get(v["variant"])
            row = f"{label if i == 0 else '':<30} {v['variant']:<14} {v['n']:>9,} "
            row += f"{_fmt(kind, v['value']):>10}"
            if c is not None:
                if c.get("difference") is None and c.get("p_value") is None:
                    row += f" {c.get('note') or 'not enough data':>11}"
                else:
                    ci = (
                        f"[{_fmt(kind, c['ci_low'], signed=True)}, "
                        f"{_fmt(kind, c['ci_high'], signed=True)}]"
                        if c.get("ci_low") is not None
                        else "—"
                    )
                    chance = c.get("chance_to_beat_control")
                    row += (
                        f" {_fmt(kind, c['difference'], signed=True):>11} {ci:>23} "
                        f"{_pct(c.get('relative_lift')):>8} {_p(c.get('p_value')):>8} "
                        f"{_p(c.get('p_value_adjusted')):>8} "
                        f"{'yes' if c.get('significant') else 'no':>3} "
                        f"{'—' if chance is None else f'{chance:.0%}':>7}"
                    )
            lines.append(row.rstrip())
    return lines


def render_text(result: dict) -> str:
    info = result.get("experiment_info") or {}
    srm, power = result["srm"], result["power"]
    counts = ", ".join(f"{k} {n:,}" for k, n in srm["counts"].items())
    verdict = {True: "passed", False: "FAILED", None: "pending"}[srm["passed"]]
    lines = [
        f"Analysis of {result['experiment']} — window {result['window']['start']} → "
        f"{result['window']['end']}",
        f"Sample ratio: {verdict} (p = {_p(srm['p_value'])}): {counts}",
        f"Power ({power['metric']}): baseline {power['baseline']}, MDE {power['mde']}, "
        f"{power['required_per_variant'] or '—'} per variant needed, "
        f"{power['current_min_per_variant']:,} in the smallest variant"
        + (
            f", about {power['days_remaining']:.1f} more days"
            if power.get("days_remaining")
            else ""
        ),
        "",
        *metric_table(result["metrics"], info.get("primary_metric")),
        "",
        "* primary metric. Segments, weeks and the daily chart: --json.",
    ]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Analyse an experiment now (synchronously) and print the results."

    def add_arguments(self, parser):
        parser.add_argument("key", help="The experiment's key.")
        parser.add_argument("--json", action="store_true", help="Print the analysis JSON.")

    def handle(self, *args, key: str, json: bool = False, **options):
        experiment = Experiment.objects.filter(key=key).first()
        if experiment is None:
            raise CommandError(f"No experiment with key '{key}'.")
        run = analysis_run(experiment=experiment)
        if run.status != run.RunStatus.SUCCEEDED:
            raise CommandError(f"The analysis of '{key}' failed: {run.error}")
        if json:
            self.stdout.write(_dumps(run.result))
        else:
            self.stdout.write(render_text(run.result))


def _dumps(result: dict) -> str:
    return json.dumps(result, indent=2, allow_nan=False)
