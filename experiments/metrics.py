"""SQL aggregation of outcomes into sufficient statistics per variant, segment and day.

One statement per experiment builds one row per assigned customer (intent to treat: every
Assignment row counts) with all outcome columns — one LEFT JOIN of the assignments with a
UNION ALL of the customer facts, one GROUP BY per assignment — then groups it twice: by
(variant, segment, day of assignment) for counts and sums, and by (variant, segment, ISO week,
hours, ordered) for time to the next order. Two small statements add the survey ratings and
displays. Python only ever sees these grouped rows; it rolls them up (per variant, segment,
week, cumulative day) by adding sums, which is exact for counts and uses ``math.fsum`` for
money.

Metric definitions (outcomes count from ``assigned_at`` up to the window end, inclusive):

- acceptance_rate: customers with an ``offer_accepted`` event whose offer is one of this
  experiment's offers (or names no offer) / assigned customers.
- time_to_secondary_purchase: hours from assignment to the first ``order_placed`` after it,
  rounded up to whole hours; customers without one are censored at the window end.
- category_expansion_rate: customers who ordered in a category (order items) in which they
  had never ordered before their assignment / assigned customers.
- cross_sell_aov: per customer, the mean amount of their orders containing a recommended
  item (a sku in the products of an offer this experiment served them); averaged over the
  customers with at least one such order.
- revenue_per_customer: order amounts after assignment per assigned customer (0 without
  orders); CUPED covariate: the same over ``OFFERLAB_CUPED_PRE_PERIOD_DAYS`` before it.
- return_rate: customers who accepted an offer and returned a recommended item / customers
  who accepted an offer.
- cart_abandonment_rate: customers with a ``cart_abandoned`` event / assigned customers.
- csat, intrusiveness: survey answers to questions tagged with that metric, on displays
  stamped with the variant; ratings (1–5) form a histogram, yes/no answers (1 = yes) a rate.
- survey_response_rate: displays with a finished response / displays.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from experiments.models import (
    Assignment,
    EventItem,
    Experiment,
    Metric,
    OutcomeEvent,
)
from experiments.stats import (
    CovariateStats,
    MeanStats,
    ProportionStats,
    RatingHistogram,
    TimeToEventStats,
)
from feedback.models import Answer, Display, Question, Response
from recommendations.models import Offer

# Columns of a customer cell, in the order the SQL returns them after the group key.
CELL_COLUMNS = (
    "n",
    "accepted",
    "abandoned",
    "expanded",
    "returned",
    "revenue",
    "revenue_sq",
    "pre_revenue",
    "pre_revenue_sq",
    "revenue_pre",
    "xs_n",
    "xs_sum",
    "xs_sq",
)
_COL = {name: i for i, name in enumerate(CELL_COLUMNS)}

RATING_VALUES = (1, 2, 3, 4, 5)
SURVEY_METRICS = (Metric.CSAT.value, Metric.INTRUSIVENESS.value)
NO_SEGMENT = "(none)"

Stats = ProportionStats | MeanStats | RatingHistogram | TimeToEventStats


@dataclass(frozen=True)
class VariantInfo:
    id: int
    key: str
    name: str
    is_control: bool
    weight: float


@dataclass
class MetricsData:
    """Grouped sufficient statistics of one experiment over one window."""

    window_start: datetime
    window_end: datetime
    variants: tuple[VariantInfo, ...]
    # (variant_id, segment, day of assignment) -> cell values in CELL_COLUMNS order
    cells: dict[tuple[int, str, date], list[float]] = field(default_factory=dict)
    # (variant_id, segment, week start) -> {(hours, ordered 0/1): customers}
    survival: dict[tuple[int, str, date], dict[tuple[float, int], int]] = field(
        default_factory=dict
    )
    # (variant_id, segment, day, metric, question type) -> {answer value: count}
    ratings: dict[tuple[int, str, date, str, str], dict[float, int]] = field(default_factory=dict)
    # (variant_id, segment, day) -> [displays, finished responses]
    displays: dict[tuple[int, str, date], list[int]] = field(default_factory=dict)

    @property
    def control(self) -> VariantInfo | None:
        return next((v for v in self.variants if v.is_control), None)

    def segments(self) -> list[str]:
        """Segments with assigned customers, largest first, then by name."""
        sizes: dict[str, float] = defaultdict(float)
        for (_, segment, _), values in self.cells.items():
            sizes[segment] += values[_COL["n"]]
        return sorted(sizes, key=lambda s: (-sizes[s], s))

    def days(self) -> list[date]:
        return sorted({day for (_, _, day) in self.cells})


def week_start(day: date) -> date:
    """Monday of the ISO week containing ``day``."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Selection:
    """Which grouped rows to add up: all, one segment, one ISO week, or days up to one."""

    segment: str | None = None
    week: date | None = None
    until: date | None = None

    def day_ok(self, day: date) -> bool:
        if self.week is not None and week_start(day) != self.week:
            return False
        return self.until is None or day <= self.until

    def keep(self, segment: str, day: date) -> bool:
        return (self.segment is None or segment == self.segment) and self.day_ok(day)


