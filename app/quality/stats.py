"""Maintained aggregates for dashboards and reports: one ``stat_daily`` row per day and department.

Every flush that changes a complaint, a clock or a follow-up records which (day,
department) pairs it touched in ``stat_dirty`` (session events below, so no write
path can forget it). :func:`refresh` recomputes those rows from the base tables;
dashboards call it before reading, and a job runs it every minute. A dashboard over a
year then reads a few thousand small rows instead of aggregating a million cases; its
open-case figures too (``open_cases``, ``open_overdue``, ``open_supervised`` of the day
each open case was received).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, Optional

from sqlalchemy import and_, bindparam, case, delete, event, func, literal_column, or_, select
from sqlalchemy.orm import Session, attributes

from app.extensions import dialect_insert, insert_or_skip
from app.models import (
    OPEN_STATUSES,
    Category,
    Complaint,
    Counter,
    Deadline,
    FollowUp,
    StatDaily,
    StatDirty,
    UTCDateTime,
    complaint_staff,
)
from app.timeutil import LOCAL_TZ, UTC, utcnow

log = logging.getLogger(__name__)

# The open-case tally of a received day (StatDaily.open_cases …), summed by analytics.open_summary.
OPEN_MEASURES = ("open_cases", "open_overdue", "open_supervised")
# A case open now: what the tally counts, and what the open-case figures count live.
STILL_OPEN = Complaint.status.in_([s.value for s in OPEN_STATUSES])
STAGE_CODES = ("investigate", "reply", "follow_up", "notify_department", "report_leader", "report_gm", "written_report")


# --- Dirty tracking ----------------------------------------------------------------------


def _day(value: Any) -> Optional[date]:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL_TZ).date()


def _values(obj: Any, name: str) -> list[Any]:
    """Current and previous values of an attribute in this flush."""
    history = attributes.get_history(obj, name, passive=attributes.PASSIVE_NO_INITIALIZE)
    values = list(history.added or ()) + list(history.deleted or ())
    if not values:
        current = obj.__dict__.get(name)
        if current is not None:
            values.append(current)
    return values


@event.listens_for(Session, "before_flush")
def _track_touched(session: Session, flush_context: Any, instances: Any) -> None:
    """Collect the pairs of every case, clock and follow-up the flush writes. The deadline scan's bulk
    writes (``overdue``, ``supervised``: app.time_limits.bulk) leave their cases in ``session.dirty``,
    so its next flush marks their days too (tests/test_open_tally.py)."""
    touched: set[tuple[date, int]] = session.info.setdefault("stat_touched", set())
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if isinstance(obj, Complaint):
            touched.update(_touched_by_complaint(obj))
        elif isinstance(obj, Deadline):
            touched.update(_touched_by_deadline(obj))
        elif isinstance(obj, FollowUp):
            touched.update(_touched_by_follow_up(obj))


_CASE_DAYS = ("received_at", "judged_at", "closed_at", "followed_up_at")


def _touched_by_complaint(obj: Complaint) -> set[tuple[date, int]]:
    """The (day, department) pairs of a case's received, judged, closed and followed-up days, old and new.

    A case read before the last commit has its columns expired: they are read again here, or a
    change of its status or flags alone would not mark the day it was received (its open tally).
    The department may have changed through the relation (``case.department = …``), whose key
    is only set during the flush: both the old and the new department are marked.
    """
    if attributes.instance_state(obj).has_identity:
        for name in (*_CASE_DAYS, "department_id"):
            getattr(obj, name)  # an expired row is read once, all its expired columns together
    departments = {d for d in _values(obj, "department_id") if d is not None}
    departments.update(d.id for d in _values(obj, "department") if d is not None and d.id is not None)
    if not departments and obj.department is not None:
        departments = {obj.department.id}
    days = set()
    for name in _CASE_DAYS:
        days.update(_day(v) for v in _values(obj, name))
    return {(d, dep) for d in days if d for dep in departments if dep}


def _touched_by_deadline(obj: Deadline) -> set[tuple[date, int]]:
    departments = [d for d in _values(obj, "department_id") if d]
    if not departments and obj.complaint is not None and obj.complaint.department is not None:
        departments = [obj.complaint.department.id]
    return {(_day(value), department) for value in _values(obj, "due_at") for department in departments if _day(value)}


def _touched_by_follow_up(obj: FollowUp) -> set[tuple[date, int]]:
    return {
        (_day(value), obj.department_id) for value in _values(obj, "called_at") if _day(value) and obj.department_id
    }


@event.listens_for(Session, "after_flush")
def _record_touched(session: Session, flush_context: Any) -> None:
    touched = session.info.pop("stat_touched", None)
    if not touched:
        return
    mark_dirty(session, touched)


def mark_dirty(session: Session, pairs: Iterable[tuple[date, int]]) -> None:
    """Queue (day, department) pairs for :func:`refresh`. A pair this transaction already queued is
    not sent again: a registration or a step flushes three times, mostly with the same pairs, and
    each repeat was an INSERT that did nothing."""
    marked: set[tuple[date, int]] = session.info.setdefault(_MARKED, set())
    new = set(pairs) - marked
    if not new:
        return
    rows = [{"day": d, "department_id": dep} for d, dep in sorted(new)]
    # RETURNING: batched multi-row INSERTs rather than one round trip per row (see messages.notify._insert).
    session.connection().execute(insert_or_skip(StatDirty.__table__, "day"), rows).all()
    marked.update(new)


_MARKED = "stat_marked"


@event.listens_for(Session, "after_transaction_end")
def _forget_marked(session: Session, transaction: Any) -> None:
    """The queued pairs are the transaction's: forgotten when it ends, and when a savepoint ends
    (rolled back, it took its rows along). A flush's own inner transaction keeps them."""
    if transaction.parent is None or transaction.nested:
        session.info.pop(_MARKED, None)


