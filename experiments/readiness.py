"""Scale-readiness: an analysis snapshot → nine criteria → a verdict a growth team can act on.

The rules (`evaluate`) are pure: they read the analysis JSON (DESIGN.md, "Analysis JSON") and
a few experiment settings, never the database. `readiness_for_run` is the one entry point that
reads an `AnalysisRun` and its experiment. See DESIGN.md, "Scale-readiness report".

Each criterion is `pass`, `fail` or `pending` with one plain sentence of evidence. A fail is
*settled* when the data already decides it (a significant harm on the primary metric, a
guardrail, returns or what customers said, or a sample ratio mismatch): one settled fail makes
the verdict `do_not_scale`. All nine passing makes it `ready_to_scale`; anything else is
`keep_testing`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from experiments.stats import holm

READY = "ready_to_scale"
KEEP_TESTING = "keep_testing"
DO_NOT_SCALE = "do_not_scale"
PASS, FAIL, PENDING = "pass", "fail", "pending"

CRITERIA = (
    "min_duration",
    "sample_size",
    "srm",
    "acceptance_above_baseline",
    "consistency",
    "return_rate",
    "customer_feedback",
    "segments",
    "guardrails",
)

# Traffic ladder for a pilot that is ready: pilot → half → everyone.
TRAFFIC_LADDER = (10.0, 50.0, 100.0)

METRIC_LABELS = {
    "acceptance_rate": "acceptance rate",
    "time_to_secondary_purchase": "time to secondary purchase",
    "category_expansion_rate": "category expansion rate",
    "cross_sell_aov": "cross-sell order value",
    "revenue_per_customer": "revenue per customer",
    "return_rate": "return rate",
    "cart_abandonment_rate": "cart abandonment rate",
    "csat": "CSAT",
    "intrusiveness": "intrusiveness score",
    "survey_response_rate": "survey response rate",
}
MINUS = "\u2212"
ONE_VARIANT_STEP = (
    "add a variant to compare with the control: variants are locked once an experiment starts, "
    "so create a new experiment with a control and at least one variant"
)
NO_ANALYSIS_STEP = (
    "run an analysis: `python manage.py analyze KEY` or POST /api/v1/experiments/KEY/analyze"
)


@dataclass(frozen=True)
class ReadinessSettings:
    """What the rules need from the experiment and the deployment's settings."""

    min_days: int = 14
    traffic_percent: float = 100.0
    safe_peeking: bool = False
    alpha: float = 0.05
    csat_floor: float = 4.0
    min_survey_answers: int = 20
    primary_metric: str = "acceptance_rate"
    guardrail_metrics: tuple[str, ...] = ("return_rate", "cart_abandonment_rate")


@dataclass
class Criterion:
    key: str
    status: str
    detail: str
    settled: bool = False  # a fail the data already decides (drives do_not_scale)
    action: str | None = None  # what to do about it, for next_step

    def to_dict(self) -> dict:
        return {"key": self.key, "status": self.status, "detail": self.detail}


@dataclass
class _Candidate:
    variant: str
    criteria: list[Criterion] = field(default_factory=list)
    winner: bool = False
    difference: float | None = None

    @property
    def harmed(self) -> bool:
        return any(c.settled for c in self.criteria)


# --- formatting --------------------------------------------------------------------------------


def finite_number(x) -> float | None:
    """A finite float from a JSON value, or None (bools, nulls, text and NaN/inf are not)."""
    if isinstance(x, bool) or x is None:
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _signed(x: float, digits: int = 1) -> str:
    text = f"{abs(x):,.{digits}f}"
    if round(abs(x), digits) == 0:
        return text
    return ("+" if x > 0 else MINUS) + text


def _plain(x: float, digits: int = 1) -> str:
    text = f"{abs(x):,.{digits}f}"
    return (MINUS + text) if x < 0 and round(abs(x), digits) != 0 else text


def format_p(p: float | None) -> str:
    p = finite_number(p)
    if p is None:
        return "p unknown"
    if p < 0.001:
        return "p < 0.001"
    if p < 0.1:
        return f"p = {p:.3f}"
    return f"p = {p:.2f}"


