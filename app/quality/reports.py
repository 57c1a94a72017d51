"""Periodic complaint analysis reports (周报 / 月度分析): figures, PDF, Excel workbook, sending.

The figures come from :mod:`app.analytics` (the dashboards' KPI engine) for the whole
company: totals and the change against the previous period, breakdowns, on-time and
satisfaction rates, the worst cases, the penalties in force decided in the period and
each department's improvement measures (整改措施). The PDF is an issued document
(:mod:`app.documents`: numbered per kind and year, stored, never regenerated silently);
the workbook is stored beside it. The jobs of ``app/jobs/reports.py`` call
:func:`generate` and :func:`send` on the first working day after the period.
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta
from typing import Any, Optional

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select, true
from sqlalchemy.orm import Session

from app import labels, settings
from app.complaints import clusters, corrective
from app.discipline import ledger, penalties
from app.documents import render as documents
from app.documents.spreadsheet import append_row
from app.i18n import _, _l
from app.lifecycle import Errors, TransitionError
from app.messages import notify
from app.models import Department, DepartmentMeasure, Penalty, Report
from app.quality import analytics
from app.quality.analytics import Chart, Period, Totals
from app.time_limits.deadlines import STAGES
from app.timeutil import local_date, utcnow

KINDS = ("week", "month")
DOCUMENT_KINDS = {"week": "weekly_analysis", "month": "monthly_analysis"}
PERIOD_WORD_ZH = {"week": "周", "month": "月"}
KIND_LABELS = {"week": _l("Weekly"), "month": _l("Monthly")}

# The breakdowns come from the dashboard engine (same declarations, company scope).
CHARTS = [
    Chart("by_category", _l("By category"), "category", "count", "pie"),
    Chart("by_channel", _l("By channel"), "channel", "count", "pie"),
    Chart("by_level", _l("By level"), "level", "count", "bar"),
]
# (KPI key, name in the PDF, label in the workbook)
RATES = (
    ("on_time_closure_rate", "按时答复率", _l("On-time closure rate")),
    ("satisfaction_rate", "满意率", _l("Satisfaction rate")),
    ("valid_rate", "投诉成立率", _l("Valid-complaint rate")),
    ("repeat_rate", "重复投诉率", _l("Repeat-complaint rate")),
    ("first_time_closure_rate", "一次性办结率", _l("First-time closure rate")),
)


def period_label(period: Period) -> str:
    """2026年11月, or 2026年11月16日至11月22日."""
    if period.kind == "month":
        return f"{period.start.year}年{period.start.month}月"
    first, last = period.start, period.end - timedelta(days=1)
    tail = (f"{last.year}年" if last.year != first.year else "") + f"{last.month}月{last.day}日"
    return f"{first.year}年{first.month}月{first.day}日至{tail}"


def title_of(period: Period) -> str:
    label = period_label(period)
    return f"{label}客户投诉分析报告" if period.kind == "month" else f"{label}客户投诉周报"


# --- Figures -----------------------------------------------------------------------------------


def _points(current: Optional[float], previous: Optional[float]) -> Optional[float]:
    """Change of a rate in percentage points (None when either side has no denominator)."""
    if current is None or previous is None:
        return None
    return round((current - previous) * 100, 1)


def _department_rows(
    session: Session, period: Period, departments: list[Department], include_basic: bool
) -> list[dict[str, Any]]:
    current = analytics.department_totals(session, period)
    before = analytics.department_totals(session, period.previous())
    shown = [d for d in departments if d.active or d.id in current]
    rows = []
    for d in shown:
        t, p = current.get(d.id, Totals()), before.get(d.id, Totals())
        k = analytics.kpis(t, include_basic)
        rows.append(
            {
                "department_id": d.id,
                "department": d.name,
                "received": t.received,
                "previous": p.received,
                "change": analytics.change(t.received, p.received),
                "valid": k["valid_rate"],
                "on_time": k["on_time_closure_rate"],
                "satisfaction": k["satisfaction_rate"],
            }
        )
    return rows


def _penalty_rows(session: Session, period: Period) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Penalty).where(ledger.effective_between(*period.bounds())).order_by(Penalty.decided_at, Penalty.id)
    ).all()
    return [
        {
            "number": p.number,
            "staff": p.staff.name,
            "department": p.department.name,
            "clause": p.rule.clause,
            "tier": p.rule.tier,
            "sanction": penalties.SANCTION_NAMES_ZH.get(p.sanction.value, p.sanction.value),
            "sanction_label": penalties.sanction_label(p.sanction),
            "fine_amount": p.fine_amount,
            "score_deduction": p.score_deduction,
            "decided_on": local_date(p.decided_at),
        }
        for p in rows
    ]


def _measures(session: Session, period: Period, departments: list[Department]) -> list[dict[str, Any]]:
    written = {
        m.department_id: m
        for m in session.scalars(
            select(DepartmentMeasure).where(
                DepartmentMeasure.period_kind == period.kind, DepartmentMeasure.period_start == period.start
            )
        )
    }
    return [
        {
            "department": d.name,
            "text": written[d.id].text if d.id in written else None,
            "author": written[d.id].author.first_name if d.id in written and written[d.id].author else "",
            "updated_at": written[d.id].updated_at if d.id in written else None,
        }
        for d in departments
        if d.active or d.id in written
    ]


def report_data(session: Session, period: Period, now: Optional[datetime] = None) -> dict[str, Any]:
    """Every figure of a period's report, company-wide (rates with numerator and denominator)."""
    now = now or utcnow()
    include_basic = bool(settings.get(session, "kpi.satisfaction_includes_basic"))
    board = analytics.dashboard(session, CHARTS, period, None, true(), include_basic, now=now)
    departments = list(session.scalars(select(Department).order_by(Department.sort, Department.id)))
    fines = _penalty_rows(session, period)
    return {
        **_period_part(period),
        **_headline_part(board, period),
        "departments": _department_rows(session, period, departments, include_basic),
        **_breakdown_part(board),
        "worst": _worst_part(session, period, now),
        "penalties": fines,
        "penalty_totals": {
            "count": len(fines),
            "fines": sum(p["fine_amount"] for p in fines),
            "points": sum(p["score_deduction"] for p in fines),
        },
        "measures": _measures(session, period, departments),
        "corrective": corrective.for_period(session, *period.bounds()),
        "clusters": clusters.for_period(session, *period.bounds()),
    }


