"""Metrics → statistics → an AnalysisRun snapshot (the "Analysis JSON" of DESIGN.md).

`analysis_request` queues a run (one active run per experiment); `analysis_run` computes it
synchronously. A run either ends `succeeded` with its whole result, or `failed` with its
error and no result: the snapshot is written in one UPDATE at the end.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from experiments import stats
from experiments.dispatch import analysis_publish
from experiments.metrics import (
    MetricsData,
    Selection,
    Stats,
    collect_metrics,
    metric_stats,
    survey_kind,
    week_start,
)
from experiments.models import AnalysisRun, Experiment, Metric, Status
from experiments.readiness import readiness_for_run
from experiments.stats.types import empty_comparison, json_safe

logger = logging.getLogger(__name__)

RunStatus = AnalysisRun.RunStatus
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
TRANSIENT_ERRORS = (OperationalError, InterfaceError)

# A comparison needs at least this many customers (or answers) in each arm.
MIN_PER_ARM = 8
# Segments reported one by one; smaller ones are added up under OTHER_SEGMENTS.
MAX_SEGMENTS = 20
OTHER_SEGMENTS = "(other)"

# name -> (kind, direction); kind of csat/intrusiveness depends on the question type.
METRICS: dict[str, tuple[str, str]] = {
    Metric.ACCEPTANCE_RATE.value: ("proportion", "higher"),
    Metric.TIME_TO_SECONDARY_PURCHASE.value: ("time_to_event", "lower"),
    Metric.CATEGORY_EXPANSION_RATE.value: ("proportion", "higher"),
    Metric.CROSS_SELL_AOV.value: ("mean", "higher"),
    Metric.REVENUE_PER_CUSTOMER.value: ("mean", "higher"),
    Metric.RETURN_RATE.value: ("proportion", "lower"),
    Metric.CART_ABANDONMENT_RATE.value: ("proportion", "lower"),
    Metric.CSAT.value: ("rating", "higher"),
    Metric.INTRUSIVENESS.value: ("rating", "lower"),
    Metric.SURVEY_RESPONSE_RATE.value: ("proportion", "higher"),
}
DEFAULT_GUARDRAILS = frozenset({Metric.RETURN_RATE.value, Metric.CART_ABANDONMENT_RATE.value})
TESTS = {
    "proportion": "two_proportion_z",
    "mean": "welch_t",
    "rating": "mann_whitney_u",
    "time_to_event": "log_rank",
}
RATE_KINDS = frozenset({"proportion"})


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- planning numbers ------------------------------------------------------------------------


def planned_per_variant(experiment: Experiment) -> int | None:
    """Evan Miller n per variant from the experiment's baseline rate and MDE (None if invalid)."""
    try:
        return stats.required_sample_size(
            experiment.baseline_rate, experiment.mde, experiment.alpha, experiment.power
        )
    except (TypeError, ValueError):
        return None


def _normal_quantiles(alpha: float, power: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2) + norm.ppf(power))


def required_per_variant_for_mean(variance: float, mde: float, alpha: float, power: float):
    """n = 2·(z₁₋α/₂ + z₁₋β)²·σ²/δ² for a difference in means (σ² = control's variance)."""
    if variance is None or not math.isfinite(variance) or variance <= 0 or mde <= 0:
        return None
    return round(2 * _normal_quantiles(alpha, power) ** 2 * variance / mde**2)


# --- one metric ------------------------------------------------------------------------------


def _variant_entry(key: str, is_control: bool, stats_: Stats) -> dict:
    summary = stats.variant_summary(key, stats_).to_dict()
    entry = {"variant": key, "is_control": is_control, "n": summary["n"], "value": summary["value"]}
    if isinstance(stats_, stats.RatingHistogram):
        entry["histogram"] = [int(c) for c in stats_.counts]
    return entry


def _too_small(stats_: Stats) -> bool:
    return stats_.n < MIN_PER_ARM


def _compare(
    kind: str,
    control: Stats,
    treatment: Stats,
    *,
    variant: str,
    baseline: str,
    alpha: float,
    theta: float | None,
    n_star: int | None,
) -> stats.Comparison:
    test = TESTS[kind]
    unit = "ratings" if kind == "rating" else "customers"
    for name, arm in ((baseline, control), (variant, treatment)):
        if _too_small(arm):
            return empty_comparison(
                variant=variant,
                baseline=baseline,
                test=test,
                why=f"fewer than {MIN_PER_ARM} {unit} in {name} ({arm.n})",
            )
    args = {"variant": variant, "baseline": baseline, "alpha": alpha}
    try:
        if kind == "proportion":
            return stats.compare_proportions(control, treatment, sequential_n_star=n_star, **args)
        if kind == "mean":
            return stats.compare_means(
                control, treatment, theta=theta, sequential_n_star=n_star, **args
            )
        if kind == "rating":
            return stats.compare_ratings(control, treatment, **args)
        return stats.compare_time_to_event(control, treatment, **args)
    except (ArithmeticError, ValueError) as exc:  # degenerate input the tests could not take
        logger.warning("comparison %s vs %s failed: %s", variant, baseline, exc)
        return empty_comparison(variant=variant, baseline=baseline, test=test, why=str(exc))


