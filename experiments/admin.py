"""Admin for growth teams: experiments with variants inline, status actions, live counts."""

from auditlog.models import LogEntry
from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html, format_html_join

from experiments import admin_analysis, admin_results, services
from experiments.models import Experiment, Status, Variant
from experiments.selectors import assignment_counts
from experiments.targeting import targeting_errors


class VariantFormSet(BaseInlineFormSet):
    """Applies the same variant rules as the API (one factor, one control, locked when live)."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        experiment = self.instance
        if experiment.pk and experiment.is_locked:
            if self.has_changed():
                raise ValidationError(
                    "Variants and weights are locked once an experiment has started; "
                    "create a new experiment to test a different setup."
                )
            return  # shown read-only, so the forms carry no variant fields to re-check
        rows = [
            {f: form.cleaned_data.get(f) for f in services.VARIANT_FIELDS}
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        factor = self.instance.factor or (self.data.get("factor") if self.data else None)
        try:
            services.variants_validate(factor=factor, variants=rows)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict.get("variants", exc.messages)) from exc


class ExperimentForm(forms.ModelForm):
    """The JSON fields get the checks the API's serializer applies."""

    class Meta:
        model = Experiment
        fields = ["targeting", "guardrail_metrics"]  # the admin adds its fieldsets' fields

    def clean_targeting(self):
        rules = self.cleaned_data.get("targeting")
        problems = targeting_errors(rules)
        if problems:
            raise ValidationError(problems)
        return rules

    def clean_guardrail_metrics(self):
        metrics = self.cleaned_data.get("guardrail_metrics")
        if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
            raise ValidationError('A list of metric names, e.g. ["return_rate"].')
        return metrics


class VariantInline(admin.StackedInline):
    model = Variant
    formset = VariantFormSet
    extra = 0
    min_num = 2
    fields = [("key", "name", "is_control", "weight"), "timing", "channel", "message"]

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not (obj and obj.is_locked)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.is_locked)

    def get_readonly_fields(self, request, obj=None):
        if obj and obj.is_locked:
            return ["key", "name", "is_control", "weight", "timing", "channel", "message"]
        return []


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = [
        "key",
        "name",
        "factor",
        "trigger",
        "status",
        "traffic_percent",
        "started_at",
        "live_counts",
        "results_link",
    ]
    list_filter = ["status", "factor", "trigger"]
    search_fields = ["key", "name", "hypothesis"]
    form = ExperimentForm
    inlines = [VariantInline]
    actions = ["start_experiments", "pause_experiments", "stop_experiments", "analyze_experiments"]
    readonly_fields = [
        "status",
        "started_at",
        "ended_at",
        "created_by",
        "live_counts",
        "results_link",
        "analysis_status",
        "audit_trail",
    ]
    fieldsets = [
        (None, {"fields": ["key", "name", "hypothesis", "factor", "trigger", "strategy"]}),
        (
            "Pilot traffic",
            {
                "fields": [
                    "traffic_percent",
                    "targeting",
                    "segment_attribute",
                    ("layer", "layer_start", "layer_end"),
                ]
            },
        ),
        (
            "Metrics and power",
            {
                "fields": [
                    "primary_metric",
                    "guardrail_metrics",
                    ("baseline_rate", "mde"),
                    ("alpha", "power"),
                    "min_days",
                    "safe_peeking",
                    "hash_seed",
                ]
            },
        ),
        (
            "Status",
            {
                "fields": [
                    "status",
                    "started_at",
                    "ended_at",
                    "created_by",
                    "live_counts",
                    "results_link",
                ]
            },
        ),
        ("Analysis", {"fields": ["analysis_status"]}),
        ("Audit trail", {"fields": ["audit_trail"], "classes": ["collapse"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj and obj.is_locked:
            editable = (
                services.EDITABLE_WHILE_STARTED
                if obj.status in (Status.RUNNING, Status.PAUSED)
                else services.EDITABLE_WHEN_ENDED
            )
            fields += [
                f.name
                for f in Experiment._meta.fields
                if f.name not in editable and f.name not in fields and f.editable
            ]
        return fields

    def get_urls(self):
        return (
            admin_results.results_urls(self)
            + admin_analysis.analysis_urls(self)
            + super().get_urls()
        )

    @admin.display(description="Latest analyses")
    def analysis_status(self, obj):
        return admin_analysis.analysis_status(self, obj)

    @admin.action(description="Analyze selected experiments now", permissions=["change"])
    def analyze_experiments(self, request, queryset):
        admin_analysis.analyze_experiments(self, request, queryset)

    @admin.display(description="Results")
    def results_link(self, obj):
        return admin_results.results_link(self, obj, "Results")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Assigned customers")
    def live_counts(self, obj):
        if not obj or not obj.pk:
            return "—"
        counts = assignment_counts(obj)
        return format_html_join(", ", "{}: {}", ((k, f"{n:,}") for k, n in counts.items())) or "—"

    @admin.display(description="Changes (who, when, what)")
    def audit_trail(self, obj):
        if not obj or not obj.pk:
            return "—"
        entries = (
            LogEntry.objects.filter(
                content_type__in=[
                    ContentType.objects.get_for_model(Experiment),
                    ContentType.objects.get_for_model(Variant),
                ],
            )
            .filter(
                object_pk__in=[str(obj.pk), *map(str, obj.variants.values_list("pk", flat=True))]
            )
            .select_related("actor", "content_type")
            .order_by("-timestamp")[:50]
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            (
                (
                    f"{e.timestamp:%Y-%m-%d %H:%M}",
                    e.actor or "system",
                    e.get_action_display(),
                    e.content_type.model,
                    "; ".join(f"{k}: {v[0]} → {v[1]}" for k, v in (e.changes_dict or {}).items()),
                )
                for e in entries
            ),
        )
        return format_html(
            "<table><tr><th>When</th><th>Who</th><th>What</th><th>Changes</th></tr>{}</table>",
            rows,
        )

    def _transition(self, request, queryset, action: str) -> None:
        for experiment in queryset:
            try:
                services.experiment_transition(
                    experiment=experiment, action=action, actor=request.user
                )
            except ValidationError as exc:
                self.message_user(
                    request, f"{experiment.key}: {'; '.join(exc.messages)}", messages.ERROR
                )
            else:
                self.message_user(request, f"{experiment.key}: {action} done.", messages.SUCCESS)

    @admin.action(description="Start selected experiments", permissions=["change"])
    def start_experiments(self, request, queryset):
        self._transition(request, queryset, "start")

    @admin.action(description="Pause selected experiments", permissions=["change"])
    def pause_experiments(self, request, queryset):
        self._transition(request, queryset, "pause")

    @admin.action(description="Stop selected experiments", permissions=["change"])
    def stop_experiments(self, request, queryset):
        self._transition(request, queryset, "stop")
