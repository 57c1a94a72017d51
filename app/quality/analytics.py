"""Service-quality figures: periods, KPIs and chart series, inside a caller's scope.

Department-scoped figures come from the ``stat_daily`` aggregate (``app/quality/stats.py``);
figures about what is open *now* from its open-case tally where the scope is whole
departments, else from small indexed queries. Every rate carries
its numerator and denominator; an empty denominator is ``None`` (shown as "—").
The KPI formulas are those of DESIGN.md (ETC/telecom policy, seed 003).
"""

from __future__ import annotations

from bisect import bisect_right
from calendar import monthrange
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, Optional

from sqlalchemy import and_, case, false, func, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList, ColumnElement, True_

from app import labels
from app.access import units as unit_tree
from app.complaints.grievances import grievance_counts
from app.discipline import penalties
from app.i18n import _l
from app.models import (
    Category,
    Channel,
    Commendation,
    Complaint,
    CustomerCount,
    Deadline,
    Department,
    DepartmentGrade,
    FollowUp,
    GradingRun,
    Level,
    Penalty,
    PenaltyRule,
    StatDaily,
)
from app.quality import stats
from app.quality.daily import Totals, group_totals, merged_shared
from app.time_limits.deadlines import STAGES
from app.timeutil import LOCAL_TZ, UTC, utcnow

PERIOD_KINDS = ("day", "week", "month", "quarter", "year")
TREND_LENGTH = {"day": 14, "week": 12, "month": 12, "quarter": 8, "year": 5}
STAGE_ORDER = ("investigate", "reply", "follow_up", "notify_department", "report_leader", "report_gm", "written_report")


# --- Periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    kind: str
    start: date  # first day
    end: date  # day after the last

    @property
    def label(self) -> str:
        if self.kind == "day":
            return f"{self.start:%Y-%m-%d}"
        if self.kind == "week":
            return f"{self.start:%Y-%m-%d}～{self.end - timedelta(days=1):%m-%d}"
        if self.kind == "month":
            return f"{self.start.year}年{self.start.month}月"
        if self.kind == "quarter":
            return f"{self.start.year}年第{(self.start.month - 1) // 3 + 1}季度"
        return f"{self.start.year}年"

    @property
    def key(self) -> str:
        """A short stable name: 2026-11 (month), 2026-11-16 (a week or day: its first day), 2026-Q4, 2026."""
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "year":
            return f"{self.start.year}"
        return self.start.isoformat()

    @property
    def short(self) -> str:
        return {
            "day": f"{self.start:%m-%d}",
            "week": f"{self.start:%m-%d}",
            "month": f"{self.start.year % 100:02d}/{self.start.month:02d}",
            "quarter": f"{self.start.year % 100:02d}Q{(self.start.month - 1) // 3 + 1}",
            "year": f"{self.start.year}",
        }[self.kind]

    def previous(self) -> Period:
        return period_containing(self.kind, self.start - timedelta(days=1))

    def shift(self, n: int) -> Period:
        p = self
        for _ in range(n):
            p = p.previous()
        return p

    def bounds(self) -> tuple[datetime, datetime]:
        return (
            datetime.combine(self.start, datetime.min.time(), LOCAL_TZ).astimezone(UTC),
            datetime.combine(self.end, datetime.min.time(), LOCAL_TZ).astimezone(UTC),
        )


def period_containing(kind: str, day: date) -> Period:
    if kind == "day":
        return Period(kind, day, day + timedelta(days=1))
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return Period(kind, start, start + timedelta(days=7))
    if kind == "month":
        start = day.replace(day=1)
        return Period(kind, start, start + timedelta(days=monthrange(day.year, day.month)[1]))
    if kind == "quarter":
        first_month = (day.month - 1) // 3 * 3 + 1
        start = date(day.year, first_month, 1)
        end = date(day.year + (first_month + 3 > 12), (first_month + 2) % 12 + 1, 1)
        return Period(kind, start, end)
    if kind == "year":
        return Period(kind, date(day.year, 1, 1), date(day.year + 1, 1, 1))
    raise ValueError(f"unknown period kind: {kind}")


def parse_period(kind: Optional[str], at: Optional[str], today: Optional[date] = None) -> Period:
    """The period of kind ``kind`` containing ``at`` (ISO date, or 2026-11 / 2026), default today."""
    kind = kind if kind in PERIOD_KINDS else "month"
    today = today or utcnow().astimezone(LOCAL_TZ).date()
    day = today
    if at:
        text = at.strip()
        try:
            if len(text) == 4:
                day = date(int(text), 1, 1)
            elif len(text) == 7:
                day = date(int(text[:4]), int(text[5:7]), 1)
            else:
                day = date.fromisoformat(text[:10])
        except ValueError:
            day = today
    return period_containing(kind, day)


# --- Rates ------------------------------------------------------------------------------------