def metric_result(
    *,
    name: str,
    kind: str,
    by_variant: Mapping[int, Stats],
    data: MetricsData,
    experiment: Experiment,
    guardrails: frozenset[str],
    n_star: int | None = None,
) -> dict:
    """One entry of ``metrics``: per-variant values and Holm-adjusted comparisons."""
    direction = METRICS[name][1]
    control = data.control
    variants = [_variant_entry(v.key, v.is_control, by_variant[v.id]) for v in data.variants]
    comparisons: list[stats.Comparison] = []
    if control is not None:
        theta = None
        if kind == "mean":
            theta = stats.cuped_theta([by_variant[v.id] for v in data.variants])
        for v in data.variants:
            if v.is_control:
                continue
            comparisons.append(
                _compare(
                    kind,
                    by_variant[control.id],
                    by_variant[v.id],
                    variant=v.key,
                    baseline=control.key,
                    alpha=experiment.alpha,
                    theta=theta,
                    n_star=n_star if kind in ("proportion", "mean") else None,
                )
            )
        comparisons = stats.apply_holm(comparisons, alpha=experiment.alpha)
    return {
        "metric": name,
        "kind": kind,
        "guardrail": name in guardrails,
        "direction": direction,
        "variants": variants,
        "comparisons": [c.to_dict() for c in comparisons],
    }


def _kind(data: MetricsData, name: str) -> str:
    kind = METRICS[name][0]
    if name in (Metric.CSAT.value, Metric.INTRUSIVENESS.value):
        return survey_kind(data, name)
    return kind


def metrics_block(
    data: MetricsData,
    selection: Selection,
    experiment: Experiment,
    *,
    n_star: int | None = None,
    only: str | None = None,
) -> list[dict]:
    """All metrics (or just ``only``) for the selected rows (a segment, a week, or everything)."""
    by_metric = metric_stats(data, selection, only=only)
    guardrails = _guardrails(experiment)
    return [
        metric_result(
            name=name,
            kind=_kind(data, name),
            by_variant=by_metric.get(name, {}),
            data=data,
            experiment=experiment,
            guardrails=guardrails,
            n_star=n_star,
        )
        for name in METRICS
        if only is None or name == only
    ]


def _guardrails(experiment: Experiment) -> frozenset[str]:
    chosen = {m for m in experiment.guardrail_metrics or () if m in METRICS}
    return frozenset((DEFAULT_GUARDRAILS | chosen) - {experiment.primary_metric})


# --- breakdowns ------------------------------------------------------------------------------


def _segment_selections(data: MetricsData) -> list[tuple[str, MetricsData]]:
    """(name, data) per segment; beyond MAX_SEGMENTS the smallest are merged into "(other)"."""
    segments = data.segments()
    if len(segments) <= MAX_SEGMENTS:
        return [(s, data) for s in segments]
    keep = set(segments[: MAX_SEGMENTS - 1])

    def relabel(mapping: dict) -> dict:
        out: dict = {}
        for key, value in mapping.items():
            segment = key[1] if key[1] in keep else OTHER_SEGMENTS
            new_key = (key[0], segment, *key[2:])
            if isinstance(value, list):
                old = out.setdefault(new_key, [0.0] * len(value))
                out[new_key] = [a + b for a, b in zip(old, value, strict=True)]
            else:
                merged = out.setdefault(new_key, {})
                for k, n in value.items():
                    merged[k] = merged.get(k, 0) + n
        return out

    merged = MetricsData(
        window_start=data.window_start,
        window_end=data.window_end,
        variants=data.variants,
        cells=relabel(data.cells),
        survival=relabel(data.survival),
        ratings=relabel(data.ratings),
        displays=relabel(data.displays),
    )
    return [(s, merged) for s in [*segments[: MAX_SEGMENTS - 1], OTHER_SEGMENTS]]


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _weeks(
    data: MetricsData, days: Iterable[date], metrics_for: Callable[[date], list[dict]]
) -> list[dict]:
    """One entry per ISO week of ``days``; complete when the whole week lies inside the window.

    ``metrics_for(monday)`` gives the week's metrics block.
    """
    out = []
    for monday in sorted({week_start(day) for day in days}):
        iso = monday.isocalendar()
        complete = (
            _utc_midnight(monday) >= data.window_start
            and _utc_midnight(monday + timedelta(days=7)) <= data.window_end
        )
        out.append(
            {
                "week": f"{iso.year}-W{iso.week:02d}",
                "start": monday.isoformat(),
                "end": (monday + timedelta(days=6)).isoformat(),
                "complete": complete,
                "metrics": metrics_for(monday),
            }
        )
    return out


