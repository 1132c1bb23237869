"""POST data for the experiment admin's add/change form, with the variants inline formset."""

import json

from experiments.models import Experiment

ADD_URL = "/admin/experiments/experiment/add/"
LIST_URL = "/admin/experiments/experiment/"

MESSAGE = {"subject": "Complete your kit", "body": "Try {products}", "cta": "Shop now"}


def change_url(experiment: Experiment) -> str:
    return f"/admin/experiments/experiment/{experiment.pk}/change/"


def default_variants() -> list[dict]:
    return [
        {
            "key": "now",
            "name": "Right away",
            "is_control": True,
            "weight": 1,
            "timing": {"delay_hours": 0, "window_hours": 48},
            "channel": "email",
            "message": MESSAGE,
        },
        {
            "key": "next-day",
            "name": "Next day",
            "is_control": False,
            "weight": 1,
            "timing": {"delay_hours": 24, "window_hours": 48},
            "channel": "email",
            "message": MESSAGE,
        },
    ]


def experiment_form(variants: list[dict] | None = None, **fields) -> dict:
    """The form a growth lead submits on *Experiments → Add* (fields override the defaults)."""
    data = {
        "key": "admin-timing",
        "name": "Admin-made timing test",
        "hypothesis": "Later is better.",
        "factor": "timing",
        "trigger": "post_purchase",
        "strategy": "completion",
        "traffic_percent": "100",
        "targeting": "[]",
        "segment_attribute": "",
        "layer": "",
        "layer_start": "0",
        "layer_end": "1",
        "primary_metric": "acceptance_rate",
        "guardrail_metrics": "[]",
        "baseline_rate": "0.1",
        "mde": "0.02",
        "alpha": "0.05",
        "power": "0.8",
        "min_days": "14",
        "hash_seed": "",
    }
    data.update({k: v for k, v in fields.items() if k != "existing"})
    variants = default_variants() if variants is None else variants
    existing = fields.get("existing") or []
    data.update(
        {
            "variants-TOTAL_FORMS": str(len(variants)),
            "variants-INITIAL_FORMS": str(len(existing)),
            "variants-MIN_NUM_FORMS": "2",
            "variants-MAX_NUM_FORMS": "1000",
        }
    )
    for i, variant in enumerate(variants):
        prefix = f"variants-{i}-"
        if i < len(existing):
            data[prefix + "id"] = str(existing[i].pk)
            data[prefix + "experiment"] = str(existing[i].experiment_id)
        data[prefix + "key"] = variant["key"]
        data[prefix + "name"] = variant.get("name", variant["key"])
        if variant.get("is_control"):
            data[prefix + "is_control"] = "on"
        data[prefix + "weight"] = str(variant.get("weight", 1))
        data[prefix + "timing"] = json.dumps(variant.get("timing", {}))
        data[prefix + "channel"] = variant.get("channel", "web")
        data[prefix + "message"] = json.dumps(variant.get("message", {}))
    return data


def change_form(experiment: Experiment, variants: list[dict] | None = None, **fields) -> dict:
    """The change form for an existing experiment, pre-filled from the database."""
    current = {
        "key": experiment.key,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "factor": experiment.factor,
        "trigger": experiment.trigger,
        "strategy": experiment.strategy,
        "traffic_percent": str(experiment.traffic_percent),
        "targeting": json.dumps(experiment.targeting),
        "segment_attribute": experiment.segment_attribute,
        "layer": experiment.layer,
        "layer_start": str(experiment.layer_start),
        "layer_end": str(experiment.layer_end),
        "primary_metric": experiment.primary_metric,
        "guardrail_metrics": json.dumps(experiment.guardrail_metrics),
        "baseline_rate": str(experiment.baseline_rate),
        "mde": str(experiment.mde),
        "alpha": str(experiment.alpha),
        "power": str(experiment.power),
        "min_days": str(experiment.min_days),
        "hash_seed": experiment.hash_seed,
    }
    if experiment.safe_peeking:
        current["safe_peeking"] = "on"
    current.update(fields)
    rows = list(experiment.variants.order_by("position", "id"))
    if variants is None:
        variants = [
            {
                "key": v.key,
                "name": v.name,
                "is_control": v.is_control,
                "weight": v.weight,
                "timing": v.timing,
                "channel": v.channel,
                "message": v.message,
            }
            for v in rows
        ]
    return experiment_form(variants, existing=rows, **current)


def form_errors(response) -> str:
    """The errors an admin form page shows (for assertion messages)."""
    context = response.context or {}
    errors = [str(context.get("errors") or "")]
    for formset in context.get("inline_admin_formsets") or []:
        errors.append(str(formset.formset.non_form_errors()))
        errors.extend(str(form.errors) for form in formset.formset.forms if form.errors)
    return " | ".join(e for e in errors if e) or f"HTTP {response.status_code}"