def rate(numerator: float, denominator: float) -> dict[str, Any]:
    """A rate with both terms; ``value`` is None when there is nothing to divide by."""
    return {
        "numerator": numerator,
        "denominator": denominator,
        "value": (numerator / denominator) if denominator else None,
    }


def change(current: float, previous: float) -> Optional[float]:
    """Period-over-period change as a fraction (None when the previous period had nothing)."""
    if not previous:
        return None
    return (current - previous) / previous


# --- Aggregation over stat_daily ----------------------------------------------------------------


def kpis(t: Totals, satisfaction_includes_basic: bool = True, customers: Optional[int] = None) -> dict[str, Any]:
    """The policy's KPIs from one set of totals."""
    satisfied = t.satisfied + (t.basically_satisfied if satisfaction_includes_basic else 0)
    reply = t.stages.get("reply", [0, 0, 0, 0.0])
    result = {
        "received": t.received,
        "valid_rate": rate(t.valid, t.judged),
        "repeat_rate": rate(t.repeats, t.received),
        "satisfaction_rate": rate(satisfied, t.followups),
        "on_time_closure_rate": rate(reply[1], reply[0]),
        "first_time_closure_rate": rate(t.closed_without_dispatch, t.closed),
        "average_handling_hours": {
            "numerator": round(t.handling_minutes / 60, 1),
            "denominator": t.closed,
            "value": (t.handling_minutes / 60 / t.closed) if t.closed else None,
        },
        "complaint_rate": rate(t.received, customers) if customers else rate(t.received, 0),
        "attitude_valid": t.attitude_valid,
        "unsatisfied": t.unsatisfied,
    }
    result["stages"] = {
        stage: {
            "timeliness": rate(values[1], values[0]),
            "late": values[2],
            "average_delay_hours": (values[3] / values[2] / 60) if values[2] else None,
        }
        for stage, values in sorted(
            t.stages.items(), key=lambda kv: STAGE_ORDER.index(kv[0]) if kv[0] in STAGE_ORDER else 99
        )
    }
    return result


def customers_served(session: Session, departments: Optional[Iterable[int]], period: Period) -> Optional[int]:
    """Customers served in the period's months, when entered for every department in scope."""
    months = {date(d.year, d.month, 1) for d in (period.start, period.end - timedelta(days=1))}
    if period.kind in ("quarter", "year"):
        d = period.start
        while d < period.end:
            months.add(date(d.year, d.month, 1))
            d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    stmt = select(func.sum(CustomerCount.customers), func.count()).where(CustomerCount.month.in_(sorted(months)))
    if departments is not None:
        stmt = stmt.where(CustomerCount.department_id.in_(sorted(departments)))
    total, count = session.execute(stmt).one()
    return int(total) if total else None


# --- Live figures about what is open now -----------------------------------------------------------

AGE_BUCKETS = (
    (0, 1, _l("< 1 day")),
    (1, 3, _l("1–3 days")),
    (3, 7, _l("3–7 days")),
    (7, 30, _l("7–30 days")),
    (30, None, _l("> 30 days")),
)


def open_summary(
    session: Session, criterion: Any, now: Optional[datetime] = None, refreshed: bool = False
) -> dict[str, Any]:
    """Open cases in scope: how many, overdue, supervised, and per age bucket (AGE_BUCKETS).

    A scope of whole departments (the company, a department head's) is summed from the open-case
    tally of ``stat_daily`` (refreshed first, unless the caller just did), so that it costs the
    same at a million cases as at a thousand; only the cases received on each bucket's boundary
    day are counted live, to the second. Any other scope is counted live, in one aggregate.
    """
    now = now or utcnow()
    tally = _tally_scope(criterion)
    if tally is None:
        counts = _live_counts(session, criterion, now)
    else:
        if not refreshed:
            stats.refresh_all(session, now=now)
        counts = _tally_counts(session, tally.departments, now)
        if tally.rest is not None:
            outside = and_(tally.rest, Complaint.department_id.not_in(tally.departments or []))
            counts = [a + b for a, b in zip(counts, _live_counts(session, outside, now), strict=True)]
    total, overdue, supervised, *cumulative = counts
    # Received after now - high days, cumulative: the buckets are the differences (the last takes the rest).
    bounds = [0, *cumulative, total]
    return {
        "open": total,
        "overdue": overdue,
        "supervised": supervised,
        "buckets": [bounds[i + 1] - bounds[i] for i in range(len(AGE_BUCKETS))],
    }


class TallyScope(NamedTuple):
    """A complaint scope as the tally reads it: whole departments (None: every one), and the
    rest of the scope (cases registered or escalated elsewhere), counted live."""

    departments: Optional[list[int]]
    rest: Optional[ColumnElement[bool]]


