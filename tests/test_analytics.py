"""Dashboard figures against values computed by hand on a small fixed history."""

from datetime import datetime

import pytest

from app import db
from app.complaints import steps as services
from app.quality import analytics, daily, stats
from app.timeutil import LOCAL_TZ

OCT = datetime(2026, 10, 12, 10, 0, tzinfo=LOCAL_TZ)  # a Monday, office hours
NOV = datetime(2026, 11, 9, 10, 0, tzinfo=LOCAL_TZ)  # a Monday


def _step(complaint, action, who, org, at, **values):
    services.take_transition(db.session, complaint, action, org.principal(who), values, now=at)
    db.session.commit()


def _history(make_complaint, org):
    """October: 4 cases at 工程部 (3 valid, 1 invalid), 1 at 保安部; November: 2 at 工程部."""
    october = [
        make_complaint(department="GC", received_at=OCT.replace(hour=h), now=OCT.replace(hour=h))
        for h in (9, 10, 11, 14)
    ]
    security = make_complaint(department="BA", received_at=OCT, now=OCT)
    november = [
        make_complaint(department="GC", received_at=NOV.replace(hour=h), now=NOV.replace(hour=h)) for h in (9, 10)
    ]
    day = OCT.replace(hour=15)
    for c in october[:3]:
        _step(c, "judge_valid", "renshi", org, day)
    _step(october[3], "judge_invalid", "renshi", org, day, validity_reason="不属实", polite_reply="感谢")
    # Case 0 goes all the way, replied in time, satisfied; case 1 replied late, unsatisfied follow-up.
    c = october[0]
    for action, who, values in (
        ("dispatch", "renshi", {}),
        ("start_investigation", "zhuguan_a", {}),
        ("propose_plan", "zhuguan_a", {"resolution_plan": "修"}),
        ("reply", "zhuguan_a", {"reply_text": "已修"}),
        ("feed_back", "zhuguan_a", {}),
        ("follow_up", "renshi", {"satisfaction": "satisfied"}),
    ):
        _step(c, action, who, org, day, **values)
    c = october[1]
    late = datetime(2026, 10, 20, 10, 0, tzinfo=LOCAL_TZ)  # reply due 10-14 11:00 (2 working days)
    for action, who, values in (
        ("dispatch", "renshi", {}),
        ("start_investigation", "zhuguan_a", {}),
        ("propose_plan", "zhuguan_a", {}),
        ("reply", "zhuguan_a", {"reply_text": "迟到的答复"}),
        ("feed_back", "zhuguan_a", {}),
        ("follow_up", "renshi", {"satisfaction": "unsatisfied"}),
    ):
        _step(c, action, who, org, late, **values)
    return october, security, november


def _dashboard(org, who, kind, at, now):
    from app.access import scope
    from app.models import Complaint
    from app.views.dashboards import dashboard_scope

    principal = org.principal(who)
    departments, charts = dashboard_scope(principal)
    period = analytics.parse_period(kind, at)
    return analytics.dashboard(db.session, charts, period, departments, scope.criterion(Complaint, principal), now=now)


def test_month_figures_match_hand_counts(app, make_complaint, org):
    _history(make_complaint, org)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=LOCAL_TZ)
    d = _dashboard(org, "zongjingli", "month", "2026-10", now)
    k = d["kpis"]
    assert k["received"] == 5
    assert (k["valid_rate"]["numerator"], k["valid_rate"]["denominator"]) == (3, 4)
    # Follow-ups in October: one satisfied (10-12), one unsatisfied (10-20).
    assert (k["satisfaction_rate"]["numerator"], k["satisfaction_rate"]["denominator"]) == (1, 2)
    reply = k["stages"]["reply"]["timeliness"]
    # Replies due in October: the first replies of the four valid cases (due 10-14), and the
    # second reply of the reopened case 1 (due 10-22); the invalid case has no reply clock.
    # Only case 0 replied in time.
    assert reply["numerator"] == 1 and reply["denominator"] == 5
    by_department = {i["label"]: i["value"] for i in d["charts"]["by_department"]["items"]}
    assert by_department == {"工程部": 4, "保安部": 1}


