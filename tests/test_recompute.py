"""Changing the calendar or a time-limit rule recomputes the deadlines of open cases.

An override entered through the REST API (or the calendar screen) and a rule edited
through ``/api/v1/slarule/`` move the running clocks of open cases, and each moved
case gets one ``deadline_recomputed`` line on its timeline; closed and archived
cases keep theirs.
"""

from __future__ import annotations

from collections import Counter

from sla_support import (
    act,
    at,
    get_case,
    get_timeline,
    iso_local,
    sla_events,
    take,
    travel,
)
from sqlalchemy import select

from app import db
from app.models import CalendarOverride, ComplaintEvent, Deadline, SlaRule

RECEIVED = at(2026, 9, 29, 10, 0)  # Tuesday: investigate due Wed 30 Sep 10:00, reply Thu 8 Oct 10:00


def _recomputed(client, cid):
    return [e for e in get_timeline(client, cid)["result"] if e["action"] == "deadline_recomputed"]


def _closed_case(make_complaint, api):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    take(api("renshi"), c.id, "judge_invalid", validity_reason="不属实", polite_reply="感谢您的反馈")
    return c


def _deadline_rows(cid):
    return db.session.execute(
        select(Deadline.stage, Deadline.state, Deadline.due_at)
        .where(Deadline.complaint_id == cid)
        .order_by(Deadline.id)
    ).all()


def test_calendar_override_via_rest_moves_open_cases(app, api, make_complaint):
    open_case = make_complaint(received_at=RECEIVED, now=RECEIVED)
    closed = _closed_case(make_complaint, api)
    closed_before = _deadline_rows(closed.id)
    hr = api("renshi")
    r = hr.post("/api/v1/calendar/", json={"day": "2026-09-30", "is_workday": False, "note": "停电停工"})
    assert r.status_code == 201, r.json
    case = get_case(hr, open_case.id)
    assert iso_local(case["investigate_due"]) == at(2026, 10, 8, 10, 0)
    assert iso_local(case["reply_due"]) == at(2026, 10, 9, 10, 0)
    entries = _recomputed(hr, open_case.id)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["actor"]["username"] == "renshi"
    moves = {m["stage"]: m for m in entry["data"]["moves"]}
    assert set(moves) == {"investigate", "reply"}
    assert iso_local(moves["investigate"]["from"]) == at(2026, 9, 30, 10, 0)
    assert iso_local(moves["investigate"]["to"]) == at(2026, 10, 8, 10, 0)
    assert "2026-10-08 10:00" in entry["note"]
    # The closed case is untouched.
    assert _deadline_rows(closed.id) == closed_before
    assert _recomputed(hr, closed.id) == []
    # Removing the override moves the open case back (and says so once more).
    override_id = r.json["id"]
    assert hr.delete(f"/api/v1/calendar/{override_id}").status_code == 200
    case = get_case(hr, open_case.id)
    assert iso_local(case["investigate_due"]) == at(2026, 9, 30, 10, 0)
    assert iso_local(case["reply_due"]) == at(2026, 10, 8, 10, 0)
    assert len(_recomputed(hr, open_case.id)) == 2


def test_a_make_up_workday_pulls_deadlines_in(app, api, make_complaint):
    received = at(2026, 9, 30, 10, 0)  # Wednesday before National Day: investigate due Thu 8 Oct 10:00
    c = make_complaint(received_at=received, now=received)
    hr = api("renshi")
    assert iso_local(get_case(hr, c.id)["investigate_due"]) == at(2026, 10, 8, 10, 0)
    r = hr.post("/api/v1/calendar/", json={"day": "2026-10-05", "is_workday": True, "note": "临时加班"})
    assert r.status_code == 201, r.json
    assert iso_local(get_case(hr, c.id)["investigate_due"]) == at(2026, 10, 5, 10, 0)
    # Changing the override in place (no longer a workday) moves it back.
    assert hr.put(f"/api/v1/calendar/{r.json['id']}", json={"is_workday": False}).status_code == 200
    assert iso_local(get_case(hr, c.id)["investigate_due"]) == at(2026, 10, 8, 10, 0)
    assert len(_recomputed(hr, c.id)) == 2


def test_calendar_screen_make_up_workday_recomputes(app, api, web, make_complaint):
    received = at(2026, 9, 30, 10, 0)  # investigate due Thu 8 Oct 10:00
    c = make_complaint(received_at=received, now=received)
    browser = web("renshi")
    r = browser.post("/calendaroverrideview/add", data={"day": "2026-10-05", "is_workday": "y", "note": "临时加班"})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    db.session.expire_all()
    assert iso_local(get_case(api("renshi"), c.id)["investigate_due"]) == at(2026, 10, 5, 10, 0)
    assert len(_recomputed(api("renshi"), c.id)) == 1


