"""Two people (or a person and the scheduler) acting on the same case at once, on PostgreSQL.

Each thread has its own application context, hence its own database session and
connection, as two web workers would. Exactly one of two identical steps wins; the
other gets a conflict (HTTP 409), and the case records the step once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sla_support import at, register_case
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import db, jobs, lifecycle
from app.complaints import steps as services
from app.models import Complaint, ComplaintEvent, Deadline
from app.quality import stats
from app.timeutil import utcnow
from app.views.security import principal_for_user

pytestmark = pytest.mark.postgres_only

RECEIVED = at(2026, 9, 29, 10, 0)


def _race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in n threads released together; return results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except Exception as exc:  # collected and asserted by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results


def _count(cid: int, action: str) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(ComplaintEvent)
        .where(ComplaintEvent.complaint_id == cid, ComplaintEvent.action == action)
    )


def _judge_in_own_session(app, cid: int, version: Any = None) -> str:
    with app.app_context():
        try:
            user = app.appbuilder.sm.find_user(username="renshi")
            complaint = db.session.get(Complaint, cid)
            services.take_transition(
                db.session,
                complaint,
                "judge_valid",
                principal_for_user(user),
                {"validity_reason": "属实"},
                expected_version=version,
            )
            db.session.commit()
            return "ok"
        except lifecycle.TransitionError as exc:
            db.session.rollback()
            return f"conflict:{exc.kind}"
        finally:
            db.session.remove()


def test_same_transition_twice_at_once_through_the_service(pg_app):
    cases = [register_case(pg_app) for _ in range(4)]
    for c in cases:
        results = _race(2, lambda i, cid=c.id: _judge_in_own_session(pg_app, cid))
        assert sorted(results) == ["conflict:state", "ok"], results
        db.session.expire_all()
        assert _count(c.id, "judge_valid") == 1
        assert db.session.get(Complaint, c.id).status.value == "judged"


def test_same_transition_with_the_same_version_at_once(pg_app):
    c = register_case(pg_app)
    version = c.version
    results = _race(3, lambda i: _judge_in_own_session(pg_app, c.id, version))
    assert results.count("ok") == 1, results
    assert all(r in ("ok", "conflict:version", "conflict:state") for r in results), results
    db.session.expire_all()
    assert _count(c.id, "judge_valid") == 1


def test_two_browsers_post_the_same_step_over_http(pg_app):
    c = register_case(pg_app)
    cid, version = c.id, c.version  # threads never touch the test's session
    tokens = []
    for _ in range(2):
        r = pg_app.test_client().post(
            "/api/v1/security/login", json={"username": "renshi", "password": "demo123", "provider": "db"}
        )
        tokens.append(r.json["access_token"])
    db.session.commit()

    def post(i: int) -> tuple[int, Any]:
        with pg_app.app_context():
            client = pg_app.test_client()
            r = client.post(
                f"/api/v1/complaint/{cid}/transition",
                json={"action": "judge_valid", "validity_reason": f"第{i}位", "version": version},
                headers={"Authorization": f"Bearer {tokens[i]}"},
            )
            return r.status_code, r.get_json()

    results = _race(2, post)
    assert not any(isinstance(r, Exception) for r in results), results
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 409], results
    loser = next(body for s, body in results if s == 409)
    assert loser["message"]
    db.session.expire_all()
    assert _count(c.id, "judge_valid") == 1

    # Dispatch and remind concurrently as well: both are legal, both are recorded, in order.
    def step(i: int) -> tuple[int, Any]:
        with pg_app.app_context():
            client = pg_app.test_client()
            body = {"action": "dispatch"} if i == 0 else {"action": "remind", "note": "请尽快"}
            r = client.post(
                f"/api/v1/complaint/{cid}/transition", json=body, headers={"Authorization": f"Bearer {tokens[i]}"}
            )
            return r.status_code, r.get_json()

    results = _race(2, step)
    assert not any(isinstance(r, Exception) for r in results), results
    assert sorted(s for s, _ in results) == [200, 200], results
    db.session.expire_all()
    complaint = db.session.get(Complaint, c.id)
    assert complaint.status.value == "dispatched"
    assert _count(c.id, "dispatch") == 1 and _count(c.id, "remind") == 1


def test_scan_skips_a_case_a_user_is_changing_and_records_it_next_pass(pg_app):
    busy = register_case(pg_app, received_at=RECEIVED, now=RECEIVED)
    idle = register_case(pg_app, received_at=RECEIVED, now=RECEIVED)
    db.session.commit()
    user_ctx = pg_app.app_context()
    user_ctx.push()
    try:
        db.session.execute(select(Complaint.id).where(Complaint.id == busy.id).with_for_update())
        summary = jobs.run_due(pg_app, at(2026, 9, 30, 10, 0), only=["deadline_scan"])
        assert summary["jobs"]["deadline_scan"]["overdue"] == 1  # the idle case only
    finally:
        db.session.rollback()
        db.session.remove()
        user_ctx.pop()
    db.session.expire_all()
    assert _count(idle.id, "overdue") == 1 and _count(busy.id, "overdue") == 0
    summary = jobs.run_due(pg_app, at(2026, 9, 30, 10, 1), only=["deadline_scan"])
    assert summary["jobs"]["deadline_scan"]["overdue"] == 1
    db.session.expire_all()
    assert _count(busy.id, "overdue") == 1 and _count(idle.id, "overdue") == 1


def test_parallel_scans_record_everything_exactly_once(pg_app):
    ids = [register_case(pg_app, received_at=RECEIVED, now=RECEIVED, commit=False).id for _ in range(30)]
    db.session.commit()
    instants = [at(2026, 9, 30, 9, 20), at(2026, 9, 30, 10, 0), at(2026, 10, 8, 10, 0), at(2026, 10, 9, 10, 0)]
    for when in instants:
        results = _race(4, lambda i, when=when: jobs.run_due(pg_app, when, only=["deadline_scan"]))
        for result in results:
            assert isinstance(result, dict) and "error" not in result["jobs"]["deadline_scan"], result
    # Anything a skipped scanner left behind is picked up by the next pass.
    jobs.run_due(pg_app, instants[-1], only=["deadline_scan"])
    db.session.expire_all()
    rows = db.session.execute(
        select(ComplaintEvent.complaint_id, ComplaintEvent.action, ComplaintEvent.data).where(
            ComplaintEvent.action.in_(("warning", "overdue", "escalation"))
        )
    ).all()
    got = Counter((r.complaint_id, r.data["stage"], r.action) for r in rows)
    expected = Counter(
        {(cid, s, k): 1 for cid in ids for s in ("investigate", "reply") for k in ("warning", "overdue", "escalation")}
    )
    assert got == expected
    open_left = db.session.scalar(
        select(func.count()).select_from(Deadline).where(Deadline.state == "open", Deadline.next_check_at.is_not(None))
    )
    assert open_left == 0


def test_two_refreshes_of_the_same_daily_aggregate_do_not_collide(pg_app):
    """The dashboard's aggregate row of a day is rewritten by whoever refreshes it (the job in
    two schedulers, a dashboard read): the second writer waits and wins, it never fails on the
    row's primary key (was: delete then insert, a duplicate key for the loser)."""
    dept = register_case(pg_app).department_id
    engine = db.engine  # the thread has no application context
    day = date(2026, 9, 29)
    first_written, second_started = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def second_writer() -> None:
        with Session(engine) as other:
            second_started.set()
            try:
                first_written.wait(10)
                stats._store(other, {(day, dept)}, {(day, dept): {**stats._empty(), "received": 2}}, RECEIVED)
                other.commit()
                outcome["second"] = "ok"
            except Exception as exc:  # asserted below
                outcome["second"] = exc

    with Session(engine) as first:
        stats._store(first, {(day, dept)}, {(day, dept): {**stats._empty(), "received": 1}}, RECEIVED)
        thread = threading.Thread(target=second_writer)
        thread.start()
        second_started.wait(10)
        first_written.set()
        time.sleep(0.5)  # the second writer now waits on the first's uncommitted row
        first.commit()
    thread.join(30)
    assert outcome["second"] == "ok", outcome["second"]
    db.session.expire_all()
    row = db.session.execute(
        select(stats.StatDaily.received).where(stats.StatDaily.day == day, stats.StatDaily.department_id == dept)
    ).one()
    assert row.received == 2