def _period_part(period: Period) -> dict[str, Any]:
    """The report's kind, its period (first and last day, label, word) and the previous one's label."""
    return {
        "kind": period.kind,
        "period": {
            "start": period.start,
            "last": period.end - timedelta(days=1),
            "label": period_label(period),
            "word": PERIOD_WORD_ZH[period.kind],
        },
        "previous": {"label": period_label(period.previous())},
    }


def _headline_part(board: dict[str, Any], period: Period) -> dict[str, Any]:
    """The headline counts and the rates against the previous period."""
    current, previous = board["kpis"], board["previous_kpis"]
    return {
        "received": current["received"],
        "previous_received": previous["received"],
        "received_change": board["received_change"],
        "judged": current["valid_rate"]["denominator"],
        "valid": current["valid_rate"]["numerator"],
        "closed": current["first_time_closure_rate"]["denominator"],
        "followups": current["satisfaction_rate"]["denominator"],
        "average_handling_hours": current["average_handling_hours"],
        "complaint_rate": current["complaint_rate"] if period.kind == "month" else None,
        "rates": [
            {
                "key": key,
                "name_zh": name_zh,
                "label": str(label),
                "current": current[key],
                "previous": previous[key],
                "points": _points(current[key]["value"], previous[key]["value"]),
            }
            for key, name_zh, label in RATES
        ],
    }


def _breakdown_part(board: dict[str, Any]) -> dict[str, Any]:
    """The cases by category, channel and level (with their share), and the figures per stage."""
    current = board["kpis"]
    received = current["received"]

    def breakdown(name: str) -> list[dict[str, Any]]:
        items = board["charts"][name]["items"]
        return [{**i, "share": (i["value"] / received) if received else None} for i in items]

    return {
        "by_category": breakdown("by_category"),
        "by_channel": breakdown("by_channel"),
        "by_level": breakdown("by_level"),
        "stages": [
            {
                "stage": stage,
                "name_zh": labels.printed(labels.STAGE, stage),
                "label": str(STAGES[stage].label) if stage in STAGES else stage,
                **figures,
            }
            for stage, figures in current["stages"].items()
        ],
    }