def test_calendar_screen_holiday_recomputes(app, api, web, make_complaint):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    browser = web("renshi")
    r = browser.post("/calendaroverrideview/add", data={"day": "2026-09-30", "note": "停电"})
    assert r.status_code == 302, "the holiday was not saved"
    db.session.expire_all()
    assert iso_local(get_case(api("renshi"), c.id)["investigate_due"]) == at(2026, 10, 8, 10, 0)


def test_only_rule_editors_change_the_calendar(app, api, make_complaint):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    for login in ("zongjingli", "zhuguan_a", "kefu"):
        r = api(login).post("/api/v1/calendar/", json={"day": "2026-09-30", "is_workday": False})
        assert r.status_code in (401, 403), (login, r.status_code)
    assert db.session.scalars(select(CalendarOverride)).all() == []
    assert _recomputed(api("renshi"), c.id) == []


def _rule(stage: str) -> SlaRule:
    return db.session.scalars(select(SlaRule).where(SlaRule.stage == stage, SlaRule.level_id.is_(None))).one()


def test_changing_an_sla_rule_moves_open_cases_of_that_stage(app, api, make_complaint, org):
    open_case = make_complaint(received_at=RECEIVED, now=RECEIVED)
    investigating = make_complaint(received_at=RECEIVED, now=RECEIVED)
    act(app, org, investigating, "judge_valid", "renshi", at(2026, 9, 29, 11, 0))
    act(app, org, investigating, "dispatch", "renshi", at(2026, 9, 29, 11, 5))
    act(app, org, investigating, "start_investigation", "zhuguan_a", at(2026, 9, 29, 15, 0))
    closed = _closed_case(make_complaint, api)
    closed_before = _deadline_rows(closed.id)
    met_before = _deadline_rows(investigating.id)
    hr = api("renshi")
    rule_id = _rule("investigate").id
    r = hr.put(f"/api/v1/slarule/{rule_id}", json={"amount": 2})
    assert r.status_code == 200, r.json
    case = get_case(hr, open_case.id)
    assert iso_local(case["investigate_due"]) == at(2026, 10, 8, 10, 0)
    assert iso_local(case["reply_due"]) == at(2026, 10, 8, 10, 0), "the reply rule did not change"
    entries = _recomputed(hr, open_case.id)
    assert len(entries) == 1 and [m["stage"] for m in entries[0]["data"]["moves"]] == ["investigate"]
    # A stage already met keeps its time; a closed case keeps everything.
    assert _deadline_rows(investigating.id) == met_before
    assert _recomputed(hr, investigating.id) == []
    assert _deadline_rows(closed.id) == closed_before
    assert _recomputed(hr, closed.id) == []
    # The scan follows the new time: nothing is overdue at the old one.
    travel(app, at(2026, 9, 30, 10, 30))
    assert ("investigate", "overdue") not in sla_events(get_timeline(hr, open_case.id)["result"])
    travel(app, at(2026, 10, 8, 10, 0))
    assert sla_events(get_timeline(hr, open_case.id)["result"])[("investigate", "overdue")] == 1


def test_rule_change_of_warning_point_and_bad_values(app, api, make_complaint):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    hr = api("renshi")
    rule_id = _rule("reply").id
    r = hr.put(f"/api/v1/slarule/{rule_id}", json={"amount": 0})
    assert r.status_code == 422, r.json
    r = hr.put(f"/api/v1/slarule/{rule_id}", json={"warn_ratio": 1.5})
    assert r.status_code == 422, r.json
    assert _recomputed(hr, c.id) == []
    assert api("zongjingli").put(f"/api/v1/slarule/{rule_id}", json={"amount": 5}).status_code == 403
    db.session.expire_all()
    assert _rule("reply").amount == 2
    # Moving only the warning point is not a move of the deadline: no timeline line, but the
    # scan warns at the new point.
    assert hr.put(f"/api/v1/slarule/{rule_id}", json={"warn_ratio": 0.5}).status_code == 200
    deadline = next(d for d in get_timeline(hr, c.id)["deadlines"] if d["stage"] == "reply")
    # 50 % of 900 working minutes from Tue 10:00: 390 on Tuesday + 60 on Wednesday = 10:00.
    assert iso_local(deadline["warn_at"]) == at(2026, 9, 30, 10, 0)
    travel(app, at(2026, 9, 30, 10, 0))
    assert sla_events(get_timeline(hr, c.id)["result"])[("reply", "warning")] == 1