def test_dashboard_reads_never_fail_while_complaints_are_registered_and_refreshed(pg_app):
    """Issue 13 (8): 3 readers of the month's dashboard, 2 registering writers and the
    stats_refresh job, in parallel for a few seconds: no read, write or job run fails, and
    the aggregates then agree with the complaints."""
    from app.models import Category, Channel, Department, Level

    def ref(model: Any, **by: Any) -> int:
        return db.session.query(model).filter_by(**by).one().id

    body = {
        "content": "电梯停运，无人维修",
        "customer_name": "并发登记",
        "customer_demand": "尽快修好",
        "channel": ref(Channel, code="phone"),
        "category": ref(Category, code="equipment"),
        "level": ref(Level, code="normal"),
        "department": ref(Department, code="GC"),
    }
    logins = ["renshi", "zongjingli", "zhuguan_a", "kefu", "kefu"]
    tokens = [
        pg_app.test_client()
        .post("/api/v1/security/login", json={"username": who, "password": "demo123", "provider": "db"})
        .json["access_token"]
        for who in logins
    ]
    db.session.commit()
    deadline = time.monotonic() + 6
    outcomes: dict[str, list[Any]] = {"read": [], "write": [], "job": []}

    def call(i: int, method: str, url: str, **kw: Any) -> tuple[int, Any]:
        with pg_app.app_context():
            r = getattr(pg_app.test_client(), method)(url, headers={"Authorization": f"Bearer {tokens[i]}"}, **kw)
            return r.status_code, r.get_json(silent=True)

    def work(i: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            if i < 3:
                outcomes["read"].append(call(i, "get", "/api/v1/dashboard/data?period=month"))
            elif i < 5:
                phone = f"139{i:02d}{n:06d}"
                outcomes["write"].append(call(i, "post", "/api/v1/complaint/", json={**body, "customer_phone": phone}))
            else:
                outcomes["job"].append(jobs.run_due(pg_app, utcnow(), only=["stats_refresh"]))

    results = _race(6, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    failed_reads = [r for r in outcomes["read"] if r[0] != 200]
    failed_writes = [r for r in outcomes["write"] if r[0] != 201]
    failed_jobs = [r for r in outcomes["job"] if "error" in r["jobs"]["stats_refresh"]]
    assert (failed_reads, failed_writes, failed_jobs) == ([], [], [])
    assert len(outcomes["read"]) >= 10 and len(outcomes["write"]) >= 5 and len(outcomes["job"]) >= 3, {
        k: len(v) for k, v in outcomes.items()
    }
    # Nothing a racing refresh saw half-way is lost: the month's count is every registration.
    status, data = call(0, "get", "/api/v1/dashboard/data?period=month")
    assert status == 200
    db.session.expire_all()
    registered = db.session.scalar(select(func.count()).select_from(Complaint))
    assert data["kpis"]["received"] == registered, data["kpis"]


def test_a_registration_committed_while_the_refresh_computes_is_not_lost(pg_app, monkeypatch):
    """The refresh takes the day's dirty mark before it computes: a case registered meanwhile
    marks the day again and the next refresh counts it (was: the mark was removed after the
    computation, and the new case was never counted)."""
    first = register_case(pg_app, received_at=RECEIVED, now=RECEIVED)
    dept = first.department_id
    real_compute = stats.compute
    writers: list[threading.Thread] = []

    def register_meanwhile() -> None:
        with pg_app.app_context():
            register_case(pg_app, received_at=RECEIVED, now=RECEIVED)
            db.session.remove()

    def compute_while_someone_registers(*args: Any, **kw: Any) -> Any:
        computed = real_compute(*args, **kw)
        if not writers:
            writers.append(threading.Thread(target=register_meanwhile))
            writers[0].start()
            writers[0].join(2)  # done at once, or waiting for this refresh to commit
        return computed

    monkeypatch.setattr(stats, "compute", compute_while_someone_registers)
    with Session(db.engine) as refresher:
        stats.refresh(refresher, now=RECEIVED)
        refresher.commit()
    writers[0].join(30)
    assert not writers[0].is_alive()
    monkeypatch.setattr(stats, "compute", real_compute)
    with Session(db.engine) as refresher:
        stats.refresh(refresher, now=RECEIVED)
        refresher.commit()
    db.session.expire_all()
    received = db.session.scalar(
        select(func.sum(stats.StatDaily.received)).where(stats.StatDaily.department_id == dept)
    )
    assert received == 2
