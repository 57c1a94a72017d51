"""Deadline scan at scale: one pass must take < 1 s with 100,000 open cases among 1,000,000,
its cost must follow the number of clocks due, not the number of cases, and a pass with
nothing due must cost ≤ 20 ms.

Usage: BENCH_DATABASE_URL=postgresql://…/bench_1m python -m bench.bench_deadline_scan
(fill the database first: ``python -m bench.build``).

The passes run as the ``deadline_scan`` job runs them: each pass is one transaction that
commits (batches of 2,000 clocks, a 20 s budget; a catch-up takes as many passes as it
needs). They write, so they run on a throw-away copy of the database (``<name>_scan``,
made with ``CREATE DATABASE … TEMPLATE`` and dropped at the end).

Why commit: inside one long uncommitted transaction, every clock a pass marked leaves its
old index entry behind, and each later probe of ``next_check_at`` walks all of them again
(a catch-up of 110,000 clocks made a later empty pass cost 23 ms at 1M). Committed, the
first probe after a pass marks those entries dead and the next ones skip them, as in
production.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta

from sqlalchemy import func, select, text

from bench.common import BENCH_DATABASE_URL, fmt, machine, make_app, scratch_copy


def _next_office_instant(cal, now: datetime) -> datetime:
    from app.timeutil import LOCAL_TZ, UTC

    local = now.astimezone(LOCAL_TZ)
    day = local.date()
    candidate = datetime.combine(day, datetime.min.time(), LOCAL_TZ).replace(hour=10)
    while not cal.is_workday(day) or candidate <= local:
        day = cal.next_workday(day)
        candidate = datetime.combine(day, datetime.min.time(), LOCAL_TZ).replace(hour=10)
    return candidate.astimezone(UTC)


def _pass(session, sla, at: datetime) -> tuple[int, dict, float]:
    """One committed pass as the job runs it: (clocks due before it, its counts, its seconds)."""
    from app.models import Deadline

    due = session.scalar(
        select(func.count()).select_from(Deadline).where(Deadline.state == "open", Deadline.next_check_at <= at)
    )
    session.commit()
    start = time.perf_counter()
    counts = sla.scan(session, at, batch=2000, budget_seconds=20)
    session.commit()
    return due, counts, time.perf_counter() - start


def _events(counts: dict) -> int:
    return counts.get("warning", 0) + counts.get("overdue", 0) + counts.get("escalation", 0)


def run(url: str = BENCH_DATABASE_URL) -> dict:
    with scratch_copy(url, "scan") as copy:
        return _run(copy)


def _run(url: str) -> dict:
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
            f"database: copy of {url.rsplit('@', 1)[-1]} — {total:,} complaints, {open_cases:,} open, "
            f"{open_clocks:,} running clocks; each pass commits, as the job's do"
        )
        cal = sla.load_calendar(session)
        t0 = _next_office_instant(cal, utcnow())
        results = {"total": total, "open": open_cases, "passes": [], "empty": []}
        # 0. Nothing due yet: a pass just before the first clock falls due (a clean index).
        first = session.scalar(select(func.min(Deadline.next_check_at)).where(Deadline.state == "open"))
        before = first - timedelta(minutes=1)
        quiet = [_pass(session, sla, before)[2] for _ in range(5)]
        print(f"pass with nothing due (before the first clock falls due): median {fmt(statistics.median(quiet))}")
        results["empty"] += quiet
        # 1. Catch up everything due before t0 (a scheduler that was down since generation),
        #    in passes of the job's budget, each committed.
        backlog, events, passes, catch_up = 0, 0, 0, 0.0
        while True:
            due, counts, seconds = _pass(session, sla, t0)
            backlog, events, passes, catch_up = (
                max(backlog, due),
                events + _events(counts),
                passes + 1,
                catch_up + seconds,
            )
            if not counts.get("more"):
                break
        print(
            f"catch-up at {format_local(t0)}: {backlog:,} clocks due, {events:,} events in {passes} passes, "
            f"{fmt(catch_up)} ({catch_up / max(backlog, 1) * 1000:.2f} ms per clock)"
        )
        results["catch_up"] = {"clocks": backlog, "events": events, "seconds": catch_up, "passes": passes}
        # 2. Steady state: one pass a minute, and wider gaps, each after the previous one.
        previous = t0
        print(f"{'pass at':>18} {'clocks due':>10} {'events':>7} {'time':>10} {'per clock':>10}")
        for minutes in (0, 1, 2, 3, 4, 5, 10, 15, 30, 60, 120):
            at = t0 + timedelta(minutes=minutes)
            due, counts, seconds = _pass(session, sla, at)
            per = seconds / due * 1000 if due else 0.0
            gap = (at - previous).total_seconds() / 60
            previous = at
            print(
                f"{format_local(at):>18} {due:>10,} {_events(counts):>7,} {fmt(seconds):>10} {per:>8.2f} ms"
                f"   (+{gap:.0f} min)"
            )
            results["passes"].append({"at": at.isoformat(), "due": due, "events": _events(counts), "seconds": seconds})
        # 3. Nothing due after all that work: the same instant again, five times.
        again = [_pass(session, sla, previous)[2] for _ in range(5)]
        print(
            "pass with nothing due (after the passes above): "
            + ", ".join(fmt(s) for s in again)
            + f"; median {fmt(statistics.median(again))}"
        )
        results["empty"] += again
        # 4. The query plan of the scan's probe: an index range scan, whatever the table size.
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
        session.rollback()
        print("probe plan:", " | ".join(line.strip() for line in plan[:4]))
        busy = [p for p in results["passes"] if p["due"] > 0]
        print(f"pass with nothing due: at most {fmt(max(results['empty']))} at {total:,} complaints")
        if busy:
            worst = max(busy, key=lambda p: p["seconds"])
            per_clock = sum(p["seconds"] for p in busy) / sum(p["due"] for p in busy)
            print(
                f"slowest steady pass: {fmt(worst['seconds'])} for {worst['due']:,} clocks; "
                f"mean {per_clock * 1000:.2f} ms per clock due (goal: any pass < 1 s)"
            )
        return results


if __name__ == "__main__":
    run()
