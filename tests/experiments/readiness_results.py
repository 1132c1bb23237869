"""Analysis results in the contract shape (brief: "Analysis JSON"), built by hand for tests.

`healthy_result()` is a two-arm experiment (control A, treatment B) that meets every criterion;
tests change one part of it to exercise one rule.
"""

import copy
from datetime import date, timedelta


def comparison(variant="B", difference=0.022, ci=(0.009, 0.035), p=0.001, **extra):
    """One treatment-vs-control comparison; `significant` follows p < 0.05 unless given."""
    p_adj = extra.pop("p_value_adjusted", p)
    row = {
        "variant": variant,
        "baseline": extra.pop("baseline", "A"),
        "difference": difference,
        "ci_low": None if ci is None else ci[0],
        "ci_high": None if ci is None else ci[1],
        "relative_lift": extra.pop("relative_lift", None),
        "relative_ci": extra.pop("relative_ci", [None, None]),
        "p_value": p,
        "p_value_adjusted": p_adj,
        "significant": extra.pop("significant", p_adj is not None and p_adj < 0.05),
        "chance_to_beat_control": extra.pop("chance_to_beat_control", None),
        "test": extra.pop("test", "z"),
    }
    row.update(extra)
    return row


def not_enough(variant="B"):
    return comparison(
        variant,
        difference=None,
        ci=None,
        p=None,
        significant=False,
        note="not enough data: fewer than 2 customers",
    )


def metric(name, kind, values, comparisons, *, direction="higher", guardrail=False, hist=None):
    """`values` is {variant: (n, value)}; the first variant is the control."""
    variants = []
    for i, (variant, (n, value)) in enumerate(values.items()):
        row = {"variant": variant, "is_control": i == 0, "n": n, "value": value}
        if hist and variant in hist:
            row["histogram"] = hist[variant]
        variants.append(row)
    return {
        "metric": name,
        "kind": kind,
        "guardrail": guardrail,
        "direction": direction,
        "variants": variants,
        "comparisons": comparisons,
    }


def acceptance(diff=0.022, ci=(0.009, 0.035), p=0.001, a=0.096, n=5000, variant="B", **kw):
    return metric(
        "acceptance_rate",
        "proportion",
        {"A": (n, a), variant: (n, a + (diff or 0))},
        [comparison(variant, diff, ci, p, **kw)],
    )


def return_rate(diff=-0.003, ci=(-0.010, 0.004), p=0.41, a=0.034, **kw):
    return metric(
        "return_rate",
        "proportion",
        {"A": (480, a), "B": (590, a + (diff or 0))},
        [comparison("B", diff, ci, p, **kw)],
        direction="lower",
        guardrail=True,
    )


def cart_abandonment(diff=0.001, ci=(-0.008, 0.010), p=0.83, a=0.21, **kw):
    return metric(
        "cart_abandonment_rate",
        "proportion",
        {"A": (5000, a), "B": (5000, a + (diff or 0))},
        [comparison("B", diff, ci, p, **kw)],
        direction="lower",
        guardrail=True,
    )


def csat(a=4.2, b=4.3, n=150, diff=None, ci=(-0.1, 0.3), p=0.35, **kw):
    diff = round(b - a, 6) if diff is None else diff
    return metric(
        "csat",
        "rating",
        {"A": (n, a), "B": (n, b)},
        [comparison("B", diff, ci, p, test="mann_whitney", **kw)],
        hist={"A": [3, 7, 15, 55, 70], "B": [2, 6, 12, 55, 75]},
    )


def intrusiveness(a=2.1, b=2.0, n=150, p=0.5, ci=(-0.3, 0.1), **kw):
    return metric(
        "intrusiveness",
        "rating",
        {"A": (n, a), "B": (n, b)},
        [comparison("B", round(b - a, 6), ci, p, test="mann_whitney", **kw)],
        direction="lower",
        hist={"A": [40, 60, 30, 15, 5], "B": [45, 60, 28, 12, 5]},
    )