# --- Computing rows -------------------------------------------------------------------------


def local_day(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("Asia/Shanghai", column))
    return func.date(column, "+8 hours")


def minutes_between(session: Session, later: Any, earlier: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 60.0
    return (func.julianday(later) - func.julianday(earlier)) * 1440.0


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime.combine(first, datetime.min.time(), LOCAL_TZ).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), LOCAL_TZ).astimezone(UTC)
    return start, end


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


Rows = dict[tuple[date, int], dict[str, Any]]


def compute(
    session: Session, first: date, last: date, departments: Optional[set[int]] = None, now: Optional[datetime] = None
) -> dict[tuple[date, int], dict[str, Any]]:
    """Aggregate the base tables into per-(day, department) measures for [first, last]."""
    now = now or utcnow()
    start, end = _bounds(first, last)
    rows: dict[tuple[date, int], dict[str, Any]] = defaultdict(_empty)
    _add_received(session, rows, start, end, departments)
    _add_judged(session, rows, start, end, departments)
    _add_closed(session, rows, start, end, departments)
    _add_follow_ups(session, rows, start, end, departments)
    _add_stages(session, rows, start, end, departments, now)
    _add_attitude(session, rows, start, end, departments)
    return rows


def _in_departments(column: Any, departments: Optional[set[int]]) -> Any:
    """``column`` among ``departments`` (every department when None or empty)."""
    return column.in_(sorted(departments)) if departments else literal_column("1") == 1


