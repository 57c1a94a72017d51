"""Every role's home page and lists at scale, each beside its own database time (goal 1 of issue 16).

Usage: BENCH_DATABASE_URL=postgresql://…/bench_1m python -m bench.bench_roles [repeat]

For 客服 (kefu), 部门主管 (zhuguan_a), 人事行政经理 (renshi) and 总经理 (zongjingli): the home page,
the complaint list with no filter sorted by each deadline column, a filtered list (one department
in one status), the REST list likewise, a case page and REST show. Each line prints the median
time through the whole stack (Flask test client), the median database time of the same requests
(statement execution measured by SQLAlchemy cursor events), the number of statements, and the
goal: home ≤ 40 ms; database time ≤ 15 ms; a list ≤ 3× its database time or ≤ 15 ms above it;
case page and REST show ≤ 20 ms.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, func, select

from bench.common import BENCH_DATABASE_URL, fmt, machine, make_app

ROLES = {"kefu": "客服", "zhuguan_a": "部门主管", "renshi": "人事行政经理", "zongjingli": "总经理"}
DEADLINES = ("next_due_at", "reply_due", "investigate_due")


class Recorder:
    """Statements and their execution time, per request."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        self.seconds = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        self.count += 1
        self.seconds += time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())

    def reset(self) -> None:
        self.count, self.seconds = 0, 0.0


def _sample(fn: Callable[[], Any], recorder: Recorder, repeat: int) -> tuple[float, float, int]:
    fn()
    walls, dbs, counts = [], [], []
    for _ in range(repeat):
        recorder.reset()
        start = time.perf_counter()
        response = fn()
        walls.append(time.perf_counter() - start)
        dbs.append(recorder.seconds)
        counts.append(recorder.count)
        assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:300])
    return statistics.median(walls), statistics.median(dbs), max(counts)


def _goal(kind: str, wall: float, db: float) -> tuple[float, bool]:
    if kind == "home":
        bound = 0.040
    elif kind == "list":
        bound = max(3 * db, db + 0.015)
    else:
        bound = 0.020
    return bound, wall <= bound and (kind != "list" or db <= 0.015)


def _pages(department: int, case_id: int) -> list[tuple[str, str, str, bool]]:
    """(name, kind, url, api) of what each role opens."""
    pages = [("home", "home", "/", False), ("list, default order", "list", "/complaintview/list/", False)]
    for column in DEADLINES:
        pages.append(
            (
                f"list by {column}",
                "list",
                f"/complaintview/list/?_oc_ComplaintView={column}&_od_ComplaintView=asc",
                False,
            )
        )
        pages.append(
            (
                f"REST list by {column}",
                "list",
                f"/api/v1/complaint/?q=(order_column:{column},order_direction:asc,page_size:25)",
                True,
            )
        )
    pages.append(
        (
            "list, one department in one status",
            "list",
            f"/complaintview/list/?_flt_0_department={department}&_flt_0_status=dispatched"
            "&_oc_ComplaintView=next_due_at&_od_ComplaintView=asc",
            False,
        )
    )
    pages.append(("REST list, default", "list", "/api/v1/complaint/?q=(page_size:25)", True))
    pages.append(("case page", "show", f"/complaintview/show/{case_id}", False))
    pages.append(("REST show", "show", f"/api/v1/complaint/{case_id}", True))
    return pages


def run(url: str = BENCH_DATABASE_URL, repeat: int = 7) -> dict[str, dict[str, Any]]:
    from app import db
    from app.models import Complaint, Department

    app = make_app(url)
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(Complaint))
        department = db.session.scalar(select(Department.id).where(Department.code == "GC"))
        case_id = db.session.scalar(
            select(func.max(Complaint.id)).where(
                Complaint.department_id == department, Complaint.status == "dispatched"
            )
        )
        recorder = Recorder(db.engine)
    print(f"machine: {machine()}")
    print(f"database: {url.rsplit('@', 1)[-1]} — {total:,} complaints; case page {case_id}")
    print(f"{'role':<8} {'page':<36} {'time':>9} {'database':>9} {'stmts':>5} {'goal':>9}")
    results: dict[str, dict[str, Any]] = {}
    for username, label in ROLES.items():
        web, api = app.test_client(), app.test_client()
        web.post("/login/", data={"username": username, "password": "demo123"})
        token = api.post(
            "/api/v1/security/login", json={"username": username, "password": "demo123", "provider": "db"}
        ).get_json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for name, kind, page_url, is_api in _pages(department, case_id):
            if username == "kefu" and kind == "show":
                continue  # the case is not 客服's
            client = api if is_api else web

            def fetch(client: Any = client, page_url: str = page_url, extra: Any = headers if is_api else None) -> Any:
                return client.get(page_url, headers=extra)

            wall, db_time, count = _sample(fetch, recorder, repeat)
            bound, met = _goal(kind, wall, db_time)
            results[f"{username} {name}"] = {"wall": wall, "db": db_time, "statements": count, "bound": bound}
            print(
                f"{label:<8} {name:<36} {fmt(wall):>9} {fmt(db_time):>9} {count:>5} "
                f"{fmt(bound):>9} {'ok' if met else 'OVER'}",
                flush=True,
            )
    return results


if __name__ == "__main__":
    run(repeat=int(sys.argv[1]) if len(sys.argv) > 1 else 7)
