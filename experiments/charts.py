"""Server-side charts of an analysis result, as inline SVG strings (matplotlib, Agg backend).

Every chart reads the analysis JSON (DESIGN.md) only, labels things in words, marks the
control, shows the confidence interval, and uses the Okabe–Ito colour-blind-safe palette with a
second cue (marker shape, hatching or a word) so colour is never the only signal. A chart
without data returns None; callers show why instead.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
from collections.abc import Callable
from datetime import date

import matplotlib

# Figures are built with the object API (no pyplot state), so web threads never share one.
matplotlib.use("Agg")

import matplotlib.dates as mdates
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import ScaledTranslation

from experiments.readiness import finite_number, metric_label, normalise

logger = logging.getLogger(__name__)
# rc_context swaps matplotlib's global rcParams: one drawing at a time per process.
_DRAW_LOCK = threading.Lock()

# Bump when the drawings change, so cached SVGs of older runs are redrawn.
CHARTS_VERSION = 4

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
BETTER = OKABE_ITO["bluish_green"]
WORSE = OKABE_ITO["vermillion"]
UNCLEAR = "#7F7F7F"
CONTROL = "#404040"
TREATMENT_COLOURS = (
    OKABE_ITO["blue"],
    OKABE_ITO["orange"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["vermillion"],
)
# Five rating steps, colour-blind safe and ordered (ColorBrewer PuOr, reversed so 5 is purple).
RATING_COLOURS = ("#E66101", "#FDB863", "#E0E0E0", "#B2ABD2", "#5E3C99")
RATING_ENDS = {
    "csat": ("not helpful", "very helpful"),
    "intrusiveness": ("not pushy", "very pushy"),
}

_STYLE = {
    # Matplotlib lays text out with DejaVu Sans; browsers without it fall back to a narrower
    # sans-serif, so labels never overflow.
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Verdana", "Arial", "Helvetica"],
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "legend.frameon": False,
    "svg.fonttype": "none",  # keep text as text: crisp, searchable, small
}
_XML_HEAD = re.compile(r"^.*?(?=<svg)", re.S)


def _svg(fig, name: str, description: str) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({**_STYLE, "svg.hashsalt": name}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = _XML_HEAD.sub("", buffer.getvalue(), count=1)
    # Make it scale to its container and announce itself to screen readers.
    svg = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r"<svg \1", svg, count=1)
    svg = svg.replace(
        "<svg ",
        f'<svg role="img" aria-label="{_escape(description)}" class="chart chart-{name}" ',
        1,
    )
    return svg


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _control(result: dict) -> str | None:
    info = result.get("experiment_info") or {}
    if info.get("control"):
        return info["control"]
    for metric in result.get("metrics") or []:
        for v in metric.get("variants") or []:
            if v.get("is_control"):
                return v.get("variant")
    return None


def _treatments(result: dict) -> list[str]:
    info = result.get("experiment_info") or {}
    control = _control(result)
    variants = list(info.get("variants") or [])
    if not variants:
        for metric in result.get("metrics") or []:
            for v in metric.get("variants") or []:
                if v.get("variant") not in variants:
                    variants.append(v.get("variant"))
    return [v for v in variants if v != control]


def _colour_for(variant: str, treatments: list[str]) -> str:
    index = treatments.index(variant) if variant in treatments else 0
    return TREATMENT_COLOURS[index % len(TREATMENT_COLOURS)]


def _verdict(metric: dict, comparison: dict) -> str:
    diff = finite_number(comparison.get("difference"))
    if not comparison.get("significant") or diff is None or diff == 0:
        return "unclear"
    sign = -1 if metric.get("direction") == "lower" else 1
    return "better" if diff * sign > 0 else "worse"


_VERDICT_STYLE = {
    "better": (BETTER, "o", "better than control"),
    "worse": (WORSE, "X", "worse than control"),
    "unclear": (UNCLEAR, "s", "no clear difference"),
}


def _primary(result: dict) -> str:
    info = result.get("experiment_info") or {}
    return info.get("primary_metric") or (result.get("power") or {}).get(
        "metric", "acceptance_rate"
    )


def _metric(metrics, name):
    return next((m for m in metrics or [] if m.get("metric") == name), None)


def _diff_scale(kind: str) -> tuple[float, str]:
    """Multiplier and axis unit for a metric's absolute difference."""
    if kind == "proportion":
        return 100.0, "percentage points"
    if kind == "rating":
        return 1.0, "points on the 1–5 scale"
    if kind == "time_to_event":
        return 1.0, "hours"
    return 1.0, "units of the metric"