def _tally_scope(criterion: Any) -> Optional[TallyScope]:
    """The scope's whole departments, when it has them: ``true()`` (company-wide) or
    ``department_id IN (…)``, alone or ORed with other conditions (app.access.scope); None otherwise."""
    if isinstance(criterion, True_):
        return TallyScope(None, None)
    is_or = isinstance(criterion, BooleanClauseList) and criterion.operator is operators.or_
    branches = list(criterion.clauses) if is_or else [criterion]
    for i, branch in enumerate(branches):
        departments = _departments_of(branch)
        if departments is not None:
            rest = branches[:i] + branches[i + 1 :]
            return TallyScope(departments, or_(*rest) if rest else None)
    return None


def _departments_of(condition: Any) -> Optional[list[int]]:
    """The departments of ``Complaint.department_id.in_([...])``; None for any other condition."""
    if not isinstance(condition, BinaryExpression) or condition.operator is not operators.in_op:
        return None
    column, values = condition.left, condition.right
    if getattr(column, "table", None) is not Complaint.__table__ or getattr(column, "name", None) != "department_id":
        return None
    if not isinstance(values, BindParameter) or not values.expanding:
        return None
    return sorted(int(v) for v in values.effective_value)


def _live_counts(session: Session, criterion: Any, now: datetime) -> list[int]:
    """(open, overdue, supervised, received after now - high days for each bucket) counted from the
    cases, in one aggregate without grouping (PostgreSQL reads it from the open cases' index)."""
    newer = [
        func.count().filter(Complaint.received_at > now - timedelta(days=high)) for _, high, _ in AGE_BUCKETS if high
    ]
    row = session.execute(
        select(
            func.count(),
            func.count().filter(Complaint.overdue.is_(True)),
            func.count().filter(Complaint.supervised.is_(True)),
            *newer,
        ).where(stats.STILL_OPEN, criterion)
    ).one()
    return [int(v or 0) for v in row]


def _tally_counts(session: Session, departments: Optional[list[int]], now: datetime) -> list[int]:
    """The figures of ``_live_counts`` for whole departments, from the tally of each received day.

    A bucket's limit (now - high days) falls inside a day: the days after it are summed from the
    tally and the cases of that day received after the limit are counted live; when the limit
    is nearer the day's start, the whole day is summed and those received up to it subtracted
    (the fewer cases to read)."""
    table = StatDaily.__table__
    in_tally = and_(  # the days with open cases (a partial index), of the departments in scope
        table.c.open_cases > 0, table.c.department_id.in_(departments) if departments is not None else true()
    )
    in_cases = Complaint.department_id.in_(departments) if departments is not None else true()
    summed, counted, signs = [], [], []
    for _, high, _ in AGE_BUCKETS:
        if not high:
            continue
        since = now - timedelta(days=high)
        day = since.astimezone(LOCAL_TZ).date()
        start, end = period_containing("day", day).bounds()
        if since - start < end - since:
            summed.append(func.sum(table.c.open_cases).filter(table.c.day >= day))
            part, sign = and_(Complaint.received_at >= start, Complaint.received_at <= since), -1
        else:
            summed.append(func.sum(table.c.open_cases).filter(table.c.day > day))
            part, sign = and_(Complaint.received_at > since, Complaint.received_at < end), 1
        counted.append(select(func.count()).where(stats.STILL_OPEN, in_cases, part).scalar_subquery())
        signs.append(sign)
    totals = [func.sum(table.c[name]) for name in stats.OPEN_MEASURES]
    row = [int(v or 0) for v in session.execute(select(*totals, *summed, *counted).where(in_tally)).one()]
    n = len(signs)
    tallied, live = row[3 : 3 + n], row[3 + n :]
    return [*row[:3], *(t + sign * c for t, sign, c in zip(tallied, signs, live, strict=True))]


def open_by_age(
    session: Session, criterion: Any, now: Optional[datetime] = None, summary: Optional[dict[str, Any]] = None
) -> list[dict[str, Any]]:
    counts = (summary or open_summary(session, criterion, now))["buckets"]
    return [
        {"label": str(label), "value": counts[i], "min_days": low, "max_days": high}
        for i, (low, high, label) in enumerate(AGE_BUCKETS)
    ]


def open_counts(session: Session, criterion: Any, summary: Optional[dict[str, Any]] = None) -> dict[str, int]:
    figures = summary or open_summary(session, criterion)
    return {"open": figures["open"], "overdue": figures["overdue"], "supervised": figures["supervised"]}


def names(session: Session, model: type) -> dict[str, str]:
    return {str(i): n for i, n in session.execute(select(model.id, model.name))}


# --- Dashboard ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    """A chart declared by a dashboard: what it groups by, what it measures, how it draws."""

    name: str
    title: Any
    group_by: str  # period | department | unit | category | channel | level | stage | age | ranking
    measure: str  # count | rate:<kpi> | timeliness | open
    kind: str = "bar"  # bar | pie | line
    drill: Optional[str] = None  # list filter the chart's items open
    compare_previous: bool = False