def _add_received(
    session: Session, rows: Rows, start: datetime, end: datetime, departments: Optional[set[int]]
) -> None:
    """Cases received per day: count, repeats, the category, channel and level breakdowns, and
    how many of them are open now (overdue, supervised)."""
    day = local_day(session, Complaint.received_at)
    for d, dep, cat, ch, lv, rep, n, *open_now in session.execute(
        select(
            day,
            Complaint.department_id,
            Complaint.category_id,
            Complaint.channel_id,
            Complaint.level_id,
            Complaint.is_repeat,
            func.count(),
            func.sum(case((STILL_OPEN, 1), else_=0)),
            func.sum(case((and_(STILL_OPEN, Complaint.overdue.is_(True)), 1), else_=0)),
            func.sum(case((and_(STILL_OPEN, Complaint.supervised.is_(True)), 1), else_=0)),
        )
        .where(
            Complaint.received_at >= start,
            Complaint.received_at < end,
            _in_departments(Complaint.department_id, departments),
        )
        .group_by(
            day,
            Complaint.department_id,
            Complaint.category_id,
            Complaint.channel_id,
            Complaint.level_id,
            Complaint.is_repeat,
        )
    ):
        row = rows[(as_date(d), dep)]
        row["received"] += n
        row["repeats"] += n if rep else 0
        for key, value in zip(OPEN_MEASURES, open_now, strict=True):
            row[key] += int(value or 0)
        for key, value in (("by_category", cat), ("by_channel", ch), ("by_level", lv)):
            row[key][str(value)] = row[key].get(str(value), 0) + n


def _attitude_category() -> Any:
    """The id of the 服务态度 category (code ``attitude``), as a subquery."""
    return select(Category.id).where(Category.code == "attitude").scalar_subquery()


def _add_judged(session: Session, rows: Rows, start: datetime, end: datetime, departments: Optional[set[int]]) -> None:
    """Cases judged per day: how many, how many valid, how many valid about attitude."""
    attitude = _attitude_category()
    day = local_day(session, Complaint.judged_at)
    for d, dep, judged, valid, attitude_valid in session.execute(
        select(
            day,
            Complaint.department_id,
            func.count(),
            func.sum(case((Complaint.validity == "valid", 1), else_=0)),
            func.sum(case((and_(Complaint.validity == "valid", Complaint.category_id == attitude), 1), else_=0)),
        )
        .where(
            Complaint.judged_at >= start,
            Complaint.judged_at < end,
            _in_departments(Complaint.department_id, departments),
        )
        .group_by(day, Complaint.department_id)
    ):
        row = rows[(as_date(d), dep)]
        row.update(judged=judged, valid=int(valid or 0), attitude_valid=int(attitude_valid or 0))


def _add_attitude(
    session: Session, rows: Rows, start: datetime, end: datetime, departments: Optional[set[int]]
) -> None:
    """Valid 服务态度 complaints naming each staff member, by the day they were received (the
    service-attitude limits count them by month and year received: app.quality.attitude)."""
    attitude = _attitude_category()
    day = local_day(session, Complaint.received_at)
    for d, dep, staff_id, n in session.execute(
        select(day, Complaint.department_id, complaint_staff.c.staff_id, func.count())
        .join(complaint_staff, complaint_staff.c.complaint_id == Complaint.id)
        .where(
            Complaint.received_at >= start,
            Complaint.received_at < end,
            Complaint.category_id == attitude,
            Complaint.validity == "valid",
            _in_departments(Complaint.department_id, departments),
        )
        .group_by(day, Complaint.department_id, complaint_staff.c.staff_id)
    ):
        rows[(as_date(d), dep)]["attitude_by_staff"][str(staff_id)] = n


def _add_closed(session: Session, rows: Rows, start: datetime, end: datetime, departments: Optional[set[int]]) -> None:
    """Cases closed per day: how many, how many without dispatch, total handling minutes."""
    day = local_day(session, Complaint.closed_at)
    for d, dep, closed, direct, minutes in session.execute(
        select(
            day,
            Complaint.department_id,
            func.count(),
            func.sum(case((Complaint.dispatched_at.is_(None), 1), else_=0)),
            func.sum(minutes_between(session, Complaint.closed_at, Complaint.received_at)),
        )
        .where(
            Complaint.closed_at >= start,
            Complaint.closed_at < end,
            _in_departments(Complaint.department_id, departments),
        )
        .group_by(day, Complaint.department_id)
    ):
        row = rows[(as_date(d), dep)]
        row.update(closed=closed, closed_without_dispatch=int(direct or 0), handling_minutes=float(minutes or 0))


