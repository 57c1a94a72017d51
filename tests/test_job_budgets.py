"""Every job is bounded: a time budget per pass, committed batches, and the next pass resumes.

Each job is run with a batch of one or two items and a budget that is spent after the
first batch (the settings ``jobs.<name>.batch_size`` and ``jobs.<name>.budget_seconds``):
a pass stops early with its work committed and says ``"more": true``; the passes that
follow end with exactly what one unbounded pass makes. The daily digest lists the first
time limits of a department and counts the rest.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from quality_support import archive
from sla_support import act, at, travel
from sqlalchemy import event, func, select

from app import db, settings
from app.complaints import corrective
from app.jobs import core
from app.models import (
    Cluster,
    Complaint,
    ComplaintEvent,
    CorrectiveAction,
    Customer,
    Notification,
    StatDaily,
    StatDirty,
    cluster_complaint,
)
from app.quality import stats

RECEIVED = at(2026, 10, 13, 9, 30)  # Tuesday, in office hours


def _bound(name: str, batch: int = 1) -> None:
    """Job ``name`` runs ``batch`` items per batch and stops after the first batch of a pass."""
    settings.put(db.session, f"jobs.{name}.batch_size", batch)
    settings.put(db.session, f"jobs.{name}.budget_seconds", 1e-9)
    db.session.commit()


def _unbound(name: str) -> None:
    for key in (f"jobs.{name}.batch_size", f"jobs.{name}.budget_seconds"):
        settings.put(db.session, key, None)
    db.session.commit()


@contextmanager
def _commits() -> list[int]:
    """Count the commits of the job's session while the block runs."""
    seen: list[int] = []

    def count(session):
        seen.append(1)

    session = db.session()
    event.listen(session, "after_commit", count)
    try:
        yield seen
    finally:
        event.remove(session, "after_commit", count)


def _passes(app, name: str, when, limit: int = 20) -> list[dict]:
    """Run job ``name`` at ``when`` pass after pass until one says nothing more is left."""
    results = []
    for _ in range(limit):
        result = travel(app, when, only=[name])["jobs"][name]
        results.append(result)
        if not result["more"]:
            return results
    raise AssertionError(f"{name} did not finish in {limit} passes: {results}")


# --- Corrective actions ------------------------------------------------------------------------


def _overdue_actions(app, org, make_complaint, count: int) -> list[int]:
    """``count`` temporary countermeasures on two quality cases, all due Wed 14 Oct 10:30."""
    ids = []
    for _ in range(2):
        c = make_complaint(received_at=RECEIVED, now=RECEIVED, category="quality")
        act(app, org, c, "judge_valid", "renshi", at(2026, 10, 13, 9, 40))
        act(app, org, c, "dispatch", "renshi", at(2026, 10, 13, 9, 45))
        act(app, org, c, "start_investigation", "zhuguan_a", at(2026, 10, 13, 10, 0))
        for n in range(count // 2):
            action = corrective.add(
                db.session,
                db.session.get(Complaint, c.id),
                org.principal("zhuguan_a"),
                {"kind": "temporary", "description": f"对策{n}", "owner": org.staff_of("zhuguan_a").id},
                now=at(2026, 10, 13, 10, 0),
            )
            db.session.flush()
            ids.append(action.id)
    db.session.commit()
    return ids


def _corrective_outcome() -> tuple:
    events = db.session.execute(
        select(ComplaintEvent.action, func.count())
        .where(ComplaintEvent.action.in_(("corrective_overdue", "corrective_escalated")))
        .group_by(ComplaintEvent.action)
        .order_by(ComplaintEvent.action)
    ).all()
    marked = db.session.execute(
        select(func.count(CorrectiveAction.overdue_at), func.count(CorrectiveAction.escalated_at))
    ).one()
    told = db.session.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "overdue"))
    return tuple(events), tuple(marked), told


