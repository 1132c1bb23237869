"""Admin "Results" page per experiment: verdict, criteria, charts and metrics of the latest run.

Hooked into `ExperimentAdmin` by its `get_urls` (see experiments/admin.py); reachable from the
experiment list ("Results" column) and from the experiment's change page.
"""

from __future__ import annotations

from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html


def results_url_name(model_admin) -> str:
    opts = model_admin.model._meta
    return f"{opts.app_label}_{opts.model_name}_results"


def results_urls(model_admin) -> list:
    """URL patterns to put in front of the ModelAdmin's own (before its catch-all)."""

    def view(request, object_id):
        return results_view(model_admin, request, object_id)

    return [
        path(
            "<path:object_id>/results/",
            model_admin.admin_site.admin_view(view),
            name=results_url_name(model_admin),
        )
    ]


def results_link(model_admin, obj, text: str = "Results") -> str:
    if not obj or not obj.pk:
        return "—"
    url = reverse(
        f"{model_admin.admin_site.name}:{results_url_name(model_admin)}", args=[quote(obj.pk)]
    )
    return format_html('<a href="{}">{}</a>', url, text)


def results_view(model_admin, request, object_id: str):
    from experiments.report import NeverAnalysed, context_for, render_html, render_json, report_for

    experiment = model_admin.get_object(request, unquote(object_id))
    if experiment is None:
        return model_admin._get_obj_does_not_exist_redirect(
            request, model_admin.model._meta, object_id
        )
    if not model_admin.has_view_permission(request, experiment):
        raise PermissionDenied
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Results and scale readiness",
        "experiment": experiment,
        "has_change_permission": model_admin.has_change_permission(request, experiment),
    }
    try:
        report = report_for(experiment)
    except NeverAnalysed as exc:
        context.update(has_report=False, never_analysed=str(exc))
        return TemplateResponse(request, "experiments/results.html", context)

    download = request.GET.get("download")
    if download in ("html", "json"):
        body = render_html(report) if download == "html" else render_json(report)
        response = HttpResponse(
            body,
            content_type="text/html; charset=utf-8"
            if download == "html"
            else "application/json; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{experiment.key}-readiness.{download}"'
        )
        return response
    context.update(context_for(report), has_report=True)
    return TemplateResponse(request, "experiments/results.html", context)
