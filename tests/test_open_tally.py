"""The open-case figures (how many, overdue, 督办, by age) of whole-department scopes are summed from
the open-case tally of ``stat_daily`` and equal the cases themselves after every kind of write:
registrations, steps, the deadline scan's marks, supervision, a change of department, and on
the boundary days of each age bucket, to the second."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from quality_support import archive, step
from sla_support import at, travel
from sqlalchemy import select, true
from statement_support import recorded

from app import db
from app.access import scope
from app.models import OPEN_STATUSES, Complaint, StatDaily
from app.quality import analytics, stats
from app.timeutil import LOCAL_TZ

MORNING = at(2026, 11, 20, 9, 30)  # each bucket's limit nearer its day's start
EVENING = at(2026, 11, 20, 20, 0)  # and nearer its end


def _by_hand(now: datetime, departments: set[int] | None = None, registered_by: int | None = None) -> dict:
    """The figures counted in Python from the open cases (in those departments, or registered by that user)."""
    cases = [
        c
        for c in db.session.scalars(select(Complaint).where(Complaint.status.in_(OPEN_STATUSES)))
        if departments is None or c.department_id in departments or c.first_responder_id == registered_by
    ]
    buckets = [0] * len(analytics.AGE_BUCKETS)
    for c in cases:
        age = now - c.received_at
        buckets[
            next(i for i, (_, high, _) in enumerate(analytics.AGE_BUCKETS) if not high or age < timedelta(high))
        ] += 1
    return {
        "open": len(cases),
        "overdue": sum(c.overdue for c in cases),
        "supervised": sum(c.supervised for c in cases),
        "buckets": buckets,
    }


def _scopes(org) -> dict[str, tuple]:
    """Company-wide; a department head's scope (his department, or cases he registered); a bare department."""
    gc, ba = org.dept("GC").id, org.dept("BA").id
    head = org.principal("zhuguan_a")
    return {
        "company": (true(), None, None),
        "head": (scope.criterion(Complaint, head), head.department_ids, head.user_id),
        "department": (Complaint.department_id.in_([ba]), {ba}, None),
        "two departments": (Complaint.department_id.in_([gc, ba]), {gc, ba}, None),
    }


def _assert_summaries_match(org, now: datetime) -> None:
    db.session.commit()
    for name, (criterion, departments, registered_by) in _scopes(org).items():
        assert analytics._tally_scope(criterion) is not None, name
        summary = analytics.open_summary(db.session, criterion, now)
        assert summary == _by_hand(now, departments, registered_by), (name, now)
    db.session.commit()


def _boundary_cases(make_complaint, now: datetime) -> None:
    """Cases received at, and a second either side of, each bucket's limit, and at the first and last
    second of the limit's day, in two departments."""
    for i, (_, high, _) in enumerate(analytics.AGE_BUCKETS):
        if not high:
            continue
        limit = now - timedelta(days=high)
        start = datetime.combine(limit.astimezone(LOCAL_TZ).date(), datetime.min.time(), LOCAL_TZ)
        instants = (
            limit,
            limit - timedelta(seconds=1),
            limit + timedelta(seconds=1),
            start,
            start + timedelta(days=1, seconds=-1),
        )
        for j, received in enumerate(instants):
            make_complaint(department=("GC", "BA")[(i + j) % 2], received_at=received, now=received)
    make_complaint(department="GC", received_at=now - timedelta(days=90), now=now - timedelta(days=90))
    make_complaint(department="BA", received_at=now - timedelta(minutes=5), now=now - timedelta(minutes=5))


@pytest.mark.parametrize("now", [MORNING, EVENING], ids=["morning", "evening"])
def test_open_figures_from_the_tally_equal_the_cases_on_each_buckets_boundary_day(app, make_complaint, org, now):
    _boundary_cases(make_complaint, now)
    _assert_summaries_match(org, now)
    # A second later every limit has moved past a case received at it.
    _assert_summaries_match(org, now + timedelta(seconds=1))
    _assert_summaries_match(org, now - timedelta(seconds=1))


def test_open_figures_follow_steps_supervision_and_a_change_of_department(app, make_complaint, org):
    now = EVENING
    cases = [
        make_complaint(department=code, received_at=now - timedelta(days=d), now=now - timedelta(days=d))
        for code, d in (("GC", 2), ("GC", 5), ("BA", 9), ("GC", 40))
    ]
    _assert_summaries_match(org, now)
    step(org, cases[0], "judge_valid", "renshi", now - timedelta(days=1))
    step(org, cases[0], "dispatch", "renshi", now - timedelta(days=1))
    _assert_summaries_match(org, now)
    archive(org, cases[1], now - timedelta(hours=3))  # closed and archived: no longer open
    _assert_summaries_match(org, now)
    # Written on cases read before the last commit (their columns expired): the received day is still marked.
    cases[2].supervised = True
    db.session.commit()
    _assert_summaries_match(org, now)
    cases[3].department = org.dept("BA")  # through the relation: the key is set only by the flush
    db.session.commit()
    _assert_summaries_match(org, now)
    cases[0].department_id = org.dept("KF").id
    db.session.commit()
    _assert_summaries_match(org, now)
    _assert_the_rows_equal_a_rebuild()