def _add_follow_ups(
    session: Session, rows: Rows, start: datetime, end: datetime, departments: Optional[set[int]]
) -> None:
    """Follow-up visits per day, by the customer's satisfaction."""
    day = local_day(session, FollowUp.called_at)
    for d, dep, satisfaction, n in session.execute(
        select(day, FollowUp.department_id, FollowUp.satisfaction, func.count())
        .where(
            FollowUp.called_at >= start,
            FollowUp.called_at < end,
            _in_departments(FollowUp.department_id, departments),
        )
        .group_by(day, FollowUp.department_id, FollowUp.satisfaction)
    ):
        row = rows[(as_date(d), dep)]
        key = getattr(satisfaction, "value", satisfaction)
        row["followups"] += n
        row[key] = row.get(key, 0) + n


def _add_stages(
    session: Session, rows: Rows, start: datetime, end: datetime, departments: Optional[set[int]], now: datetime
) -> None:
    """Stages count on the day they fall due: done in time, late, or late and still open."""
    day = local_day(session, Deadline.due_at)
    open_past_due = and_(Deadline.met_at.is_(None), Deadline.due_at <= now, running_clock())
    late = or_(Deadline.met_at > Deadline.due_at, open_past_due)
    delay = case(
        (Deadline.met_at > Deadline.due_at, minutes_between(session, Deadline.met_at, Deadline.due_at)),
        (open_past_due, minutes_between(session, literal_now(session, now), Deadline.due_at)),
        else_=0,
    )
    for d, dep, stage, due, on_time, late_n, delay_minutes in session.execute(
        select(
            day,
            Deadline.department_id,
            Deadline.stage,
            func.count(),
            func.sum(case((and_(Deadline.met_at.is_not(None), Deadline.met_at <= Deadline.due_at), 1), else_=0)),
            func.sum(case((late, 1), else_=0)),
            func.sum(delay),
        )
        .where(
            Deadline.due_at >= start,
            Deadline.due_at < end,
            Deadline.state != "cancelled",
            or_(and_(Deadline.due_at <= now, running_clock()), Deadline.met_at.is_not(None)),
            _in_departments(Deadline.department_id, departments),
        )
        .group_by(day, Deadline.department_id, Deadline.stage)
    ):
        row = rows[(as_date(d), dep)]
        row["stages"][stage] = [due, int(on_time or 0), int(late_n or 0), float(delay_minutes or 0)]


def running_clock() -> Any:
    """The deadline's case is not paused (暂停计时): a paused clock is not due, whatever its old time.

    Resuming moves the deadline by the paused time, so on-time rates never count it.
    """
    return (
        ~select(Complaint.id).where(Complaint.id == Deadline.complaint_id, Complaint.paused_since.is_not(None)).exists()
    )


def literal_now(session: Session, now: datetime) -> Any:

    return bindparam("stat_now", now, type_=UTCDateTime())


def _empty() -> dict[str, Any]:
    return {
        "received": 0,
        "repeats": 0,
        "by_category": {},
        "by_channel": {},
        "by_level": {},
        "judged": 0,
        "valid": 0,
        "attitude_valid": 0,
        "closed": 0,
        "closed_without_dispatch": 0,
        "handling_minutes": 0.0,
        "followups": 0,
        "satisfied": 0,
        "basically_satisfied": 0,
        "unsatisfied": 0,
        "stages": {},
        "attitude_by_staff": {},
        **dict.fromkeys(OPEN_MEASURES, 0),
    }


def _store(
    session: Session, pairs: set[tuple[date, int]], computed: dict[tuple[date, int], dict[str, Any]], now: datetime
) -> int:
    """Replace the rows of ``pairs`` with their computed measures (absent = all zero).

    An upsert, not delete-then-insert: two refreshes of the same pair (two schedulers, or a
    dashboard read racing the job) must not collide on the primary key; the later one wins.
    """
    if not pairs:
        return 0
    table = StatDaily.__table__
    empty = [and_(table.c.day == d, table.c.department_id == dep) for d, dep in pairs if (d, dep) not in computed]
    for i in range(0, len(empty), 400):
        session.execute(delete(table).where(or_(*empty[i : i + 400])))
    revision = next_revision(session)
    rows = [
        {"day": d, "department_id": dep, "computed_at": now, "revision": revision, **computed[(d, dep)]}
        for d, dep in sorted(pairs)
        if (d, dep) in computed
    ]
    if rows:
        stmt = dialect_insert(session)(table)
        keys = (table.c.day, table.c.department_id)
        updated = {c.name: stmt.excluded[c.name] for c in table.columns if c not in keys}
        session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=updated), rows)
    return len(rows)