def _scale(kind: str) -> tuple[float, int, str, str]:
    """(multiplier, decimals, unit after a value, unit after a difference) per metric kind."""
    if kind == "proportion":
        return 100.0, 1, " %", " pts"
    if kind == "rating":
        return 1.0, 2, " / 5", ""
    if kind == "time_to_event":
        return 1.0, 0, " h", " h"
    return 1.0, 2, "", ""


def format_value(kind: str, value) -> str:
    value = finite_number(value)
    if value is None:
        return "n/a"
    mult, digits, unit, _ = _scale(kind)
    return f"{_plain(value * mult, digits)}{unit}"


def format_difference(kind: str, value) -> str:
    value = finite_number(value)
    if value is None:
        return "n/a"
    mult, digits, _, unit = _scale(kind)
    return f"{_signed(value * mult, digits)}{unit}"


def possessive(name) -> str:
    """ "B's", but "features'" (variant keys are often plural nouns)."""
    name = str(name)
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def metric_label(metric: str | None) -> str:
    return METRIC_LABELS.get(metric, str(metric or "metric").replace("_", " "))


def comparison_sentence(metric: dict, comparison: dict, *, alpha: float = 0.05) -> str:
    """ "B's acceptance rate is 11.8 % vs 9.6 % (+2.2 pts, 95 % CI +0.9 to +3.5, p = 0.001)"."""
    kind = metric.get("kind", "mean")
    values = {v.get("variant"): v for v in metric.get("variants") or []}
    variant, baseline = comparison.get("variant"), comparison.get("baseline")
    mine = values.get(variant, {}).get("value")
    theirs = values.get(baseline, {}).get("value")
    mult, digits, _, unit = _scale(kind)
    parts = [format_difference(kind, comparison.get("difference"))]
    lo, hi = finite_number(comparison.get("ci_low")), finite_number(comparison.get("ci_high"))
    if lo is not None and hi is not None:
        level = round((1 - alpha) * 100)
        parts.append(
            f"{level} % CI {_signed(lo * mult, digits)} to {_signed(hi * mult, digits)}{unit}"
        )
    adjusted = finite_number(comparison.get("p_value_adjusted"))
    raw = finite_number(comparison.get("p_value"))
    if adjusted is not None and raw is not None and abs(adjusted - raw) > 1e-12:
        parts.append(f"{format_p(adjusted)} after correction")
    elif raw is not None:
        parts.append(format_p(raw))
    label = metric_label(metric.get("metric", ""))
    if kind == "time_to_event":
        label = f"median {label}"
    return (
        f"{possessive(variant)} {label} is {format_value(kind, mine)} vs "
        f"{format_value(kind, theirs)} "
        f"for {baseline} ({', '.join(parts)})"
    )