def _segment_weekly(
    source: MetricsData, segment: str, experiment: Experiment, primary: str | None
) -> list[dict]:
    """The primary metric alone, per ISO week in which ``segment`` has assigned customers."""
    if primary is None:
        return []
    # Each week's roll-up then scans this segment's rows only. Survey answers stay whole:
    # whether a survey metric is a rating or a rate is decided over all of them.
    rows = replace(
        source,
        cells={k: v for k, v in source.cells.items() if k[1] == segment},
        survival={k: v for k, v in source.survival.items() if k[1] == segment},
        displays={k: v for k, v in source.displays.items() if k[1] == segment},
    )
    return _weeks(
        rows,
        rows.days(),
        lambda monday: metrics_block(
            rows, Selection(segment=segment, week=monday), experiment, only=primary
        ),
    )


def segments_block(data: MetricsData, experiment: Experiment) -> list[dict]:
    """Per segment: every metric over the window, and the primary metric week by week."""
    primary = experiment.primary_metric if experiment.primary_metric in METRICS else None
    return [
        {
            "segment": name,
            "metrics": metrics_block(source, Selection(segment=name), experiment),
            "weekly": _segment_weekly(source, name, experiment, primary),
        }
        for name, source in _segment_selections(data)
    ]


def weekly_block(data: MetricsData, experiment: Experiment) -> list[dict]:
    """Per ISO week of assignment (all customers); complete when the window covers the week."""
    return _weeks(
        data,
        data.days(),
        lambda monday: metrics_block(data, Selection(week=monday), experiment),
    )


def daily_block(data: MetricsData, experiment: Experiment, *, n_star: int | None) -> list[dict]:
    """Cumulative primary-metric lift by day of assignment (customers assigned up to that day)."""
    name = experiment.primary_metric if experiment.primary_metric in METRICS else None
    days = data.days()
    control = data.control
    if not days or name is None:
        return []
    kind = _kind(data, name)
    out = []
    day = days[0]
    last = max(days[-1], data.window_end.date())
    while day <= last:
        selection = Selection(until=day)
        counts = {
            v.key: round(
                sum(cell[0] for (vid, _, d), cell in data.cells.items() if vid == v.id and d <= day)
            )
            for v in data.variants
        }
        cumulative = []
        if control is not None and kind != "time_to_event":
            entry = metric_result(
                name=name,
                kind=kind,
                by_variant=metric_stats(data, selection, only=name)[name],
                data=data,
                experiment=experiment,
                guardrails=frozenset(),
                n_star=n_star,
            )
            cumulative = [
                {
                    "variant": c["variant"],
                    "difference": c["difference"],
                    "ci_low": c["ci_low"],
                    "ci_high": c["ci_high"],
                    "relative_lift": c["relative_lift"],
                }
                for c in entry["comparisons"]
            ]
        out.append({"date": day.isoformat(), "counts": counts, "cumulative": cumulative})
        day += timedelta(days=1)
    return out


# --- the whole snapshot ----------------------------------------------------------------------


def analysis_window(
    experiment: Experiment, at: datetime | None = None
) -> tuple[datetime, datetime]:
    """(start, end): from the start (or first assignment) to now, or to the end if stopped."""
    now = at or timezone.now()
    end = now
    if experiment.status in (Status.STOPPED, Status.SHIPPED) and experiment.ended_at:
        end = min(experiment.ended_at, now)
    start = experiment.started_at
    if start is None:
        first = (
            experiment.assignments.order_by("assigned_at")
            .values_list("assigned_at", flat=True)
            .first()
        )
        start = first or end
    return min(start, end), end


