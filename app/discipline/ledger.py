"""Service layer of discipline: penalty cases, appeals, notices, circulars and the ledger.

Applies the rules of :mod:`app.penalties` to the database inside the caller's
transaction (the caller commits). Views, the REST API and the CLI call these
functions; none of them writes penalty state by itself.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import and_, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from app.access import scope
from app.complaints import phrases
from app.discipline import liability, penalties
from app.documents.spreadsheet import append_row
from app.i18n import _, _l
from app.models import (
    Department,
    Penalty,
    PenaltyLink,
    Staff,
)
from app.timeutil import LOCAL_TZ, UTC


def parse_month(text: Any) -> date:
    """``2026-11`` -> 2026-11-01; raises ValueError with a readable message."""
    try:
        year, month = str(text or "").strip().split("-")[:2]
        return date(int(year), int(month), 1)
    except (ValueError, TypeError) as exc:
        raise ValueError(str(_l("Please give the month as YYYY-MM."))) from exc


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The UTC instants of a local (Asia/Shanghai) calendar month: [start, end)."""
    start = datetime(month.year, month.month, 1, tzinfo=LOCAL_TZ)
    following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    end = datetime(following.year, following.month, 1, tzinfo=LOCAL_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


def effective_in(month: date) -> Any:
    return effective_between(*month_bounds(month))


def effective_between(start: datetime, end: datetime) -> Any:
    """Penalties in force decided in [start, end): what ledgers, circulars and reports count."""
    return and_(Penalty.status.in_(penalties.EFFECTIVE), Penalty.decided_at >= start, Penalty.decided_at < end)


def _ledger_entries(in_scope: Any) -> Any:
    """Every deduction of the ledger: each case's own terms, plus its counted chained links."""
    own = select(
        Penalty.staff_id.label("staff_id"),
        Penalty.department_id.label("department_id"),
        Penalty.id.label("penalty_id"),
        Penalty.fine_amount.label("fine"),
        Penalty.score_deduction.label("points"),
        case((Penalty.withhold_performance_pay.is_(True), 1), else_=0).label("withheld"),
        literal(0).label("chained"),
    ).where(in_scope)
    chained = (
        select(
            PenaltyLink.staff_id,
            PenaltyLink.department_id,
            PenaltyLink.penalty_id,
            PenaltyLink.fine,
            PenaltyLink.points,
            literal(0),
            literal(1),
        )
        .join(Penalty, Penalty.id == PenaltyLink.penalty_id)
        .where(
            in_scope,
            PenaltyLink.counted.is_(True),
            PenaltyLink.role != liability.RESPONSIBLE,
            PenaltyLink.staff_id.is_not(None),
        )
    )
    return union_all(own, chained).subquery("entries")


def ledger(session: Session, month: date, principal: Any) -> dict[str, Any]:
    """Fines, points and sanctions of a month per staff member and per department (SQL aggregates).

    Chained deductions (连带扣分) count on their person's row and department; the
    confirmed forbidden service phrases (服务忌语) of the month are a column per staff.
    """
    in_scope = and_(effective_in(month), scope.criterion(Penalty, principal))
    details = session.scalars(select(Penalty).where(in_scope).order_by(Penalty.decided_at, Penalty.id)).all()
    staff_rows = _staff_rows(session, in_scope, details)
    staff_rows = _with_phrase_hits(session, month, principal, staff_rows)
    chained_rows = _chained_rows(session, in_scope)
    counted = [r for r in chained_rows if r["counted"]]
    return {
        "month": f"{month:%Y-%m}",
        "staff": staff_rows,
        "departments": _department_rows(session, in_scope),
        "penalties": [_penalty_row(p) for p in details],
        "chained": chained_rows,
        "totals": {
            "count": len(details),
            "fines": sum(p.fine_amount for p in details) + sum(r["fine"] for r in counted),
            "points": sum(p.score_deduction for p in details) + sum(r["points"] for r in counted),
        },
        "chained_totals": {
            "count": len(counted),
            "fines": sum(r["fine"] for r in counted),
            "points": sum(r["points"] for r in counted),
        },
        "phrase_hits": sum(r["phrase_hits"] for r in staff_rows),
    }


def _staff_rows(session: Session, in_scope: Any, details: Sequence[Penalty]) -> list[dict[str, Any]]:
    """One row per person with a deduction of the month: own cases, chained links, sanctions."""
    e = _ledger_entries(in_scope)
    own_case = case((e.c.chained == 0, e.c.penalty_id))
    per_staff = session.execute(
        select(
            Staff.id,
            Staff.employee_no,
            Staff.name,
            Department.name,
            func.count(own_case),
            func.coalesce(func.sum(e.c.fine), 0),
            func.coalesce(func.sum(e.c.points), 0),
            func.max(e.c.withheld),
            func.coalesce(func.sum(e.c.chained), 0),
        )
        .select_from(e)
        .join(Staff, Staff.id == e.c.staff_id)
        .join(Department, Department.id == e.c.department_id)
        .group_by(Staff.id, Staff.employee_no, Staff.name, Department.name)
        .order_by(Department.name, Staff.employee_no)
    ).all()
    sanctions: dict[int, list[str]] = {}
    for p in details:
        sanctions.setdefault(p.staff_id, []).append(penalties.sanction_label(p.sanction))
    return [
        {
            "staff_id": r[0],
            "employee_no": r[1],
            "name": r[2],
            "department": r[3],
            "count": int(r[4]),
            "chained": int(r[8]),
            "fines": int(r[5]),
            "points": int(r[6]),
            "performance_pay_withheld": bool(r[7]),
            "sanctions": "、".join(sanctions.get(r[0], [])),
            "phrase_hits": 0,
        }
        for r in per_staff
    ]


def _with_phrase_hits(
    session: Session, month: date, principal: Any, staff_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """服务忌语: confirmed forbidden phrases of the month, for the staff the caller may see.

    A person with hits but no deduction gets a row of their own; rows sorted by department and number.
    """
    hits = phrases.hits_per_staff(
        session,
        *month_bounds(month),
        department_ids=None if principal.is_company_wide else principal.department_ids,
    )
    by_staff = {r["staff_id"]: r for r in staff_rows}
    missing = [h["staff_id"] for h in hits if h["staff_id"] not in by_staff]
    if missing:
        for staff_id, employee_no, name, department in session.execute(
            select(Staff.id, Staff.employee_no, Staff.name, Department.name)
            .join(Department, Department.id == Staff.department_id)
            .where(Staff.id.in_(missing))
        ):
            by_staff[staff_id] = {
                "staff_id": staff_id,
                "employee_no": employee_no,
                "name": name,
                "department": department,
                "count": 0,
                "chained": 0,
                "fines": 0,
                "points": 0,
                "performance_pay_withheld": False,
                "sanctions": "",
                "phrase_hits": 0,
            }
    for h in hits:
        if h["staff_id"] in by_staff:
            by_staff[h["staff_id"]]["phrase_hits"] = int(h["hits"])
    return sorted(by_staff.values(), key=lambda r: (r["department"], r["employee_no"]))


def _department_rows(session: Session, in_scope: Any) -> list[dict[str, Any]]:
    e = _ledger_entries(in_scope)
    own_case = case((e.c.chained == 0, e.c.penalty_id))
    per_department = session.execute(
        select(
            Department.id,
            Department.name,
            func.count(own_case),
            func.count(func.distinct(e.c.staff_id)),
            func.coalesce(func.sum(e.c.fine), 0),
            func.coalesce(func.sum(e.c.points), 0),
            func.coalesce(func.sum(e.c.withheld), 0),
            func.coalesce(func.sum(e.c.chained), 0),
        )
        .select_from(e)
        .join(Department, Department.id == e.c.department_id)
        .group_by(Department.id, Department.name)
        .order_by(Department.name)
    ).all()
    return [
        {
            "department_id": r[0],
            "department": r[1],
            "count": int(r[2]),
            "staff": int(r[3]),
            "fines": int(r[4]),
            "points": int(r[5]),
            "performance_pay_withheld": int(r[6]),
            "chained": int(r[7]),
        }
        for r in per_department
    ]


def _penalty_row(p: Penalty) -> dict[str, Any]:
    return {
        "id": p.id,
        "number": p.number,
        "staff": p.staff.name,
        "employee_no": p.staff.employee_no,
        "department": p.department.name,
        "clause": p.rule.clause,
        "sanction": penalties.sanction_label(p.sanction),
        "fine_amount": p.fine_amount,
        "score_deduction": p.score_deduction,
        "performance_pay_withheld": p.withhold_performance_pay,
        "decided_at": p.decided_at.isoformat() if p.decided_at else None,
        "status": penalties.status_label(p.status),
    }


def _chained_rows(session: Session, in_scope: Any) -> list[dict[str, Any]]:
    """Every chained link (连带) of the month's cases, counted or not."""
    links = session.execute(
        select(PenaltyLink, Penalty)
        .join(Penalty, Penalty.id == PenaltyLink.penalty_id)
        .where(in_scope, PenaltyLink.role != liability.RESPONSIBLE)
        .order_by(Penalty.decided_at, Penalty.id, PenaltyLink.position)
    ).all()
    return [
        {
            "penalty_id": p.id,
            "number": p.number,
            "role": link.role,
            "role_label": liability.role_label(link.role),
            "staff": link.staff.name if link.staff is not None else None,
            "employee_no": link.staff.employee_no if link.staff is not None else None,
            "department": link.department.name if link.department is not None else None,
            "responsible": p.staff.name,
            "clause": p.rule.clause,
            "points": link.points,
            "fine": link.fine,
            "counted": bool(link.counted),
            "vacant": bool(link.vacant),
            "note": link.note,
            "decided_at": p.decided_at.isoformat() if p.decided_at else None,
        }
        for link, p in links
    ]


def _month_cell(value: Any) -> str:
    """An ISO instant as ``YYYY-MM-DD HH:MM`` for the workbook (empty when missing)."""
    return (value or "")[:16].replace("T", " ")


def ledger_xlsx(data: dict[str, Any]) -> bytes:
    """The ledger as an Excel workbook for payroll: per staff, per department, every penalty."""
    book = Workbook()
    sheets = [_staff_sheet(data), _department_sheet(data), _penalty_sheet(data), _chained_sheet(data)]
    for index, (title, header, rows) in enumerate(sheets):
        sheet = book.active if index == 0 else book.create_sheet()
        _write_sheet(sheet, title, data["month"], header, rows)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


Sheet = tuple[str, list[str], list[list[Any]]]  # title, header, rows


def _write_sheet(sheet: Any, title: str, month: str, header: list[str], rows: list[list[Any]]) -> None:
    """The month on the first line, a bold header, the rows; frozen header, widths from the content."""
    sheet.title = f"{title}"[:31]
    append_row(sheet, [_("Month"), month])
    append_row(sheet, header)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in rows:
        append_row(sheet, row)
    sheet.freeze_panes = "A3"
    for column in sheet.columns:
        width = max(len(str(c.value or "")) for c in column)
        sheet.column_dimensions[column[0].column_letter].width = min(60, max(10, width * 2 + 2))


def _yes_no(value: Any) -> str:
    return _("Yes") if value else _("No")


def _staff_sheet(data: dict[str, Any]) -> Sheet:
    header = [
        _("Employee no."),
        _("Name"),
        _("Department"),
        _("Penalties"),
        _("Sanctions"),
        _("Fines (yuan)"),
        _("Points deducted"),
        _("Performance pay withheld"),
        _("Chained deductions"),
        _("Forbidden service phrases"),
    ]
    rows = [
        [
            r["employee_no"],
            r["name"],
            r["department"],
            r["count"],
            r["sanctions"],
            r["fines"],
            r["points"],
            _yes_no(r["performance_pay_withheld"]),
            r["chained"],
            r["phrase_hits"],
        ]
        for r in data["staff"]
    ]
    return _("Per staff member"), header, rows


def _department_sheet(data: dict[str, Any]) -> Sheet:
    header = [
        _("Department"),
        _("Penalties"),
        _("Staff penalised"),
        _("Fines (yuan)"),
        _("Points deducted"),
        _("Performance pay withheld (staff)"),
        _("Chained deductions"),
    ]
    rows = [
        [r["department"], r["count"], r["staff"], r["fines"], r["points"], r["performance_pay_withheld"], r["chained"]]
        for r in data["departments"]
    ]
    return _("Per department"), header, rows


def _penalty_sheet(data: dict[str, Any]) -> Sheet:
    header = [
        _("Case no."),
        _("Employee no."),
        _("Name"),
        _("Department"),
        _("Clause"),
        _("Sanction"),
        _("Fines (yuan)"),
        _("Points deducted"),
        _("Performance pay withheld"),
        _("Decided at"),
        _("Status"),
    ]
    rows = [
        [
            r["number"],
            r["employee_no"],
            r["staff"],
            r["department"],
            r["clause"],
            r["sanction"],
            r["fine_amount"],
            r["score_deduction"],
            _yes_no(r["performance_pay_withheld"]),
            _month_cell(r["decided_at"]),
            r["status"],
        ]
        for r in data["penalties"]
    ]
    return _("Penalties"), header, rows


def _chained_sheet(data: dict[str, Any]) -> Sheet:
    header = [
        _("Case no."),
        _("Person responsible"),
        _("Clause"),
        _("Liable as"),
        _("Employee no."),
        _("Name"),
        _("Department"),
        _("Points deducted"),
        _("Fines (yuan)"),
        _("Deducted"),
        _("Note"),
        _("Decided at"),
    ]
    rows = [
        [
            r["number"],
            r["responsible"],
            r["clause"],
            r["role_label"],
            r["employee_no"] or "",
            r["staff"] or _("(vacant)"),
            r["department"] or "",
            r["points"],
            r["fine"],
            _yes_no(r["counted"]),
            r["note"] or "",
            _month_cell(r["decided_at"]),
        ]
        for r in data["chained"]
    ]
    return _("Chained deductions"), header, rows