def _sum_cells(rows: Iterable[list[float]]) -> list[float]:
    rows = list(rows)
    return [math.fsum(row[i] for row in rows) for i in range(len(CELL_COLUMNS))]


def _cell_stats(cell: list[float]) -> dict[str, Stats]:
    c = {name: cell[i] for name, i in _COL.items()}
    n = round(c["n"])
    accepted = round(c["accepted"])
    return {
        Metric.ACCEPTANCE_RATE.value: ProportionStats(n=n, successes=accepted),
        Metric.CATEGORY_EXPANSION_RATE.value: ProportionStats(n=n, successes=round(c["expanded"])),
        Metric.CROSS_SELL_AOV.value: MeanStats(
            n=round(c["xs_n"]), sum=c["xs_sum"], sum_sq=c["xs_sq"]
        ),
        Metric.REVENUE_PER_CUSTOMER.value: MeanStats(
            n=n,
            sum=c["revenue"],
            sum_sq=c["revenue_sq"],
            covariate=CovariateStats(
                sum_x=c["pre_revenue"], sum_x2=c["pre_revenue_sq"], sum_xy=c["revenue_pre"]
            ),
        ),
        Metric.RETURN_RATE.value: ProportionStats(n=accepted, successes=round(c["returned"])),
        Metric.CART_ABANDONMENT_RATE.value: ProportionStats(n=n, successes=round(c["abandoned"])),
    }


def _survival_stats(groups: Iterable[dict[tuple[float, int], int]]) -> TimeToEventStats:
    events: dict[float, int] = {}
    censored: dict[float, int] = {}
    for group in groups:
        for (hours, ordered), count in group.items():
            side = events if ordered else censored
            side[hours] = side.get(hours, 0) + count
    times = sorted(events.keys() | censored.keys())
    return TimeToEventStats(
        times=tuple(times),
        events=tuple(events.get(t, 0) for t in times),
        censored=tuple(censored.get(t, 0) for t in times),
    )


def survey_kind(data: MetricsData, metric: str) -> str:
    """``rating`` when the metric has rating answers (or none at all), else ``proportion``.

    A yes/no question ("did it feel pushy?", yes = 1) makes the metric a rate of "yes".
    """
    types = {key[4] for key, counts in data.ratings.items() if key[3] == metric and counts}
    if "yes_no" in types and "rating" not in types:
        return "proportion"
    return "rating"


def _survey_stats(groups: list[dict[float, int]], kind: str) -> Stats:
    counts: dict[int, int] = defaultdict(int)
    for group in groups:
        for value, count in group.items():
            if float(value).is_integer():
                counts[int(value)] += count
    if kind == "proportion":
        n = counts.get(0, 0) + counts.get(1, 0)
        return ProportionStats(n=n, successes=counts.get(1, 0))
    return RatingHistogram(counts=tuple(counts.get(v, 0) for v in RATING_VALUES))