@dataclass
class Context:
    session: Session
    period: Period
    departments: Optional[list[int]]  # None = company
    criterion: Any  # complaint scope for live queries
    groups: dict[tuple[date, int], Totals]  # (period start, department) → totals, shared: read only
    now: datetime
    satisfaction_includes_basic: bool = True
    buckets: dict[date, Totals] = field(default_factory=dict)
    # Scope conditions of other tables for live charts: "penalty", "grade".
    scopes: dict[str, Any] = field(default_factory=dict)
    # Units a unit head's dashboard lists (None: all for the company, none for a department).
    units: Optional[frozenset[int]] = None
    # Open cases now (open_summary), read once.
    open_figures: Optional[dict[str, Any]] = None
    # Every dirty stat_daily row was refreshed before the dashboard read (the open-case tally is current).
    refreshed: bool = False
    loaded: set[date] = field(default_factory=set)  # period starts whose groups were read

    def departments_now(self) -> dict[int, Totals]:
        """Totals of each department over the selected period."""
        start = self.period.start
        return {dep: totals for (day, dep), totals in self.groups.items() if day == start}

    def open_now(self) -> dict[str, Any]:
        """Open cases in scope now, read once."""
        if self.open_figures is None:
            self.open_figures = open_summary(self.session, self.criterion, self.now, self.refreshed)
        return self.open_figures

    def bucket(self, period: Period) -> Totals:
        """Totals of ``period`` over the dashboard's departments (summed once)."""
        if period.start not in self.buckets:
            if period.start not in self.loaded:
                self.groups.update(group_totals(self.session, self.departments, [period]))
                self.loaded.add(period.start)
            self.buckets[period.start] = merged_shared(t for (day, _), t in self.groups.items() if day == period.start)
        return self.buckets[period.start]


def trend_periods(period: Period) -> list[Period]:
    n = TREND_LENGTH[period.kind]
    periods = [period]
    for _ in range(n - 1):
        periods.insert(0, periods[0].previous())
    return periods


def periods_before(periods: list[Period]) -> list[Period]:
    """The ``len(periods)`` periods just before the consecutive ``periods``, in order: each
    period's own ``shift(len(periods))``, found in one walk back from the first (shifting each
    walked n² periods back: 800 a dashboard)."""
    earlier = [periods[0].previous()]
    while len(earlier) < len(periods):
        earlier.insert(0, earlier[0].previous())
    return earlier


def _series_by_period(ctx: Context, periods: list[Period], fn: Callable[[Totals], Any]) -> list[Any]:
    return [fn(ctx.bucket(p)) for p in periods]


def chart_data(chart: Chart, ctx: Context) -> dict[str, Any]:
    """The series or items of one chart, by its grouping."""
    current = ctx.bucket(ctx.period)
    build = _GROUPINGS.get(chart.group_by)
    if build is None:
        raise ValueError(f"unknown grouping {chart.group_by}")
    return build(chart, ctx, current)


def _trend_chart(chart: Chart, ctx: Context, current: Totals) -> dict[str, Any]:
    """The measure over the trend's periods (and the periods before them when compared)."""
    periods = trend_periods(ctx.period)
    earlier = periods_before(periods)
    measure = _measure(chart.measure, ctx)
    data = {
        "labels": [p.short for p in periods],
        "series": [{"name": str(_l("This period")), "data": _series_by_period(ctx, periods, measure)}],
        "ranges": [{"start": p.start.isoformat(), "end": p.end.isoformat()} for p in periods],
    }
    previous = _series_by_period(ctx, earlier, measure) if chart.compare_previous else []
    if any(previous):  # no previous period with data: no "上期" series (and no legend entry without bars)
        data["series"].append({"name": str(_l("Previous period")), "data": previous})
    return data


def _breakdown_chart(chart: Chart, ctx: Context, current: Totals) -> dict[str, Any]:
    """Cases received in the period per category, channel or level, most first."""
    model = {"category": Category, "channel": Channel, "level": Level}[chart.group_by]
    label = names(ctx.session, model)
    counts = getattr(current, f"by_{chart.group_by}")
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    return {"items": [{"id": int(k), "label": label.get(k, k), "value": v} for k, v in items]}


def _department_chart(chart: Chart, ctx: Context, current: Totals) -> dict[str, Any]:
    label = names(ctx.session, Department)
    items = [
        {"id": dep, "label": label.get(str(dep), str(dep)), "value": t.received}
        for dep, t in ctx.departments_now().items()
    ]
    return {"items": sorted(items, key=lambda i: -i["value"])}


def _unit_chart(chart: Chart, ctx: Context, current: Totals) -> dict[str, Any]:
    """Rolled up in Python from the per-department aggregates by the department → unit map."""
    listed = ctx.units if ctx.units is not None else (None if ctx.departments is None else frozenset())
    return {"items": unit_tree.rollup(unit_tree.load_tree(ctx.session), ctx.departments_now(), listed)}