def _fmt_signed(x: float, digits: int = 1) -> str:
    if round(abs(x), digits) == 0:
        return f"{0:.{digits}f}"
    return f"{'+' if x > 0 else '−'}{abs(x):,.{digits}f}"


def _relative_from_difference(metric: dict, comparison: dict) -> tuple:
    """Relative lift and CI from the absolute ones when the analysis gave none (÷ control)."""
    base = next(
        (
            finite_number(v.get("value"))
            for v in metric.get("variants") or []
            if v.get("variant") == comparison.get("baseline")
        ),
        None,
    )
    diff = finite_number(comparison.get("difference"))
    if not base or diff is None:
        return None, None, None
    lo, hi = finite_number(comparison.get("ci_low")), finite_number(comparison.get("ci_high"))
    return (
        diff / base,
        None if lo is None else lo / base,
        None if hi is None else hi / base,
    )


# --- 1. forest plot: every metric's effect and CI ---------------------------------------------


def forest_plot(result: dict) -> str | None:
    """Relative change vs control with its CI, one row per metric and treatment."""
    control = _control(result) or "control"
    treatments = _treatments(result)
    primary = _primary(result)
    rows = []
    for metric in result.get("metrics") or []:
        for comparison in metric.get("comparisons") or []:
            label = metric_label(metric.get("metric", "")).capitalize().replace("Csat", "CSAT")
            tags = []
            if metric.get("metric") == primary:
                tags.append("primary")
            if metric.get("guardrail"):
                tags.append("guardrail")
            if metric.get("direction") == "lower":
                tags.append("lower is better")
            if len(treatments) > 1:
                label = f"{label}: {comparison.get('variant')}"
            if tags:
                label = f"{label}\n({', '.join(tags)})"
            rows.append((label, metric, comparison))
    if not rows:
        return None

    points = []
    for _, metric, comparison in rows:
        lift = finite_number(comparison.get("relative_lift"))
        ci = comparison.get("relative_ci") or [None, None]
        lo, hi = (
            (finite_number(ci[0]) if len(ci) > 0 else None),
            (finite_number(ci[1]) if len(ci) > 1 else None),
        )
        if lift is None:
            lift, lo, hi = _relative_from_difference(metric, comparison)
        points.append(
            (
                None if lift is None else lift * 100,
                None if lo is None else lo * 100,
                None if hi is None else hi * 100,
            )
        )
    extent = [abs(v) for p in points for v in p if v is not None]
    limit = min(max(extent, default=10.0) * 1.15, 100.0)
    limit = max(limit, 5.0)

    with matplotlib.rc_context(_STYLE):
        height = 0.62 * len(rows) + 1.6
        fig = Figure(figsize=(7.0, height))
        ax = fig.subplots()
        ax.axvline(0, color=CONTROL, linewidth=1.2, zorder=1)
        used = set()
        for y, ((_, metric, comparison), (lift, lo, hi)) in enumerate(
            zip(rows, points, strict=True)
        ):
            verdict = _verdict(metric, comparison)
            colour, marker, _ = _VERDICT_STYLE[verdict]
            if lift is None:
                ax.text(
                    0.02 * limit,
                    y,
                    "not enough data yet",
                    va="center",
                    ha="left",
                    color=UNCLEAR,
                    style="italic",
                )
                continue
            used.add(verdict)
            if lo is not None and hi is not None:
                ax.hlines(
                    y,
                    max(lo, -limit),
                    min(hi, limit),
                    color=colour,
                    linewidth=2.6,
                    zorder=2,
                )
                for end, edge, arrow in ((lo, -limit, "<"), (hi, limit, ">")):
                    if (end < edge) if edge < 0 else (end > edge):
                        ax.plot(edge, y, marker=arrow, color=colour, markersize=7, zorder=3)
            ax.plot(
                max(min(lift, limit), -limit),
                y,
                marker=marker,
                color=colour,
                markersize=9,
                markeredgecolor="white",
                zorder=4,
            )
            ci_text = (
                "" if lo is None or hi is None else f"  [{_fmt_signed(lo)}, {_fmt_signed(hi)}]"
            )
            ax.annotate(
                f"{_fmt_signed(lift)} %{ci_text}",
                xy=(1.0, y),
                xycoords=("axes fraction", "data"),
                xytext=(8, 0),
                textcoords="offset points",
                va="center",
                ha="left",
                color=colour if verdict != "unclear" else "#333333",
                fontweight="bold" if verdict != "unclear" else "normal",
            )
        ax.set_yticks(range(len(rows)), [r[0] for r in rows])
        ax.set_ylim(len(rows) - 0.4, -0.8)
        ax.set_xlim(-limit, limit)
        ax.set_xlabel(f"Change vs control ({control}), % of the control's value, with 95 % CI")
        ax.text(
            0,
            -0.65,
            f"no change vs {control}",
            ha="center",
            va="bottom",
            fontsize=9,
            color=CONTROL,
        )
        ax.xaxis.set_major_formatter(lambda v, _: f"{_fmt_signed(v, 0)} %")
        ax.set_title("Effect of each variant on every metric", pad=40)
        handles = [
            Line2D(
                [],
                [],
                marker=_VERDICT_STYLE[v][1],
                color=_VERDICT_STYLE[v][0],
                linestyle="-",
                linewidth=2.6,
                markersize=8,
                label=_VERDICT_STYLE[v][2],
            )
            for v in ("better", "worse", "unclear")
            if v in used
        ]
        if handles:
            ax.legend(
                handles=handles,
                loc="lower left",
                bbox_to_anchor=(0.0, 1.0),
                # Just above the axes, below the title, whatever the figure's height.
                bbox_transform=ax.transAxes + ScaledTranslation(0, 4 / 72, fig.dpi_scale_trans),
                ncol=len(handles),
                borderaxespad=0,
            )
        ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
        ax.set_axisbelow(True)
    return _svg(
        fig,
        "forest",
        f"Forest plot: relative change of each metric versus control {control}, with 95 % "
        "confidence intervals.",
    )


