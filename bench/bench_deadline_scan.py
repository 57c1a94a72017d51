"""Deadline scan at scale: one pass must take < 1 s with 100,000 open cases among 1,000,000,
and its cost must follow the number of clocks due, not the number of cases.

Usage: BENCH_DATABASE_URL=postgresql://…/bench_1m python -m bench.bench_deadline_scan
(fill the database first: `flask --app app demo generate --complaints 1000000 --open 100000`).
Every pass runs inside one transaction that is rolled back at the end: the database is
left as it was, so the benchmark can be repeated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, text

from bench.common import BENCH_DATABASE_URL, fmt, machine, make_app


def _next_office_instant(cal, now: datetime) -> datetime:
    from app.timeutil import LOCAL_TZ, UTC

    local = now.astimezone(LOCAL_TZ)
    day = local.date()
    candidate = datetime.combine(day, datetime.min.time(), LOCAL_TZ).replace(hour=10)
    while not cal.is_workday(day) or candidate <= local:
        day = cal.next_workday(day)
        candidate = datetime.combine(day, datetime.min.time(), LOCAL_TZ).replace(hour=10)
    return candidate.astimezone(UTC)


def run(url: str = BENCH_DATABASE_URL) -> dict:
    from app import db
    from app.models import Complaint, Deadline
    from app.time_limits import sla
    from app.timeutil import format_local, utcnow

    app = make_app(url)
    with app.app_context():
        session = db.session
        total = session.scalar(select(func.count()).select_from(Complaint))
        open_cases = session.scalar(
            select(func.count()).select_from(Complaint).where(Complaint.status.notin_(["closed", "archived"]))
        )
        open_clocks = session.scalar(select(func.count()).select_from(Deadline).where(Deadline.state == "open"))
        print(f"machine: {machine()}")
        print(
            f"database: {url.rsplit('@', 1)[-1]} — {total:,} complaints, {open_cases:,} open, {open_clocks:,} running clocks"
        )
        cal = sla.load_calendar(session)
        now = utcnow()
        t0 = _next_office_instant(cal, now)

        def due_count(at: datetime) -> int:
            return session.scalar(
                select(func.count()).select_from(Deadline).where(Deadline.state == "open", Deadline.next_check_at <= at)
            )

        results = {"total": total, "open": open_cases, "passes": []}
        # 1. Catch up everything due before t0 (a scheduler that was down since generation).
        backlog = due_count(t0)
        start = datetime.now()
        counts = sla.scan(session, t0, budget_seconds=3600)
        catch_up = (datetime.now() - start).total_seconds()
        events = counts["warning"] + counts["overdue"] + counts["escalation"]
        print(
            f"catch-up pass at {format_local(t0)}: {backlog:,} clocks due, {events:,} events in {fmt(catch_up)}"
            f" ({catch_up / max(backlog, 1) * 1000:.2f} ms per clock)"
        )
        results["catch_up"] = {"clocks": backlog, "events": events, "seconds": catch_up}
        # 2. Steady state: one pass a minute, and wider gaps, each after the previous one.
        previous = t0
        print(f"{'pass at':>18} {'clocks due':>10} {'events':>7} {'time':>10} {'per clock':>10}")
        for minutes in (0, 1, 2, 3, 4, 5, 10, 15, 30, 60, 120):
            at = t0 + timedelta(minutes=minutes)
            due = due_count(at)
            start = datetime.now()
            counts = sla.scan(session, at, budget_seconds=3600)
            seconds = (datetime.now() - start).total_seconds()
            events = counts["warning"] + counts["overdue"] + counts["escalation"]
            per = seconds / due * 1000 if due else 0.0
            gap = (at - previous).total_seconds() / 60
            previous = at
            print(
                f"{format_local(at):>18} {due:>10,} {events:>7,} {fmt(seconds):>10} {per:>8.2f} ms   (+{gap:.0f} min)"
            )
            results["passes"].append({"at": at.isoformat(), "due": due, "events": events, "seconds": seconds})
        # 3. The query plan of the scan's probe: an index range scan, whatever the table size.
        plan = (
            session.execute(
                text(
                    "EXPLAIN (ANALYZE, BUFFERS) SELECT id, complaint_id FROM deadline "
                    "WHERE state = 'open' AND next_check_at <= :at AND id > 0 ORDER BY id LIMIT 2000"
                ),
                {"at": previous},
            )
            .scalars()
            .all()
        )
        print("probe plan:", " | ".join(line.strip() for line in plan[:4]))
        empty = [p for p in results["passes"] if p["due"] == 0]
        busy = [p for p in results["passes"] if p["due"] > 0]
        if empty:
            print(f"pass with nothing due: {fmt(max(p['seconds'] for p in empty))} at {total:,} complaints")
        if busy:
            worst = max(busy, key=lambda p: p["seconds"])
            per_clock = sum(p["seconds"] for p in busy) / sum(p["due"] for p in busy)
            print(
                f"slowest steady pass: {fmt(worst['seconds'])} for {worst['due']:,} clocks; "
                f"mean {per_clock * 1000:.2f} ms per clock due (goal: any pass < 1 s)"
            )
        session.rollback()
        return results


if __name__ == "__main__":
    run()
