"""Admin for growth teams: surveys with their questions, and what customers answered per arm."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from feedback.models import Answer, Display, Question, QuestionType, Response, Survey
from feedback.selectors import rate, survey_report, surveys_with_counts
from feedback.services import MAX_QUESTIONS

# Fields that define what an answer means: frozen once customers were asked.
LOCKED_QUESTION_FIELDS = ["key", "type", "choices", "metric"]


class QuestionFormSet(BaseInlineFormSet):
    """The same rules as the API: 1–5 questions with distinct keys."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = [
            f.cleaned_data
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        if not 1 <= len(kept) <= MAX_QUESTIONS:
            raise ValidationError(f"A survey has 1–{MAX_QUESTIONS} questions.")
        keys = [row.get("key") or getattr(row.get("id"), "key", None) for row in kept]
        if len(set(keys)) != len(keys):
            raise ValidationError("Question keys must be unique within the survey.")


class QuestionForm(forms.ModelForm):
    class Meta:
        model = Question
        fields = [
            "position",
            "key",
            "type",
            "metric",
            "text",
            "choices",
            "low_label",
            "high_label",
        ]
        help_texts = {
            "choices": 'Single choice only: a JSON list, e.g. ["Price", "Timing", "Fit"].',
            "metric": "CSAT: 5 = very helpful. Intrusiveness: 5 = very pushy.",
        }


class QuestionInline(admin.StackedInline):
    model = Question
    form = QuestionForm
    formset = QuestionFormSet
    extra = 0
    min_num = 1
    max_num = MAX_QUESTIONS
    fields = [("position", "key", "type", "metric"), "text", "choices", ("low_label", "high_label")]

    def _asked(self, obj) -> bool:
        return bool(obj and obj.pk and obj.displays.exists())

    def get_readonly_fields(self, request, obj=None):
        return LOCKED_QUESTION_FIELDS if self._asked(obj) else []

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not self._asked(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._asked(obj)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def histogram_svg(counts: list[int], *, label: str) -> SafeString:
    """A small inline bar chart of a 1–5 rating distribution (no JavaScript, no library)."""
    width, height, bar, gap, top = 150, 62, 22, 6, 12
    peak = max(counts) or 1
    total = sum(counts)
    bars = []
    for i, n in enumerate(counts):
        h = round((height - top - 14) * n / peak)
        x = i * (bar + gap)
        y = height - 14 - h
        bars.append((x, y, bar, h, x + bar / 2, y - 2, n, x + bar / 2, height - 2, i + 1))
    return format_html(
        '<svg role="img" aria-label="{}" width="{}" height="{}" viewBox="0 0 {} {}" '
        'style="vertical-align:middle;font:10px sans-serif">{}</svg>',
        f"{label}: " + ", ".join(f"{i + 1}: {n}" for i, n in enumerate(counts)) + f" (n={total})",
        width,
        height,
        width,
        height,
        format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="#417690" rx="2"></rect>'
            '<text x="{}" y="{}" text-anchor="middle" fill="#333">{}</text>'
            '<text x="{}" y="{}" text-anchor="middle" fill="#777">{}</text>',
            bars,
        ),
    )


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    inlines = [QuestionInline]
    change_form_template = "admin/feedback/survey/change_form.html"
    list_display = [
        "name",
        "key",
        "trigger",
        "sampling",
        "cooldown_days",
        "active",
        "offered",
        "finished",
        "response_rate",
    ]
    list_filter = ["active", "trigger"]
    search_fields = ["key", "name"]
    fields = [("key", "name"), ("trigger", "active"), ("sampling_rate", "cooldown_days")]

    def get_queryset(self, request):
        return surveys_with_counts()

    @admin.display(description="Sampling", ordering="sampling_rate")
    def sampling(self, obj) -> str:
        return percent(obj.sampling_rate)

    @admin.display(description="Offered", ordering="display_count")
    def offered(self, obj) -> int:
        return obj.display_count

    @admin.display(description="Finished", ordering="finished_count")
    def finished(self, obj) -> int:
        return obj.finished_count

    @admin.display(description="Response rate")
    def response_rate(self, obj) -> str:
        return percent(rate(obj.finished_count, obj.display_count))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        survey = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if survey is not None:
            extra_context["report"] = self.report_context(survey)
        return super().change_view(request, object_id, form_url, extra_context)

    def report_context(self, survey: Survey) -> dict:
        report = survey_report(survey=survey)
        columns = [q for q in report["questions"] if q.type != QuestionType.TEXT]
        arms = []
        for arm in report["arms"]:
            cells = []
            for q in columns:
                stats = arm.questions[q.key]
                if q.type == QuestionType.RATING:
                    mean = stats["mean"]
                    summary = "—" if mean is None else f"mean {mean:.2f} (n={stats['n']})"
                    chart = histogram_svg(stats["histogram"], label=q.key) if stats["n"] else ""
                elif q.type == QuestionType.YES_NO:
                    summary = f"yes {percent(stats['yes_share'])} (n={stats['n']})"
                    chart = ""
                else:
                    summary = ", ".join(f"{c}: {stats['choices'].get(c, 0)}" for c in q.choices)
                    chart = ""
                cells.append({"summary": summary, "chart": chart})
            arms.append({"arm": arm, "rate": percent(arm.response_rate), "cells": cells})
        return {"columns": columns, "arms": arms, "comments": report["comments"]}


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Display)
class DisplayAdmin(ReadOnlyAdmin):
    list_display = [
        "survey",
        "offer",
        "customer_id",
        "experiment",
        "variant",
        "created_at",
        "shown_at",
    ]
    list_filter = ["survey", "experiment"]
    search_fields = ["customer_id", "offer__offer_id"]
    list_select_related = ["survey", "offer", "experiment", "variant"]
    date_hierarchy = "created_at"


class AnswerInline(admin.TabularInline):
    model = Answer
    fields = ["question", "numeric_value", "text_value"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Response)
class ResponseAdmin(ReadOnlyAdmin):
    inlines = [AnswerInline]
    list_display = ["survey", "offer", "variant", "finished", "updated_at"]
    list_filter = ["survey", "finished"]
    list_select_related = ["survey", "offer", "display__variant"]
    search_fields = ["offer__offer_id"]

    @admin.display(description="Variant")
    def variant(self, obj) -> str:
        variant = obj.display.variant
        return variant.key if variant else "—"
