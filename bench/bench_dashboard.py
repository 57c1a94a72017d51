"""Dashboards at scale: each dashboard request must answer in < 0.5 s with 1,000,000 complaints.

Usage: BENCH_DATABASE_URL=postgresql://…/bench_1m python -m bench.bench_dashboard
Requests go through the whole stack (FAB REST endpoint /api/v1/dashboard/data with a
JWT), as the 总经理 (company scope) and as a 部门主管 (one department), for every
period kind; each figure is the median of several requests.
"""

from __future__ import annotations

import statistics
import time

from sqlalchemy import func, select

from bench.common import BENCH_DATABASE_URL, fmt, machine, make_app

USERS = {"zongjingli": "总经理 (company)", "zhuguan_a": "部门主管 (工程部)"}
PERIODS = ("day", "week", "month", "quarter", "year")
GOAL = 0.5


def _login(client, username: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/security/login", json={"username": username, "password": password, "provider": "db"})
    r.raise_for_status() if hasattr(r, "raise_for_status") else None
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def run(url: str = BENCH_DATABASE_URL, repeat: int = 5) -> dict:
    from app import db
    from app.models import Complaint, StatDaily

    app = make_app(url)
    client = app.test_client()
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(Complaint))
        rows = db.session.scalar(select(func.count()).select_from(StatDaily))
    print(f"machine: {machine()}")
    print(f"database: {url.rsplit('@', 1)[-1]} — {total:,} complaints, {rows:,} daily aggregate rows")
    password = app.config["DEMO_PASSWORD"]
    results = {}
    print(f"{'who':<22} {'period':<8} {'median':>9} {'max':>9}  vs goal")
    worst = 0.0
    for username, label in USERS.items():
        headers = _login(client, username, password)
        for kind in PERIODS:
            samples = []
            for _ in range(repeat + 1):
                start = time.perf_counter()
                r = client.get(f"/api/v1/dashboard/data?period={kind}", headers=headers)
                samples.append(time.perf_counter() - start)
                assert r.status_code == 200, r.get_data(as_text=True)[:200]
            samples = samples[1:]  # the first request warms caches
            median = statistics.median(samples)
            worst = max(worst, median)
            results[(username, kind)] = median
            print(f"{label:<22} {kind:<8} {fmt(median):>9} {fmt(max(samples)):>9}  {median / GOAL:.2f}×")
    # A dashboard right after new complaints: the aggregate rows they touched are refreshed first.
    with app.app_context():
        from app.quality import stats

        pairs = [
            (row.day, row.department_id)
            for row in db.session.scalars(select(StatDaily).order_by(StatDaily.day.desc()).limit(10))
        ]
        stats.mark_dirty(db.session, pairs)
        db.session.commit()
    headers = _login(client, "zongjingli", password)
    start = time.perf_counter()
    client.get("/api/v1/dashboard/data?period=month", headers=headers)
    fresh = time.perf_counter() - start
    print(f"company month dashboard with 10 touched (day, department) rows to refresh first: {fmt(fresh)}")
    print(f"slowest median: {fmt(worst)} (goal < {GOAL} s)")
    return {"medians": results, "with_refresh": fresh}


if __name__ == "__main__":
    run()