def test_period_over_period_change(app, make_complaint, org):
    _history(make_complaint, org)
    d = _dashboard(org, "zongjingli", "month", "2026-11", datetime(2026, 11, 30, 12, 0, tzinfo=LOCAL_TZ))
    assert d["kpis"]["received"] == 2
    assert d["received_change"] == pytest.approx((2 - 5) / 5)
    trend = d["charts"]["trend"]
    assert trend["labels"][-2:] == ["26/10", "26/11"]
    assert trend["series"][0]["data"][-2:] == [5, 2]


def test_empty_denominators_are_none_not_zero(app, make_complaint, org):
    make_complaint(department="GC", received_at=NOV, now=NOV)
    d = _dashboard(org, "zongjingli", "month", "2026-11", datetime(2026, 11, 9, 12, 0, tzinfo=LOCAL_TZ))
    k = d["kpis"]
    assert k["valid_rate"] == {"numerator": 0, "denominator": 0, "value": None}
    assert k["satisfaction_rate"]["value"] is None
    assert k["complaint_rate"]["value"] is None  # no customer counts entered
    assert d["received_change"] is None  # nothing in October


def test_department_head_sees_only_its_department(app, make_complaint, org):
    _history(make_complaint, org)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=LOCAL_TZ)
    mine = _dashboard(org, "zhuguan_b", "month", "2026-10", now)
    assert mine["kpis"]["received"] == 1
    assert "by_department" not in mine["charts"] and "ranking" not in mine["charts"]


def test_dashboard_api_answers_for_each_role(api, make_complaint, org):
    _history(make_complaint, org)
    for who in ("zongjingli", "renshi", "zhuguan_a", "kefu"):
        r = api(who).get("/api/v1/dashboard/data?period=year&at=2026")
        assert r.status_code == 200, (who, r.get_json())
        assert r.json["period"]["label"] == "2026年"
    assert api(None).get("/api/v1/dashboard/data").status_code == 401


def test_aggregates_follow_changes_and_rebuild_agrees(app, make_complaint, org):
    october, *_ = _history(make_complaint, org)
    stats.refresh(db.session)
    db.session.commit()
    from app.models import StatDaily

    incremental = {
        (r.day, r.department_id): (r.received, r.judged, r.valid, r.followups) for r in db.session.query(StatDaily)
    }
    stats.rebuild(db.session)
    db.session.commit()
    rebuilt = {
        (r.day, r.department_id): (r.received, r.judged, r.valid, r.followups) for r in db.session.query(StatDaily)
    }
    nonzero = lambda rows: {k: v for k, v in rows.items() if any(v)}  # noqa: E731
    assert nonzero(incremental) == nonzero(rebuilt)


def test_remembered_totals_follow_every_rewrite_even_with_the_same_clock(app, make_complaint, org):
    """Dashboards keep each (period, department)'s totals until its rows change; a rewrite made
    with the very same ``now`` (time travel, or two servers' clocks) must still be seen."""
    _history(make_complaint, org)
    at = NOV.replace(hour=16)
    before = _dashboard(org, "zongjingli", "month", "2026-10", at)
    assert before["kpis"]["received"] == 5
    make_complaint(department="GC", received_at=OCT.replace(hour=16), now=at)
    after = _dashboard(org, "zongjingli", "month", "2026-10", at)
    assert after["kpis"]["received"] == 6
    assert after["charts"]["by_department"]["items"][0]["value"] == 5  # 工程部: 4 + 1
    daily.forget_groups()
    assert _dashboard(org, "zongjingli", "month", "2026-10", at) == after


def test_attitude_limits_from_the_aggregates_match_the_cases(app, make_complaint, org):
    """The dashboard's per-staff 服务态度 counts (daily aggregates) equal those counted from the cases."""
    from app.models import Staff
    from app.quality import attitude
    from app.timeutil import utcnow

    now = utcnow()
    cases = [make_complaint(category="attitude", staff=("刘强",), received_at=now, now=now) for _ in range(3)]
    cases[1].department = org.dept("BA")  # handed on to 保安部 (转派) after registration
    db.session.commit()
    for c in cases:
        _step(c, "judge_valid", "renshi", org, now)
    stats.refresh(db.session)
    ids = [s.id for s in db.session.query(Staff)]
    from_aggregates = attitude.counted_from_aggregates(db.session, now)
    assert from_aggregates == attitude.counted_from_cases(db.session, now, ids)
    assert from_aggregates[org.staff("刘强").id] == [3, 3]  # counted whichever department handled it