def _worst_part(session: Session, period: Period, now: datetime) -> list[dict[str, Any]]:
    """The period's worst cases (as many as ``reports.worst_cases``), with the printed status."""
    worst = analytics.worst_cases(
        session, period, None, int(settings.get(session, "reports.worst_cases") or 10), now=now
    )
    for case in worst:
        case["status_zh"] = labels.printed(labels.STATUS, case["status"])
    return worst


def summary_of(data: dict[str, Any]) -> dict[str, Any]:
    """The headline figures kept on the report row (list, message)."""
    rates = {r["key"]: r["current"] for r in data["rates"]}
    return {
        "received": data["received"],
        "previous_received": data["previous_received"],
        "received_change": data["received_change"],
        "on_time_closure_rate": rates["on_time_closure_rate"],
        "satisfaction_rate": rates["satisfaction_rate"],
        "valid_rate": rates["valid_rate"],
        "penalties": data["penalty_totals"]["count"],
        "fines": data["penalty_totals"]["fines"],
        "worst_cases": len(data["worst"]),
        "measures_missing": sum(1 for m in data["measures"] if not m["text"]),
    }


# --- The workbook ---------------------------------------------------------------------------------


def _ratio(value: Optional[float]) -> Any:
    return "—" if value is None else value


PERCENT = "0.0%"
Sheet = tuple[str, list[str], list[list[Any]], dict[int, str]]  # title, header, rows, number format per column


def workbook(data: dict[str, Any]) -> bytes:
    """The report as an Excel workbook: summary, departments, breakdowns, timeliness, cases, penalties, measures."""
    book = Workbook()
    _write_summary(book.active, data)
    sheets = [
        _department_sheet(data),
        *_breakdown_sheets(data),
        _timeliness_sheet(data),
        _worst_case_sheet(data),
        _penalty_sheet(data),
        _measure_sheet(data),
    ]
    for title, header, rows, formats in sheets:
        _write_table(book.create_sheet(title[:31]), header, rows, formats)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _write_summary(first: Any, data: dict[str, Any]) -> None:
    """The first sheet: (label, value) lines, then the rates with this and the previous period."""
    summary = [
        (_("Period"), data["period"]["label"], None),
        (_("Previous period"), data["previous"]["label"], None),
        (_("Complaints received"), data["received"], None),
        (_("Previous period"), data["previous_received"], None),
        (_("Change"), _ratio(data["received_change"]), PERCENT),
        (_("Judged"), data["judged"], None),
        (_("Valid"), data["valid"], None),
        (_("Closed"), data["closed"], None),
        (_("Follow-up visits"), data["followups"], None),
        (_("Penalties"), data["penalty_totals"]["count"], None),
        (_("Fines (yuan)"), data["penalty_totals"]["fines"], None),
    ]
    first.title = _("Summary")[:31]
    for label, value, fmt in summary:
        append_row(first, [label, value])
        if fmt:
            first.cell(row=first.max_row, column=2).number_format = fmt
    append_row(first, [])
    append_row(
        first,
        [_("Rate"), _("This period"), _("Numerator"), _("Denominator"), _("Previous period"), _("Change (points)")],
    )
    for cell in first[first.max_row]:
        cell.font = Font(bold=True)
    for r in data["rates"]:
        current = r["current"]
        append_row(
            first,
            [
                r["label"],
                _ratio(current["value"]),
                current["numerator"],
                current["denominator"],
                _ratio(r["previous"]["value"]),
                _ratio(r["points"]),
            ],
        )
        for column in (2, 5):
            first.cell(row=first.max_row, column=column).number_format = PERCENT
    first.column_dimensions["A"].width = 28


