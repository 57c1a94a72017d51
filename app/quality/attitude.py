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

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import settings
from app.models import Category, Complaint, Department, Staff, Validity, complaint_staff
from app.timeutil import as_utc, local_date

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


def _year_bounds(day: date) -> tuple[datetime, datetime]:
    start = as_utc(datetime(day.year, 1, 1))
    end = as_utc(datetime(day.year + 1, 1, 1))
    return start, end


def statuses(
    session: Session,
    now: datetime,
    staff_ids: Optional[Iterable[int]] = None,
    department_ids: Optional[Iterable[int]] = None,
) -> list[AttitudeStatus]:
    """The month's and year's counts of every staff member with a valid attitude complaint this year."""
    today = local_date(now)
    start, end = _year_bounds(today)
    stmt = (
        select(Staff.id, Staff.name, Staff.department_id, Complaint.received_at)
        .join(complaint_staff, complaint_staff.c.staff_id == Staff.id)
        .join(Complaint, Complaint.id == complaint_staff.c.complaint_id)
        .join(Category, Category.id == Complaint.category_id)
        .where(Category.code == ATTITUDE, Complaint.validity == Validity.valid)
        .where(Complaint.received_at >= start, Complaint.received_at < end)
    )
    if staff_ids is not None:
        stmt = stmt.where(Staff.id.in_(list(staff_ids)))
    if department_ids is not None:
        stmt = stmt.where(Staff.department_id.in_(list(department_ids)))
    counts: dict[int, list[Any]] = {}
    for staff_id, name, department_id, received in session.execute(stmt):
        row = counts.setdefault(staff_id, [name, department_id, 0, 0])
        row[3] += 1
        day = local_date(received)
        if (day.year, day.month) == (today.year, today.month):
            row[2] += 1
    month_cap, year_limit = _caps(session)
    names = _department_names(session, {row[1] for row in counts.values()})
    return [
        AttitudeStatus(sid, name, names.get(dep, ""), month, year, month_cap, year_limit)
        for sid, (name, dep, month, year) in sorted(counts.items())
    ]


def _department_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Department.id, Department.name).where(Department.id.in_(ids))).all())


def flagged(session: Session, now: datetime, department_ids: Optional[Iterable[int]] = None) -> list[AttitudeStatus]:
    """Staff over the month cap or at the year limit (the dashboard's list)."""
    return [s for s in statuses(session, now, department_ids=department_ids) if s.flagged]


def staff_status(session: Session, staff: Staff, now: datetime) -> AttitudeStatus:
    """One staff member's counts (zero when none), for the staff record."""
    found = statuses(session, now, staff_ids=[staff.id])
    if found:
        return found[0]
    month_cap, year_limit = _caps(session)
    department = staff.department.name if staff.department is not None else ""
    return AttitudeStatus(staff.id, staff.name, department, 0, 0, month_cap, year_limit)