def _stage_chart(chart: Chart, ctx: Context, current: Totals) -> dict[str, Any]:
    """Timeliness of each stage in the period."""
    figures = kpis(current, ctx.satisfaction_includes_basic)["stages"]
    return {
        "items": [
            {
                "id": stage,
                "label": str(STAGES[stage].label) if stage in STAGES else stage,
                "value": f["timeliness"]["value"],
                "numerator": f["timeliness"]["numerator"],
                "denominator": f["timeliness"]["denominator"],
                "late": f["late"],
                "average_delay_hours": f["average_delay_hours"],
            }
            for stage, f in figures.items()
        ]
    }


# Chart builders by grouping; the live ones (read the tables now) are looked up when called.
_GROUPINGS: dict[str, Callable[[Chart, Context, Totals], dict[str, Any]]] = {
    "period": _trend_chart,
    "category": _breakdown_chart,
    "channel": _breakdown_chart,
    "level": _breakdown_chart,
    "department": _department_chart,
    "unit": _unit_chart,
    "stage": _stage_chart,
    "age": lambda chart, ctx, current: {"items": open_by_age(ctx.session, ctx.criterion, summary=ctx.open_now())},
    "ranking": lambda chart, ctx, current: {"items": ranking(ctx)},
    "penalty_month": lambda chart, ctx, current: penalties_by_month(
        ctx.session, ctx.scopes.get("penalty", false()), ctx.period
    ),
    "penalty_department": lambda chart, ctx, current: penalties_by_department(
        ctx.session, ctx.scopes.get("penalty", false()), ctx.period
    ),
    "grade_run": lambda chart, ctx, current: grade_trend(ctx.session, ctx.scopes.get("grade", false()), ctx.period),
}


def _measure(measure: str, ctx: Context) -> Callable[[Totals], Any]:
    if measure == "count":
        return lambda t: t.received
    if measure.startswith("rate:"):
        key = measure.split(":", 1)[1]
        return lambda t: _rate_value(kpis(t, ctx.satisfaction_includes_basic)[key])
    raise ValueError(f"unknown measure {measure}")


def _rate_value(r: dict[str, Any]) -> Optional[float]:
    return None if r["value"] is None else round(r["value"] * 100, 1)


def ranking(ctx: Context) -> list[dict[str, Any]]:
    """Departments ranked by a service index: on-time reply, satisfaction, and few valid complaints."""
    label = names(ctx.session, Department)
    items = []
    for dep, t in ctx.departments_now().items():
        k = kpis(t, ctx.satisfaction_includes_basic)
        on_time = k["on_time_closure_rate"]["value"]
        satisfaction = k["satisfaction_rate"]["value"]
        parts = [v for v in (on_time, satisfaction) if v is not None]
        index = round(100 * sum(parts) / len(parts) - min(t.valid, 20), 1) if parts else None
        items.append(
            {
                "id": dep,
                "label": label.get(str(dep), str(dep)),
                "value": index,
                "received": t.received,
                "valid": t.valid,
                "on_time": on_time,
                "satisfaction": satisfaction,
            }
        )
    return sorted(items, key=lambda i: (i["value"] is None, -(i["value"] or 0)))


def dashboard(
    session: Session,
    charts: list[Chart],
    period: Period,
    departments: Optional[list[int]],
    criterion: Any,
    satisfaction_includes_basic: bool = True,
    now: Optional[datetime] = None,
    scopes: Optional[dict[str, Any]] = None,
    units: Optional[frozenset[int]] = None,
) -> dict[str, Any]:
    """Everything a dashboard shows for one period and scope, in one payload.

    ``scopes`` holds the caller's scope conditions of the penalty and grade tables
    (``{"penalty": …, "grade": …}``) for the charts that read them live.
    """
    now = now or utcnow()
    refreshed = stats.refresh(session, now=now) < stats.REFRESH_LIMIT
    periods = trend_periods(period)
    if any(c.compare_previous for c in charts):
        periods = periods_before(periods) + periods
    periods = [*periods, period.previous()]
    groups = group_totals(session, departments, periods)
    ctx = Context(
        session,
        period,
        departments,
        criterion,
        groups,
        now,
        satisfaction_includes_basic,
        scopes=scopes or {},
        units=units,
        loaded={p.start for p in periods},
        refreshed=refreshed,
    )
    current = ctx.bucket(period)
    previous = ctx.bucket(period.previous())
    customers = customers_served(session, departments, period)
    figures = kpis(current, satisfaction_includes_basic, customers)
    before = kpis(previous, satisfaction_includes_basic)
    return {
        "period": {
            "kind": period.kind,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "label": period.label,
        },
        "previous": {"start": period.previous().start.isoformat(), "label": period.previous().label},
        "kpis": figures,
        "previous_kpis": before,
        "received_change": change(current.received, previous.received),
        "open": open_counts(session, criterion, ctx.open_now()),
        "charts": {
            c.name: {"title": str(c.title), "kind": c.kind, "drill": c.drill, **chart_data(c, ctx)} for c in charts
        },
        "chart_order": [c.name for c in charts],
    }


