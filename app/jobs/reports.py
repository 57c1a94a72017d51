"""Periodic jobs: weekly and monthly analysis reports, the monthly grading and the end of its 公示.

A period's work is due on the first working day after it (working calendar: 调休
weekend days count, holidays do not) at or after ``reports.time`` (default 08:00),
and is done exactly once (``claim_period``) by whichever scheduler runs first that
day. A period without a working day is done on the same day as the next one. A day
the schedulers miss entirely is not caught up later: 人事行政经理 generates the report
from the Reports screen (the grading with ``flask --app app jobs run --now``).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from app import settings
from app.extensions import db
from app.jobs.core import claim_period, finish_period
from app.jobs.registry import job
from app.quality import assessment, reports
from app.quality.analytics import Period, period_containing
from app.time_limits import sla
from app.timeutil import LOCAL_TZ, to_local


def _report_time() -> time:
    try:
        return time.fromisoformat(str(settings.get(db.session, "reports.time")))
    except ValueError:
        return time(8, 0)


def first_workday(day: date) -> date:
    """The first working day on or after ``day``."""
    cal = sla.load_calendar(db.session)
    return day if cal.is_workday(day) else cal.next_workday(day)


def due_at(period: Period) -> datetime:
    """When a period's report (or grading) is due: its first working day after, at the report time."""
    return datetime.combine(first_workday(period.end), _report_time(), LOCAL_TZ)


def periods_due(kind: str, now: datetime) -> list[Period]:
    """The finished periods of ``kind`` whose work is due today, by ``now``."""
    local = to_local(now)
    last = period_containing(kind, local.date()).previous()
    # The period before the last one is due today too when the last had no working day.
    return [p for p in (last.previous(), last) if (when := due_at(p)).date() == local.date() and when <= local]


def _each_due(name: str, kind: str, now: datetime, work: Any) -> dict[str, Any]:
    done = []
    for period in periods_due(kind, now):
        if not claim_period(name, period.key, now):
            continue
        result = {"period": period.key, **work(period)}
        finish_period(name, period.key, now, result)
        done.append(result)
    return {"done": done} if done else {"skipped": "already done"}


def _report(now: datetime) -> Any:
    def work(period: Period) -> dict[str, Any]:
        # A report made already (on demand, or by the demo) is not made twice, only sent.
        report = reports.find(db.session, period.kind, period) or reports.generate(db.session, period, now)
        sent = reports.send(db.session, report, now)
        return {"report": report.id, "document": report.document.number, "notified": sent}

    return work


@job(
    "weekly_report",
    "Weekly complaint analysis, first working day of the week",
    due=lambda now: bool(periods_due("week", now)),
    trigger="interval",
    minutes=5,
)
def weekly_report(now: datetime) -> dict[str, Any]:
    return _each_due("weekly_report", "week", now, _report(now))


@job(
    "monthly_report",
    "Monthly complaint analysis, first working day of the month",
    due=lambda now: bool(periods_due("month", now)),
    trigger="interval",
    minutes=5,
)
def monthly_report(now: datetime) -> dict[str, Any]:
    return _each_due("monthly_report", "month", now, _report(now))


@job(
    "monthly_grading",
    "Department grading of the previous month, opened for publicity",
    due=lambda now: bool(periods_due("month", now)),
    trigger="interval",
    minutes=5,
)
def monthly_grading(now: datetime) -> dict[str, Any]:
    def work(period: Period) -> dict[str, Any]:
        if assessment.find_run(db.session, period) is not None:
            return {"skipped": "graded already"}
        run = assessment.open_run(db.session, period, now)
        return {"run": run.id, "publicity_until": run.publicity_until.isoformat(), "departments": len(run.grades)}

    return _each_due("monthly_grading", "month", now, work)


@job(
    "grading_publicity", "After the publicity period, ask the general manager to confirm", trigger="interval", minutes=5
)
def grading_publicity(now: datetime) -> dict[str, Any]:
    asked = []
    for run in assessment.runs_awaiting_confirmation(db.session, now):
        if claim_period("grading_publicity", f"run-{run.id}", now):
            sent = assessment.ask_for_confirmation(db.session, run, now)
            finish_period("grading_publicity", f"run-{run.id}", now, {"run": run.id, "notified": sent})
            asked.append(run.label)
    return {"asked": asked}