# --- 2. cumulative lift by day ----------------------------------------------------------------


def cumulative_lift_chart(result: dict) -> str | None:
    """The primary metric's cumulative difference vs control by day, with its CI band."""
    daily = result.get("daily") or []
    control = _control(result) or "control"
    treatments = _treatments(result)
    primary = _primary(result)
    metric = _metric(result.get("metrics"), primary) or {}
    kind = metric.get("kind", "proportion")
    scale, unit = _diff_scale(kind)
    series: dict[str, list[tuple[date, float, float | None, float | None]]] = {}
    for day in daily:
        try:
            when = date.fromisoformat(str(day.get("date"))[:10])
        except ValueError:
            continue
        for point in day.get("cumulative") or []:
            diff = finite_number(point.get("difference"))
            if diff is None:
                continue
            lo, hi = finite_number(point.get("ci_low")), finite_number(point.get("ci_high"))
            series.setdefault(point.get("variant"), []).append(
                (
                    when,
                    diff * scale,
                    None if lo is None else lo * scale,
                    None if hi is None else hi * scale,
                )
            )
    if not series:
        return None
    required = finite_number((result.get("power") or {}).get("required_per_variant"))
    reached = None
    if required:
        for day in daily:
            counts = [finite_number(n) for n in (day.get("counts") or {}).values()]
            counts = [n for n in counts if n is not None]
            if counts and min(counts) >= required:
                reached = date.fromisoformat(str(day.get("date"))[:10])
                break

    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(9.0, 4.2))
        ax = fig.subplots()
        ax.axhline(0, color=CONTROL, linewidth=1.2)
        for variant, points in series.items():
            colour = _colour_for(variant, treatments)
            xs = [p[0] for p in points]
            band = [(p[0], p[2], p[3]) for p in points if p[2] is not None and p[3] is not None]
            if band:
                ax.fill_between(
                    [b[0] for b in band],
                    [b[1] for b in band],
                    [b[2] for b in band],
                    color=colour,
                    alpha=0.18,
                    linewidth=0,
                    label=f"{variant}: 95 % CI",
                )
            ax.plot(
                xs,
                [p[1] for p in points],
                color=colour,
                linewidth=2.2,
                label=f"{variant} vs {control}",
            )
            last = points[-1]
            ax.annotate(
                f"{variant}: {_fmt_signed(last[1])}",
                xy=(last[0], last[1]),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                color=colour,
                fontweight="bold",
            )
        ax.annotate(
            f"{control} (control)",
            xy=(0.0, 0),
            xycoords=("axes fraction", "data"),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=9,
            color=CONTROL,
        )
        if reached is not None:
            ax.axvline(reached, color="#555555", linestyle="--", linewidth=1)
            ax.annotate(
                "planned sample reached",
                xy=(reached, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(4, -12),
                textcoords="offset points",
                fontsize=9,
                color="#555555",
            )
        label = metric_label(primary)
        ax.set_title(f"Cumulative difference in {label} vs {control}, day by day")
        ax.set_ylabel(f"Difference ({unit})")
        ax.set_xlabel("Customers assigned up to this day")
        ax.yaxis.set_major_formatter(lambda v, _: _fmt_signed(v, 1))
        fig.autofmt_xdate(rotation=0, ha="center")
        locator = mdates.AutoDateLocator(maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4)
        ax.set_axisbelow(True)
    return _svg(
        fig,
        "cumulative",
        f"Line chart: cumulative difference in {metric_label(primary)} versus control "
        f"{control} by day, with a shaded 95 % confidence band that narrows as data comes in.",
    )


# --- 3. weekly lift per segment ---------------------------------------------------------------


def _bars(ax, rows, scale, treatments, *, limit: float) -> set[str]:
    """Grouped bars with CI whiskers; rows = [(label, [(variant, cmp, metric, complete)])].

    Incomplete weeks are hatched and hollow; whiskers beyond ±``limit`` end in an arrow.
    """
    used = set()
    width = 0.8 / max(len(treatments), 1)
    for i, (_, entries) in enumerate(rows):
        for j, (variant, comparison, metric, complete) in enumerate(entries):
            diff = finite_number(comparison.get("difference"))
            x = i - 0.4 + width * (j + 0.5)
            if diff is None:
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=8, color=UNCLEAR)
                continue
            verdict = _verdict(metric, comparison)
            used.add(verdict)
            colour = _colour_for(variant, treatments)
            ax.bar(
                x,
                diff * scale,
                width=width * 0.9,
                color=colour if complete else "white",
                edgecolor=colour,
                hatch=None if complete else "///",
                linewidth=1.4,
                alpha=1.0 if verdict != "unclear" else 0.55 if complete else 1.0,
            )
            lo, hi = (
                finite_number(comparison.get("ci_low")),
                finite_number(comparison.get("ci_high")),
            )
            if lo is not None and hi is not None:
                lo, hi = lo * scale, hi * scale
                ax.vlines(x, max(lo, -limit), min(hi, limit), color="#222222", linewidth=1)
                for end, edge, arrow in ((lo, -limit, "v"), (hi, limit, "^")):
                    beyond = end < edge if edge < 0 else end > edge
                    ax.plot(
                        x,
                        edge if beyond else end,
                        marker=arrow if beyond else "_",
                        color="#222222",
                        markersize=5 if beyond else 6,
                    )
            if verdict != "unclear":
                anchor = (hi if diff > 0 else lo) if hi is not None else diff * scale
                ax.annotate(
                    "▲ better" if verdict == "better" else "▼ worse",
                    xy=(x, max(min(anchor, limit), -limit)),
                    xytext=(0, 4 if diff > 0 else -12),
                    textcoords="offset points",
                    ha="center",
                    fontsize=8,
                    color=BETTER if verdict == "better" else WORSE,
                    fontweight="bold",
                    annotation_clip=False,
                )
    return used