# --- reading the analysis JSON -----------------------------------------------------------------


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _dicts(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _metric_shape(metric: dict) -> dict:
    return {
        **metric,
        "variants": _dicts(metric.get("variants")),
        "comparisons": _dicts(metric.get("comparisons")),
    }


def _weeks_shape(weeks) -> list[dict]:
    return [
        {**w, "metrics": [_metric_shape(m) for m in _dicts(w.get("metrics"))]}
        for w in _dicts(weeks)
    ]


def normalise(result) -> dict:
    """The analysis JSON with every container of the expected type, so the rules can read it
    without guarding each step (a stored result may be partial or from an older version)."""
    result = _dict(result)
    if not result:
        return {}
    srm = _dict(result.get("srm"))
    info = _dict(result.get("experiment_info"))
    return {
        **result,
        "srm": {**srm, "counts": _dict(srm.get("counts")), "expected": _dict(srm.get("expected"))},
        "power": _dict(result.get("power")),
        "metrics": [_metric_shape(m) for m in _dicts(result.get("metrics"))],
        "segments": [
            {
                **s,
                "metrics": [_metric_shape(m) for m in _dicts(s.get("metrics"))],
                "weekly": _weeks_shape(s.get("weekly")),
            }
            for s in _dicts(result.get("segments"))
        ],
        "weekly": _weeks_shape(result.get("weekly")),
        "experiment_info": {
            **info,
            "variants": [v for v in info.get("variants") or [] if isinstance(v, str) and v]
            if isinstance(info.get("variants"), list)
            else [],
        },
    }


def _metric(metrics: Iterable[dict] | None, name: str) -> dict | None:
    return next((m for m in metrics or [] if m.get("metric") == name), None)


def _comparison(metric: dict | None, variant: str) -> dict | None:
    if not metric:
        return None
    return next((c for c in metric.get("comparisons") or [] if c.get("variant") == variant), None)


def _sign(metric: dict) -> int:
    """+1 when higher is better, −1 when lower is better."""
    return -1 if metric.get("direction") == "lower" else 1


def _better(metric: dict, comparison: dict) -> bool:
    diff = finite_number(comparison.get("difference"))
    return bool(comparison.get("significant")) and diff is not None and diff * _sign(metric) > 0


def _worse(metric: dict, comparison: dict) -> bool:
    diff = finite_number(comparison.get("difference"))
    return bool(comparison.get("significant")) and diff is not None and diff * _sign(metric) < 0


def _not_enough(metric: dict | None, comparison: dict | None) -> str | None:
    """Why a comparison cannot be judged yet, or None when it can."""
    if metric is None:
        return "not measured in this analysis"
    if comparison is None:
        return "no comparison with the control"
    if finite_number(comparison.get("difference")) is None:
        note = comparison.get("note") or "not enough data"
        return note
    return None


def _variant_n(metric: dict | None, variant: str) -> int:
    for v in (metric or {}).get("variants") or []:
        if v.get("variant") == variant:
            return int(finite_number(v.get("n")) or 0)
    return 0


def _variant_value(metric: dict | None, variant: str) -> float | None:
    for v in (metric or {}).get("variants") or []:
        if v.get("variant") == variant:
            return finite_number(v.get("value"))
    return None


def _control_and_treatments(result: dict) -> tuple[str | None, list[str]]:
    info = result.get("experiment_info") or {}
    control = info.get("control")
    variants = list(info.get("variants") or [])
    for metric in result.get("metrics") or []:
        for v in metric.get("variants") or []:
            if v.get("is_control") and control is None:
                control = v.get("variant")
            if v.get("variant") not in variants:
                variants.append(v.get("variant"))
    if not variants:
        variants = list((result.get("srm") or {}).get("counts") or {})
    return control, [v for v in variants if v and v != control]


# --- criteria that do not depend on the variant ------------------------------------------------


def _min_duration(result: dict, cfg: ReadinessSettings) -> Criterion:
    info = result.get("experiment_info") or {}
    days = finite_number(info.get("days_running"))
    if days is None:
        return Criterion(
            "min_duration",
            PENDING,
            "The experiment has not started yet, so no days have run.",
            action="start the experiment",
        )
    whole = math.floor(days)
    if days >= cfg.min_days:
        return Criterion(
            "min_duration", PASS, f"Ran {whole} days; the minimum is {cfg.min_days} days."
        )
    left = math.ceil(cfg.min_days - days)
    return Criterion(
        "min_duration",
        PENDING,
        f"Ran {whole} of the {cfg.min_days} days planned; {left} more "
        f"{'day' if left == 1 else 'days'} to cover at least two full weekly cycles.",
        action=f"run {left} more {'day' if left == 1 else 'days'} to reach the "
        f"{cfg.min_days}-day minimum",
    )


def _sample_size(result: dict, cfg: ReadinessSettings) -> Criterion:
    power = result.get("power") or {}
    required = finite_number(power.get("required_per_variant"))
    current = finite_number(power.get("current_min_per_variant"))
    if current is None:
        counts = [
            finite_number(n) for n in ((result.get("srm") or {}).get("counts") or {}).values()
        ]
        counts = [n for n in counts if n is not None]
        current = min(counts) if counts else None
    if required is None:
        return Criterion(
            "sample_size",
            PENDING,
            "No planned sample size: set the experiment's baseline rate and minimum "
            "detectable effect.",
            action="set a baseline rate and a minimum detectable effect",
        )
    current = current or 0.0
    progress = f"{current:,.0f} of {required:,.0f} planned customers in the smallest variant"
    if current >= required:
        return Criterion(
            "sample_size",
            PASS,
            f"Reached the planned sample: {current:,.0f} customers in the smallest variant "
            f"({required:,.0f} planned).",
        )
    if cfg.safe_peeking:
        return Criterion(
            "sample_size",
            PASS,
            f"Safe peeking is on (confidence sequences), so results hold at any sample size; "
            f"{progress}.",
        )
    days = finite_number(power.get("days_remaining"))
    pct = current / required * 100 if required else 0
    when = f"about {math.ceil(days)} more days at today's traffic" if days is not None else None
    detail = f"{progress} ({pct:.0f} %)" + (f"; {when}." if when else ".")
    return Criterion("sample_size", PENDING, detail, action=when or f"collect more: {progress}")


def srm_shortfall(srm: dict) -> tuple[str, float, float, float] | None:
    """(variant, relative deviation, observed, expected) of the variant furthest off its share."""
    counts, expected = srm.get("counts") or {}, srm.get("expected") or {}
    worst = None
    for key, exp in expected.items():
        exp, obs = finite_number(exp), finite_number(counts.get(key))
        if not exp or obs is None:
            continue
        dev = (obs - exp) / exp
        # On a tie (two arms) name the arm that is short: that is where customers went missing.
        rank = (round(abs(dev), 9), dev < 0)
        if worst is None or rank > (round(abs(worst[1]), 9), worst[1] < 0):
            worst = (key, dev, obs, exp)
    return worst


def _sample_reached(result: dict, cfg: ReadinessSettings) -> bool:
    return _sample_size(result, cfg).status == PASS


def _srm(result: dict, cfg: ReadinessSettings) -> Criterion:
    srm = result.get("srm") or {}
    passed = srm.get("passed")
    counts = srm.get("counts") or {}
    shown = ", ".join(f"{k} {finite_number(n) or 0:,.0f}" for k, n in counts.items())
    if passed is True:
        return Criterion(
            "srm",
            PASS,
            f"Customers split as the weights planned ({format_p(srm.get('p_value'))}): {shown}.",
        )
    if passed is False:
        worst = srm_shortfall(srm)
        if worst:
            key, dev, obs, exp = worst
            gap = (
                f"{key} has {abs(dev) * 100:.0f} % {'fewer' if dev < 0 else 'more'} "
                "customers than expected"
            )
            detail = (
                f"Sample ratio mismatch ({format_p(srm.get('p_value'))}): {gap} "
                f"({obs:,.0f} vs {exp:,.0f}), so the results cannot be trusted."
            )
            action = f"fix assignment: {gap}"
        else:
            detail = (
                f"Sample ratio mismatch ({format_p(srm.get('p_value'))}): {shown}; "
                "the results cannot be trusted."
            )
            action = "fix assignment: the split does not match the weights"
        return Criterion("srm", FAIL, detail, settled=True, action=action)
    reason = srm.get("note") or "needs at least 8 customers in each variant"
    return Criterion(
        "srm",
        PENDING,
        f"Not judged yet: {reason}.".replace("..", "."),
        action="wait for more customers",
    )


# --- criteria for one treatment against control ------------------------------------------------


def _primary(result: dict, cfg: ReadinessSettings, variant: str) -> Criterion:
    metric = _metric(result.get("metrics"), cfg.primary_metric)
    comparison = _comparison(metric, variant)
    why = _not_enough(metric, comparison)
    label = metric_label(cfg.primary_metric)
    if why:
        return Criterion(
            "acceptance_above_baseline",
            PENDING,
            f"{possessive(variant)} {label} cannot be compared yet: {why}.",
            action="wait for more data",
        )
    sentence = comparison_sentence(metric, comparison, alpha=cfg.alpha)
    if _better(metric, comparison):
        return Criterion("acceptance_above_baseline", PASS, f"{sentence}: significantly better.")
    if _worse(metric, comparison):
        return Criterion(
            "acceptance_above_baseline",
            FAIL,
            f"{sentence}: significantly worse.",
            settled=True,
            action=f"stop {variant} and keep {comparison.get('baseline')}: it lowers the {label}"
            if _sign(metric) > 0
            else f"stop {variant} and keep {comparison.get('baseline')}: it worsens the {label}",
        )
    return Criterion(
        "acceptance_above_baseline",
        PENDING,
        f"{sentence}: not significant yet.",
        action="keep collecting data until the difference is clear",
    )


def _consistency(result: dict, cfg: ReadinessSettings, variant: str) -> Criterion:
    weeks = [w for w in result.get("weekly") or [] if w.get("complete")]
    seen: list[tuple[str, float, dict]] = []
    for week in weeks:
        metric = _metric(week.get("metrics"), cfg.primary_metric)
        comparison = _comparison(metric, variant)
        if _not_enough(metric, comparison) is None:
            seen.append((week.get("week", "?"), finite_number(comparison["difference"]), metric))
    if not seen:
        why = "no complete week yet" if not weeks else "no complete week with enough data yet"
        return Criterion(
            "consistency",
            PENDING,
            f"Week-by-week lift cannot be judged: {why}.",
            action="wait for a complete week",
        )
    kind = seen[0][2].get("kind", "proportion")
    shown = ", ".join(f"{w} {format_difference(kind, d)}" for w, d, _ in seen)
    bad = [w for w, d, m in seen if d * _sign(m) <= 0]
    label = metric_label(cfg.primary_metric)
    if not bad:
        return Criterion(
            "consistency",
            PASS,
            f"{variant} improved the {label} in "
            + (
                "the only complete week"
                if len(seen) == 1
                else f"each of {len(seen)} complete weeks"
            )
            + f" ({shown}).",
        )
    return Criterion(
        "consistency",
        FAIL,
        f"{variant} did not improve the {label} in {', '.join(bad)}: better in "
        f"{len(seen) - len(bad)} of {len(seen)} complete weeks ({shown}).",
        action=f"keep testing: the lift was not positive in {', '.join(bad)}",
    )


def _harm_check(
    result: dict,
    cfg: ReadinessSettings,
    variant: str,
    metric_name: str,
    key: str,
    *,
    missing: str,
) -> Criterion:
    """Non-inferiority on a guardrail-like metric: fail only on a significant harm."""
    metric = _metric(result.get("metrics"), metric_name)
    comparison = _comparison(metric, variant)
    label = metric_label(metric_name)
    why = _not_enough(metric, comparison)
    values = [finite_number(v.get("value")) for v in (metric or {}).get("variants") or []]
    # Nothing recorded in any arm usually means the events are not sent, not a perfect offer.
    if all(not v for v in values):
        why = missing
    if why:
        return Criterion(
            key, PENDING, f"The {label} cannot be checked yet: {why}.", action=f"{missing}"
        )
    sentence = comparison_sentence(metric, comparison, alpha=cfg.alpha)
    if _worse(metric, comparison):
        return Criterion(
            key,
            FAIL,
            f"{sentence}: significantly worse.",
            settled=True,
            action=f"stop {variant} and keep {comparison.get('baseline')}: it worsens the {label}",
        )
    return Criterion(key, PASS, f"{sentence}: not worse.")


def _return_rate(result: dict, cfg: ReadinessSettings, variant: str) -> Criterion:
    return _harm_check(
        result,
        cfg,
        variant,
        "return_rate",
        "return_rate",
        missing="no returns recorded yet (send order_returned events)",
    )


def _guardrails(result: dict, cfg: ReadinessSettings, variant: str) -> Criterion:
    names = [
        m.get("metric")
        for m in result.get("metrics") or []
        if m.get("guardrail") and m.get("metric") and m.get("metric") != "return_rate"
    ]
    names += [n for n in cfg.guardrail_metrics if n not in names and n not in ("return_rate", None)]
    if "cart_abandonment_rate" not in names:
        names.insert(0, "cart_abandonment_rate")
    checks = [
        _harm_check(
            result,
            cfg,
            variant,
            name,
            "guardrails",
            missing=f"no {metric_label(name)} data yet"
            + (" (send cart_abandoned events)" if name == "cart_abandonment_rate" else ""),
        )
        for name in names
    ]
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        return Criterion(
            "guardrails",
            FAIL,
            " ".join(c.detail for c in failed),
            settled=True,
            action=failed[0].action,
        )
    pending = [c for c in checks if c.status == PENDING]
    if pending:
        return Criterion(
            "guardrails", PENDING, " ".join(c.detail for c in pending), action=pending[0].action
        )
    return Criterion("guardrails", PASS, " ".join(c.detail for c in checks))


def _customer_feedback(result: dict, cfg: ReadinessSettings, variant: str) -> Criterion:
    metrics = result.get("metrics")
    csat = _metric(metrics, "csat")
    csat_cmp = _comparison(csat, variant)
    control = (csat_cmp or {}).get("baseline")
    answers = min(_variant_n(csat, variant), _variant_n(csat, control)) if csat_cmp else 0
    if csat is None or csat_cmp is None or answers == 0:
        return Criterion(
            "customer_feedback",
            PENDING,
            "No survey answers yet: add a survey with a CSAT question to hear what customers "
            "think of the offers.",
            action="add a survey with a CSAT question (Feedback → Surveys)",
        )
    if answers < cfg.min_survey_answers or _not_enough(csat, csat_cmp):
        return Criterion(
            "customer_feedback",
            PENDING,
            f"Only {answers} survey answers in the smaller arm; at least "
            f"{cfg.min_survey_answers} are needed.",
            action="wait for more survey answers",
        )
    csat_sentence = comparison_sentence(csat, csat_cmp, alpha=cfg.alpha)
    intr = _metric(metrics, "intrusiveness")
    intr_cmp = _comparison(intr, variant)
    intr_known = intr_cmp is not None and _not_enough(intr, intr_cmp) is None
    harms = []
    if _worse(csat, csat_cmp):
        harms.append(f"{csat_sentence}: significantly worse")
    if intr_known and _worse(intr, intr_cmp):
        harms.append(
            f"{comparison_sentence(intr, intr_cmp, alpha=cfg.alpha)}: customers find it "
            "significantly pushier"
        )
    if harms:
        return Criterion(
            "customer_feedback",
            FAIL,
            "; ".join(harms) + ".",
            settled=True,
            action=f"stop {variant} and keep {control}: customers like it less",
        )
    mean = _variant_value(csat, variant)
    if mean is None or mean < cfg.csat_floor:
        return Criterion(
            "customer_feedback",
            FAIL,
            f"{csat_sentence}: below the floor of {cfg.csat_floor:.1f} / 5.",
            action=f"improve the offer: {possessive(variant)} CSAT "
            f"{format_value('rating', mean)} is below the {cfg.csat_floor:.1f} floor",
        )
    tail = (
        f"; {comparison_sentence(intr, intr_cmp, alpha=cfg.alpha)}: not pushier"
        if intr_known
        else "; intrusiveness was not asked"
    )
    return Criterion(
        "customer_feedback",
        PASS,
        f"{csat_sentence}: not worse and at or above the {cfg.csat_floor:.1f} floor{tail}.",
    )


def _segments(result: dict, cfg: ReadinessSettings, variant: str) -> Criterion:
    rows = []
    for segment in result.get("segments") or []:
        metric = _metric(segment.get("metrics"), cfg.primary_metric)
        comparison = _comparison(metric, variant)
        if _not_enough(metric, comparison) is None:
            rows.append((str(segment.get("segment") or "(no segment)"), metric, comparison))
    if not rows:
        why = (
            "no segment has enough data yet"
            if result.get("segments")
            else "customers carry no segment attribute"
        )
        return Criterion(
            "segments",
            PENDING,
            f"Segments cannot be compared: {why}.",
            action="wait for more customers in each segment",
        )
    # Holm across segments: with many segments, one will look harmed by chance.
    adjusted = holm([finite_number(c.get("p_value")) for _, _, c in rows])
    harmed, positive = [], []
    for (name, metric, comparison), p in zip(rows, adjusted, strict=True):
        diff = finite_number(comparison["difference"]) * _sign(metric)
        if diff > 0:
            positive.append(name)
        elif p is not None and p < cfg.alpha and diff < 0:
            harmed.append((name, metric, comparison, p))
    kind = rows[0][1].get("kind", "proportion")
    label = metric_label(cfg.primary_metric)
    if harmed:
        name, metric, comparison, p = harmed[0]
        return Criterion(
            "segments",
            FAIL,
            f"{variant} harms the {label} in segment {name} "
            f"({format_difference(kind, comparison['difference'])}, {format_p(p)} after "
            f"correction across {len(rows)} segments).",
            action=f"rework the offer for segment {name} or exclude it from the target",
        )
    shown = ", ".join(f"{n} {format_difference(kind, c['difference'])}" for n, _, c in rows)
    if len(positive) * 2 > len(rows):
        return Criterion(
            "segments",
            PASS,
            f"{variant} improved the {label} in {len(positive)} of {len(rows)} segments and "
            f"harmed none significantly ({shown}).",
        )
    if not _sample_reached(result, cfg):
        # Small segments flip sign by chance; judge breadth once the planned sample is in.
        return Criterion(
            "segments",
            PENDING,
            f"So far {variant} improved the {label} in {len(positive)} of {len(rows)} segments "
            f"({shown}); breadth is judged once the planned sample is reached.",
            action="wait for the planned sample",
        )
    return Criterion(
        "segments",
        FAIL,
        f"{variant} improved the {label} in only {len(positive)} of {len(rows)} segments "
        f"({shown}).",
        action="compare segments: the lift is not broad enough to scale",
    )


# --- verdict -----------------------------------------------------------------------------------


def _next_traffic(traffic: float) -> float | None:
    return next((step for step in TRAFFIC_LADDER if step > traffic + 1e-9), None)


def _pct(x: float) -> str:
    return f"{x:g} %"


def evaluate(
    result: dict | None, cfg: ReadinessSettings, *, generated_at: datetime | None = None
) -> dict:
    """The readiness JSON (DESIGN.md) for one analysis result. Never raises on missing data."""
    result = normalise(result)
    generated_at = generated_at or datetime.now(UTC)
    info = result.get("experiment_info") or {}
    control, treatments = _control_and_treatments(result)
    common = [_min_duration(result, cfg), _sample_size(result, cfg), _srm(result, cfg)]
    per_variant = (_primary, _consistency, _return_rate, _customer_feedback, _segments, _guardrails)

    candidates = []
    for variant in treatments:
        primary_metric = _metric(result.get("metrics"), cfg.primary_metric)
        comparison = _comparison(primary_metric, variant)
        diff = finite_number((comparison or {}).get("difference"))
        candidates.append(
            _Candidate(
                variant=variant,
                criteria=[rule(result, cfg, variant) for rule in per_variant],
                winner=bool(comparison and _better(primary_metric, comparison)),
                difference=None if diff is None else diff * _sign(primary_metric),
            )
        )
    # Focus on the treatment most worth scaling: unharmed first, then winners, then the lift.
    focus = max(
        candidates,
        key=lambda c: (
            not c.harmed,
            c.winner,
            c.difference is not None,
            c.difference or 0.0,
        ),
        default=None,
    )
    if focus is None:
        reason = "only one variant, so there is nothing to compare with the control"
        if not control and not treatments:
            reason = "no analysis result yet"
        focus_criteria = [
            Criterion(key, PENDING, f"Not judged: {reason}.", action="add a variant to compare")
            for key in CRITERIA[3:]
        ]
    else:
        focus_criteria = focus.criteria
    by_key = {c.key: c for c in common + focus_criteria}
    criteria = [by_key[key] for key in CRITERIA]

    if any(c.settled for c in criteria):
        verdict = DO_NOT_SCALE
    elif all(c.status == PASS for c in criteria):
        verdict = READY
    else:
        verdict = KEEP_TESTING
    recommended = focus.variant if focus and focus.winner and verdict != DO_NOT_SCALE else control

    if not result:
        next_step = NO_ANALYSIS_STEP
    elif focus is None:
        next_step = ONE_VARIANT_STEP
    else:
        next_step = _next_step(verdict, criteria, cfg, recommended, control, result)
    return {
        "experiment": result.get("experiment") or info.get("key"),
        "verdict": verdict,
        "recommended_variant": recommended,
        "criteria": [c.to_dict() for c in criteria],
        "next_step": next_step,
        "generated_at": generated_at.isoformat().replace("+00:00", "Z"),
    }


def _next_step(
    verdict: str,
    criteria: list[Criterion],
    cfg: ReadinessSettings,
    recommended: str | None,
    control: str | None,
    result: dict,
) -> str:
    by_key = {c.key: c for c in criteria}
    if verdict == DO_NOT_SCALE:
        if by_key["srm"].settled:
            return by_key["srm"].action
        first = next(c for c in criteria if c.settled)
        return first.action or f"stop the experiment and keep {control}"
    if verdict == READY:
        step = _next_traffic(cfg.traffic_percent)
        if step is None:
            return f"ship {recommended} to every customer and stop the experiment"
        return f"raise traffic from {_pct(cfg.traffic_percent)} to {_pct(step)}"
    waiting = [by_key[k] for k in ("sample_size", "min_duration") if by_key[k].status == PENDING]
    if waiting:
        days = []
        power_days = finite_number((result.get("power") or {}).get("days_remaining"))
        if by_key["sample_size"].status == PENDING and power_days is not None:
            days.append(math.ceil(power_days))
        info_days = finite_number((result.get("experiment_info") or {}).get("days_running"))
        if by_key["min_duration"].status == PENDING and info_days is not None:
            days.append(math.ceil(cfg.min_days - info_days))
        if days:
            n = max(days)
            step = _next_traffic(cfg.traffic_percent)
            # A pilot that would take months: more traffic beats more patience.
            if n > 4 * max(cfg.min_days, 7) and step is not None:
                return (
                    f"raise traffic from {_pct(cfg.traffic_percent)} to {_pct(step)}: at "
                    f"today's traffic the planned sample needs about {n} more days"
                )
            return f"about {n} more {'day' if n == 1 else 'days'} at today's traffic"
        return waiting[0].action or "keep the experiment running"
    power = result.get("power") or {}
    required = finite_number(power.get("required_per_variant"))
    current = finite_number(power.get("current_min_per_variant"))
    reached = required is not None and current is not None and current >= required
    if by_key["acceptance_above_baseline"].status == PENDING and reached:
        # The planned sample was sized for the MDE: more of the same will not find it.
        return (
            f"no clear difference at the planned sample size: keep {control}, or test a bolder "
            "change"
        )
    first = next((c for c in criteria if c.status != PASS), None)
    return first.action if first and first.action else "keep the experiment running"


# --- entry point -------------------------------------------------------------------------------


def settings_for(experiment, result: dict | None = None) -> ReadinessSettings:
    """The rule settings from the experiment as it is now and the deployment's settings."""
    from django.conf import settings

    guardrails = tuple(experiment.guardrail_metrics or ()) or ReadinessSettings.guardrail_metrics
    return ReadinessSettings(
        min_days=experiment.min_days,
        traffic_percent=float(experiment.traffic_percent),
        safe_peeking=bool(experiment.safe_peeking),
        alpha=float(experiment.alpha),
        csat_floor=float(settings.OFFERLAB_CSAT_FLOOR),
        min_survey_answers=int(settings.OFFERLAB_MIN_SURVEY_ANSWERS),
        primary_metric=experiment.primary_metric,
        guardrail_metrics=guardrails,
    )


def readiness_for_run(run) -> dict:
    """Readiness JSON for a finished `AnalysisRun` (its result + its experiment's settings)."""
    from django.utils import timezone

    return evaluate(run.result, settings_for(run.experiment), generated_at=timezone.now())
