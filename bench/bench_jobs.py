"""Every scheduled job's pass time at scale (goal 9: ≤ 60 s of work per pass).

Usage: BENCH_DATABASE_URL=postgresql://…/bench_1m python -m bench.bench_jobs [job …]
Runs each registered job once at the current time, as ``flask jobs run`` does, and
prints its pass time. A job that is not due now (the daily digest on a non-working
day, the weekly and monthly work outside its first working day) is then run once
anyway, at a time it does its work: the digest now, the reports and the grading at
the due time of the last week or month; and the reports and the grading are made
afresh (rolled back), in case the database holds them already. The jobs COMMIT their work (this is the first
run after generating): the database is changed, e.g. the deadline scan's backlog is
consumed — run it on a copy.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bench.common import BENCH_DATABASE_URL, fmt, machine, make_app

GOAL = 60.0
PERIODIC = {"weekly_report": "week", "monthly_report": "month", "monthly_grading": "month"}


def _timed(name: str, label: str, work: Callable[[], Any]) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    summary = work()
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"{label:<36} {fmt(seconds):>10} (CPU {fmt(cpu_s)}, load {os.getloadavg()[0]:.1f}) "
        f"{seconds / GOAL:.2f}× of {GOAL:.0f} s  {str(summary)[:110]}",
        flush=True,
    )
    return seconds


def _due_time(name: str, now: datetime) -> datetime:
    """A time at which job ``name`` does its work: the due time of the last period, or now."""
    from app.jobs import reports
    from app.quality.analytics import period_containing
    from app.timeutil import to_local

    kind = PERIODIC.get(name)
    return reports.due_at(period_containing(kind, to_local(now).date()).previous()) if kind else now


def _forced(app: Any, name: str, now: datetime) -> Callable[[], Any]:
    """Run job ``name`` once at a time it does its work, whether it is due now or not."""
    from app import db
    from app.jobs.registry import REGISTRY

    def run() -> Any:
        with app.app_context():
            summary = REGISTRY[name].run(_due_time(name, now))
            db.session.commit()
            return summary

    return run


def _generated(app: Any, name: str, now: datetime) -> Callable[[], Any]:
    """The work of a periodic job when nothing exists yet for its period (a report made
    afresh, a grading of the last month without one), rolled back afterwards."""
    from app import db
    from app.quality import assessment, reports
    from app.quality.analytics import period_containing
    from app.timeutil import to_local

    def run() -> Any:
        with app.app_context():
            period = period_containing(PERIODIC[name], to_local(now).date()).previous()
            try:
                if name != "monthly_grading":
                    report = reports.generate(db.session, period, now)
                    return {"period": period.key, "document": report.document.number}
                while assessment.find_run(db.session, period) is not None:
                    period = period.previous()
                run = assessment.open_run(db.session, period, now)
                return {"period": period.key, "departments": len(run.grades)}
            finally:
                db.session.rollback()

    return run


def run(url: str = BENCH_DATABASE_URL, only: list[str] | None = None) -> dict[str, float]:
    from app import jobs
    from app.jobs.registry import REGISTRY
    from app.timeutil import utcnow

    app = make_app(url)
    print(f"machine: {machine()}; database {url.rsplit('@', 1)[-1]}")
    results: dict[str, float] = {}
    not_due = []
    for name in REGISTRY:
        if only and name not in only:
            continue
        now = utcnow()
        summary: dict[str, Any] = {}

        def due_pass(name: str = name, now: datetime = now, summary: dict[str, Any] = summary) -> Any:
            summary.update(jobs.run_due(app, now, only=[name])["jobs"].get(name) or {})
            return summary

        results[name] = _timed(name, name, due_pass)
        if summary.get("skipped") == "not due":
            not_due.append(name)
    for name in not_due:
        results[name] = _timed(name, f"{name} (forced)", _forced(app, name, utcnow()))
    for name in PERIODIC:
        if not only or name in only:
            label = f"{name} (afresh, rolled back)"
            results[label] = _timed(name, label, _generated(app, name, utcnow()))
    return results


if __name__ == "__main__":
    run(only=sys.argv[1:] or None)