def _week_label(week: dict, *, with_date: bool) -> str:
    label = str(week.get("week", "?")).split("-")[-1]
    start = str(week.get("start") or "")
    if with_date and start:
        with contextlib.suppress(ValueError):
            label = f"{label}\n{date.fromisoformat(start[:10]):%d %b}"
    if not week.get("complete"):
        label += "\npartial"
    return label


def _panel_limit(panels, scale: float) -> float:
    """Half the shared y range: every bar fits, and every CI of the all-customers panel.

    A small segment's whisker may reach beyond (it then ends in an arrow), so one noisy
    segment does not flatten every other panel.
    """
    diffs, overall = [], []
    for index, (_, _, by_week) in enumerate(panels):
        for entries in by_week.values():
            for _, comparison, _, _ in entries:
                diff = finite_number(comparison.get("difference"))
                if diff is None:
                    continue
                diffs.append(abs(diff * scale))
                if index == 0:
                    for end in (comparison.get("ci_low"), comparison.get("ci_high")):
                        if finite_number(end) is not None:
                            overall.append(abs(finite_number(end) * scale))
    largest = max(diffs, default=0.0)
    return (max(largest * 2.5, max(overall, default=0.0)) or 1.0) * 1.1


def weekly_segment_chart(result: dict) -> str | None:
    """Primary-metric difference vs control per calendar week: all customers, then each segment.

    Small multiples on one shared scale; a segment without customers in a week has no bar.
    """
    primary = _primary(result)
    control = _control(result) or "control"
    treatments = _treatments(result)
    metric_kind = (_metric(result.get("metrics"), primary) or {}).get("kind", "proportion")
    scale, unit = _diff_scale(metric_kind)

    def by_week(weeks) -> dict[str, list]:
        out = {}
        for week in weeks or []:
            if not isinstance(week, dict):
                continue
            metric = _metric(week.get("metrics"), primary)
            entries = [
                (c.get("variant"), c, metric, bool(week.get("complete")))
                for c in (metric or {}).get("comparisons") or []
                if isinstance(c, dict) and c.get("variant") in treatments
            ]
            if entries:
                out[str(week.get("week"))] = entries
        return out

    sources = [("All customers", result.get("weekly"))] + [
        (str(s.get("segment")), s.get("weekly")) for s in result.get("segments") or []
    ]
    weeks: dict[str, dict] = {}
    for _, source in sources:
        for week in source or []:
            if isinstance(week, dict) and week.get("week") is not None:
                weeks.setdefault(str(week["week"]), week)
    order = sorted(weeks)
    panels = [(title, source, by_week(source)) for title, source in sources]
    panels = [p for p in panels if p[2]]
    if not panels:
        return None
    limit = _panel_limit(panels, scale)

    columns = min(len(panels), 3)
    rows_count = -(-len(panels) // columns)
    with_date = len(order) <= 6
    labels = [_week_label(weeks[w], with_date=with_date) for w in order]
    with matplotlib.rc_context(_STYLE):
        height = 2.5 * rows_count + 1.4
        fig = Figure(figsize=(9.0, height))
        axes = fig.subplots(rows_count, columns, sharey=True, squeeze=False)
        for ax, (title, _, panel_weeks) in zip(axes.flat, panels, strict=False):
            rows = [(w, panel_weeks.get(w, [])) for w in order]
            _bars(ax, rows, scale, treatments, limit=limit)
            ax.axhline(0, color=CONTROL, linewidth=1.2)
            ax.set_xticks(range(len(order)), labels, fontsize=8)
            ax.set_xlim(-0.6, len(order) - 0.4)
            # Headroom beyond ±limit for the ▲/▼ words over a clipped whisker.
            ax.set_ylim(-limit * 1.25, limit * 1.25)
            ax.set_title(title, fontsize=10, loc="left")
            ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
            ax.set_axisbelow(True)
            ax.yaxis.set_major_formatter(lambda v, _: _fmt_signed(v, 1))
        for ax in axes.flat[len(panels) :]:
            ax.set_visible(False)
        fig.supylabel(f"Difference vs {control} ({unit})", fontsize=10)
        fig.suptitle(
            f"Weekly difference in {metric_label(primary)} vs {control} (control), per segment",
            x=0.01,
            ha="left",
            fontsize=12,
            fontweight="bold",
        )
        handles = [Patch(color=_colour_for(t, treatments), label=t) for t in treatments]
        handles.append(Line2D([], [], color="#222222", marker="_", label="95 % CI"))
        if any(not w.get("complete") for w in weeks.values()):
            handles.append(
                Patch(
                    facecolor="white",
                    edgecolor="#555555",
                    hatch="///",
                    label="partial week (not counted)",
                )
            )
        fig.legend(handles=handles, loc="lower center", ncol=len(handles))
        fig.tight_layout(rect=(0, 0.45 / height, 1, 1 - 0.4 / height))
    names = ", ".join(title for title, _, _ in panels[1:]) or "none"
    return _svg(
        fig,
        "weekly-segments",
        f"Bar charts, one panel per customer segment: difference in {metric_label(primary)} "
        f"versus control {control} for each calendar week, with 95 % confidence intervals; "
        f"the first panel is all customers, then the segments {names}. "
        "Hatched hollow bars are partial weeks.",
    )


# --- 4. survey scores per variant -------------------------------------------------------------


def survey_chart(result: dict) -> str | None:
    """How customers rated the offers (1–5), as 100 % bars per variant, per survey question."""
    control = _control(result)
    metrics = [
        m
        for m in result.get("metrics") or []
        if m.get("kind") == "rating"
        and any(sum(v.get("histogram") or []) > 0 for v in m.get("variants") or [])
    ]
    if not metrics:
        return None
    with matplotlib.rc_context(_STYLE):
        heights = [len(m.get("variants") or []) for m in metrics]
        fig = Figure(figsize=(9.0, 0.55 * sum(heights) + 1.3 * len(metrics) + 0.4))
        axes = fig.subplots(
            len(metrics),
            1,
            gridspec_kw={"height_ratios": heights},
            squeeze=False,
        )
        for ax, metric in zip(axes[:, 0], metrics, strict=True):
            variants = [v for v in metric.get("variants") or [] if v.get("histogram")]
            # Purple always means the favourable end, orange the unfavourable one.
            palette = RATING_COLOURS[::-1] if metric.get("direction") == "lower" else RATING_COLOURS
            labels = []
            for y, v in enumerate(variants):
                counts = [float(c or 0) for c in v["histogram"]][:5]
                total = sum(counts)
                name = v.get("variant")
                labels.append(f"{name} (control)" if name == control else str(name))
                left = 0.0
                for step, count in enumerate(counts):
                    share = count / total * 100 if total else 0
                    ax.barh(
                        y,
                        share,
                        left=left,
                        color=palette[step],
                        edgecolor="white",
                        height=0.7,
                    )
                    if share >= 7:
                        ax.text(
                            left + share / 2,
                            y,
                            f"{share:.0f} %",
                            ha="center",
                            va="center",
                            fontsize=8,
                            color="white" if step in (0, 4) else "#222222",
                        )
                    left += share
                mean = finite_number(v.get("value"))
                ax.annotate(
                    f"mean {mean:.2f}  (n = {total:,.0f})" if mean is not None else "",
                    xy=(1.0, y),
                    xycoords=("axes fraction", "data"),
                    xytext=(8, 0),
                    textcoords="offset points",
                    va="center",
                )
            ax.set_yticks(range(len(variants)), labels)
            ax.set_ylim(len(variants) - 0.5, -0.5)
            ax.set_xlim(0, 100)
            ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0f} %")
            low, high = RATING_ENDS.get(metric.get("metric"), ("lowest", "highest"))
            better = "lower is better" if metric.get("direction") == "lower" else "higher is better"
            ax.set_title(
                f"{metric_label(metric.get('metric', '')).capitalize().replace('Csat', 'CSAT')} "
                f"({better})",
                fontsize=11,
                pad=24,
            )
            names = [f"1 {low}", "2", "3", "4", f"5 {high}"]
            ax.legend(
                handles=[Patch(color=palette[i], label=names[i]) for i in range(5)],
                loc="lower left",
                bbox_to_anchor=(0.0, 1.0),
                ncol=5,
                fontsize=8.5,
                handlelength=1.2,
                columnspacing=1.0,
            )
            ax.spines["left"].set_visible(False)
            ax.tick_params(axis="y", length=0)
        fig.suptitle(
            "What customers answered in the survey, per variant",
            x=0.01,
            ha="left",
            fontsize=12,
            fontweight="bold",
        )
        fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _svg(
        fig,
        "survey",
        "Stacked bars: share of survey answers scoring 1 to 5 for each variant, per question.",
    )


