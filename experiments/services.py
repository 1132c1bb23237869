"""Writes: experiments, their variants and status, and sticky assignments."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

from auditlog.context import set_actor
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from experiments import assignment as hashing
from experiments.models import (
    MESSAGE_FIELDS,
    MESSAGE_PLACEHOLDERS,
    Experiment,
    Factor,
    Status,
    Variant,
    message_placeholders,
)
from experiments.selectors import ExperimentConfig, VariantConfig
from experiments.targeting import matches, targeting_errors

VARIANT_FIELDS = ("key", "name", "is_control", "weight", "timing", "channel", "message")
# What may change after an experiment started (everything else would invalidate results).
EDITABLE_WHILE_STARTED = frozenset({"name", "hypothesis", "traffic_percent"})
EDITABLE_WHEN_ENDED = frozenset({"name", "hypothesis"})


def _normalise_timing(timing: object, where: str) -> dict:
    if timing in (None, {}):
        return {"delay_hours": 0, "window_hours": None}
    if not isinstance(timing, Mapping):
        raise ValidationError({"variants": [f"{where}: timing must be an object."]})
    unknown = set(timing) - {"delay_hours", "window_hours"}
    if unknown:
        raise ValidationError(
            {"variants": [f"{where}: unknown timing key(s) {', '.join(sorted(unknown))}."]}
        )
    delay, window = timing.get("delay_hours", 0), timing.get("window_hours")
    if not isinstance(delay, Real) or isinstance(delay, bool) or delay < 0 or delay > 24 * 365:
        raise ValidationError({"variants": [f"{where}: timing.delay_hours must be 0–8760."]})
    if window is not None and (
        not isinstance(window, Real) or isinstance(window, bool) or not 0 < window <= 24 * 365
    ):
        raise ValidationError({"variants": [f"{where}: timing.window_hours must be 0–8760."]})
    return {"delay_hours": delay, "window_hours": window}


def _normalise_message(message: object, where: str) -> dict:
    if message in (None, {}):
        return {}
    if not isinstance(message, Mapping):
        raise ValidationError({"variants": [f"{where}: message must be an object."]})
    unknown = set(message) - set(MESSAGE_FIELDS)
    if unknown:
        raise ValidationError(
            {"variants": [f"{where}: unknown message key(s) {', '.join(sorted(unknown))}."]}
        )
    for part, text in message.items():
        if not isinstance(text, str) or len(text) > 2000:
            raise ValidationError(
                {"variants": [f"{where}: message.{part} must be text of at most 2000 characters."]}
            )
        bad = message_placeholders(text) - MESSAGE_PLACEHOLDERS
        if bad:
            allowed = ", ".join("{" + p + "}" for p in sorted(MESSAGE_PLACEHOLDERS))
            raise ValidationError(
                {
                    "variants": [
                        f"{where}: message.{part} uses unknown placeholder(s) "
                        f"{', '.join('{' + b + '}' for b in sorted(bad))}; allowed: {allowed}."
                    ]
                }
            )
    return dict(message)


def variants_validate(*, factor: str, variants: Sequence[Mapping]) -> list[dict]:
    """Check a variant list and return it normalised.

    Rules: at least two variants, unique keys, exactly one control, positive weights, valid
    timing/message, and variants that differ only in the experiment's factor.
    """
    if len(variants) < 2:
        raise ValidationError({"variants": ["An experiment needs at least two variants."]})
    cleaned = []
    for i, raw in enumerate(variants):
        where = f"variant {raw.get('key') or i}"
        weight = raw.get("weight", 1)
        if not isinstance(weight, Real) or isinstance(weight, bool) or weight <= 0:
            raise ValidationError({"variants": [f"{where}: weight must be a positive number."]})
        cleaned.append(
            {
                "key": raw.get("key"),
                "name": raw.get("name") or raw.get("key"),
                "is_control": bool(raw.get("is_control", False)),
                "weight": float(weight),
                "timing": _normalise_timing(raw.get("timing"), where),
                "channel": raw.get("channel") or "web",
                "message": _normalise_message(raw.get("message"), where),
            }
        )
    keys = [v["key"] for v in cleaned]
    if len(set(keys)) != len(keys):
        raise ValidationError({"variants": ["Variant keys must be unique."]})
    controls = sum(v["is_control"] for v in cleaned)
    if controls != 1:
        raise ValidationError(
            {"variants": [f"Exactly one variant must be the control (found {controls})."]}
        )
    first = cleaned[0]
    for other in cleaned[1:]:
        for field in ("timing", "channel", "message"):
            if field != factor and other[field] != first[field]:
                raise ValidationError(
                    {
                        "variants": [
                            f"Variants may differ only in {factor} (this experiment's factor), "
                            f"but '{other['key']}' differs from '{first['key']}' in {field}: "
                            f"{other[field]!r} vs {first[field]!r}."
                        ]
                    }
                )
    return cleaned


def _check_experiment_fields(fields: Mapping) -> None:
    errors = {}
    if "targeting" in fields:
        problems = targeting_errors(fields["targeting"])
        if problems:
            errors["targeting"] = problems
    if "factor" in fields and fields["factor"] not in Factor.values:
        errors["factor"] = [f"Must be one of {', '.join(Factor.values)}."]
    if errors:
        raise ValidationError(errors)


def _save(instance, *, exclude: Sequence[str] = ()) -> None:
    instance.full_clean(exclude=list(exclude))
    instance.save()


def _replace_variants(experiment: Experiment, variants: Sequence[Mapping]) -> None:
    cleaned = variants_validate(factor=experiment.factor, variants=variants)
    experiment.variants.all().delete()
    for position, data in enumerate(cleaned):
        _save(Variant(experiment=experiment, position=position, **data), exclude=["experiment"])


@transaction.atomic
def experiment_create(*, actor=None, variants: Sequence[Mapping], **fields) -> Experiment:
    """Create a draft experiment with its variants (validated together)."""
    _check_experiment_fields(fields)
    with set_actor(actor):
        experiment = Experiment(created_by=actor, status=Status.DRAFT, **fields)
        _save(experiment)
        _replace_variants(experiment, variants)
    return experiment


@transaction.atomic
def experiment_update(
    *, experiment: Experiment, actor=None, variants: Sequence[Mapping] | None = None, **changes
) -> Experiment:
    """Change an experiment. Drafts change freely; once started only texts and traffic move."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Status.DRAFT:
        allowed = (
            EDITABLE_WHILE_STARTED
            if experiment.status in (Status.RUNNING, Status.PAUSED)
            else EDITABLE_WHEN_ENDED
        )
        locked = sorted(
            name
            for name, value in changes.items()
            if name not in allowed and getattr(experiment, name) != value
        )
        if variants is not None:
            locked.append("variants")
        if locked:
            raise ValidationError(
                {
                    name: [
                        f"Locked while the experiment is {experiment.status}: results stay valid "
                        "only if the setup does not change. Create a new experiment instead."
                    ]
                    for name in locked
                }
            )
    _check_experiment_fields(changes)
    with set_actor(actor):
        for name, value in changes.items():
            setattr(experiment, name, value)
        _save(experiment)
        if variants is not None:
            _replace_variants(experiment, variants)
        elif "factor" in changes:
            variants_validate(
                factor=experiment.factor,
                variants=list(experiment.variants.values(*VARIANT_FIELDS)),
            )
    return experiment