def metric_stats(
    data: MetricsData, selection: Selection, only: str | None = None
) -> dict[str, dict[int, Stats]]:
    """{metric name: {variant id: sufficient statistics}} for the selected rows.

    With ``only`` just that metric is computed (the daily chart needs the primary one).
    """
    out: dict[str, dict[int, Stats]] = defaultdict(dict)

    def wanted(metric: str) -> bool:
        return only is None or only == metric

    for variant in data.variants:
        cells = [
            values
            for (vid, segment, day), values in data.cells.items()
            if vid == variant.id and selection.keep(segment, day)
        ]
        for metric, stats_ in _cell_stats(_sum_cells(cells)).items():
            if wanted(metric):
                out[metric][variant.id] = stats_

        if wanted(Metric.TIME_TO_SECONDARY_PURCHASE.value):
            groups = [
                counts
                for (vid, segment, week), counts in data.survival.items()
                if vid == variant.id
                and (selection.segment is None or segment == selection.segment)
                and (selection.week is None or week == selection.week)
            ]
            out[Metric.TIME_TO_SECONDARY_PURCHASE.value][variant.id] = _survival_stats(groups)

        for metric in filter(wanted, SURVEY_METRICS):
            kind = survey_kind(data, metric)
            qtype = "yes_no" if kind == "proportion" else "rating"
            answers = [
                counts
                for (vid, segment, day, m, t), counts in data.ratings.items()
                if vid == variant.id and m == metric and t == qtype
                if selection.keep(segment, day)
            ]
            out[metric][variant.id] = _survey_stats(answers, kind)

        if wanted(Metric.SURVEY_RESPONSE_RATE.value):
            shown = finished = 0
            for (vid, segment, day), (d, f) in data.displays.items():
                if vid == variant.id and selection.keep(segment, day):
                    shown += d
                    finished += f
            out[Metric.SURVEY_RESPONSE_RATE.value][variant.id] = ProportionStats(
                n=shown, successes=finished
            )
    return dict(out)


# --- SQL ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    hours_between: Callable[[str, str], str]
    minus_days: Callable[[str, int], str]
    day: Callable[[str], str]
    week: Callable[[str], str]
    ceil: Callable[[str], str]
    recommended_skus: str
    final: str
    # Appended to a text operand so that it is compared and hashed byte by byte: PostgreSQL
    # then skips the locale lookup it makes for every comparison under a database collation
    # such as C.UTF-8 (equality is the same in every deterministic collation).
    bytewise: str


# The cell sums after COUNT(*), in CELL_COLUMNS order. A survival row needs only its count.
_CELL_SUMS = (
    "SUM(accepted)",
    "SUM(abandoned)",
    "SUM(expanded)",
    "SUM(returned)",
    "SUM(revenue)",
    "SUM(revenue * revenue)",
    "SUM(pre_revenue)",
    "SUM(pre_revenue * pre_revenue)",
    "SUM(revenue * pre_revenue)",
    "COUNT(xs_aov)",
    "SUM(xs_aov)",
    "SUM(xs_aov * xs_aov)",
)
_SUMS = ", ".join(["COUNT(*)", *_CELL_SUMS])

# Both groupings in one pass over the per-customer rows (PostgreSQL). The survival rows leave
# the sums out (NULL), which saves their output and parsing (13,000 rows at 1M customers).
_CELL_ONLY = ", ".join(f"CASE WHEN GROUPING(day) = 0 THEN {agg} END" for agg in _CELL_SUMS)
_FINAL_GROUPING_SETS = f"""
SELECT CASE WHEN GROUPING(day) = 0 THEN 'c' ELSE 't' END AS part, variant_id, segment,
    CASE WHEN GROUPING(day) = 0 THEN day ELSE week END AS bucket, hours, ordered,
    COUNT(*), {_CELL_ONLY}
FROM pc
GROUP BY GROUPING SETS ((variant_id, segment, day), (variant_id, segment, week, hours, ordered))
"""

# The same with UNION ALL (SQLite has no GROUPING SETS).
_NO_SUMS = ", ".join("NULL" for _ in _CELL_SUMS)
_FINAL_UNION = f"""
SELECT 'c' AS part, variant_id, segment, day AS bucket, NULL AS hours, NULL AS ordered, {_SUMS}
FROM pc
GROUP BY variant_id, segment, day
UNION ALL
SELECT 't' AS part, variant_id, segment, week AS bucket, hours, ordered, COUNT(*), {_NO_SUMS}
FROM pc
GROUP BY variant_id, segment, week, hours, ordered
"""