def test_the_deadline_scans_overdue_marks_and_escalations_reach_the_tally(app, make_complaint, org):
    received = at(2026, 9, 29, 10, 0)  # investigation due 09-30 10:00, escalated 10-08 10:00
    for code in ("GC", "BA", "GC"):
        make_complaint(department=code, received_at=received, now=received)
    stats.refresh(db.session)
    _assert_summaries_match(org, at(2026, 9, 30, 9, 0))
    travel(app, at(2026, 9, 30, 12, 0), only=["deadline_scan"])
    assert db.session.scalar(select(Complaint.overdue).limit(1)) is True  # the scan marked them, in bulk
    _assert_summaries_match(org, at(2026, 9, 30, 12, 0))
    assert analytics.open_summary(db.session, true(), at(2026, 9, 30, 12, 0))["overdue"] == 3
    travel(app, at(2026, 10, 9, 12, 0), only=["deadline_scan"])
    _assert_summaries_match(org, at(2026, 10, 9, 12, 0))
    assert analytics.open_summary(db.session, true(), at(2026, 10, 9, 12, 0))["supervised"] == 3
    _assert_the_rows_equal_a_rebuild()


def test_a_case_moved_to_another_department_is_counted_there_on_the_day_it_was_received(app, make_complaint, org):
    """The relation set (a dispute's reassignment) marked only the old department's received day:
    the new department's row went on without the case."""
    received = at(2026, 11, 2, 10, 0)
    case = make_complaint(department="GC", received_at=received, now=received)
    stats.refresh(db.session)
    db.session.commit()
    case.department = org.dept("BA")
    db.session.commit()
    stats.refresh(db.session)
    row = db.session.get(StatDaily, (received.date(), org.dept("BA").id))
    assert row is not None and row.received == 1 and row.open_cases == 1


def _assert_the_rows_equal_a_rebuild() -> None:
    stats.refresh_all(db.session)
    db.session.commit()
    measures = ("received", *stats.OPEN_MEASURES)

    def rows() -> dict:
        found = db.session.execute(
            select(StatDaily.day, StatDaily.department_id, *(StatDaily.__table__.c[m] for m in measures))
        )
        return {(day, dep): tuple(values) for day, dep, *values in found if any(values)}

    incremental = rows()
    stats.rebuild(db.session)
    db.session.commit()
    assert incremental == rows()


def test_the_summary_at_scale_reads_the_tally_not_every_open_case(app, make_complaint, org):
    """One statement over stat_daily; the only cases it reads are those received on the age buckets'
    boundary days (a range of received_at each), not every open case in scope."""
    _boundary_cases(make_complaint, EVENING)
    stats.refresh_all(db.session)
    db.session.commit()
    for criterion in (true(), Complaint.department_id.in_([org.dept("GC").id])):
        with recorded() as sent:
            analytics.open_summary(db.session, criterion, EVENING, refreshed=True)
        statements = [" ".join(s.split()) for s, _ in sent]
        assert len(statements) == 1, statements
        assert "FROM stat_daily" in statements[0]
        reads = statements[0].count("FROM complaint")
        assert reads == 4 and statements[0].count("complaint.received_at") == 2 * reads, statements[0]


def test_a_heads_scope_sums_his_department_and_counts_the_cases_he_registered_elsewhere(app, make_complaint, org):
    mine = make_complaint(department="BA", by="zhuguan_a", received_at=EVENING - timedelta(days=4), now=EVENING)
    make_complaint(department="GC", received_at=EVENING - timedelta(days=2), now=EVENING)
    make_complaint(department="BA", received_at=EVENING - timedelta(days=2), now=EVENING)
    head = org.principal("zhuguan_a")
    summary = analytics.open_summary(db.session, scope.criterion(Complaint, head), EVENING)
    assert summary["open"] == 2 and summary["buckets"][2] == 1  # his department's case, and the one he registered
    assert mine.first_responder_id == head.user_id
    _assert_summaries_match(org, EVENING)


def test_a_scope_without_whole_departments_is_counted_live(app, make_complaint, org):
    make_complaint(department="GC", received_at=EVENING - timedelta(days=2), now=EVENING)
    kefu = scope.criterion(Complaint, org.principal("kefu"))
    assert analytics._tally_scope(kefu) is None
    with recorded() as sent:
        summary = analytics.open_summary(db.session, kefu, EVENING)
    assert summary["open"] == 1 and not any("stat_daily" in s for s, _ in sent)