def test_new_specific_rule_takes_over_for_its_level(app, api, make_complaint, org):
    from app.models import Level

    normal = make_complaint(received_at=RECEIVED, now=RECEIVED)
    important = make_complaint(level="important", received_at=RECEIVED, now=RECEIVED)
    hr = api("renshi")
    level_id = db.session.scalars(select(Level.id).where(Level.code == "important")).one()
    r = hr.post(
        "/api/v1/slarule/",
        json={
            "stage": "reply",
            "level": level_id,
            "amount": 4,
            "unit": "working_hours",
            "warn_ratio": 0.9,
            "escalate_after": 2,
            "remind_roles": "department_head",
            "escalate_role": "总经理",
            "active": True,
            "description": "重要投诉 4 小时答复",
        },
    )
    assert r.status_code == 201, r.json
    assert iso_local(get_case(hr, important.id)["reply_due"]) == at(2026, 9, 29, 15, 30)
    assert iso_local(get_case(hr, normal.id)["reply_due"]) == at(2026, 10, 8, 10, 0)
    assert len(_recomputed(hr, important.id)) == 1 and _recomputed(hr, normal.id) == []


def test_archived_case_is_untouched_by_recompute(app, api, make_complaint, org):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    steps = [
        ("judge_valid", "renshi", {}),
        ("dispatch", "renshi", {}),
        ("start_investigation", "zhuguan_a", {}),
        ("propose_plan", "zhuguan_a", {"findings": "属实", "resolution_plan": "维修"}),
        ("reply", "zhuguan_a", {"reply_text": "已修复"}),
        ("feed_back", "zhuguan_a", {"feedback_note": "好"}),
        ("follow_up", "renshi", {"satisfaction": "satisfied", "follow_up_note": "满意"}),
        ("close", "renshi", {"close_note": "结案", "customer_informed": "phone"}),
        ("archive", "renshi", {}),
    ]
    for minute, (action, login, values) in enumerate(steps):
        act(app, org, c, action, login, at(2026, 9, 29, 11, minute), **values)
    before = _deadline_rows(c.id)
    events_before = db.session.scalars(select(ComplaintEvent.id).where(ComplaintEvent.complaint_id == c.id)).all()
    hr = api("renshi")
    assert hr.post("/api/v1/calendar/", json={"day": "2026-10-08", "is_workday": False}).status_code == 201
    assert hr.put(f"/api/v1/slarule/{_rule('follow_up').id}", json={"amount": 5}).status_code == 200
    assert _deadline_rows(c.id) == before
    assert (
        db.session.scalars(select(ComplaintEvent.id).where(ComplaintEvent.complaint_id == c.id)).all() == events_before
    )
    assert Counter(state for _, state, _ in before) == Counter({"met": 3})


def test_correcting_the_receipt_time_moves_the_deadlines(app, api, make_complaint):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    hr = api("renshi")
    r = hr.put(f"/api/v1/complaint/{c.id}", json={"received_at": "2026-09-28T10:00:00+08:00"})
    assert r.status_code == 200, r.json
    case = get_case(hr, c.id)
    assert iso_local(case["received_at"]) == at(2026, 9, 28, 10, 0)
    assert iso_local(case["investigate_due"]) == at(2026, 9, 29, 10, 0)


def test_raising_the_level_to_major_starts_the_chain(app, api, make_complaint):
    from app.models import Level

    c = make_complaint()
    hr = api("renshi")
    major = db.session.scalars(select(Level.id).where(Level.code == "major")).one()
    assert hr.put(f"/api/v1/complaint/{c.id}", json={"level": major}).status_code == 200
    stages = {d["stage"] for d in get_timeline(hr, c.id)["deadlines"] if d["state"] == "open"}
    assert {"notify_department", "report_leader", "report_gm", "written_report"} <= stages


def _rule_form(rule: SlaRule, **changes) -> dict:
    form = {
        "stage": rule.stage,
        "amount": str(rule.amount),
        "unit": rule.unit,
        "warn_ratio": str(rule.warn_ratio),
        "remind_roles": rule.remind_roles or "",
        "escalate_role": rule.escalate_role or "",
        "escalate_after": str(rule.escalate_after),
        "description": rule.description or "",
        "active": "y",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_sla_rules_screen_recomputes(app, api, web, make_complaint):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    rule = _rule("reply")
    r = web("renshi").post(f"/slaruleview/edit/{rule.id}", data=_rule_form(rule, amount="3"))
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    db.session.expire_all()
    assert _rule("reply").amount == 3
    assert iso_local(get_case(api("renshi"), c.id)["reply_due"]) == at(2026, 10, 9, 10, 0)
    assert len(_recomputed(api("renshi"), c.id)) == 1


def test_sla_rules_screen_can_switch_a_rule_off(app, api, web, make_complaint):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    rule = _rule("reply")
    r = web("renshi").post(f"/slaruleview/edit/{rule.id}", data=_rule_form(rule, active=None))
    assert r.status_code == 302, "the rule was not saved"
    db.session.expire_all()
    assert _rule("reply").active is False
    assert get_case(api("renshi"), c.id)["reply_due"] is None  # no rule, no time limit