def _postgres() -> _Dialect:
    offer = Offer._meta.db_table
    return _Dialect(
        # date_part is float8; EXTRACT returns numeric since PostgreSQL 14, far slower here.
        hours_between=lambda later, earlier: f"(date_part('epoch', {later} - {earlier}) / 3600.0)",
        minus_days=lambda col, days: f"({col} - INTERVAL '{int(days)} days')",
        day=lambda col: f"CAST(({col} AT TIME ZONE 'UTC') AS date)",
        week=lambda col: f"CAST(date_trunc('week', {col} AT TIME ZONE 'UTC') AS date)",
        ceil=lambda expr: f"CEIL({expr})",
        recommended_skus=f"""
            SELECT o.customer_id, p.sku
            FROM {offer} o
            CROSS JOIN LATERAL (
                SELECT elem ->> 'sku' AS sku
                FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(o.products) = 'array' THEN o.products
                         ELSE '[]'::jsonb END
                ) AS elem
                WHERE jsonb_typeof(elem) = 'object' AND elem ->> 'sku' IS NOT NULL
                OFFSET 0  -- kept apart, so the sku is extracted once per offer, not per line
            ) AS p
            WHERE o.experiment_id = %(experiment)s AND o.created_at <= %(end)s""",
        final=_FINAL_GROUPING_SETS,
        bytewise=' COLLATE "C"',
    )


def _sqlite() -> _Dialect:
    offer = Offer._meta.db_table
    return _Dialect(
        hours_between=lambda later, earlier: (
            f"((julianday({later}) - julianday({earlier})) * 24.0)"
        ),
        minus_days=lambda col, days: f"datetime({col}, '-{int(days)} days')",
        day=lambda col: f"date({col})",
        week=lambda col: f"date({col}, '-6 days', 'weekday 1')",
        ceil=lambda expr: f"(CAST({expr} AS INTEGER) + ({expr} > CAST({expr} AS INTEGER)))",
        recommended_skus=f"""
            SELECT o.customer_id, json_extract(j.value, '$.sku') AS sku
            FROM {offer} o, json_each(o.products) j
            WHERE o.experiment_id = %(experiment)s AND o.created_at <= %(end)s
              AND json_type(o.products) = 'array'
              AND json_extract(j.value, '$.sku') IS NOT NULL""",
        final=_FINAL_UNION,
        bytewise="",
    )


def _dialect() -> _Dialect:
    return _postgres() if connection.vendor == "postgresql" else _sqlite()


HashRange = tuple[int | None, int | None]


