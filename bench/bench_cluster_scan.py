"""Cluster scan at scale: complaints of the last two calendar months compared by text, in bounded passes.

Usage: BENCH_DATABASE_URL=sqlite:////tmp/bench_clusters.db python -m bench.bench_cluster_scan
(fill a fresh database first: `flask --app app db upgrade && flask --app app seed` then
`flask --app app demo generate --complaints 10000 --days 60 --open 1000`). The passes commit
what they find (clusters, links, raised levels): run it on a fresh database each time.
"""

from __future__ import annotations

import os
import time

from sqlalchemy import func, select

from bench.common import BENCH_DATABASE_URL, fmt, machine, make_app


def run(url: str = BENCH_DATABASE_URL, budget: float = float(os.environ.get("BENCH_BUDGET", "20"))) -> dict:
    from app import db
    from app.complaints import cluster_scan
    from app.models import Cluster, Complaint
    from app.timeutil import utcnow

    app = make_app(url)
    with app.app_context():
        session = db.session
        now = utcnow()
        months = cluster_scan.months_to_scan(session, now)
        total = session.scalar(select(func.count()).select_from(Complaint))
        print(f"machine: {machine()}")
        print(f"database: {url.rsplit('/', 1)[-1]} — {total:,} complaints; months scanned: {months}")
        passes = []
        started = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            result = cluster_scan.scan(session, now, budget_seconds=budget)
            passes.append((time.perf_counter() - t0, result))
            print(f"pass {len(passes)}: {fmt(passes[-1][0])} {result}")
            if not result.get("windows_left"):
                break
        again = time.perf_counter()
        idle = cluster_scan.scan(session, now)
        print(f"idle pass (nothing new): {fmt(time.perf_counter() - again)} {idle}")
        clusters = session.scalar(select(func.count()).select_from(Cluster))
        print(f"all passes: {fmt(time.perf_counter() - started)}; clusters: {clusters}")
        return {"passes": passes, "clusters": clusters}


if __name__ == "__main__":
    run()