def _write_table(sheet: Any, header: list[str], rows: list[list[Any]], formats: dict[int, str]) -> None:
    """A bold frozen header, the rows with their number formats, widths from the content."""
    append_row(sheet, header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for values in rows:
        append_row(sheet, values)
        for column, fmt in formats.items():
            sheet.cell(row=sheet.max_row, column=column).number_format = fmt
    sheet.freeze_panes = "A2"
    for column in sheet.columns:
        width = max(len(str(c.value or "")) for c in column)
        sheet.column_dimensions[column[0].column_letter].width = min(60, max(10, width * 2 + 2))


def _department_sheet(data: dict[str, Any]) -> Sheet:
    header = [
        _("Department"),
        _("Complaints"),
        _("Previous period"),
        _("Change"),
        _("Valid"),
        _("Judged"),
        _("On time"),
        _("Due"),
        _("On-time rate"),
        _("Satisfied"),
        _("Follow-up visits"),
        _("Satisfaction rate"),
    ]
    rows = [
        [
            r["department"],
            r["received"],
            r["previous"],
            _ratio(r["change"]),
            r["valid"]["numerator"],
            r["valid"]["denominator"],
            r["on_time"]["numerator"],
            r["on_time"]["denominator"],
            _ratio(r["on_time"]["value"]),
            r["satisfaction"]["numerator"],
            r["satisfaction"]["denominator"],
            _ratio(r["satisfaction"]["value"]),
        ]
        for r in data["departments"]
    ]
    return _("By department"), header, rows, {4: PERCENT, 9: PERCENT, 12: PERCENT}


def _breakdown_sheets(data: dict[str, Any]) -> list[Sheet]:
    return [
        (
            title,
            [_("Name"), _("Complaints"), _("Share")],
            [[i["label"], i["value"], _ratio(i["share"])] for i in data[key]],
            {3: PERCENT},
        )
        for key, title in (
            ("by_category", _("By category")),
            ("by_channel", _("By channel")),
            ("by_level", _("By level")),
        )
    ]


def _timeliness_sheet(data: dict[str, Any]) -> Sheet:
    header = [_("Stage"), _("Due"), _("On time"), _("On-time rate"), _("Late"), _("Average delay (hours)")]
    rows = [
        [
            s["label"],
            s["timeliness"]["denominator"],
            s["timeliness"]["numerator"],
            _ratio(s["timeliness"]["value"]),
            s["late"],
            _ratio(None if s["average_delay_hours"] is None else round(s["average_delay_hours"], 1)),
        ]
        for s in data["stages"]
    ]
    return _("Timeliness"), header, rows, {4: PERCENT}


def _worst_case_sheet(data: dict[str, Any]) -> Sheet:
    yes, no = _("Yes"), _("No")
    header = [
        _("Complaint no."),
        _("Department"),
        _("Level"),
        _("Category"),
        _("Subject"),
        _("Status"),
        _("Late stages"),
        _("Delay (hours)"),
        _("Customer unsatisfied"),
    ]
    rows = [
        [
            c["number"],
            c["department"],
            c["level"],
            c["category"],
            c["subject"],
            c["status_zh"],
            c["late_stages"],
            c["delay_hours"],
            yes if c["unsatisfied"] else no,
        ]
        for c in data["worst"]
    ]
    return _("Worst cases"), header, rows, {}


def _penalty_sheet(data: dict[str, Any]) -> Sheet:
    header = [
        _("Case no."),
        _("Name"),
        _("Department"),
        _("Clause"),
        _("Tier"),
        _("Sanction"),
        _("Fines (yuan)"),
        _("Points deducted"),
        _("Decided on"),
    ]
    rows = [
        [
            p["number"],
            p["staff"],
            p["department"],
            p["clause"],
            p["tier"],
            p["sanction_label"],
            p["fine_amount"],
            p["score_deduction"],
            p["decided_on"],
        ]
        for p in data["penalties"]
    ]
    return _("Penalties"), header, rows, {}


def _measure_sheet(data: dict[str, Any]) -> Sheet:
    return (
        _("Improvement measures"),
        [_("Department"), _("Improvement measures"), _("Written by")],
        [[m["department"], m["text"] or _("Not submitted"), m["author"]] for m in data["measures"]],
        {},
    )


# --- Issuing and sending -------------------------------------------------------------------------


def find(session: Session, kind: str, period: Period) -> Optional[Report]:
    return session.scalars(select(Report).where(Report.kind == kind, Report.period_start == period.start)).first()


def generate(
    session: Session, period: Period, now: Optional[datetime] = None, by_user_id: Optional[int] = None
) -> Report:
    """Compute, print (a numbered document) and store a period's report; a second run supersedes the first."""
    if period.kind not in KINDS:
        raise ValueError(f"reports are weekly or monthly, not {period.kind}")
    now = now or utcnow()
    data = report_data(session, period, now)
    kind = DOCUMENT_KINDS[period.kind]
    key = period.key
    doc = documents.issue_document(
        session,
        kind,
        title_of(period),
        {"report": data},
        period=key,
        supersedes=documents.current_document(session, kind, period=key),
        issued_by_id=by_user_id,
        now=now,
    )
    xlsx = workbook(data)
    report = find(session, period.kind, period)
    if report is None:
        report = Report(kind=period.kind, period_start=period.start)
        session.add(report)
    report.period_end = period.end
    report.label = period_label(period)
    report.document = doc
    report.xlsx = xlsx
    report.xlsx_size = len(xlsx)
    report.xlsx_sha256 = hashlib.sha256(xlsx).hexdigest()
    report.summary = summary_of(data)
    report.generated_at = now
    report.generated_by_id = by_user_id
    session.flush()
    return report


def _pct(r: Optional[dict[str, Any]]) -> str:
    if not r or r.get("value") is None:
        return "—"
    return f"{r['value'] * 100:.1f}%（{r['numerator']}/{r['denominator']}）"


def send(session: Session, report: Report, now: Optional[datetime] = None) -> int:
    """Tell 总经理 and 人事行政经理 (inbox, e-mail, group robots) that the report is ready; once per report."""
    now = now or utcnow()
    s = report.summary or {}
    change = s.get("received_change")
    body = "\n".join(
        [
            str(
                _l(
                    "Complaints: %(n)d (previous period %(p)d%(change)s)",
                    n=s.get("received", 0),
                    p=s.get("previous_received", 0),
                    change="" if change is None else f", {change * 100:+.1f}%",
                )
            ),
            str(_l("On-time closure rate: %(rate)s", rate=_pct(s.get("on_time_closure_rate")))),
            str(_l("Satisfaction rate: %(rate)s", rate=_pct(s.get("satisfaction_rate")))),
            str(_l("Penalties: %(n)d, fines %(fines)d yuan", n=s.get("penalties", 0), fines=s.get("fines", 0))),
        ]
    )
    title = str(
        _l("%(kind)s complaint analysis %(period)s is ready", kind=KIND_LABELS[report.kind], period=report.label)
    )
    users = notify.users_for(session, penalties.GM) + notify.users_for(session, penalties.HR)
    sent = notify.notify(
        session,
        users,
        "report",
        title,
        body,
        dedup_key=f"report:{report.kind}:{report.period_start.isoformat()}",
        now=now,
        webhook=True,
        link=f"/reportview/show/{report.id}",
    )
    if report.sent_at is None:
        report.sent_at = now
    return sent


# --- Improvement measures ---------------------------------------------------------------------------


def check_measure(session: Session, item: DepartmentMeasure, principal: Any) -> None:
    """Check a department's measures and file them under their period's first day.

    Only a head of the department writes them (one text per department and period);
    raise ValidationFailed or TransitionError with the reasons.
    """
    errors = Errors()
    department_id = item.department.id if item.department is not None else item.department_id
    if department_id is None:
        errors.add("department", str(_l("Please choose the department.")))
    if item.period_kind not in KINDS:
        errors.add("period_kind", str(_l("Please choose a week or a month.")))
    if item.period_start is None:
        errors.add("period_start", str(_l("Please enter a day of the week or month.")))
    if not (item.text or "").strip():
        errors.add("text", str(_l("Please describe the improvement measures.")))
    errors.raise_if_any()
    if not (principal.is_department_head and department_id in principal.acting_department_ids):
        raise TransitionError("role", str(_l("Only the head of the department writes its improvement measures.")))
    item.department_id = department_id
    item.period_start = analytics.period_containing(item.period_kind, item.period_start).start
    item.text = item.text.strip()
    item.author_id = principal.user_id
    with session.no_autoflush:  # an edited row must not be written before the check
        duplicate = session.scalar(
            select(DepartmentMeasure.id).where(
                DepartmentMeasure.department_id == department_id,
                DepartmentMeasure.period_kind == item.period_kind,
                DepartmentMeasure.period_start == item.period_start,
                DepartmentMeasure.id != (item.id or 0),
            )
        )
    if duplicate is not None:
        errors.add("period_start", str(_l("The measures of this period exist already: edit them instead.")))
        errors.raise_if_any()