def week(name, diff, complete=True, p=0.04, n=1200):
    """One entry of ``weekly`` (or of a segment's ``weekly``) for ISO week ``name``."""
    year, number = name.split("-W")
    monday = date.fromisocalendar(int(year), int(number), 1)
    return {
        "week": name,
        "start": monday.isoformat(),
        "end": (monday + timedelta(days=6)).isoformat(),
        "complete": complete,
        "metrics": [acceptance(diff=diff, ci=(diff - 0.02, diff + 0.02), p=p, n=n)],
    }


def segment(name, diff, p=0.04, n=1500, weeks=()):
    """One entry of ``segments``; ``weeks`` are ``week()`` entries of the primary metric."""
    return {
        "segment": name,
        "metrics": [acceptance(diff=diff, ci=(diff - 0.02, diff + 0.02), p=p, n=n)],
        "weekly": list(weeks),
    }


def healthy_result(**overrides) -> dict:
    """A result that passes all nine criteria (ready_to_scale at 10 % traffic)."""
    result = {
        "experiment": "pp-email-timing",
        "computed_at": "2026-11-22T10:00:00Z",
        "window": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-22T10:00:00Z"},
        "srm": {
            "p_value": 0.62,
            "passed": True,
            "counts": {"A": 5000, "B": 5000},
            "expected": {"A": 5000.0, "B": 5000.0},
        },
        "power": {
            "metric": "acceptance_rate",
            "baseline": 0.10,
            "mde": 0.02,
            "required_per_variant": 3843,
            "days_remaining": 0.0,
            "current_min_per_variant": 5000,
            "daily_rate_per_variant": 238.0,
        },
        "metrics": [acceptance(), return_rate(), cart_abandonment(), csat(), intrusiveness()],
        "segments": [
            segment(
                "new",
                0.015,
                p=0.2,
                weeks=[
                    week("2026-W45", 0.012, p=0.3, n=400),
                    week("2026-W46", 0.018, p=0.2, n=400),
                    week("2026-W47", 0.016, p=0.2, n=400),
                    week("2026-W48", -0.02, complete=False, p=0.5, n=300),
                ],
            ),
            segment(
                "loyal",
                0.03,
                p=0.01,
                weeks=[
                    week("2026-W45", 0.028, p=0.1, n=400),
                    week("2026-W46", 0.031, p=0.1, n=400),
                    week("2026-W47", 0.03, p=0.1, n=400),
                    week("2026-W48", 0.0, complete=False, p=0.9, n=300),
                ],
            ),
        ],
        "weekly": [
            week("2026-W45", 0.018),
            week("2026-W46", 0.024),
            week("2026-W47", 0.020),
            week("2026-W48", -0.01, complete=False, p=0.6),
        ],
        "daily": [
            {
                "date": f"2026-11-{d:02d}",
                "counts": {"A": 238 * d, "B": 238 * d},
                "cumulative": [
                    {
                        "variant": "B",
                        "difference": 0.02 + 0.01 / d,
                        "ci_low": 0.02 + 0.01 / d - 0.1 / d**0.5,
                        "ci_high": 0.02 + 0.01 / d + 0.1 / d**0.5,
                        "relative_lift": (0.02 + 0.01 / d) / 0.096,
                    }
                ],
            }
            for d in range(1, 22)
        ],
        "experiment_info": {
            "key": "pp-email-timing",
            "name": "Post-purchase email timing",
            "factor": "timing",
            "status": "running",
            "started_at": "2026-11-01T00:00:00Z",
            "days_running": 21.4,
            "traffic_percent": 10.0,
            "min_days": 14,
            "safe_peeking": False,
            "alpha": 0.05,
            "primary_metric": "acceptance_rate",
            "guardrail_metrics": ["return_rate", "cart_abandonment_rate"],
            "control": "A",
            "variants": ["A", "B"],
        },
    }
    result = copy.deepcopy(result)
    result.update(overrides)
    return result


def replace_metric(result: dict, new: dict) -> dict:
    result["metrics"] = [new if m["metric"] == new["metric"] else m for m in result["metrics"]]
    return result


def drop_metric(result: dict, name: str) -> dict:
    result["metrics"] = [m for m in result["metrics"] if m["metric"] != name]
    return result