def test_the_periods_compared_with_a_trend_are_each_periods_own_earlier_one():
    """对比上期: each period of a trend is compared with the period as many periods earlier as the
    trend is long. They are found in one walk back (shifting each period walked 800 periods a
    dashboard), and are the same periods, across month, quarter and year ends."""
    from datetime import date

    for kind in ("day", "week", "month", "quarter", "year"):
        for day in (date(2026, 1, 1), date(2026, 3, 31), date(2024, 2, 29), date(2026, 12, 6)):
            periods = analytics.trend_periods(analytics.period_containing(kind, day))
            expected = [p.shift(len(periods)) for p in periods]
            assert analytics.periods_before(periods) == expected, (kind, day)


def test_a_periods_sum_of_shared_group_totals_is_kept_until_a_group_changes():
    """A dashboard sums each period's department totals; the groups are shared objects that stay the
    same until their rows change (group_totals), so the sum is kept for the same groups and made
    anew, right, when one of them was read again."""
    first, second = daily.Totals(received=2, by_category={"服务态度": 1}), daily.Totals(received=3)
    summed = daily.merged_shared([first, second])
    assert summed.received == 5 and summed.by_category == {"服务态度": 1}
    assert daily.merged_shared([first, second]) is summed
    reread = daily.Totals(received=4, by_category={"服务态度": 2})
    again = daily.merged_shared([first, reread])
    assert again is not summed and again.received == 6 and again.by_category == {"服务态度": 3}
    assert first.received == 2 and first.by_category == {"服务态度": 1}  # the parts are left as they were


def test_a_transaction_queues_each_touched_day_and_department_once(app, make_complaint, org):
    """A step flushes three times with the same (day, department) pairs; each repeat sent an INSERT
    into stat_dirty that did nothing. Each pair now goes once a transaction, a rolled-back
    savepoint's pairs are queued again, and the aggregates still agree with a rebuild."""
    from statement_support import recorded

    from app.models import StatDaily, StatDirty

    def inserts(sent: list) -> int:
        return sum(1 for statement, _ in sent if statement.lstrip().upper().startswith("INSERT INTO STAT_DIRTY"))

    with recorded() as sent:
        case = make_complaint(department="GC", received_at=OCT, now=OCT)
    assert inserts(sent) == 1, [s for s, _ in sent if "stat_dirty" in s]
    queued = set(db.session.execute(db.select(StatDirty.day, StatDirty.department_id)).all())
    assert (OCT.astimezone(LOCAL_TZ).date(), org.dept("GC").id) in queued

    stats.refresh(db.session)
    db.session.commit()
    assert not db.session.query(StatDirty).count()
    savepoint = db.session.begin_nested()
    stats.mark_dirty(db.session, {(OCT.date(), org.dept("GC").id)})
    savepoint.rollback()
    stats.mark_dirty(db.session, {(OCT.date(), org.dept("GC").id)})
    db.session.commit()
    assert db.session.query(StatDirty).count() == 1  # the pair the savepoint took back is queued again

    with recorded() as sent:
        _step(case, "judge_valid", "renshi", org, NOV)
    assert inserts(sent) == 1, [s for s, _ in sent if "stat_dirty" in s]
    judged = (NOV.date(), org.dept("GC").id)
    assert judged in set(db.session.execute(db.select(StatDirty.day, StatDirty.department_id)).all())
    stats.refresh(db.session)
    db.session.commit()
    incremental = {(r.day, r.department_id): (r.received, r.judged, r.valid) for r in db.session.query(StatDaily)}
    stats.rebuild(db.session)
    db.session.commit()
    rebuilt = {(r.day, r.department_id): (r.received, r.judged, r.valid) for r in db.session.query(StatDaily)}
    nonzero = lambda rows: {k: v for k, v in rows.items() if any(v)}  # noqa: E731
    assert nonzero(incremental) == nonzero(rebuilt)