# --- Discipline figures (live SQL on the small penalty and commendation tables) -----------------

# Penalties count from the day 总经理 decided them, while in force (as in the monthly ledger).
EFFECTIVE_PENALTY = penalties.EFFECTIVE


def _months_ending(period: Period, n: int = 12) -> list[Period]:
    last = period_containing("month", period.end - timedelta(days=1))
    months = [last]
    for _ in range(n - 1):
        months.insert(0, months[0].previous())
    return months


def penalty_days(session: Session, criterion: Any, first: date, end: date) -> list[tuple[date, int, int, int]]:
    """(local day, department, penalties, fines in yuan) of penalties in force decided in [first, end)."""
    start, stop = Period("day", first, end).bounds()
    day = stats.local_day(session, Penalty.decided_at)
    rows = session.execute(
        select(day, Penalty.department_id, func.count(), func.coalesce(func.sum(Penalty.fine_amount), 0))
        .where(
            Penalty.status.in_(EFFECTIVE_PENALTY),
            Penalty.decided_at >= start,
            Penalty.decided_at < stop,
            criterion,
        )
        .group_by(day, Penalty.department_id)
    ).all()
    return [(stats.as_date(d), dep, int(n), int(fines)) for d, dep, n, fines in rows]


def _penalty_series(counts: list[int], fines: list[int]) -> list[dict[str, Any]]:
    return [
        {"name": str(_l("Penalties")), "data": counts, "type": "bar"},
        {"name": str(_l("Fines (yuan)")), "data": fines, "type": "line", "axis": 1},
    ]


def penalties_by_month(session: Session, criterion: Any, period: Period) -> dict[str, Any]:
    """Penalties and fines of the twelve months up to the period's last month."""
    months = _months_ending(period)
    counts, fines = [0] * len(months), [0] * len(months)
    starts = [m.start for m in months]

    for day, _dep, n, amount in penalty_days(session, criterion, months[0].start, months[-1].end):
        i = bisect_right(starts, day) - 1
        counts[i] += n
        fines[i] += amount
    return {
        "labels": [m.short for m in months],
        "series": _penalty_series(counts, fines),
        "ranges": [{"start": m.start.isoformat(), "end": m.end.isoformat()} for m in months],
    }


def penalties_by_department(session: Session, criterion: Any, period: Period) -> dict[str, Any]:
    """Penalties and fines of each department in the period."""
    label = names(session, Department)
    per: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for _day, dep, n, amount in penalty_days(session, criterion, period.start, period.end):
        per[dep][0] += n
        per[dep][1] += amount
    ordered = sorted(per.items(), key=lambda kv: (-kv[1][1], -kv[1][0]))
    return {
        "labels": [label.get(str(dep), str(dep)) for dep, _ in ordered],
        "ids": [dep for dep, _ in ordered],
        "series": _penalty_series([v[0] for _, v in ordered], [v[1] for _, v in ordered]),
    }


def penalty_tiers(
    session: Session, period: Period, departments: Optional[Iterable[int]] = None
) -> dict[int, list[int]]:
    """The tier of every penalty in force decided in the period, per department."""
    start, end = period.bounds()
    stmt = (
        select(Penalty.department_id, PenaltyRule.tier, func.count())
        .join(PenaltyRule, PenaltyRule.id == Penalty.rule_id)
        .where(Penalty.status.in_(EFFECTIVE_PENALTY), Penalty.decided_at >= start, Penalty.decided_at < end)
        .group_by(Penalty.department_id, PenaltyRule.tier)
    )
    if departments is not None:
        stmt = stmt.where(Penalty.department_id.in_(sorted(departments)))
    tiers: dict[int, list[int]] = defaultdict(list)
    for dep, tier, n in session.execute(stmt):
        tiers[dep].extend([tier] * n)
    return {dep: sorted(values) for dep, values in tiers.items()}


def commendation_counts(
    session: Session, period: Period, departments: Optional[Iterable[int]] = None
) -> dict[int, tuple[int, int]]:
    """Commendations of the period per department: (all, flagged as offsetting a complaint)."""
    stmt = (
        select(
            Commendation.department_id,
            func.count(),
            func.sum(case((Commendation.offsets_complaint.is_(True), 1), else_=0)),
        )
        .where(Commendation.commended_on >= period.start, Commendation.commended_on < period.end)
        .group_by(Commendation.department_id)
    )
    if departments is not None:
        stmt = stmt.where(Commendation.department_id.in_(sorted(departments)))
    return {dep: (int(n), int(offsetting or 0)) for dep, n, offsetting in session.execute(stmt)}


