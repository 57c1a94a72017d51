"""The cluster scan: complaints about the same problem, read from their texts, within a calendar month.

Seed 004: "重复性问题在当月发生3次以上" — the same problem 3 or more times in a calendar month
is serious. A *window* is one department's cases received in one calendar month (Asia/Shanghai);
its cases are compared by TF-IDF cosine (app/complaints/similarity.py) and the cases linked at
``cluster.similarity_threshold`` or more form a group; a group of ``cluster.min_complaints``
cases becomes a cluster (集中性投诉), reported at once, and its open cases rise to the serious
level (clusters.apply_level_rule). An open detected cluster of the department takes the new
similar cases of the next month too (its recent cases join the window as anchors).

Bounded: each pass has a time budget (``cluster.scan_seconds``); each window is one committed
batch; a window is looked at again only when a case was added to it (the highest case id seen
per window is kept in the ``cluster.scan_state`` row), so a pass that ran out of time resumes with
the windows it did not reach. The job also stops inside a window too big for its budget
(``jobs.cluster_scan.budget_seconds``), after the group or level raise that spends it; the window is
committed as far as it got and scanned again by the next pass, which skips what is done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Optional

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import settings
from app.complaints import clusters, similarity
from app.extensions import dialect_insert
from app.models import Cluster, Complaint, Setting, cluster_complaint
from app.timeutil import LOCAL_TZ, as_utc, to_local

STATE_KEY = "cluster.scan_state"
ANCHORS_PER_CLUSTER = 50


@dataclass(frozen=True)
class Window:
    department_id: int
    month: date  # the first day of the calendar month (local)
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    last_id: int

    @property
    def key(self) -> str:
        return f"{self.month:%Y-%m}:{self.department_id}"


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _utc(day: date) -> datetime:
    return as_utc(datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ))


def _number(session: Session, key: str, default: float) -> float:
    try:
        value = float(settings.get(session, key))
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default


def months_to_scan(session: Session, now: datetime) -> list[date]:
    """The calendar months a pass looks at: the current one and ``cluster.scan_months`` − 1 before."""
    count = int(_number(session, "cluster.scan_months", 2))
    month = _month_start(to_local(now).date())
    months = [month]
    for _ in range(count - 1):
        month = _month_start(month - timedelta(days=1))
        months.append(month)
    return sorted(months)


def _load_state(session: Session) -> dict[str, int]:
    row = session.get(Setting, STATE_KEY)
    return dict(row.value) if row is not None and isinstance(row.value, dict) else {}


def _lock_state(session: Session) -> dict[str, int]:
    """The scan state, read fresh under a row lock held until the caller commits: schedulers in
    several processes scan one window at a time and never the same window twice."""
    insert = dialect_insert(session)(Setting.__table__).values(
        key=STATE_KEY, value={}, description="cluster scan: last case id per window"
    )
    session.execute(insert.on_conflict_do_nothing(index_elements=["key"]))
    row = session.scalars(
        select(Setting).where(Setting.key == STATE_KEY).with_for_update().execution_options(populate_existing=True)
    ).one()
    return dict(row.value) if isinstance(row.value, dict) else {}


def _save_state(session: Session, state: dict[str, int], months: list[date]) -> None:
    keep = {f"{m:%Y-%m}" for m in months}
    value = {k: v for k, v in state.items() if k.split(":")[0] in keep}
    row = session.get(Setting, STATE_KEY)
    if row is None:
        session.add(Setting(key=STATE_KEY, value=value, description="cluster scan: last case id per window"))
    else:
        row.value = value


def dirty_windows(session: Session, now: datetime, state: dict[str, int]) -> list[Window]:
    """The department × month windows with a case not scanned yet (received by ``now``), oldest first."""
    windows = []
    for month in months_to_scan(session, now):
        start, end = _utc(month), min(_utc(_next_month(month)), now + timedelta(microseconds=1))
        rows = session.execute(
            select(Complaint.department_id, func.max(Complaint.id))
            .where(Complaint.received_at >= start, Complaint.received_at < end)
            .group_by(Complaint.department_id)
            .order_by(Complaint.department_id)
        ).all()
        for department_id, last_id in rows:
            window = Window(department_id, month, start, end, int(last_id))
            if state.get(window.key, 0) < window.last_id:
                windows.append(window)
    return windows


def scan(
    session: Session, now: datetime, budget_seconds: Optional[float] = None, stop_seconds: Optional[float] = None
) -> dict[str, Any]:
    """One bounded pass at ``now``: each dirty window in turn, committed, until the time budget is spent.

    No window starts after ``budget_seconds`` (default ``cluster.scan_seconds``); with ``stop_seconds``
    a window still running then (or at the budget, if later) stops inside and is finished by later passes.
    """
    began = time.monotonic()
    budget = budget_seconds if budget_seconds is not None else _number(session, "cluster.scan_seconds", 20)
    stop_at = began + max(budget, stop_seconds) if stop_seconds is not None else None
    state = _load_state(session)
    months = months_to_scan(session, now)
    windows = dirty_windows(session, now, state)
    totals = {"windows": 0, "cases_compared": 0, "clusters_created": 0, "cases_linked": 0, "levels_raised": 0}
    for number, window in enumerate(windows):
        if number and time.monotonic() - began > budget:
            totals["windows_left"] = len(windows) - number
            break
        state = _lock_state(session)
        if state.get(window.key, 0) >= window.last_id:  # another scheduler scanned it meanwhile
            session.commit()
            continue
        counts, finished = scan_window(session, window, now, stop_at)
        for key, value in counts.items():
            totals[key] += value
        if not finished:
            # Stopped inside the window (or just done): what it did is kept, and the next
            # pass looks at the window again, skipping the cases already linked and raised.
            session.commit()
            totals["windows_left"] = len(windows) - number
            break
        totals["windows"] += 1
        state[window.key] = window.last_id
        _save_state(session, state, months)
        session.commit()
    totals["more"] = bool(totals.get("windows_left"))
    totals["seconds"] = round(time.monotonic() - began, 3)
    return totals


def _window_cases(session: Session, window: Window) -> list[Complaint]:
    """The window's cases, and as anchors the recent cases of the department's open detected clusters."""
    cases = list(
        session.scalars(
            select(Complaint)
            .where(
                Complaint.department_id == window.department_id,
                Complaint.received_at >= window.start,
                Complaint.received_at < window.end,
            )
            .order_by(Complaint.received_at, Complaint.id)
        )
    )
    seen = {c.id for c in cases}
    for cluster in _open_detected(session, window.department_id, window.start - timedelta(days=31)):
        anchors = [c for c in cluster.complaints if c.id not in seen and c.received_at < window.end]
        for case in anchors[-ANCHORS_PER_CLUSTER:]:
            seen.add(case.id)
            cases.append(case)
    return cases


def _open_detected(session: Session, department_id: int, since: datetime) -> list[Cluster]:
    return list(
        session.scalars(
            select(Cluster)
            .where(
                Cluster.department_id == department_id,
                Cluster.status == "open",
                Cluster.kind == "concentrated",
                Cluster.last_seen >= since,
            )
            .order_by(Cluster.id)
        )
    )


def _memberships(session: Session, ids: list[int]) -> dict[int, list[Cluster]]:
    """The concentrated clusters each case is in (by case id)."""
    found: dict[int, list[Cluster]] = {}
    if not ids:
        return found
    rows = session.execute(
        select(cluster_complaint.c.complaint_id, Cluster)
        .join(Cluster, Cluster.id == cluster_complaint.c.cluster_id)
        .where(cluster_complaint.c.complaint_id.in_(ids), Cluster.kind == "concentrated")
        .order_by(Cluster.id)
    ).all()
    for complaint_id, cluster in rows:
        found.setdefault(complaint_id, []).append(cluster)
    return found


def scan_window(
    session: Session, window: Window, now: datetime, stop_at: Optional[float] = None
) -> tuple[dict[str, int], bool]:
    """Compare the window's cases and turn each group of similar cases into a cluster or join it to one.

    With ``stop_at`` (a ``time.monotonic()`` instant) it stops after the group linked or the level
    raised that passes it, and says it did not finish; scanning the window again does the rest."""
    cases = _window_cases(session, window)
    counts = {"cases_compared": len(cases), "clusters_created": 0, "cases_linked": 0, "levels_raised": 0}
    minimum = int(_number(session, "cluster.min_complaints", 3))
    if len(cases) < 2:
        return counts, True
    matrix = similarity.Matrix([similarity.case_text(c.subject, c.content) for c in cases])
    memberships = _memberships(session, [c.id for c in cases])
    touched: list[Cluster] = []
    for rows in similarity.groups(matrix, similarity.threshold(session)):
        group = [cases[i] for i in rows]
        cluster = _cluster_for(group, memberships)
        if cluster is None:
            # Cases already in a closed cluster are not reported again.
            fresh = [c for c in group if c.id not in memberships]
            if len(fresh) < minimum:
                continue
            cluster = _create_detected(session, window, fresh, now)
            if cluster is None:
                continue  # created meanwhile by another process: its next pass joins the cases
            counts["clusters_created"] += 1
            group = fresh
        linked = clusters.link(session, cluster, group, None, now)
        counts["cases_linked"] += linked
        if cluster not in touched:
            touched.append(cluster)
        if linked and _past(stop_at):
            return counts, False
    for cluster in touched:
        raised = clusters.apply_level_rule(session, cluster, None, now, stop_at)
        counts["levels_raised"] += raised
        if raised and _past(stop_at):
            return counts, False
    return counts, True


def _past(stop_at: Optional[float]) -> bool:
    return stop_at is not None and time.monotonic() > stop_at


def _cluster_for(group: list[Complaint], memberships: dict[int, list[Cluster]]) -> Optional[Cluster]:
    """The oldest open detected cluster that already holds a case of the group."""
    candidates = [
        cluster
        for case in group
        for cluster in memberships.get(case.id, [])
        if cluster.status == "open" and cluster.created_by_id is None
    ]
    return min(candidates, key=lambda c: c.id) if candidates else None


def _create_detected(session: Session, window: Window, cases: list[Complaint], now: datetime) -> Optional[Cluster]:
    cases = sorted(cases, key=lambda c: (c.received_at, c.id))
    key = f"auto:{window.department_id}:{window.month:%Y-%m}:{cases[0].id}"
    if session.scalars(select(Cluster.id).where(Cluster.key == key)).first() is not None:
        return None
    categories = [c.category_id for c in cases if c.category_id is not None]
    cluster = Cluster(
        kind="concentrated",
        department_id=window.department_id,
        category_id=max(set(categories), key=categories.count) if categories else None,
        key=key,
        first_seen=cases[0].received_at,
        last_seen=cases[-1].received_at,
        status="open",
        created_at=now,
        created_by_id=None,
    )
    try:
        with session.begin_nested():
            session.add(cluster)
    except IntegrityError:
        return None
    clusters.report_new(session, cluster, len(cases), now)
    return cluster