def next_revision(session: Session) -> int:
    """A new revision number for the rows a refresh writes, higher than any written before.

    The counter row is locked until the refresh commits, so refreshes write one after the
    other and a committed row never carries a revision below one already visible: readers
    tell a changed group of rows by its count and the sum of its revisions
    (``daily.group_totals``), whatever clock the writer's ``now`` came from.
    """
    table = Counter.__table__
    stmt = dialect_insert(session)(table).values(kind="stat_revision", period="-", value=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.kind, table.c.period], set_={"value": table.c.value + 1}
    ).returning(table.c.value)
    return int(session.execute(stmt).scalar_one())


REFRESH_LIMIT = 5000  # pairs a refresh takes at most


def refresh(session: Session, limit: int = REFRESH_LIMIT, now: Optional[datetime] = None) -> int:
    """Recompute the rows waiting in ``stat_dirty``; returns how many pairs were done.

    The marks are taken (deleted) before the computation: a case saved meanwhile marks its
    day again (waiting for this transaction on PostgreSQL) and the next refresh counts it;
    removing them afterwards would drop a mark set while this refresh was computing.
    """
    now = now or utcnow()
    pairs = [
        (as_date(d), dep)
        for d, dep in session.execute(
            select(StatDirty.day, StatDirty.department_id).order_by(StatDirty.day).limit(limit)
        )
    ]
    if not pairs:
        return 0
    table = StatDirty.__table__
    conditions = [and_(table.c.day == d, table.c.department_id == dep) for d, dep in sorted(pairs)]
    for i in range(0, len(conditions), 400):
        session.execute(delete(table).where(or_(*conditions[i : i + 400])))
    by_day: dict[date, set[int]] = defaultdict(set)
    for d, dep in pairs:
        by_day[d].add(dep)
    computed: dict[tuple[date, int], dict[str, Any]] = {}
    # Contiguous runs of days are aggregated together.
    days = sorted(by_day)
    run: list[date] = []
    for d in days + [None]:  # type: ignore[list-item]
        if d is not None and (not run or (d - run[-1]).days <= 3):
            run.append(d)
            continue
        if run:
            deps = set().union(*(by_day[x] for x in run))
            computed.update(compute(session, run[0], run[-1], deps, now))
        run = [d] if d is not None else []
    _store(session, set(pairs), computed, now)
    return len(pairs)


def refresh_all(session: Session, now: Optional[datetime] = None) -> int:
    """Recompute every row waiting in ``stat_dirty``, however many (``refresh`` takes a limited number)."""
    done = total = refresh(session, now=now)
    while done >= REFRESH_LIMIT:
        done = refresh(session, now=now)
        total += done
    return total


def rebuild(session: Session, now: Optional[datetime] = None) -> int:
    """Recompute every row from scratch (after a bulk load or an upgrade)."""
    now = now or utcnow()
    bounds = session.execute(select(func.min(Complaint.received_at), func.max(Complaint.received_at))).one()
    session.execute(delete(StatDaily.__table__))
    session.execute(delete(StatDirty.__table__))
    if bounds[0] is None:
        return 0
    first = _day(bounds[0])
    last = max(_day(now) + timedelta(days=30), _day(bounds[1]))
    computed = compute(session, first, last, None, now)
    if computed:
        revision = next_revision(session)
        rows = [
            {"day": d, "department_id": dep, "computed_at": now, "revision": revision, **values}
            for (d, dep), values in computed.items()
        ]
        for i in range(0, len(rows), 5000):
            session.execute(StatDaily.__table__.insert(), rows[i : i + 5000])
    return len(computed)