def valid_by_level(
    session: Session, period: Period, departments: Optional[Iterable[int]] = None
) -> dict[int, dict[str, int]]:
    """Complaints judged valid in the period, per department and level code."""
    start, end = period.bounds()
    stmt = (
        select(Complaint.department_id, Level.code, func.count())
        .join(Level, Level.id == Complaint.level_id)
        .where(Complaint.validity == "valid", Complaint.judged_at >= start, Complaint.judged_at < end)
        .group_by(Complaint.department_id, Level.code)
    )
    if departments is not None:
        stmt = stmt.where(Complaint.department_id.in_(sorted(departments)))
    result: dict[int, dict[str, int]] = defaultdict(dict)
    for dep, code, n in session.execute(stmt):
        result[dep][code] = int(n)
    return dict(result)


def department_totals(
    session: Session, period: Period, departments: Optional[Iterable[int]] = None
) -> dict[int, Totals]:
    """The aggregate totals of each department over a period (from ``stat_daily``; shared, read only)."""
    return {department: totals for (_, department), totals in group_totals(session, departments, [period]).items()}


def grade_trend(session: Session, criterion: Any, period: Period, n: int = 12) -> dict[str, Any]:
    """Confirmed grading scores of the last ``n`` runs up to the period, one series per department."""
    runs = session.execute(
        select(GradingRun.id, GradingRun.period_start, GradingRun.label)
        .where(GradingRun.status == "confirmed", GradingRun.period_start < period.end)
        .order_by(GradingRun.period_start.desc())
        .limit(n)
    ).all()[::-1]
    if not runs:
        return {"labels": [], "series": []}
    index = {run_id: i for i, (run_id, _start, _label) in enumerate(runs)}
    label = names(session, Department)
    series: dict[int, list[Optional[float]]] = {}
    for run_id, dep, score in session.execute(
        select(DepartmentGrade.run_id, DepartmentGrade.department_id, DepartmentGrade.score).where(
            DepartmentGrade.run_id.in_(list(index)), criterion
        )
    ):
        series.setdefault(dep, [None] * len(runs))[index[run_id]] = score
    return {
        "labels": [f"{start.year % 100:02d}/{start.month:02d}" for _id, start, _label in runs],
        "series": [
            {"name": label.get(str(dep), str(dep)), "data": data}
            for dep, data in sorted(series.items(), key=lambda kv: label.get(str(kv[0]), ""))
        ],
    }


# --- Report figures -------------------------------------------------------------------------------


def worst_cases(
    session: Session,
    period: Period,
    departments: Optional[Iterable[int]] = None,
    limit: int = 10,
    now: Optional[datetime] = None,
) -> list[dict[str, Any]]:
    """The period's worst cases: the longest delay on a stage due in the period, then unsatisfied customers.

    A stage is late when done after its limit, or still open past it (delay counted up
    to ``now``); a case whose follow-up in the period found the customer unsatisfied is
    included too. Ties go to the more severe level.
    """
    now = now or utcnow()
    start, end = period.bounds()
    delays = _late_stage_delays(session, start, end, now, departments)
    unsatisfied = _unsatisfied_cases(session, start, end, departments)
    ids = set(delays) | unsatisfied
    if not ids:
        return []
    cases = _case_rows(session, ids)
    department = names(session, Department)
    items = [_worst_case_item(c, department, delays, unsatisfied) for c in cases]
    items.sort(key=lambda i: (-i["delay_hours"], not i["unsatisfied"], -i["level_rank"], i["number"]))
    return items[:limit]


def _late_stage_delays(
    session: Session, start: datetime, end: datetime, now: datetime, departments: Optional[Iterable[int]]
) -> dict[int, tuple[float, int]]:
    """Per case with a stage due in [start, end) and late: (longest delay in minutes, late stages)."""
    delay = case(
        (Deadline.met_at.is_not(None), stats.minutes_between(session, Deadline.met_at, Deadline.due_at)),
        else_=stats.minutes_between(session, stats.literal_now(session, now), Deadline.due_at),
    )
    late = or_(
        Deadline.met_at > Deadline.due_at,
        and_(Deadline.met_at.is_(None), Deadline.due_at <= now, stats.running_clock()),
    )
    stmt = (
        select(Deadline.complaint_id, func.max(delay), func.count())
        .where(Deadline.due_at >= start, Deadline.due_at < end, Deadline.state != "cancelled", late)
        .group_by(Deadline.complaint_id)
    )
    if departments is not None:
        stmt = stmt.where(Deadline.department_id.in_(sorted(departments)))
    return {cid: (float(minutes or 0), int(n)) for cid, minutes, n in session.execute(stmt)}


def _unsatisfied_cases(
    session: Session, start: datetime, end: datetime, departments: Optional[Iterable[int]]
) -> set[int]:
    """The cases whose follow-up in [start, end) found the customer unsatisfied."""
    unhappy = select(FollowUp.complaint_id).where(
        FollowUp.called_at >= start, FollowUp.called_at < end, FollowUp.satisfaction == "unsatisfied"
    )
    if departments is not None:
        unhappy = unhappy.where(FollowUp.department_id.in_(sorted(departments)))
    return set(session.scalars(unhappy))