def hash_ranges(parts: int) -> list[HashRange]:
    """``parts`` contiguous slices [low, high) of PostgreSQL's 32-bit ``hashtext``, open-ended
    at both ends. One-sided bounds (two parts: ``< 0`` and ``>= 0``) keep the planner's row
    estimates near the truth; it has no statistics for the expression."""
    bounds = [-(2**31) + (2**32 * k) // parts for k in range(1, parts)]
    return list(zip([None, *bounds], [*bounds, None], strict=True))


def customers_sql(pre_period_days: int, *, hash_range: HashRange | None = None) -> str:
    """The per-customer statement (see the module docstring for the definitions).

    ``hash_range`` (PostgreSQL): only the customers whose id's ``hashtext`` falls in it,
    filtered in every source, so the slices of ``hash_ranges`` are disjoint, together cover
    every customer, and their grouped rows add up to the whole statement's.

    Every fact about a customer (events, the first order per category, orders and returns of
    recommended items) is one row of ``facts``; one LEFT JOIN of the assignments with it and
    one GROUP BY per assignment give the per-customer outcome row, so each table is scanned
    once and no per-customer aggregate is joined back. ``rec`` may list a (customer, sku)
    twice (two offers, or a sku repeated in one): the recommended orders are grouped per
    event with MIN, so duplicates change nothing and are not removed (that hash cost more than
    the join it saved). The per-customer GROUP BY is on the assignment's primary key alone;
    its other columns depend on it. An acceptance of another experiment's offer is left out
    of ``facts`` by a hashed lookup of this experiment's offer ids in the events scan, which
    costs less than joining every fact row with them. ``%(since)s`` (the first assignment) and
    ``%(pre_since)s`` (its pre-period's start, for orders) leave out, before the join, the
    facts no assignment can count: a fifth of the join's input in the bench (``_fact_bounds``).
    """
    d = _dialect()
    assignment = Assignment._meta.db_table
    event = OutcomeEvent._meta.db_table
    item = EventItem._meta.db_table
    offer = Offer._meta.db_table
    pre_start = d.minus_days("a.assigned_at", pre_period_days)
    # Rounded up to whole hours; the 0.001 h (3.6 s) slack absorbs julianday's float error.
    elapsed = d.hours_between("COALESCE(first_order_at, %(end)s)", "assigned_at")
    hours = d.ceil(f"({elapsed} - 0.001)")

    codes = {
        "offer_accepted": 1,
        "cart_abandoned": 2,
        "order_placed": 3,
        "category": 4,
        "rec_order": 5,
        "rec_return": 6,
    }

    def after(src: str) -> str:
        # The join keeps only the facts from the assignment on, plus the orders of the
        # CUPED pre-period: only an order needs its time checked again.
        if src == "order_placed":
            return f"f.src = {codes[src]} AND f.at >= a.assigned_at"
        return f"f.src = {codes[src]}"

    b = d.bytewise

    def part(column: str) -> str:
        low, high = hash_range or (None, None)
        return "".join(
            [
                "" if low is None else f" AND hashtext({column}{b}) >= {int(low)}",
                "" if high is None else f" AND hashtext({column}{b}) < {int(high)}",
            ]
        )

    return f"""
WITH xo AS (
    SELECT offer_id FROM {offer} WHERE experiment_id = %(experiment)s
),
rec AS ({d.recommended_skus}
        {part("o.customer_id")}
),
facts AS (
    SELECT customer_id,
        CASE type{b} WHEN 'offer_accepted' THEN 1 WHEN 'cart_abandoned' THEN 2 ELSE 3 END AS src,
        occurred_at AS at, CAST(amount AS DOUBLE PRECISION) AS amount
    FROM {event}
    WHERE type{b} IN ('order_placed', 'offer_accepted', 'cart_abandoned')
      AND occurred_at <= %(end)s AND occurred_at >= %(pre_since)s {part("customer_id")}
      AND (occurred_at >= %(since)s OR type{b} = 'order_placed')
      AND (type{b} <> 'offer_accepted' OR offer_id IS NULL OR offer_id IN (SELECT offer_id FROM xo))
    UNION ALL
    SELECT customer_id, 4 AS src, MIN(occurred_at) AS at, NULL
    FROM {item}
    WHERE type{b} = 'order_placed' AND category{b} <> '' AND occurred_at <= %(end)s
        {part("customer_id")}
    GROUP BY customer_id, category
    HAVING MIN(occurred_at) >= %(since)s
    UNION ALL
    SELECT i.customer_id,
        CASE WHEN i.type{b} = 'order_placed' THEN 5 ELSE 6 END AS src,
        MIN(i.occurred_at) AS at, CAST(MIN(e.amount) AS DOUBLE PRECISION)
    FROM {item} i
    JOIN rec ON rec.customer_id = i.customer_id{b} AND rec.sku = i.sku{b}
    JOIN {event} e ON e.id = i.event_id
    WHERE i.type{b} IN ('order_placed', 'order_returned') AND i.occurred_at <= %(end)s
        {part("i.customer_id")}
    GROUP BY i.customer_id, i.type, i.event_id
    HAVING MIN(i.occurred_at) >= %(since)s
),
per AS (
    SELECT a.id, a.variant_id, a.segment, a.assigned_at,
        MAX(CASE WHEN {after("offer_accepted")} THEN 1 ELSE 0 END) AS accepted,
        MAX(CASE WHEN {after("cart_abandoned")} THEN 1 ELSE 0 END) AS abandoned,
        MAX(CASE WHEN {after("category")} THEN 1 ELSE 0 END) AS expanded,
        MAX(CASE WHEN {after("rec_return")} THEN 1 ELSE 0 END) AS rec_returned,
        MIN(CASE WHEN {after("order_placed")} THEN f.at END) AS first_order_at,
        SUM(CASE WHEN {after("order_placed")} THEN COALESCE(f.amount, 0) ELSE 0 END) AS revenue,
        SUM(CASE WHEN f.src = 3 AND f.at < a.assigned_at
                 THEN COALESCE(f.amount, 0) ELSE 0 END) AS pre_revenue,
        SUM(CASE WHEN {after("rec_order")} THEN 1 ELSE 0 END) AS xs_orders,
        SUM(CASE WHEN {after("rec_order")} THEN COALESCE(f.amount, 0) ELSE 0 END) AS xs_value
    FROM {assignment} a
    LEFT JOIN facts f ON f.customer_id = a.customer_id{b}
        AND (f.at >= a.assigned_at OR (f.src = 3 AND f.at >= {pre_start}))
    WHERE a.experiment_id = %(experiment)s AND a.assigned_at <= %(end)s {part("a.customer_id")}
    GROUP BY a.id
),
pc AS (
    SELECT variant_id, segment,
        {d.day("assigned_at")} AS day,
        {d.week("assigned_at")} AS week,
        accepted, abandoned, expanded,
        CASE WHEN accepted = 1 AND rec_returned = 1 THEN 1 ELSE 0 END AS returned,
        revenue, pre_revenue,
        CASE WHEN xs_orders > 0 THEN xs_value * 1.0 / xs_orders END AS xs_aov,
        CASE WHEN first_order_at IS NULL THEN 0 ELSE 1 END AS ordered,
        {hours} AS hours
    FROM per
)
{d.final}
"""


def ratings_sql() -> str:
    d = _dialect()
    return f"""
SELECT d.variant_id, COALESCE(a.segment, ''),
    {d.day("COALESCE(a.assigned_at, d.created_at)")} AS day,
    q.metric, q.type, ans.numeric_value, COUNT(*)
FROM {Answer._meta.db_table} ans
JOIN {Response._meta.db_table} r ON r.id = ans.response_id
JOIN {Display._meta.db_table} d ON d.id = r.display_id
JOIN {Question._meta.db_table} q ON q.id = ans.question_id
LEFT JOIN {Assignment._meta.db_table} a
    ON a.experiment_id = d.experiment_id AND a.customer_id = d.customer_id
WHERE d.experiment_id = %(experiment)s AND d.variant_id IS NOT NULL
  AND d.created_at <= %(end)s
  AND q.metric IN ('csat', 'intrusiveness') AND q.type IN ('rating', 'yes_no')
  AND ans.numeric_value IS NOT NULL
GROUP BY d.variant_id, COALESCE(a.segment, ''), {d.day("COALESCE(a.assigned_at, d.created_at)")},
    q.metric, q.type, ans.numeric_value
"""


def displays_sql() -> str:
    d = _dialect()
    day = d.day("COALESCE(a.assigned_at, d.created_at)")
    return f"""
SELECT d.variant_id, COALESCE(a.segment, ''), {day} AS day,
    COUNT(*), SUM(CASE WHEN r.finished THEN 1 ELSE 0 END)
FROM {Display._meta.db_table} d
LEFT JOIN {Response._meta.db_table} r ON r.display_id = d.id
LEFT JOIN {Assignment._meta.db_table} a
    ON a.experiment_id = d.experiment_id AND a.customer_id = d.customer_id
WHERE d.experiment_id = %(experiment)s AND d.variant_id IS NOT NULL
  AND d.created_at <= %(end)s
GROUP BY d.variant_id, COALESCE(a.segment, ''), {day}
"""


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _segment(value: str | None) -> str:
    return value or NO_SEGMENT


def _num(value) -> float:
    return 0.0 if value is None else float(value)


_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]+")


