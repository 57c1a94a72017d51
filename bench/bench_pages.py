"""Pages and REST at 1,000,000 complaints, each beside the bare SQL it needs.

- complaint list: 25 rows of one department in one status, sorted by deadline
  (goal < 0.15 s and within 3x the bare query);
- case page with its timeline; REST list and show.

Usage: BENCH_DATABASE_URL=postgresql://…/bench_1m python -m bench.bench_pages
Each figure is the median of several requests through the whole stack (Flask test
client: routing, FAB security, scope, SQL, templates or JSON).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, text

from bench.common import BENCH_DATABASE_URL, fmt, machine, make_app

REPEAT = 15


def _median(fn: Callable[[], Any], repeat: int = REPEAT) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _check(response: Any) -> Any:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:300])
    return response


def run(url: str = BENCH_DATABASE_URL) -> dict[str, Any]:
    from app import db
    from app.models import Complaint, ComplaintEvent, Department

    app = make_app(url)
    web = app.test_client()
    _check(web.post("/login/", data={"username": "zhuguan_a", "password": "demo123"}, follow_redirects=True))
    api = app.test_client()
    token = api.post(
        "/api/v1/security/login", json={"username": "zhuguan_a", "password": "demo123", "provider": "db"}
    ).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(Complaint))
        department = db.session.scalar(select(Department.id).where(Department.code == "GC"))
        status = "dispatched"
        in_filter = db.session.scalar(
            select(func.count())
            .select_from(Complaint)
            .where(Complaint.department_id == department, Complaint.status == status)
        )
        case_id, events = db.session.execute(
            select(ComplaintEvent.complaint_id, func.count())
            .join(Complaint, Complaint.id == ComplaintEvent.complaint_id)
            .where(Complaint.department_id == department)
            .group_by(ComplaintEvent.complaint_id)
            .order_by(func.count().desc())
            .limit(1)
        ).one()
        engine = db.engine
    print(f"machine: {machine()}")
    print(f"database: {url.rsplit('@', 1)[-1]} — {total:,} complaints; {in_filter:,} of 工程部 in status {status}")

    bare_list_sql = text(
        """
        SELECT c.id, c.number, c.received_at, c.subject, c.status, c.next_due_at, c.overdue, c.warned,
               cu.name, ca.name, lv.name, d.name
        FROM complaint c
        JOIN customer cu ON cu.id = c.customer_id JOIN category ca ON ca.id = c.category_id
        JOIN level lv ON lv.id = c.level_id JOIN department d ON d.id = c.department_id
        WHERE c.department_id = :d AND c.status = :s
        ORDER BY c.next_due_at ASC NULLS LAST LIMIT 25
        """
    )
    bare_count_sql = text("SELECT count(*) FROM complaint WHERE department_id = :d AND status = :s")

    def bare_list() -> None:
        with engine.connect() as c:
            c.execute(bare_count_sql, {"d": department, "s": status}).scalar()
            c.execute(bare_list_sql, {"d": department, "s": status}).all()

    def bare_case() -> None:
        with engine.connect() as c:
            c.execute(text("SELECT * FROM complaint WHERE id = :i"), {"i": case_id}).one()
            c.execute(
                text("SELECT * FROM complaint_event WHERE complaint_id = :i ORDER BY at, id"), {"i": case_id}
            ).all()
            c.execute(text("SELECT * FROM deadline WHERE complaint_id = :i"), {"i": case_id}).all()
            c.execute(text("SELECT id, filename FROM attachment WHERE complaint_id = :i"), {"i": case_id}).all()

    list_url = (
        f"/complaintview/list/?_flt_0_department={department}&_flt_0_status={status}"
        "&_oc_ComplaintView=next_due_at&_od_ComplaintView=asc"
    )
    rest_list_url = (
        f"/api/v1/complaint/?q=(filters:!((col:department,opr:rel_o_m,value:{department}),"
        f"(col:status,opr:eq,value:{status})),order_column:next_due_at,order_direction:asc,page_size:25)"
    )
    measures = {
        "complaint list (UI)": (lambda: _check(web.get(list_url)), bare_list),
        "case page with timeline (UI)": (lambda: _check(web.get(f"/complaintview/show/{case_id}")), bare_case),
        "REST list": (lambda: _check(api.get(rest_list_url, headers=headers)), bare_list),
        "REST show": (lambda: _check(api.get(f"/api/v1/complaint/{case_id}", headers=headers)), bare_case),
        "REST timeline": (lambda: _check(api.get(f"/api/v1/complaint/{case_id}/timeline", headers=headers)), bare_case),
    }
    print(f"case page: {case_id} with {events} timeline events")
    print(f"{'page':<30} {'portal':>10} {'bare SQL':>10} {'ratio':>7}")
    results = {}
    for name, (portal, bare) in measures.items():
        p, b = _median(portal), _median(bare)
        results[name] = {"portal": p, "bare": b, "ratio": p / b if b else None}
        print(f"{name:<30} {fmt(p):>10} {fmt(b):>10} {p / b:>6.1f}×")
    return results


if __name__ == "__main__":
    run()