@pytest.mark.parametrize("bounded", [True, False])
def test_corrective_scan_stops_on_its_budget_and_resumes_to_the_same_end(app, org, make_complaint, bounded):
    actions = _overdue_actions(app, org, make_complaint, 6)
    if bounded:
        _bound("corrective_scan", batch=2)
    when = at(2026, 10, 16, 9, 0)  # overdue, and a working day past due: escalated too
    with _commits() as commits:
        passes = _passes(app, "corrective_scan", when)
    if bounded:
        first = passes[0]
        assert first["more"] is True and first["batches"] == 1, first
        assert (first["overdue"], first["escalated"]) == (2, 2)
        # Three full batches; the fourth pass finds nothing left.
        assert [p["overdue"] for p in passes] == [2, 2, 2, 0] and len(commits) >= 4, passes
    else:
        assert passes == [{**passes[0], "overdue": 6, "escalated": 6, "batches": 1, "more": False}]
    # The same end as one unbounded pass: each action marked and escalated once.
    events, marked, told = _corrective_outcome()
    assert events == (("corrective_escalated", 6), ("corrective_overdue", 6))
    assert marked == (6, 6) and told > 0
    assert sum(p["overdue"] for p in passes) == len(actions)
    # Nothing is left to do: a later pass finds no work and redoes nothing.
    again = travel(app, when + timedelta(hours=1), only=["corrective_scan"])["jobs"]["corrective_scan"]
    assert (again["overdue"], again["escalated"], again["more"]) == (0, 0, False)
    assert _corrective_outcome() == (events, marked, told)


# --- Dashboard aggregates ----------------------------------------------------------------------


def _stat_rows() -> list[tuple]:
    # Which refresh wrote a row (computed_at, revision) is not what it holds.
    columns = [c for c in StatDaily.__table__.columns if c.name not in ("computed_at", "revision")]
    return [tuple(r) for r in db.session.execute(select(*columns).order_by(StatDaily.day, StatDaily.department_id))]


def test_stats_refresh_works_in_committed_batches_and_ends_as_one_unbounded_pass(app, org, make_complaint):
    db.session.execute(StatDirty.__table__.delete())
    for day in range(5):
        for department in ("GC", "BA"):
            when = RECEIVED + timedelta(days=day)
            make_complaint(department=department, received_at=when, now=when)
    dirty = db.session.scalar(select(func.count()).select_from(StatDirty))
    assert dirty >= 10
    _bound("stats_refresh", batch=3)
    when = at(2026, 10, 20, 9, 0)
    with _commits() as commits:
        passes = _passes(app, "stats_refresh", when)
    assert passes[0] == {**passes[0], "rows": 3, "batches": 1, "more": True}
    assert sum(p["rows"] for p in passes) == dirty and len(commits) >= len(passes) > 3
    assert db.session.scalar(select(func.count()).select_from(StatDirty)) == 0
    bounded = _stat_rows()
    assert bounded

    # One unbounded pass over the same marks makes the same rows.
    db.session.execute(StatDaily.__table__.delete())
    stats.mark_dirty(db.session, [(r[0], r[1]) for r in bounded])
    db.session.commit()
    _unbound("stats_refresh")
    (single,) = _passes(app, "stats_refresh", when)
    assert single["more"] is False and single["batches"] == 1
    assert _stat_rows() == bounded


# --- Retention -----------------------------------------------------------------------------------


def _archived_customers(app, org, make_complaint, count: int) -> list[int]:
    customers = []
    for n in range(count):
        c = make_complaint(received_at=RECEIVED, now=RECEIVED, phone=f"1380000{n:04d}")
        archive(org, c, RECEIVED + timedelta(hours=1))
        customers.append(c.customer_id)
    return customers


def test_anonymise_takes_a_batch_per_pass_and_resumes_until_every_customer_is_done(app, org, make_complaint):
    customers = _archived_customers(app, org, make_complaint, 3)
    _bound("anonymise", batch=1)
    later = RECEIVED + timedelta(days=1200)
    with _commits() as commits:
        passes = _passes(app, "anonymise", later)
    assert passes[0] == {**passes[0], "customers": 1, "complaints": 1, "batches": 1, "more": True}
    assert sum(p["customers"] for p in passes) == 3 and len(commits) >= 3
    # The same end as one pass: each customer anonymised once, one event per case.
    done = db.session.scalars(select(Customer.id).where(Customer.anonymised_at.is_not(None))).all()
    assert sorted(done) == sorted(customers)
    assert db.session.scalar(select(func.count()).where(ComplaintEvent.action == "anonymised")) == 3
    _unbound("anonymise")
    again = travel(app, later, only=["anonymise"])["jobs"]["anonymise"]
    assert (again["customers"], again["more"]) == (0, False)