# JIT-compiled expressions and tuple deforming take about 15 % off the per-customer statement
# at 1M customers (its CASE aggregates and filters run for millions of rows); LLVM's inlining
# and optimisation passes cost more than they save on a statement that runs once, so they
# stay off. Compiling takes about 0.1 s per statement, more than it saves below a few hundred
# thousand customers (a part of 50,000 customers is planned at about 39,000, 10 % slower
# compiled; one of 500,000 at about 380,000), so smaller statements are not compiled.
_ANALYSIS_SETTINGS = {
    # Planned for each run's parameters even once psycopg has prepared the statement on a
    # long-lived worker connection (DATABASE_PREPARE_THRESHOLD): a generic plan would not know
    # the experiment's size, which the JIT threshold above and the join strategy depend on.
    "plan_cache_mode": "force_custom_plan",
    "jit": "on",
    "jit_above_cost": "150000",
    "jit_inline_above_cost": "-1",
    "jit_optimize_above_cost": "-1",
    "max_parallel_workers_per_gather": "0",
}


def _analysis_session(cursor) -> None:
    # Per-customer aggregates spill to disk at the default 4 MB. Every setting applies to the
    # current transaction only.
    names = ["work_mem", *_ANALYSIS_SETTINGS]
    values = [settings.OFFERLAB_ANALYSIS_WORK_MEM, *_ANALYSIS_SETTINGS.values()]
    cursor.execute(
        "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names),
        [item for pair in zip(names, values, strict=True) for item in pair],
    )