CHARTS: tuple[tuple[str, str, Callable[[dict], str | None], str], ...] = (
    (
        "forest",
        "Effect on every metric",
        forest_plot,
        "No metric has a comparison with the control yet.",
    ),
    (
        "cumulative",
        "Cumulative lift by day",
        cumulative_lift_chart,
        "No daily results yet: the lift appears once customers are assigned to two variants.",
    ),
    (
        "weekly_segments",
        "Weekly lift per segment",
        weekly_segment_chart,
        "No weekly results yet: the lift per week and segment appears once customers are "
        "assigned to two variants.",
    ),
    (
        "survey",
        "Survey scores",
        survey_chart,
        "No survey answers yet: add a survey with a CSAT question (Feedback → Surveys).",
    ),
)


def all_charts(result: dict | None) -> list[dict]:
    """[{key, title, svg | None, empty}] for every chart, in reading order.

    A chart that cannot be drawn from a partial or malformed result is reported as missing
    (and logged); it never takes the verdict and the other charts down with it.
    """
    data = normalise(result)
    data["daily"] = [d for d in (data.get("daily") or []) if isinstance(d, dict)]
    charts = []
    for key, title, render, empty in CHARTS:
        try:
            with _DRAW_LOCK:
                svg = render(data)
        except Exception:
            logger.exception("chart %s could not be drawn", key)
            svg, empty = None, "This chart could not be drawn from this analysis (see the logs)."
        charts.append({"key": key, "title": title, "svg": svg, "empty": empty})
    return charts
