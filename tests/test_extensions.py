"""Requests for more time (延期): asked by the department head before the deadline,
decided by 人事行政经理 (一般 cases) or 总经理 (重要 and above); an approval moves the
deadline, so the old due time passes without an overdue mark.

The REST steps run at the real current time (a case registered now has its
deadlines ahead); the scan is then run at chosen instants.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sla_support import at, get_case, get_timeline, iso_local, sla_events, take, travel
from sqlalchemy import select

from app import db, lifecycle
from app.complaints import steps as services
from app.complaints import workflow
from app.models import Extension
from app.time_limits.sla import load_calendar
from app.timeutil import utcnow

CONSENT = {"consent_by": "王先生（投诉人）", "consent_method": "phone"}


def _actions(client, cid):
    return [t["action"] for t in client.get(f"/api/v1/complaint/{cid}/transitions").json["result"]]


def _dispatched(api, make_complaint, level="normal", department="GC"):
    c = make_complaint(level=level, department=department)
    hr = api("renshi")
    take(hr, c.id, "judge_valid", validity_reason="属实")
    take(hr, c.id, "dispatch")
    return c


def test_head_requests_hr_approves_and_the_deadline_moves(app, api, make_complaint):
    c = _dispatched(api, make_complaint)
    hr, head, gm = api("renshi"), api("zhuguan_a"), api("zongjingli")
    before = get_case(hr, c.id)
    old_due = iso_local(before["investigate_due"])
    assert "request_extension" in _actions(head, c.id)
    form = next(
        t
        for t in head.get(f"/api/v1/complaint/{c.id}/transitions").json["result"]
        if t["action"] == "request_extension"
    )
    assert set(next(f for f in form["fields"] if f["name"] == "stage")["choices"]) == {"investigate", "reply"}
    take(
        head,
        c.id,
        "request_extension",
        stage="investigate",
        amount=1,
        unit="working_days",
        reason="需调取监控录像",
        **CONSENT,
    )
    # One request at a time.
    assert "request_extension" not in _actions(head, c.id)
    take(
        head,
        c.id,
        "request_extension",
        expect=409,
        stage="reply",
        amount=1,
        unit="working_days",
        reason="再延",
        **CONSENT,
    )
    # The department head cannot decide his own request; HR is told and decides.
    take(head, c.id, "decide_extension", expect=403, decision="approve")
    assert "decide_extension" in _actions(hr, c.id)
    hr_inbox = hr.get("/api/v1/notification/?q=(page_size:100)").json["result"]
    assert [n["kind"] for n in hr_inbox if n["complaint_id"] == c.id].count("request_extension") == 1
    body = take(hr, c.id, "decide_extension", decision="approve", note="同意延期一天")
    new_due = iso_local(body["result"]["investigate_due"])
    cal = load_calendar(db.session)
    assert new_due == cal.add(old_due, 1, "working_days").astimezone(new_due.tzinfo)
    assert cal.working_minutes_between(old_due, new_due) == 450
    assert iso_local(body["result"]["reply_due"]) == iso_local(before["reply_due"]), "only the asked stage moves"
    ext = db.session.scalars(select(Extension).where(Extension.complaint_id == c.id)).one()
    assert ext.status == "approved" and ext.old_due_at == old_due and ext.new_due_at == new_due
    assert ext.amount == 1 and ext.unit == "working_days" and ext.reason == "需调取监控录像"
    timeline = get_timeline(hr, c.id)
    events = [e for e in timeline["result"] if e["action"] in ("request_extension", "decide_extension")]
    assert [e["action"] for e in events] == ["request_extension", "decide_extension"]
    assert events[0]["actor"]["username"] == "zhuguan_a" and events[0]["data"]["stage"] == "investigate"
    assert events[1]["actor"]["username"] == "renshi" and events[1]["data"]["decision"] == "approve"
    assert {e["kind"] for e in events} == {"extension"}
    deadline = next(d for d in timeline["deadlines"] if d["stage"] == "investigate")
    assert iso_local(deadline["due_at"]) == new_due
    head_inbox = head.get("/api/v1/notification/?q=(page_size:100)").json["result"]
    assert [n["kind"] for n in head_inbox if n["complaint_id"] == c.id].count("decide_extension") == 1
    # The old due time passes quietly; the new one does not.
    travel(app, old_due + timedelta(minutes=1))
    got = sla_events(get_timeline(hr, c.id)["result"])
    assert ("investigate", "overdue") not in got
    assert get_case(hr, c.id)["overdue"] is False
    travel(app, new_due)
    assert sla_events(get_timeline(hr, c.id)["result"])[("investigate", "overdue")] == 1
    assert gm  # the GM was not needed for a 一般 case


def test_refused_extension_leaves_the_deadline(app, api, make_complaint):
    c = _dispatched(api, make_complaint)
    hr, head = api("renshi"), api("zhuguan_a")
    old_due = iso_local(get_case(hr, c.id)["reply_due"])
    take(head, c.id, "request_extension", stage="reply", amount=3, unit="working_hours", reason="客户出差", **CONSENT)
    take(hr, c.id, "decide_extension", decision="refuse", note="不同意")
    assert iso_local(get_case(hr, c.id)["reply_due"]) == old_due
    ext = db.session.scalars(select(Extension).where(Extension.complaint_id == c.id)).one()
    assert ext.status == "refused" and ext.new_due_at is None
    travel(app, old_due)
    assert sla_events(get_timeline(hr, c.id)["result"])[("reply", "overdue")] == 1
    # After a decision the head may ask again (while the clock still runs).
    assert "decide_extension" not in _actions(hr, c.id)


@pytest.mark.parametrize("level", ["important", "major"])
def test_general_manager_decides_from_important_up(app, api, make_complaint, level):
    c = _dispatched(api, make_complaint, level=level)
    hr, head, gm = api("renshi"), api("zhuguan_a"), api("zongjingli")
    old_due = iso_local(get_case(hr, c.id)["investigate_due"])
    take(
        head,
        c.id,
        "request_extension",
        stage="investigate",
        amount=2,
        unit="working_hours",
        reason="涉及多部门",
        **CONSENT,
    )
    assert "decide_extension" not in _actions(hr, c.id)
    assert "decide_extension" in _actions(gm, c.id)
    take(hr, c.id, "decide_extension", expect=403, decision="approve")
    gm_inbox = gm.get("/api/v1/notification/?q=(page_size:100)").json["result"]
    assert [n["kind"] for n in gm_inbox if n["complaint_id"] == c.id].count("request_extension") == 1
    body = take(gm, c.id, "decide_extension", decision="approve")
    new_due = iso_local(body["result"]["investigate_due"])
    assert load_calendar(db.session).working_minutes_between(old_due, new_due) == 120


def test_hr_decides_a_normal_case(app, api, make_complaint):
    c = _dispatched(api, make_complaint)
    take(
        api("zhuguan_a"),
        c.id,
        "request_extension",
        stage="investigate",
        amount=1,
        unit="working_days",
        reason="x",
        **CONSENT,
    )
    assert "decide_extension" in _actions(api("renshi"), c.id)


def test_only_hr_decides_a_normal_case(app, api, make_complaint):
    c = _dispatched(api, make_complaint)
    take(
        api("zhuguan_a"),
        c.id,
        "request_extension",
        stage="investigate",
        amount=1,
        unit="working_days",
        reason="x",
        **CONSENT,
    )
    take(api("zongjingli"), c.id, "decide_extension", expect=403, decision="approve")


def test_who_may_request(app, api, make_complaint):
    c = _dispatched(api, make_complaint, department="GC")
    fields = dict(stage="investigate", amount=1, unit="working_days", reason="需要时间", **CONSENT)
    take(api("zhuguan_b"), c.id, "request_extension", expect=403, **fields)  # another department
    take(api("renshi"), c.id, "request_extension", expect=403, **fields)
    take(api("kefu"), c.id, "request_extension", expect=403, **fields)
    head = api("zhuguan_a")
    r = head.post(
        f"/api/v1/complaint/{c.id}/transition",
        json={
            "action": "request_extension",
            "stage": "investigate",
            "amount": 0,
            "unit": "working_days",
            "reason": "x",
            **CONSENT,
        },
    )
    assert r.status_code == 422 and "amount" in r.json["message"]
    r = head.post(
        f"/api/v1/complaint/{c.id}/transition",
        json={
            "action": "request_extension",
            "stage": "investigate",
            "amount": 1,
            "unit": "weeks",
            "reason": "x",
            **CONSENT,
        },
    )
    assert r.status_code == 422 and "unit" in r.json["message"]
    r = head.post(
        f"/api/v1/complaint/{c.id}/transition",
        json={"action": "request_extension", "stage": "investigate", "amount": 1, "unit": "working_days", **CONSENT},
    )
    assert r.status_code == 422 and "reason" in r.json["message"]
    assert db.session.scalars(select(Extension)).all() == []


def test_major_chain_stages_cannot_be_extended(app, api, make_complaint):
    c = make_complaint(level="major")
    r = api("zhuguan_a").post(
        f"/api/v1/complaint/{c.id}/transition",
        json={
            "action": "request_extension",
            "stage": "report_gm",
            "amount": 5,
            "unit": "minutes",
            "reason": "x",
            **CONSENT,
        },
    )
    assert r.status_code == 422 and "stage" in r.json["message"]


def test_after_the_deadline_a_request_is_refused(app, api, make_complaint):
    received = utcnow() - timedelta(days=30)  # both running clocks are long past due
    c = make_complaint(received_at=received, now=received)
    head = api("zhuguan_a")
    assert "request_extension" not in _actions(head, c.id)
    take(
        head,
        c.id,
        "request_extension",
        expect=409,
        stage="reply",
        amount=1,
        unit="working_days",
        reason="晚了",
        **CONSENT,
    )
    assert db.session.scalars(select(Extension)).all() == []


def test_extension_of_a_stage_already_due_is_refused_while_another_runs(app, make_complaint, org):
    received = at(2026, 9, 29, 10, 0)
    c = make_complaint(received_at=received, now=received)
    principal = org.principal("zhuguan_a")
    late = at(2026, 9, 30, 11, 0)  # investigation due 10:00, reply still running until 8 Oct
    with pytest.raises(lifecycle.TransitionError) as refused:
        services.take_transition(
            db.session,
            c,
            "request_extension",
            principal,
            dict(stage="investigate", amount=1, unit="working_days", reason="晚了", **CONSENT),
            now=late,
        )
    assert refused.value.kind == "fields" and "stage" in refused.value.errors
    db.session.rollback()
    # Exactly at the due time it is too late as well.
    with pytest.raises(lifecycle.TransitionError):
        services.take_transition(
            db.session,
            c,
            "request_extension",
            principal,
            dict(stage="investigate", amount=1, unit="working_days", reason="晚了", **CONSENT),
            now=at(2026, 9, 30, 10, 0),
        )
    db.session.rollback()
    services.take_transition(
        db.session,
        c,
        "request_extension",
        principal,
        dict(stage="reply", amount=1, unit="working_days", reason="还来得及", **CONSENT),
        now=late,
    )
    db.session.commit()
    assert db.session.scalars(select(Extension.status)).all() == ["pending"]


def test_approval_at_a_chosen_time_prevents_the_old_overdue(app, api, make_complaint, org):
    """Time-travel version: request and approval before the due time, scans either side of it."""
    received = at(2026, 9, 29, 10, 0)
    c = make_complaint(received_at=received, now=received)
    hr = api("renshi")
    services.take_transition(
        db.session,
        c,
        "request_extension",
        org.principal("zhuguan_a"),
        dict(stage="investigate", amount=1, unit="working_days", reason="监控", **CONSENT),
        now=at(2026, 9, 29, 16, 0),
    )
    db.session.commit()
    travel(app, at(2026, 9, 30, 9, 20))  # the old warning point passes before the decision
    assert sla_events(get_timeline(hr, c.id)["result"]) == Counter({("investigate", "warning"): 1})
    services.take_transition(
        db.session, c, "decide_extension", org.principal("renshi"), dict(decision="approve"), now=at(2026, 9, 30, 9, 30)
    )
    db.session.commit()
    case = get_case(hr, c.id)
    # One working day more: Wed 30 Sep 10:00 -> Thu 8 Oct 10:00 (National Day in between).
    assert iso_local(case["investigate_due"]) == at(2026, 10, 8, 10, 0)
    assert case["warned"] is False, "the new warning point lies ahead"
    travel(app, at(2026, 9, 30, 10, 30))
    assert ("investigate", "overdue") not in sla_events(get_timeline(hr, c.id)["result"])
    # The new warning point (90 % of two working days from receipt) is armed again.
    travel(app, at(2026, 9, 30, 17, 30))
    assert sla_events(get_timeline(hr, c.id)["result"]) == Counter(
        {("investigate", "warning"): 2, ("reply", "warning"): 1}
    )
    travel(app, at(2026, 10, 8, 10, 0))
    travel(app, at(2026, 10, 8, 10, 0))
    got = sla_events(get_timeline(hr, c.id)["result"])
    assert got[("investigate", "overdue")] == 1 and got[("investigate", "warning")] == 2


@pytest.mark.parametrize("amount, unit", [(100000, "working_days"), (10**10, "minutes")])
def test_an_absurd_extension_is_refused_not_a_server_error(app, api, make_complaint, amount, unit):
    c = _dispatched(api, make_complaint)
    hr, head = api("renshi"), api("zhuguan_a")
    r = head.post(
        f"/api/v1/complaint/{c.id}/transition",
        json={
            "action": "request_extension",
            "stage": "investigate",
            "amount": amount,
            "unit": unit,
            "reason": "很久",
            **CONSENT,
        },
    )
    assert r.status_code in (200, 422), r.status_code
    if r.status_code == 200:
        r = hr.post(f"/api/v1/complaint/{c.id}/transition", json={"action": "decide_extension", "decision": "approve"})
        assert r.status_code < 500, (r.status_code, r.get_json())


# --- The policy: 1 working day of notice, the customer's consent ------------------------------


def _request(org, c, when, stage="reply", **extra):
    values = dict(stage=stage, amount=1, unit="working_days", reason="等待厂家配件", **CONSENT)
    values.update(extra)
    return services.take_transition(db.session, c, "request_extension", org.principal("zhuguan_a"), values, now=when)


def _decide_actions(org, c, login, when):
    db.session.expire_all()
    facts = services.case_facts(db.session, c, when)
    return [t.action for t in workflow.available(services.actor_for(org.principal(login)), facts)]


def test_request_a_working_day_ahead_is_decided_by_hr(app, org, make_complaint):
    received = at(2026, 11, 2, 10, 0)  # Mon: reply due Wed 4 Nov 10:00
    c = make_complaint(received_at=received, now=received)
    _request(org, c, at(2026, 11, 3, 9, 30), consent_at="2026-11-03T09:20")
    db.session.commit()
    ext = db.session.scalars(select(Extension).where(Extension.complaint_id == c.id)).one()
    assert ext.late_request is False
    assert ext.consent_by == CONSENT["consent_by"] and ext.consent_method == "phone"
    assert ext.consent_at == at(2026, 11, 3, 9, 20)
    assert "decide_extension" in _decide_actions(org, c, "renshi", at(2026, 11, 3, 9, 31))
    assert "decide_extension" not in _decide_actions(org, c, "zongjingli", at(2026, 11, 3, 9, 31))


def test_late_request_goes_to_the_general_manager(app, api, org, make_complaint):
    received = at(2026, 11, 2, 10, 0)
    c = make_complaint(received_at=received, now=received)
    event = _request(org, c, at(2026, 11, 4, 9, 0))  # the deadline's own day, 1 hour before it
    db.session.commit()
    assert event.data["consent_by"] == CONSENT["consent_by"]
    ext = db.session.scalars(select(Extension).where(Extension.complaint_id == c.id)).one()
    assert ext.late_request is True and ext.consent_at == at(2026, 11, 4, 9, 0), "consent time defaults to now"
    assert "decide_extension" not in _decide_actions(org, c, "renshi", at(2026, 11, 4, 9, 1))
    assert "decide_extension" in _decide_actions(org, c, "zongjingli", at(2026, 11, 4, 9, 1))
    with pytest.raises(lifecycle.TransitionError) as refused:
        services.take_transition(
            db.session,
            c,
            "decide_extension",
            org.principal("renshi"),
            {"decision": "approve"},
            now=at(2026, 11, 4, 9, 5),
        )
    assert refused.value.kind == "role"
    db.session.rollback()
    gm_inbox = api("zongjingli").get("/api/v1/notification/?q=(page_size:100)").json["result"]
    assert [n["kind"] for n in gm_inbox if n["complaint_id"] == c.id].count("request_extension") == 1
    services.take_transition(
        db.session,
        c,
        "decide_extension",
        org.principal("zongjingli"),
        {"decision": "approve"},
        now=at(2026, 11, 4, 9, 5),
    )
    db.session.commit()
    db.session.refresh(ext)
    assert ext.status == "approved" and ext.new_due_at == at(2026, 11, 5, 10, 0)


def test_notice_counts_working_days_across_national_day(app, org, make_complaint):
    received = at(2026, 9, 29, 10, 0)  # reply due Thu 8 Oct 10:00; 1–7 Oct are holidays
    c = make_complaint(received_at=received, now=received)
    _request(org, c, at(2026, 9, 30, 15, 0))  # the last working day before the deadline's
    db.session.commit()
    assert db.session.scalars(select(Extension.late_request)).all() == [False]


def test_request_without_the_customers_consent_is_refused(app, api, make_complaint):
    c = _dispatched(api, make_complaint)
    head = api("zhuguan_a")
    fields = dict(stage="reply", amount=1, unit="working_days", reason="等待配件")
    body = take(head, c.id, "request_extension", expect=422, **fields)
    assert {"consent_by", "consent_method"} <= set(body["message"])
    body = take(head, c.id, "request_extension", expect=422, consent_by="王先生", consent_method="pigeon", **fields)
    assert set(body["message"]) == {"consent_method"}
    future = (utcnow() + timedelta(days=2)).isoformat()
    body = take(head, c.id, "request_extension", expect=422, consent_at=future, **CONSENT, **fields)
    assert set(body["message"]) == {"consent_at"}
    assert db.session.scalars(select(Extension)).all() == []
    take(head, c.id, "request_extension", consent_method="微信", consent_by="王先生", **fields)
    ext = db.session.scalars(select(Extension)).one()
    assert ext.consent_method == "wechat" and ext.consent_by == "王先生"