def _part_rows(sql: str, params: dict, snapshot: str) -> list[tuple]:
    """One part of the per-customer statement, on this thread's own connection, reading the
    exporting transaction's snapshot (so every part sees exactly the same rows)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            _analysis_session(cursor)
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def _customer_rows(cursor, pre_days: int, params: dict, parts: int) -> Iterable[tuple]:
    """The per-customer statement's grouped rows; in ``parts`` concurrent statements when >1.

    The parts split the customers by a hash of their id, each on its own connection (so its
    own PostgreSQL backend and CPU), all in one snapshot exported by this transaction; their
    rows are counts and sums per cell, so the caller adds them up.
    """
    if parts <= 1:
        cursor.execute(customers_sql(pre_days), params)
        return cursor.fetchall()
    cursor.execute("SELECT pg_export_snapshot()")
    snapshot = cursor.fetchone()[0]
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    first, *rest = (customers_sql(pre_days, hash_range=r) for r in hash_ranges(parts))
    with ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="analysis") as pool:
        others = [pool.submit(_part_rows, sql, params, snapshot) for sql in rest]
        cursor.execute(first, params)
        rows = cursor.fetchall()
        for future in others:
            rows.extend(future.result())
    return rows


def _fact_bounds(experiment: Experiment, window_end: datetime, pre_days: int) -> dict:
    """The earliest times a fact can count from: the first assignment (read in the caller's
    snapshot), and for orders the CUPED pre-period before it. Older facts are left out of the
    per-customer statement before its join; the join would drop them anyway."""
    first = (
        Assignment.objects.filter(experiment=experiment, assigned_at__lte=window_end)
        .order_by("assigned_at")
        .values_list("assigned_at", flat=True)
        .first()
    )
    since = first or window_end
    adapt = connection.ops.adapt_datetimefield_value
    return {"since": adapt(since), "pre_since": adapt(since - timedelta(days=pre_days))}


def collect_metrics(
    *, experiment: Experiment, window_start: datetime, window_end: datetime
) -> MetricsData:
    """Run the aggregation statements for ``experiment`` up to ``window_end``.

    On PostgreSQL the statements read one snapshot (REPEATABLE READ), and the per-customer
    statement runs in ``OFFERLAB_ANALYSIS_PARALLEL`` parts at once; inside an enclosing
    transaction (whose uncommitted rows other connections cannot see) it runs as one.
    """
    variants = tuple(
        VariantInfo(v.id, v.key, v.name, v.is_control, float(v.weight))
        for v in experiment.variants.order_by("-is_control", "position", "id")
    )
    data = MetricsData(window_start=window_start, window_end=window_end, variants=variants)
    known = {v.id for v in variants}
    params = {
        "experiment": experiment.id,
        "end": connection.ops.adapt_datetimefield_value(window_end),
    }
    pre_days = settings.OFFERLAB_CUPED_PRE_PERIOD_DAYS
    postgres = connection.vendor == "postgresql"
    outermost = not connection.in_atomic_block
    parts = settings.OFFERLAB_ANALYSIS_PARALLEL if postgres and outermost else 1
    with transaction.atomic(), connection.cursor() as cursor:
        if postgres and outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if postgres:
            _analysis_session(cursor)
        params.update(_fact_bounds(experiment, window_end, pre_days))
        for row in _customer_rows(cursor, pre_days, params, parts):
            part, vid, segment, bucket, hours, ordered, *values = row
            if vid not in known:
                continue
            key = (vid, _segment(segment), _as_date(bucket))
            if part == "c":
                numbers = [_num(v) for v in values]
                if key in data.cells:  # the same cell from another part: add the sums
                    numbers = [a + b for a, b in zip(data.cells[key], numbers, strict=True)]
                data.cells[key] = numbers
            else:
                group = data.survival.setdefault(key, {})
                group_key = (max(_num(hours), 0.0), int(ordered))
                group[group_key] = group.get(group_key, 0) + int(values[0])

        cursor.execute(ratings_sql(), params)
        for vid, segment, day, metric, qtype, value, count in cursor.fetchall():
            if vid not in known:
                continue
            key = (vid, _segment(segment), _as_date(day), metric, qtype)
            counts = data.ratings.setdefault(key, {})
            counts[float(value)] = counts.get(float(value), 0) + int(count)

        cursor.execute(displays_sql(), params)
        for vid, segment, day, shown, finished in cursor.fetchall():
            if vid not in known:
                continue
            key = (vid, _segment(segment), _as_date(day))
            entry = data.displays.setdefault(key, [0, 0])
            entry[0] += int(shown)
            entry[1] += int(finished or 0)
    return data
