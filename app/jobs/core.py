"""The portal's jobs: deadline scan, notification delivery, daily digest, heartbeat."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import func, select

from app import settings
from app.access import privacy
from app.access.roles import GENERAL_MANAGER, HR_MANAGER
from app.complaints import cluster_scan as cluster_detection
from app.complaints import corrective
from app.extensions import db, dialect_insert
from app.i18n import _l
from app.jobs.registry import heartbeat, job
from app.messages import notify
from app.models import Complaint, Deadline, Department, JobRun
from app.quality import stats
from app.time_limits import sla
from app.timeutil import format_local, to_local, utcnow


def claim_period(job_name: str, period: str, now: datetime) -> bool:
    """Record that ``job_name`` runs for ``period``; False if some process already did."""
    table = JobRun.__table__
    insert = dialect_insert(db.engine)
    stmt = (
        insert(table)
        .values(job=job_name, period=period, started_at=now)
        .on_conflict_do_nothing(index_elements=[table.c.job, table.c.period])
    )
    return db.session.execute(stmt).rowcount == 1


def finish_period(job_name: str, period: str, now: datetime, result: dict[str, Any]) -> None:
    run = db.session.scalars(select(JobRun).where(JobRun.job == job_name, JobRun.period == period)).one()
    run.finished_at, run.result = now, result


@job("deadline_scan", "Deadline scan: warnings, overdue marks, escalations", trigger="interval", seconds=60)
def deadline_scan(now: datetime) -> dict[str, Any]:
    return sla.scan(db.session, now)


@job("corrective_scan", "Corrective actions: overdue marks and escalations", trigger="interval", seconds=300)
def corrective_scan(now: datetime) -> dict[str, Any]:
    return corrective.scan(db.session, now)


@job(
    "cluster_scan", "Clustered complaints: detect clusters and raise repeated problems", trigger="interval", minutes=10
)
def cluster_scan(now: datetime) -> dict[str, Any]:
    return cluster_detection.scan(db.session, now)


@job("deliver_notifications", "Send pending e-mail and group-robot messages", trigger="interval", seconds=60)
def deliver_notifications(now: datetime) -> dict[str, Any]:
    return notify.deliver_pending(db.session, now)


def _digest_time() -> time:
    try:
        return time.fromisoformat(str(settings.get(db.session, "digest_time")))
    except ValueError:
        return time(8, 30)


def _digest_due(now: datetime) -> bool:
    local = to_local(now)
    return sla.load_calendar(db.session).is_workday(local.date()) and local.time() >= _digest_time()


@job("daily_digest", "Daily digest at 08:30 on working days", due=_digest_due, trigger="interval", minutes=5)
def daily_digest(now: datetime) -> dict[str, Any]:
    """Each department head: its cases due today and late; HR and GM: the company picture."""
    period = to_local(now).date().isoformat()
    if not claim_period("daily_digest", period, now):
        return {"skipped": f"already sent for {period}"}
    rows = _due_or_late(now)
    by_department: dict[int, list[Any]] = {}
    for row in rows:
        by_department.setdefault(row.department_id, []).append(row)
    sent = _tell_heads(by_department, period, now)
    sent += _tell_company(len(rows), by_department, period, now)
    result = {"period": period, "due_or_late": len(rows), "departments": len(by_department), "notifications": sent}
    finish_period("daily_digest", period, now, result)
    return result


def _due_or_late(now: datetime) -> list[Any]:
    """The open time limits due before the end of today, by department and due time."""
    _, end_of_day = sla.due_today_or_late(now)
    return db.session.execute(
        select(Deadline.department_id, Complaint.number, Deadline.stage, Deadline.due_at, Complaint.id)
        .join(Complaint, Deadline.complaint_id == Complaint.id)
        .where(Deadline.state == "open", Deadline.due_at < end_of_day)
        .order_by(Complaint.department_id, Deadline.due_at)
    ).all()


def _tell_heads(by_department: dict[int, list[Any]], period: str, now: datetime) -> int:
    """Each department's heads: its time limits due today and late, one line each."""
    sent = 0
    for department_id, items in by_department.items():
        late = [r for r in items if r.due_at <= now]
        lines = [
            f"{r.number} {sla.STAGES[r.stage].label} {format_local(r.due_at)}{'（已超时）' if r.due_at <= now else ''}"
            for r in items
        ]
        heads = notify.department_heads(db.session, department_id)
        sent += notify.notify(
            db.session,
            heads,
            "digest",
            str(_l("Today's digest: %(due)d due today, %(late)d late", due=len(items) - len(late), late=len(late))),
            "\n".join(lines),
            dedup_key=f"digest:{period}:dept:{department_id}",
            now=now,
        )
    return sent


def _tell_company(due_or_late: int, by_department: dict[int, list[Any]], period: str, now: datetime) -> int:
    """人事行政经理 and 总经理: the count per department and the cases overdue."""
    names = dict(db.session.execute(select(Department.id, Department.name)).all())
    overdue_cases = db.session.scalar(select(func.count()).select_from(Complaint).where(Complaint.overdue.is_(True)))
    summary = "\n".join(
        f"{names.get(d, d)}：{len(items)}（{sum(1 for r in items if r.due_at <= now)} 超时）"
        for d, items in by_department.items()
    )
    sent = 0
    for role in (HR_MANAGER, GENERAL_MANAGER):
        sent += notify.notify(
            db.session,
            notify.users_for(db.session, role),
            "digest",
            str(
                _l(
                    "Company digest: %(n)d time limits due today or late; %(o)d cases overdue",
                    n=due_or_late,
                    o=overdue_cases or 0,
                )
            ),
            summary or str(_l("Nothing due today.")),
            dedup_key=f"digest:{period}:company",
            now=now,
        )
    return sent


@job("stats_refresh", "Refresh the dashboards' daily aggregates", trigger="interval", seconds=60)
def stats_refresh(now: datetime) -> dict[str, Any]:
    return {"rows": stats.refresh(db.session, limit=20000, now=now)}


@job("heartbeat", "Scheduler heartbeat", trigger="interval", seconds=60)
def record_heartbeat(now: datetime) -> dict[str, Any]:
    # Liveness is about the real clock, also when an operator travels in time.
    return {"heartbeat": heartbeat(utcnow())["at"]}


@job(
    "anonymise",
    "Anonymise customers whose cases are archived beyond the retention period",
    trigger="cron",
    hour=2,
    minute=30,
)
def anonymise(now: datetime) -> dict[str, Any]:
    days = int(settings.get(db.session, "privacy.retention_days") or privacy.DEFAULT_RETENTION_DAYS)
    return privacy.anonymise_expired(db.session, now, days)
