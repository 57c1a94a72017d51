"""The portal's jobs: deadline scan, notification delivery, daily digest, heartbeat."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any, Optional

from sqlalchemy import and_, case, func, select

from app import settings
from app.access import privacy
from app.access.roles import GENERAL_MANAGER, HR_MANAGER
from app.complaints import cluster_scan as cluster_detection
from app.complaints import corrective
from app.extensions import db, dialect_insert
from app.i18n import _l
from app.jobs.registry import batch_size, budget_seconds, heartbeat, in_batches, job
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


@job(
    "deadline_scan",
    "Deadline scan: warnings, overdue marks, escalations",
    budget_seconds=20,
    batch_size=2000,
    trigger="interval",
    seconds=60,
)
def deadline_scan(now: datetime) -> dict[str, Any]:
    # One transaction per pass (the scan holds an advisory lock for it), bounded by the budget.
    name = "deadline_scan"
    return sla.scan(db.session, now, batch=batch_size(name), budget_seconds=budget_seconds(name))


@job("corrective_scan", "Corrective actions: overdue marks and escalations", trigger="interval", seconds=300)
def corrective_scan(now: datetime) -> dict[str, Any]:
    return in_batches("corrective_scan", lambda size, after: corrective.scan_batch(db.session, now, after, size))


@job(
    "cluster_scan",
    "Clustered complaints: detect clusters and raise repeated problems",
    budget_seconds=40,
    trigger="interval",
    minutes=10,
)
def cluster_scan(now: datetime) -> dict[str, Any]:
    # No new window after cluster.scan_seconds; a big window stops inside at the job's budget.
    return cluster_detection.scan(db.session, now, stop_seconds=budget_seconds("cluster_scan"))


@job(
    "deliver_notifications",
    "Send pending e-mail and group-robot messages",
    budget_seconds=45,
    batch_size=200,
    trigger="interval",
    seconds=60,
)
def deliver_notifications(now: datetime) -> dict[str, Any]:
    # Each batch is claimed and committed by deliver_pending itself (a lease against other schedulers).
    name = "deliver_notifications"
    return notify.deliver_pending(db.session, now, limit=batch_size(name), budget_seconds=budget_seconds(name))


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
    """Each department head: its cases due today and late; HR and GM: the company picture.

    Bounded whatever the backlog: the counts are aggregated in SQL and each head's message
    lists the first ``DIGEST_LINES`` time limits by due time, then how many more there are.
    """
    period = to_local(now).date().isoformat()
    if not claim_period("daily_digest", period, now):
        return {"skipped": f"already sent for {period}"}
    counts = _due_or_late_counts(now)
    firsts = _first_due_or_late(now, DIGEST_LINES)
    sent = _tell_heads(counts, firsts, period, now)
    sent += _tell_company(counts, period, now)
    due_or_late = sum(total for total, _ in counts.values())
    result = {"period": period, "due_or_late": due_or_late, "departments": len(counts), "notifications": sent}
    finish_period("daily_digest", period, now, result)
    return result


# A head's digest lists this many time limits; the rest are counted ("…另有 N 项").
DIGEST_LINES = 50


def _due_or_late_filter(now: datetime) -> Any:
    """The open time limits due before the end of today."""
    _, end_of_day = sla.due_today_or_late(now)
    return and_(Deadline.state == "open", Deadline.due_at < end_of_day)


def _due_or_late_counts(now: datetime) -> dict[Optional[int], tuple[int, int]]:
    """Per department: how many time limits are due today or late, and how many of them late."""
    late = func.sum(case((Deadline.due_at <= now, 1), else_=0))
    rows = db.session.execute(
        select(Deadline.department_id, func.count(), late)
        .where(_due_or_late_filter(now))
        .group_by(Deadline.department_id)
        .order_by(Deadline.department_id)
    ).all()
    return {department_id: (total, int(late_n or 0)) for department_id, total, late_n in rows}


def _first_due_or_late(now: datetime, lines: int) -> dict[Optional[int], list[Any]]:
    """Per department: its first ``lines`` time limits due today or late, by due time."""
    rank = func.row_number().over(partition_by=Deadline.department_id, order_by=(Deadline.due_at, Deadline.id))
    ranked = (
        select(
            Deadline.department_id,
            Complaint.number,
            Deadline.stage,
            Deadline.due_at,
            rank.label("rank"),
        )
        .join(Complaint, Deadline.complaint_id == Complaint.id)
        .where(_due_or_late_filter(now))
        .subquery()
    )
    firsts: dict[Optional[int], list[Any]] = {}
    for row in db.session.execute(
        select(ranked).where(ranked.c.rank <= lines).order_by(ranked.c.department_id, ranked.c.rank)
    ):
        firsts.setdefault(row.department_id, []).append(row)
    return firsts


def _tell_heads(
    counts: dict[Optional[int], tuple[int, int]], firsts: dict[Optional[int], list[Any]], period: str, now: datetime
) -> int:
    """Each department's heads: its time limits due today and late, one line each (the first few)."""
    sent = 0
    for department_id, (total, late) in counts.items():
        items = firsts.get(department_id, [])
        lines = [
            f"{r.number} {sla.STAGES[r.stage].label} {format_local(r.due_at)}{'（已超时）' if r.due_at <= now else ''}"
            for r in items
        ]
        if total > len(items):
            lines.append(str(_l("… and %(n)d more", n=total - len(items))))
        heads = notify.department_heads(db.session, department_id)
        sent += notify.notify(
            db.session,
            heads,
            "digest",
            str(_l("Today's digest: %(due)d due today, %(late)d late", due=total - late, late=late)),
            "\n".join(lines),
            dedup_key=f"digest:{period}:dept:{department_id}",
            now=now,
        )
    return sent


def _tell_company(counts: dict[Optional[int], tuple[int, int]], period: str, now: datetime) -> int:
    """人事行政经理 and 总经理: the count per department and the cases overdue."""
    names = dict(db.session.execute(select(Department.id, Department.name)).all())
    overdue_cases = db.session.scalar(select(func.count()).select_from(Complaint).where(Complaint.overdue.is_(True)))
    summary = "\n".join(f"{names.get(d, d)}：{total}（{late} 超时）" for d, (total, late) in counts.items())
    sent = 0
    for role in (HR_MANAGER, GENERAL_MANAGER):
        sent += notify.notify(
            db.session,
            notify.users_for(db.session, role),
            "digest",
            str(
                _l(
                    "Company digest: %(n)d time limits due today or late; %(o)d cases overdue",
                    n=sum(total for total, _ in counts.values()),
                    o=overdue_cases or 0,
                )
            ),
            summary or str(_l("Nothing due today.")),
            dedup_key=f"digest:{period}:company",
            now=now,
        )
    return sent


@job("stats_refresh", "Refresh the dashboards' daily aggregates", batch_size=2000, trigger="interval", seconds=60)
def stats_refresh(now: datetime) -> dict[str, Any]:
    def step(size: int, _: Any) -> tuple[dict[str, int], Optional[int]]:
        # The marks done are deleted with the batch: the next batch takes the next ones.
        rows = stats.refresh(db.session, limit=size, now=now)
        return {"rows": rows}, 0 if rows == size else None

    return in_batches("stats_refresh", step)


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
    done = in_batches("anonymise", lambda size, after: privacy.anonymise_expired(db.session, now, days, after, size))
    return {**done, "cutoff": (now - timedelta(days=days)).isoformat()}