def _power_block(
    experiment: Experiment, data: MetricsData, overall: list[dict], counts: dict[str, int]
) -> dict:
    primary = next((m for m in overall if m["metric"] == experiment.primary_metric), None)
    control = data.control
    baseline = None
    if primary and control:
        baseline = next(
            (v["value"] for v in primary["variants"] if v["variant"] == control.key), None
        )
    required = None
    kind = primary["kind"] if primary else None
    if kind in RATE_KINDS or kind is None:
        required = planned_per_variant(experiment)
    elif kind in ("mean", "rating") and control is not None:
        by_variant = metric_stats(data, Selection(), only=experiment.primary_metric)[
            experiment.primary_metric
        ]
        arm = by_variant[control.id]
        if isinstance(arm, stats.MeanStats):
            variance = stats.sample_variance(arm.n, arm.sum, arm.sum_sq)
        else:
            mean = stats.rating_mean(arm)
            variance = (
                sum(c * (i + arm.first_value - mean) ** 2 for i, c in enumerate(arm.counts))
                / (arm.n - 1)
                if mean is not None and arm.n > 1
                else None
            )
        required = required_per_variant_for_mean(
            variance, experiment.mde, experiment.alpha, experiment.power
        )
    current = min(counts.values()) if counts else 0
    elapsed_days = (data.window_end - data.window_start).total_seconds() / 86400
    daily = current / elapsed_days if elapsed_days >= 1 / 24 else None
    remaining = None
    if required is not None:
        remaining = stats.days_remaining(required, current, daily if daily is not None else 0.0)
    return {
        "metric": experiment.primary_metric,
        "baseline": baseline,
        "mde": experiment.mde,
        "required_per_variant": required,
        "days_remaining": remaining,
        "current_min_per_variant": current,
        "daily_rate_per_variant": daily,
    }


def _experiment_info(experiment: Experiment, data: MetricsData) -> dict:
    days_running = None
    if experiment.started_at is not None:
        days_running = max((data.window_end - experiment.started_at).total_seconds(), 0) / 86400
    control = data.control
    return {
        "key": experiment.key,
        "name": experiment.name,
        "factor": experiment.factor,
        "status": experiment.status,
        "started_at": _iso(experiment.started_at),
        "days_running": days_running,
        "traffic_percent": experiment.traffic_percent,
        "min_days": experiment.min_days,
        "safe_peeking": experiment.safe_peeking,
        "alpha": experiment.alpha,
        "primary_metric": experiment.primary_metric,
        "guardrail_metrics": sorted(_guardrails(experiment)),
        "control": control.key if control else None,
        "variants": [v.key for v in data.variants],
    }


def build_result(
    experiment: Experiment,
    data: MetricsData,
    *,
    computed_at: datetime,
    progress: Callable[[int, str], None] = lambda pct, message: None,
) -> dict:
    """The DESIGN.md analysis JSON for ``data`` (JSON-safe: no NaN or infinity)."""
    counts = {
        v.key: round(sum(c[0] for (vid, _, _), c in data.cells.items() if vid == v.id))
        for v in data.variants
    }
    weights = {v.key: v.weight for v in data.variants}
    srm = stats.srm_check(counts, weights, threshold=settings.OFFERLAB_SRM_THRESHOLD)
    planned = planned_per_variant(experiment)
    n_star = planned * len(data.variants) if experiment.safe_peeking and planned else None

    progress(40, "comparing variants")
    overall = metrics_block(data, Selection(), experiment, n_star=n_star)
    progress(55, "per segment")
    segments = segments_block(data, experiment)
    progress(70, "per week")
    weekly = weekly_block(data, experiment)
    progress(80, "cumulative lift by day")
    daily = daily_block(data, experiment, n_star=n_star)
    result = {
        "experiment": experiment.key,
        "computed_at": computed_at.isoformat(),
        "window": {"start": data.window_start.isoformat(), "end": data.window_end.isoformat()},
        "srm": srm.to_dict(),
        "power": _power_block(experiment, data, overall, counts),
        "metrics": overall,
        "segments": segments,
        "weekly": weekly,
        "daily": daily,
        "experiment_info": _experiment_info(experiment, data),
    }
    result = json_safe(result)
    json.dumps(result, allow_nan=False)  # the contract: never NaN or infinity
    return result


# --- runs ------------------------------------------------------------------------------------


def _stale_after() -> timedelta:
    """An active run older than the task's hard time limit (plus retries) was abandoned."""
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT * 2 + 600)


def _expire_stale_runs(experiment: Experiment) -> None:
    cutoff = timezone.now() - _stale_after()
    AnalysisRun.objects.filter(
        experiment=experiment, status__in=ACTIVE, created_at__lt=cutoff
    ).update(
        status=RunStatus.FAILED,
        finished_at=timezone.now(),
        error="abandoned: the job did not finish within its time limit",
    )