def _check_layer_free(experiment: Experiment) -> None:
    if not experiment.layer:
        return
    overlapping = (
        Experiment.objects.filter(
            layer=experiment.layer, status__in=[Status.RUNNING, Status.PAUSED]
        )
        .exclude(pk=experiment.pk)
        .filter(layer_start__lt=experiment.layer_end, layer_end__gt=experiment.layer_start)
    )
    clash = overlapping.first()
    if clash:
        raise ValidationError(
            {
                "layer": [
                    f"Layer '{experiment.layer}' slice {experiment.layer_start:g}–"
                    f"{experiment.layer_end:g} overlaps '{clash.key}' "
                    f"({clash.layer_start:g}–{clash.layer_end:g}); give this experiment a "
                    "disjoint slice so no customer is in both."
                ]
            }
        )


_TRANSITIONS = {
    "start": ({Status.DRAFT, Status.PAUSED}, Status.RUNNING),
    "pause": ({Status.RUNNING}, Status.PAUSED),
    "stop": ({Status.RUNNING, Status.PAUSED}, Status.STOPPED),
    "ship": ({Status.STOPPED}, Status.SHIPPED),
}


@transaction.atomic
def experiment_transition(*, experiment: Experiment, action: str, actor=None) -> Experiment:
    """start | pause | stop | ship, with the rules a valid experiment needs."""
    sources, target = _TRANSITIONS[action]
    layer = Experiment.objects.filter(pk=experiment.pk).values_list("layer", flat=True).first()
    if action == "start" and layer:
        # Lock every experiment of the layer, in pk order, before checking for overlaps: two
        # overlapping starts then run one after the other (and the second is refused) instead
        # of both passing the check; the fixed order means they queue rather than deadlock.
        list(
            Experiment.objects.select_for_update()
            .filter(layer=layer)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status not in sources:
        raise ValidationError(
            {"status": [f"Cannot {action} an experiment that is {experiment.status}."]}
        )
    if action == "start":
        variants_validate(
            factor=experiment.factor, variants=list(experiment.variants.values(*VARIANT_FIELDS))
        )
        _check_layer_free(experiment)
        if experiment.started_at is None:
            experiment.started_at = timezone.now()
    if target in (Status.STOPPED, Status.SHIPPED) and experiment.ended_at is None:
        experiment.ended_at = timezone.now()
    experiment.status = target
    with set_actor(actor):
        experiment.save()
    return experiment


@dataclass(frozen=True)
class AssignmentResult:
    variant: VariantConfig | None
    in_experiment: bool
    reason: str | None = None
    new: bool = False


def _segment(config: ExperimentConfig, attributes: Mapping) -> str:
    value = attributes.get(config.segment_attribute, "")
    return str(value)[:100] if value is not None else ""


_INSERT_SQL = (
    "INSERT INTO experiments_assignment "
    "(experiment_id, variant_id, customer_id, segment, attributes, assigned_at) "
    "VALUES (%s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (experiment_id, customer_id) DO NOTHING RETURNING variant_id"
)
# The stored row, found through the customer index whatever the planner's statistics say
# (`+ 0`): on a table never analysed it chose the experiment index and read every assignment.
_READ_SQL = (
    "SELECT variant_id FROM experiments_assignment "
    "WHERE customer_id = %s AND experiment_id + 0 = %s"
)


@dataclass(frozen=True)
class AssignmentStep:
    """One customer's assignment in one experiment as SQL, for one round trip on PostgreSQL.

    `insert_sql` (None when the customer would not be assigned) is a data-modifying statement
    usable as a CTE; `read_sql` a scalar subquery for the row stored before the statement.
    Both see the statement's snapshot: a row a concurrent first request committed after it
    started is in neither, and `assignment_resolve` then reads it with a second query.
    """

    config: ExperimentConfig
    customer_id: str
    variant: VariantConfig | None
    reason: str | None
    insert_sql: str | None
    insert_params: tuple
    read_sql: str
    read_params: tuple


def assignment_step(
    *, config: ExperimentConfig, customer_id: str, attributes: Mapping | None = None, at=None
) -> AssignmentStep:
    """What `assignment_get_or_create` would run for a running experiment, not yet run."""
    attributes = attributes or {}
    variant, reason = choose_for(config, customer_id, attributes)
    insert_params: tuple = ()
    if variant is not None:
        insert_params = (
            config.id,
            variant.id,
            customer_id,
            _segment(config, attributes),
            json.dumps(attributes, separators=(",", ":"), sort_keys=True),
            # As the ORM stores it (naive UTC text on SQLite), so range filters compare.
            connection.ops.adapt_datetimefield_value(at or timezone.now()),
        )
    return AssignmentStep(
        config=config,
        customer_id=customer_id,
        variant=variant,
        reason=reason,
        insert_sql=_INSERT_SQL if variant is not None else None,
        insert_params=insert_params,
        read_sql=_READ_SQL,
        read_params=(customer_id, config.id),
    )


def assignment_resolve(
    step: AssignmentStep, *, inserted: int | None, stored: int | None
) -> AssignmentResult:
    """The result of a step from what its statement returned (`inserted`, `stored` variant ids)."""
    if inserted is not None:
        return AssignmentResult(variant=step.variant, in_experiment=True, new=True)
    if stored is not None:
        variant = step.config.variant(stored)
        if variant is not None:
            return AssignmentResult(variant=variant, in_experiment=True)
    if step.variant is not None:  # lost a race: the other request's row is committed now
        existing = _existing_variant(step.config, step.customer_id)
        if existing is not None:
            return AssignmentResult(variant=existing, in_experiment=True)
    return AssignmentResult(variant=None, in_experiment=False, reason=step.reason)


def _existing_variant(config: ExperimentConfig, customer_id: str) -> VariantConfig | None:
    with connection.cursor() as cursor:
        cursor.execute(_READ_SQL, [customer_id, config.id])
        row = cursor.fetchone()
    return config.variant(row[0]) if row is not None else None


def choose_for(config: ExperimentConfig, customer_id: str, attributes: Mapping) -> tuple:
    """(variant, reason) a new customer would get, without touching the database."""
    if not matches(config.targeting, attributes):
        return None, "not_targeted"
    if config.layer and not hashing.in_layer(
        config.layer, customer_id, config.layer_start, config.layer_end
    ):
        return None, "outside_layer_slice"
    ranges = hashing.bucket_ranges(
        [v.weight for v in config.variants], config.traffic_percent / 100
    )
    index = hashing.choose_variant(hashing.bucket(config.seed, customer_id), ranges)
    if index is None:
        return None, "outside_traffic"
    return config.variants[index], None


def assignment_get_or_create(
    *, config: ExperimentConfig, customer_id: str, attributes: Mapping | None = None, at=None
) -> AssignmentResult:
    """The customer's variant: stored on first answer, never changed after (sticky).

    Concurrency-safe: the insert is `ON CONFLICT DO NOTHING`, so simultaneous first requests
    produce one row, and every caller returns the variant of that row. One statement on
    PostgreSQL (the insert and the read of a stored row together); SQLite needs a second read
    for a returning customer.
    """
    if not config.is_running:
        return AssignmentResult(
            variant=None, in_experiment=False, reason=f"experiment_{config.status}"
        )
    step = assignment_step(config=config, customer_id=customer_id, attributes=attributes, at=at)
    inserted = stored = None
    with connection.cursor() as cursor:
        if step.insert_sql is None:
            cursor.execute(step.read_sql, step.read_params)
            row = cursor.fetchone()
            stored = row[0] if row else None
        elif connection.vendor == "postgresql":
            cursor.execute(
                f"WITH inserted AS ({step.insert_sql}) "
                f"SELECT (SELECT variant_id FROM inserted), ({step.read_sql})",
                [*step.insert_params, *step.read_params],
            )
            inserted, stored = cursor.fetchone()
        else:
            cursor.execute(step.insert_sql, step.insert_params)
            row = cursor.fetchone()
            inserted = row[0] if row else None
            if inserted is None:
                cursor.execute(step.read_sql, step.read_params)
                row = cursor.fetchone()
                stored = row[0] if row else None
    return assignment_resolve(step, inserted=inserted, stored=stored)