def _case_rows(session: Session, ids: set[int]) -> list[Any]:
    """The listed facts of these cases, with their level and category."""
    return session.execute(
        select(
            Complaint.id,
            Complaint.number,
            Complaint.subject,
            Complaint.content,
            Complaint.status,
            Complaint.received_at,
            Complaint.department_id,
            Level.name,
            Level.rank,
            Category.name,
        )
        .join(Level, Level.id == Complaint.level_id)
        .join(Category, Category.id == Complaint.category_id)
        .where(Complaint.id.in_(sorted(ids)))
    ).all()


def _worst_case_item(
    c: Any, department: dict[str, str], delays: dict[int, tuple[float, int]], unsatisfied: set[int]
) -> dict[str, Any]:
    """One listed case: its facts, late stages, longest delay in hours and whether unsatisfied."""
    return {
        "id": c[0],
        "number": c[1],
        "subject": (c[2] or c[3] or "")[:60],
        "status": getattr(c[4], "value", c[4]),
        "received_at": c[5],
        "department": department.get(str(c[6]), ""),
        "level": c[7],
        "level_rank": c[8],
        "category": c[9],
        "late_stages": delays.get(c[0], (0.0, 0))[1],
        "delay_hours": round(delays.get(c[0], (0.0, 0))[0] / 60, 1),
        "unsatisfied": c[0] in unsatisfied,
    }


def intake_dashboard(session: Session, period: Period, criterion: Any) -> dict[str, Any]:
    """The 客服 dashboard: the cases it registered (``criterion``: its scope; live, small),
    by period, channel and status."""
    periods = trend_periods(period)
    start, _ = periods[0].bounds()
    _, end = period.bounds()
    rows = session.execute(
        select(Complaint.received_at, Complaint.channel_id, Complaint.status).where(
            criterion, Complaint.received_at >= start, Complaint.received_at < end
        )
    ).all()
    channel_names = names(session, Channel)
    by_period, by_channel, by_status = _intake_counts(rows, periods, period)
    return {
        "period": {
            "kind": period.kind,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "label": period.label,
        },
        "scope": "mine",
        "kpis": {"received": sum(by_channel.values())},
        "open": open_counts(session, criterion),
        "charts": _intake_charts(periods, by_period, by_channel, by_status, channel_names),
        "chart_order": ["trend", "by_channel", "by_status"],
    }


def _intake_counts(
    rows: Iterable[Any], periods: list[Period], period: Period
) -> tuple[list[int], dict[str, int], dict[str, int]]:
    """Cases per trend period, and per channel and status within ``period``."""
    by_period = [0] * len(periods)
    by_channel: dict[str, int] = {}
    by_status: dict[str, int] = {}
    p_start, p_end = period.bounds()
    for received_at, channel_id, status in rows:
        local = received_at.astimezone(LOCAL_TZ).date()
        for i, p in enumerate(periods):
            if p.start <= local < p.end:
                by_period[i] += 1
        if p_start <= received_at < p_end:
            by_channel[str(channel_id)] = by_channel.get(str(channel_id), 0) + 1
            key = getattr(status, "value", status)
            by_status[key] = by_status.get(key, 0) + 1
    return by_period, by_channel, by_status


def _intake_charts(
    periods: list[Period],
    by_period: list[int],
    by_channel: dict[str, int],
    by_status: dict[str, int],
    channel_names: dict[str, str],
) -> dict[str, Any]:
    """The 客服 dashboard's charts: trend, by channel, by status."""
    return {
        "trend": {
            "title": str(_l("Complaints I registered")),
            "kind": "bar",
            "drill": "received",
            "labels": [p.short for p in periods],
            "series": [{"name": str(_l("This period")), "data": by_period}],
            "ranges": [{"start": p.start.isoformat(), "end": p.end.isoformat()} for p in periods],
        },
        "by_channel": {
            "title": str(_l("By channel")),
            "kind": "pie",
            "drill": "channel",
            "items": [
                {"id": int(k), "label": channel_names.get(k, k), "value": v}
                for k, v in sorted(by_channel.items(), key=lambda kv: -kv[1])
            ],
        },
        "by_status": {
            "title": str(_l("By status")),
            "kind": "bar",
            "drill": "status",
            "items": [{"id": k, "label": labels.status_label(k), "value": v} for k, v in by_status.items()],
        },
    }


def monthly_grievances(session: Session, year: int, criterion: ColumnElement[bool]) -> list[dict[str, Any]]:
    """不满工单 per month (Asia/Shanghai) and department of a year: the simple report."""
    out = []
    for month in range(1, 13):
        start_day = datetime(year, month, 1).date()
        end_day = datetime(year + (month == 12), month % 12 + 1, 1).date()
        start, end = Period("month", start_day, end_day).bounds()
        counts = grievance_counts(session, start, end, criterion)
        out.append({"month": f"{year}-{month:02d}", **counts})
    return out