def active_run(experiment: Experiment) -> AnalysisRun | None:
    return AnalysisRun.objects.filter(experiment=experiment, status__in=ACTIVE).first()


def _create_run(experiment: Experiment, requested_by=None) -> tuple[AnalysisRun, bool]:
    """A new queued run, or (active run, False) when one is already queued or running."""
    _expire_stale_runs(experiment)
    try:
        with transaction.atomic():
            run = AnalysisRun.objects.create(
                experiment=experiment,
                status=RunStatus.QUEUED,
                requested_by=requested_by,
                task_id=str(uuid.uuid4()),
                progress_message="queued",
            )
        return run, True
    except IntegrityError:
        existing = active_run(experiment)
        if existing is None:  # it finished between the insert and this read: try once more
            return _create_run(experiment, requested_by)
        return existing, False


def analysis_request(*, experiment: Experiment, requested_by=None) -> AnalysisRun:
    """Queue an analysis (Celery, after commit); returns the active run if there is one.

    With the broker down the run stays `queued` (saying so) and is sent when the broker is back.
    """
    run, created = _create_run(experiment, requested_by)
    if created:
        run_id, task_id = run.pk, run.task_id
        transaction.on_commit(lambda: analysis_publish(run_id=run_id, task_id=task_id))
    return run


def _update(run: AnalysisRun, **fields) -> None:
    for name, value in fields.items():
        setattr(run, name, value)
    AnalysisRun.objects.filter(pk=run.pk).update(**fields)


def analysis_fail(*, run_id: int, error: str) -> None:
    """Mark an unfinished run failed with ``error`` (a finished run is left as it is)."""
    AnalysisRun.objects.filter(pk=run_id, status__in=ACTIVE).update(
        status=RunStatus.FAILED,
        finished_at=timezone.now(),
        error=error[:5000],
        result=None,
    )


def _readiness(run: AnalysisRun) -> tuple[dict | None, str]:
    """(readiness JSON, error): a readiness bug must not throw away a good analysis."""
    try:
        return readiness_for_run(run), ""
    except Exception as exc:
        logger.exception("readiness report for run %s failed", run.pk)
        return None, f"readiness report failed: {type(exc).__name__}: {exc}"


def analysis_run(
    *,
    experiment: Experiment,
    run: AnalysisRun | None = None,
    at: datetime | None = None,
    raise_transient: bool = False,
) -> AnalysisRun:
    """Compute the analysis of ``experiment`` now (synchronously) into ``run``.

    Without ``run`` a new one is created, or — when one is already queued or running — that
    run is computed here. A run that already finished is returned unchanged (a duplicate
    delivery of its task). Errors end the run ``failed`` with the error text and no result;
    with ``raise_transient`` a database outage is re-raised instead (the task retries).
    ``at`` fixes the window end (default: now, or the end of a stopped experiment).
    """
    if run is None:
        run, _ = _create_run(experiment)
    run.refresh_from_db()
    if run.status not in ACTIVE:
        return run
    try:
        window_start, window_end = analysis_window(experiment, at)
        _update(
            run,
            status=RunStatus.RUNNING,
            started_at=timezone.now(),
            window_start=window_start,
            window_end=window_end,
            progress=5,
            progress_message="aggregating outcomes in the database",
            error="",
        )
        data = collect_metrics(
            experiment=experiment, window_start=window_start, window_end=window_end
        )
        _update(run, progress=30, progress_message="computing statistics")
        result = build_result(
            experiment,
            data,
            computed_at=timezone.now(),
            progress=lambda pct, message: _update(run, progress=pct, progress_message=message),
        )
        run.result = result
        run.status = RunStatus.SUCCEEDED
        _update(run, progress=90, progress_message="scale-readiness report")
        readiness, readiness_error = _readiness(run)
        _update(
            run,
            status=RunStatus.SUCCEEDED,
            result=result,
            readiness=readiness,
            finished_at=timezone.now(),
            progress=100,
            progress_message="done",
            error=readiness_error,
        )
    except TRANSIENT_ERRORS as exc:
        if raise_transient:
            try:
                run.status = RunStatus.QUEUED
                _update(
                    run,
                    status=RunStatus.QUEUED,
                    progress_message=f"database unavailable, retrying: {exc}"[:200],
                )
            except TRANSIENT_ERRORS:
                pass
            raise
        logger.exception("analysis of %s failed", experiment.key)
        analysis_fail(run_id=run.pk, error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        logger.exception("analysis of %s failed", experiment.key)
        analysis_fail(run_id=run.pk, error=f"{type(exc).__name__}: {exc}")
    run.refresh_from_db()
    return run
