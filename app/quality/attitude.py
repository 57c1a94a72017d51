"""Per-staff service-attitude limits (服务性投诉, seed 003 第一篇 KPI i): 每月至多1次，全年少于4次.

A staff member's count is the valid (情况属实) complaints of the 服务态度 category naming them,
by the month (Asia/Shanghai) the complaint was received. The caps are settings
(``attitude.month_cap``, ``attitude.year_limit``); a member over either is flagged on the
dashboard and on their staff record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from app import settings
from app.models import Category, Complaint, Department, Staff, Validity, complaint_staff
from app.quality import analytics, daily
from app.timeutil import local_date

ATTITUDE = "attitude"  # the category code of 服务态度


@dataclass(frozen=True)
class AttitudeStatus:
    staff_id: int
    name: str
    department: str
    month: int  # valid attitude complaints in the month
    year: int  # ...and in the year
    month_cap: int
    year_limit: int

    @property
    def month_over(self) -> bool:
        return self.month > self.month_cap

    @property
    def year_over(self) -> bool:
        return self.year >= self.year_limit

    @property
    def flagged(self) -> bool:
        return self.month_over or self.year_over

    def as_json(self) -> dict[str, Any]:
        return {
            "staff_id": self.staff_id,
            "name": self.name,
            "department": self.department,
            "month": self.month,
            "year": self.year,
            "month_cap": self.month_cap,
            "year_limit": self.year_limit,
            "month_over": self.month_over,
            "year_over": self.year_over,
        }


def _caps(session: Session) -> tuple[int, int]:
    try:
        return int(settings.get(session, "attitude.month_cap")), int(settings.get(session, "attitude.year_limit"))
    except (TypeError, ValueError):
        return 1, 4


def counted_from_cases(session: Session, now: datetime, staff_ids: Iterable[int]) -> dict[int, list[int]]:
    """staff id → [month, year] counted from the complaints themselves (a few staff members)."""
    today = local_date(now)
    year_start, year_end = analytics.period_containing("year", today).bounds()
    month_start, month_end = analytics.period_containing("month", today).bounds()
    in_month = and_(Complaint.received_at >= month_start, Complaint.received_at < month_end)
    attitude = select(Category.id).where(Category.code == ATTITUDE).scalar_subquery()
    stmt = (
        select(complaint_staff.c.staff_id, func.sum(case((in_month, 1), else_=0)), func.count())
        .join(Complaint, Complaint.id == complaint_staff.c.complaint_id)
        .where(complaint_staff.c.staff_id.in_(list(staff_ids)))
        .where(Complaint.category_id == attitude, Complaint.validity == Validity.valid)
        .where(Complaint.received_at >= year_start, Complaint.received_at < year_end)
        .group_by(complaint_staff.c.staff_id)
    )
    return {staff: [int(month or 0), int(year)] for staff, month, year in session.execute(stmt)}


def counted_from_aggregates(session: Session, now: datetime) -> dict[int, list[int]]:
    """staff id → [month, year] from the daily aggregates (``stat_daily.attitude_by_staff``), per
    month over every department: a staff member counts whichever department handled the case.

    Exact once ``stats.refresh`` ran in this transaction (the dashboard refreshes first); each
    month's sum is kept per process until its rows change (``daily.group_totals``).
    """
    today = local_date(now)
    months = [analytics.period_containing("month", date(today.year, m, 1)) for m in range(1, 13)]
    this_month = months[today.month - 1].start
    counts: dict[int, list[int]] = {}
    for (start, _department), totals in daily.group_totals(session, None, months).items():
        for staff, n in totals.attitude_by_staff.items():
            row = counts.setdefault(int(staff), [0, 0])
            row[1] += n
            if start == this_month:
                row[0] += n
    return counts


def _statuses(
    session: Session, counts: dict[int, list[int]], department_ids: Optional[Iterable[int]] = None
) -> list[AttitudeStatus]:
    if not counts:
        return []
    wanted = (
        select(Staff.id, Staff.name, Department.name)
        .outerjoin(Department, Department.id == Staff.department_id)
        .where(Staff.id.in_(sorted(counts)))
    )
    if department_ids is not None:
        wanted = wanted.where(Staff.department_id.in_(list(department_ids)))
    month_cap, year_limit = _caps(session)
    return [
        AttitudeStatus(sid, name, department or "", *counts[sid], month_cap, year_limit)
        for sid, name, department in sorted(session.execute(wanted).all())
        if counts[sid][1]
    ]


def flagged(session: Session, now: datetime, department_ids: Optional[Iterable[int]] = None) -> list[AttitudeStatus]:
    """Staff over the month cap or at the year limit (the dashboard's list, after its refresh)."""
    statuses = _statuses(session, counted_from_aggregates(session, now), department_ids)
    return [s for s in statuses if s.flagged]


def staff_status(session: Session, staff: Staff, now: datetime) -> AttitudeStatus:
    """One staff member's counts (zero when none), for the staff record."""
    found = _statuses(session, counted_from_cases(session, now, [staff.id]))
    if found:
        return found[0]
    month_cap, year_limit = _caps(session)
    department = staff.department.name if staff.department is not None else ""
    return AttitudeStatus(staff.id, staff.name, department, 0, 0, month_cap, year_limit)
