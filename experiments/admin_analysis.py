"""Admin for analyses: "Analyze now" on an experiment, its latest run, and a read-only run list.

Hooked into `ExperimentAdmin` (experiments/admin.py) by `analysis_urls`, `analysis_status` and
`analyze_action`; the button and the action call `analysis_request`, like the API does.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from experiments.analysis import ACTIVE, analysis_request
from experiments.models import AnalysisRun


def _url_name(model_admin) -> str:
    opts = model_admin.model._meta
    return f"{opts.app_label}_{opts.model_name}_analyze"


def analysis_urls(model_admin) -> list:
    """POST <experiment>/analyze/ — queue an analysis, then back to the experiment page."""

    def view(request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        experiment = model_admin.get_object(request, unquote(object_id))
        if experiment is None:
            return model_admin._get_obj_does_not_exist_redirect(
                request, model_admin.model._meta, object_id
            )
        if not model_admin.has_change_permission(request, experiment):
            raise PermissionDenied
        run = analysis_request(experiment=experiment, requested_by=request.user)
        run.refresh_from_db()
        model_admin.message_user(request, _request_message(experiment, run), messages.SUCCESS)
        opts = model_admin.model._meta
        return HttpResponseRedirect(
            reverse(
                f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                args=[quote(experiment.pk)],
            )
        )

    return [
        path(
            "<path:object_id>/analyze/",
            model_admin.admin_site.admin_view(view),
            name=_url_name(model_admin),
        )
    ]


def _request_message(experiment, run: AnalysisRun) -> str:
    if run.status == AnalysisRun.RunStatus.SUCCEEDED:
        return f"{experiment.key}: analysis #{run.pk} finished."
    return f"{experiment.key}: analysis #{run.pk} is {run.status} ({run.progress} %)."


def analyze_experiments(model_admin, request, queryset) -> None:
    """Admin action body: request an analysis of each selected experiment."""
    for experiment in queryset:
        run = analysis_request(experiment=experiment, requested_by=request.user)
        run.refresh_from_db()
        model_admin.message_user(request, _request_message(experiment, run), messages.SUCCESS)


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _run_line(run: AnalysisRun) -> tuple:
    if run.status in ACTIVE:
        state = f"{run.status} — {run.progress} % ({run.progress_message or 'waiting'})"
    elif run.status == AnalysisRun.RunStatus.FAILED:
        state = f"failed: {run.error[:200]}"
    else:
        state = "succeeded"
    url = reverse("admin:experiments_analysisrun_change", args=[run.pk])
    return (url, run.pk, state, _when(run.created_at), _when(run.finished_at))


def analysis_status(model_admin, obj) -> str:
    """The latest runs (status, progress, finished time) and an "Analyze now" button."""
    if not obj or not obj.pk:
        return "—"
    runs = list(AnalysisRun.objects.filter(experiment=obj).order_by("-created_at", "-id")[:5])
    button = format_html(
        '<button type="submit" class="button" formmethod="post" formaction="{}" '
        'formnovalidate name="_analyze">Analyze now</button>',
        reverse(f"{model_admin.admin_site.name}:{_url_name(model_admin)}", args=[quote(obj.pk)]),
    )
    if not runs:
        return format_html("<p>Never analysed.</p>{}", button)
    rows = format_html_join(
        "",
        '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
        (_run_line(run) for run in runs),
    )
    hint = " Reload the page to follow its progress." if runs[0].status in ACTIVE else ""
    return format_html(
        "<table><tr><th>Run</th><th>Status</th><th>Requested</th><th>Finished</th></tr>{}"
        "</table><p>{}{}</p>",
        rows,
        button,
        hint,
    )


def _fmt(kind: str, value) -> str:
    if value is None:
        return "—"
    if kind == "proportion":
        return f"{value * 100:.2f} %"
    return f"{value:.3f}"


def _metric_rows(metrics: list[dict]):
    for metric in metrics:
        comparisons = {c["variant"]: c for c in metric.get("comparisons", [])}
        for v in metric.get("variants", []):
            c = comparisons.get(v["variant"], {})
            kind = metric["kind"]
            ci = (
                f"[{_fmt(kind, c['ci_low'])}, {_fmt(kind, c['ci_high'])}]"
                if c.get("ci_low") is not None
                else "—"
            )
            lift = c.get("relative_lift")
            yield (
                metric["metric"],
                v["variant"],
                f"{v['n']:,}",
                _fmt(kind, v["value"]),
                _fmt(kind, c.get("difference")) if c else "",
                ci if c else "",
                "—" if lift is None else f"{lift * 100:+.1f} %",
                "—" if c.get("p_value") is None else f"{c['p_value']:.4g}",
                "—" if c.get("p_value_adjusted") is None else f"{c['p_value_adjusted']:.4g}",
                ("yes" if c.get("significant") else "no") if c else "",
                "—"
                if c.get("chance_to_beat_control") is None
                else f"{c['chance_to_beat_control']:.0%}",
                c.get("note") or "",
            )


@admin.register(AnalysisRun)
class AnalysisRunAdmin(admin.ModelAdmin):
    """Analyses are written by the job only: listed and shown here, never edited."""

    list_display = [
        "id",
        "experiment",
        "status",
        "progress",
        "progress_message",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    search_fields = ["experiment__key"]
    list_select_related = ["experiment", "requested_by"]
    fields = [
        "experiment",
        "status",
        "progress",
        "progress_message",
        "requested_by",
        "task_id",
        "created_at",
        "started_at",
        "finished_at",
        "window_start",
        "window_end",
        "error",
        "summary",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Results")
    def summary(self, obj):
        result = obj.result if obj else None
        if not result:
            return "—"
        srm, power = result.get("srm", {}), result.get("power", {})
        srm_state = {True: "passed", False: "FAILED", None: "pending"}[srm.get("passed")]
        header = format_html(
            "<p>Sample ratio: {} (p = {}) {}<br>Power ({}): {} per variant planned, {} in the "
            "smallest variant, {} more days at today's traffic</p>",
            srm_state,
            "—" if srm.get("p_value") is None else f"{srm['p_value']:.4g}",
            ", ".join(f"{k}: {n:,}" for k, n in srm.get("counts", {}).items()),
            power.get("metric"),
            power.get("required_per_variant") or "—",
            power.get("current_min_per_variant"),
            "—" if power.get("days_remaining") is None else f"{power['days_remaining']:.1f}",
        )
        rows = format_html_join(
            "",
            "<tr>" + "<td>{}</td>" * 12 + "</tr>",
            _metric_rows(result.get("metrics", [])),
        )
        head = mark_safe(  # fixed column titles, no user input
            "".join(
                f"<th>{h}</th>"
                for h in (
                    "metric",
                    "variant",
                    "n",
                    "value",
                    "difference",
                    "95 % CI",
                    "lift",
                    "p",
                    "p (Holm)",
                    "significant",
                    "P(beats control)",
                    "note",
                )
            )
        )
        return format_html("{}<table><tr>{}</tr>{}</table>", header, head, rows)
