"""The daily aggregates as dashboards read them: totals per period and department.

``stat_daily`` (maintained by ``app.quality.stats``) holds one row per day and department.
A dashboard sums them per period; :func:`group_totals` keeps each (period, department)'s
sum per process until one of its rows is rewritten (``stat_daily.revision``), so a year's
dashboard reads the few rows refreshed today instead of thousands with their JSON counters.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Optional, Protocol

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from app.models import StatDaily


class Period(Protocol):
    """A span of days [start, end) (``app.quality.analytics.Period``)."""

    @property
    def start(self) -> date: ...

    @property
    def end(self) -> date: ...


# stat_daily's measures: plain counts, and counters by key (JSON objects).
_COUNT_FIELDS = (
    "received",
    "repeats",
    "judged",
    "valid",
    "attitude_valid",
    "closed",
    "closed_without_dispatch",
    "followups",
    "satisfied",
    "basically_satisfied",
    "unsatisfied",
)
_COUNTER_FIELDS = ("by_category", "by_channel", "by_level", "attitude_by_staff")


@dataclass
class Totals:
    received: int = 0
    repeats: int = 0
    judged: int = 0
    valid: int = 0
    attitude_valid: int = 0
    closed: int = 0
    closed_without_dispatch: int = 0
    handling_minutes: float = 0.0
    followups: int = 0
    satisfied: int = 0
    basically_satisfied: int = 0
    unsatisfied: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    by_level: dict[str, int] = field(default_factory=dict)
    stages: dict[str, list[float]] = field(default_factory=dict)
    attitude_by_staff: dict[str, int] = field(default_factory=dict)

    def add(self, row: Any) -> None:
        for name in _COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + (getattr(row, name) or 0))
        self.handling_minutes += row.handling_minutes or 0
        for name in _COUNTER_FIELDS:
            target = getattr(self, name)
            for key, value in (getattr(row, name) or {}).items():
                target[key] = target.get(key, 0) + value
        for stage, values in (row.stages or {}).items():
            current = self.stages.setdefault(stage, [0, 0, 0, 0.0])
            for i, v in enumerate(values):
                current[i] += v


_ROW_COLUMNS = ("day", "department_id", *_COUNT_FIELDS, "handling_minutes", *_COUNTER_FIELDS, "stages")


class DayRow:
    """One ``stat_daily`` row as a plain record (ORM objects are ten times slower to sum)."""

    __slots__ = _ROW_COLUMNS

    def __init__(self, values: Iterable[Any]):
        for name, value in zip(_ROW_COLUMNS, values, strict=True):
            setattr(self, name, value)


# Totals of one (period, department) as last read, with the signature of the rows summed:
# (row count, sum of revisions). Refreshes write one after the other with ever higher
# revisions (stats.next_revision), so any rewritten, added or removed row changes it.
_GROUP_CACHE: dict[tuple[date, date, int], tuple[tuple[int, int], Totals]] = {}
_GROUP_CACHE_LIMIT = 50_000


def forget_groups() -> None:
    """Drop the remembered group totals (after the database was replaced under the process)."""
    _GROUP_CACHE.clear()
    _MERGED.clear()


def group_totals(
    session: Session, departments: Optional[Iterable[int]], periods: Iterable[Period]
) -> dict[tuple[date, int], Totals]:
    """Totals of each (period start, department) over non-overlapping ``periods``.

    One grouped statement reads each group's signature; only the groups whose rows changed
    since this process last summed them are read and summed again (a year's dashboard thus
    reads the few rows refreshed today, not thousands of rows with their JSON counters).
    The Totals returned are shared: read them, never change them.
    """
    ordered = sorted(set(periods), key=lambda p: p.start)
    if not ordered:
        return {}
    table = StatDaily.__table__
    bucket = case(
        *[(and_(table.c.day >= p.start, table.c.day < p.end), i) for i, p in enumerate(ordered)], else_=-1
    ).label("bucket")
    stmt = (
        select(bucket, table.c.department_id, func.count(), func.coalesce(func.sum(table.c.revision), 0))
        .where(table.c.day >= ordered[0].start, table.c.day < ordered[-1].end)
        .group_by(bucket, table.c.department_id)
    )
    if departments is not None:
        stmt = stmt.where(table.c.department_id.in_(sorted(departments)))
    result: dict[tuple[date, int], Totals] = {}
    stale: dict[tuple[date, date, int], tuple[int, int]] = {}
    for i, department_id, count, revisions in session.execute(stmt):
        if i < 0:
            continue
        key = (ordered[i].start, ordered[i].end, department_id)
        signature = (int(count), int(revisions))
        hit = _GROUP_CACHE.get(key)
        if hit is not None and hit[0] == signature:
            result[(key[0], department_id)] = hit[1]
        else:
            stale[key] = signature
    if stale:
        result.update(_sum_groups(session, stale))
    return result


def _sum_groups(
    session: Session, stale: dict[tuple[date, date, int], tuple[int, int]]
) -> dict[tuple[date, int], Totals]:
    """Read and sum the rows of the ``stale`` groups; remember them with their signatures."""
    table = StatDaily.__table__
    fresh: dict[tuple[date, date, int], Totals] = {key: Totals() for key in stale}
    by_department: dict[int, list[tuple[date, date]]] = defaultdict(list)
    for start, end, department_id in stale:
        by_department[department_id].append((start, end))
    for department_id, ranges in by_department.items():
        ranges.sort()
        starts = [r[0] for r in ranges]
        stmt = select(*[table.c[name] for name in _ROW_COLUMNS]).where(
            table.c.department_id == department_id, table.c.day >= ranges[0][0], table.c.day < ranges[-1][1]
        )
        for values in session.execute(stmt):
            row = DayRow(values)
            i = bisect_right(starts, row.day) - 1
            if i >= 0 and row.day < ranges[i][1]:
                fresh[(*ranges[i], department_id)].add(row)
    if len(_GROUP_CACHE) + len(fresh) > _GROUP_CACHE_LIMIT:
        _GROUP_CACHE.clear()
    for key, totals in fresh.items():
        # A signature read before the rows: a refresh committed in between makes the next read sum again.
        _GROUP_CACHE[key] = (stale[key], totals)
    return {(start, department_id): totals for (start, _end, department_id), totals in fresh.items()}


def merged(parts: Iterable[Totals]) -> Totals:
    """A new Totals adding up ``parts``."""
    result = Totals()
    for part in parts:
        result.add(part)
    return result


# Sums of shared group Totals (never changed), by the parts summed: a dashboard sums the groups of
# two dozen periods, which stay the same objects until their rows change (see group_totals).
_MERGED: dict[tuple[int, ...], tuple[tuple[Totals, ...], Totals]] = {}
_MERGED_LIMIT = 5_000


def merged_shared(parts: Iterable[Totals]) -> Totals:
    """``merged(parts)`` of shared Totals (``group_totals``'), itself shared: read it, never change
    it. Remembered for the same part objects, which the entry holds (so their ids stay theirs)."""
    parts = tuple(parts)
    key = tuple(map(id, parts))
    hit = _MERGED.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], parts, strict=True)):
        return hit[1]
    if len(_MERGED) >= _MERGED_LIMIT:
        _MERGED.clear()
    result = merged(parts)
    _MERGED[key] = (parts, result)
    return result