# --- The daily digest ----------------------------------------------------------------------------


def test_daily_digest_lists_the_first_lines_of_a_department_and_counts_the_rest(
    app, api, make_complaint, org, monkeypatch
):
    monkeypatch.setattr(core, "DIGEST_LINES", 3)
    received = at(2026, 10, 9, 10, 0)  # Friday: due Sat 10 Oct (调休 working day)
    for _ in range(5):
        make_complaint(received_at=received, now=received)
    result = travel(app, at(2026, 10, 10, 8, 30), only=["daily_digest"])["jobs"]["daily_digest"]
    assert result["due_or_late"] == 5 and result["departments"] == 1, result
    head = api("zhuguan_a").get("/api/v1/notification/?q=(page_size:100)").json["result"]
    (digest,) = [n for n in head if n["kind"] == "digest"]
    lines = digest["body"].split("\n")
    assert len(lines) == 4 and all(line.startswith("TS") or line[:1].isalnum() for line in lines[:3]), lines
    assert lines[3] == "…另有 2 项", lines
    assert "5" in digest["title"], digest["title"]  # the title counts every one of them
    company = api("renshi").get("/api/v1/notification/?q=(page_size:100)").json["result"]
    (summary,) = [n for n in company if n["kind"] == "digest"]
    assert summary["body"].endswith("：5（0 超时）"), summary["body"]


# --- The cluster scan ----------------------------------------------------------------------------

LIFT = (
    "8号楼2单元电梯又坏了，已经停运三天没人修",
    "8号楼的电梯停了好几天，老人上下楼很困难，请尽快维修",
    "8号楼2单元电梯故障停运，物业一直不来修理",
    "8号楼电梯又出故障了，还是没人来修",
)


def _cluster_outcome(cases) -> tuple:
    db.session.expire_all()
    members = db.session.execute(
        select(cluster_complaint.c.complaint_id).order_by(cluster_complaint.c.complaint_id)
    ).all()
    levels = [db.session.get(Complaint, c.id).level.code for c in cases]
    events = db.session.execute(
        select(ComplaintEvent.action, func.count())
        .where(ComplaintEvent.action.in_(("cluster_linked", "cluster_level_raised")))
        .group_by(ComplaintEvent.action)
        .order_by(ComplaintEvent.action)
    ).all()
    return db.session.scalar(select(func.count()).select_from(Cluster)), members, levels, tuple(events)


@pytest.mark.parametrize("bounded", [True, False])
def test_cluster_scan_stops_inside_a_window_and_resumes_to_the_same_end(app, org, make_complaint, bounded):
    day = at(2026, 10, 12, 10)
    cases = [
        make_complaint(content=text, received_at=day + timedelta(days=i), now=day + timedelta(days=i))
        for i, text in enumerate(LIFT)
    ]
    if bounded:
        settings.put(db.session, "cluster.scan_seconds", 1e-9)
        _bound("cluster_scan")
    passes = _passes(app, "cluster_scan", day + timedelta(days=4))
    if bounded:
        # The window's group is linked in the first pass, then one level raise per pass.
        first = passes[0]
        assert (first["clusters_created"], first["cases_linked"], first["windows"], first["more"]) == (1, 4, 0, True)
        assert [p["levels_raised"] for p in passes] == [0, 1, 1, 1, 1, 0], passes
    else:
        assert len(passes) == 1 and passes[0]["levels_raised"] == 4, passes
    assert passes[-1]["windows"] == 1
    # The same end either way: one cluster of the four cases, each raised once.
    ids = sorted((c.id,) for c in cases)
    assert _cluster_outcome(cases) == (1, ids, ["major"] * 4, (("cluster_level_raised", 4), ("cluster_linked", 4)))
