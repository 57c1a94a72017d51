"""Corrective actions (整改措施, 纠正与预防): what, owner, due date; verified at follow-up,
escalated when overdue, listed in the monthly analysis.

A quality complaint received Tue 2026-10-13 09:30 is under investigation from 10:00.
Office hours 09:00–12:00 and 13:30–18:00 (7.5 h a day), so by default the temporary
countermeasure (8 working hours) is due Wed 14 Oct 10:30 and the permanent one
(2 working days) Thu 15 Oct 10:00.
"""

from __future__ import annotations

from sla_support import act, at, get_timeline, iso_local, travel
from sqlalchemy import select

from app import db
from app.models import Complaint, CorrectiveAction

RECEIVED = at(2026, 10, 13, 9, 30)


def _case(app, org, make_complaint, **kw):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED, category="quality", **kw)
    act(app, org, c, "judge_valid", "renshi", at(2026, 10, 13, 9, 40))
    act(app, org, c, "dispatch", "renshi", at(2026, 10, 13, 9, 45))
    act(app, org, c, "start_investigation", "zhuguan_a", at(2026, 10, 13, 10, 0))
    return c


def _add(client, cid, expect=201, **fields):
    r = client.post(f"/api/v1/complaint/{cid}/corrective", json=fields)
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def _step(client, cid, aid, step, expect=200, **fields):
    r = client.post(f"/api/v1/complaint/{cid}/corrective/{aid}/{step}", json=fields)
    assert r.status_code == expect, (step, r.status_code, r.get_json())
    return r.get_json()


def test_defaults_refusals_overdue_once_and_escalation_once(app, api, make_complaint, org):
    c = _case(app, org, make_complaint)
    head, hr, kefu, other = api("zhuguan_a"), api("renshi"), api("kefu"), api("zhuguan_b")
    owner = org.staff_of("zhuguan_a").id
    # Default due times from the working-day calendar (added at the time of the investigation).
    from app.complaints import corrective

    temp = corrective.add(
        db.session,
        c,
        org.principal("zhuguan_a"),
        {"kind": "temporary", "description": "隔离同批次产品", "owner": owner},
        now=at(2026, 10, 13, 10, 0),
    )
    perm = corrective.add(
        db.session,
        c,
        org.principal("zhuguan_a"),
        {"kind": "permanent", "description": "修改来料检验规程", "owner": owner},
        now=at(2026, 10, 13, 10, 0),
    )
    db.session.commit()
    assert temp.due_at == at(2026, 10, 14, 10, 30)
    assert perm.due_at == at(2026, 10, 15, 10, 0)
    listed = head.get(f"/api/v1/complaint/{c.id}/corrective").get_json()["result"]
    assert [(a["kind"], a["state"]) for a in listed] == [("temporary", "open"), ("permanent", "open")]
    assert iso_local(listed[0]["due_at"]) == at(2026, 10, 14, 10, 30)

    # Refusals: wrong role, other department, bad fields.
    _add(kefu, c.id, expect=403, kind="general", description="x", owner=owner)
    r = other.post(f"/api/v1/complaint/{c.id}/corrective", json={"description": "x", "owner": owner})
    assert r.status_code == 403
    body = _add(head, c.id, expect=422, kind="weird", description="", owner=0)
    assert set(body["message"]) == {"kind", "description", "owner"}
    _add(head, c.id, expect=422, description="过去的期限", owner=owner, due_at="2020-01-01T10:00")

    # Overdue once, escalated once (one working day after the due time), on the timeline.
    for when in (at(2026, 10, 14, 10, 29), at(2026, 10, 14, 10, 31), at(2026, 10, 14, 15, 0)):
        travel(app, when, only=["corrective_scan"])
    events = [e["action"] for e in get_timeline(hr, c.id)["result"]]
    assert events.count("corrective_overdue") == 1 and "corrective_escalated" not in events
    for when in (at(2026, 10, 15, 10, 31), at(2026, 10, 16, 9, 0)):
        travel(app, when, only=["corrective_scan"])
    events = [e["action"] for e in get_timeline(hr, c.id)["result"]]
    # temporary: overdue + escalated; permanent (due 15 Oct 10:00): overdue only so far.
    assert events.count("corrective_overdue") == 2 and events.count("corrective_escalated") == 1
    assert db.session.get(Complaint, c.id).supervised is True


def test_done_then_verified_at_follow_up_and_close_waits_for_it(app, api, make_complaint, org):
    c = _case(app, org, make_complaint)
    head, hr = api("zhuguan_a"), api("renshi")
    owner = org.staff_of("zhuguan_a").id
    a = _add(head, c.id, kind="general", description="加强巡检", owner=owner, due_at="2099-12-31T18:00")["result"]
    _step(head, c.id, a["id"], "verify", expect=409)  # not done yet
    _step(head, c.id, a["id"], "complete", expect=422)  # say what was done
    _step(head, c.id, a["id"], "complete", note="已建立巡检表")
    _step(head, c.id, a["id"], "verify", expect=403, passed=True)  # HR verifies
    for action, who, fields in (
        ("propose_plan", head, {"findings": "属实", "resolution_plan": "更换"}),
        ("reply", head, {"reply_text": "已更换"}),
        ("feed_back", head, {"feedback_note": "完成"}),
        ("follow_up", hr, {"satisfaction": "satisfied", "follow_up_note": "满意"}),
    ):
        r = who.post(f"/api/v1/complaint/{c.id}/transition", json={"action": action, **fields})
        assert r.status_code == 200, r.get_json()
    r = hr.post(
        f"/api/v1/complaint/{c.id}/transition",
        json={"action": "close", "close_note": "结案", "customer_informed": "phone"},
    )
    assert r.status_code == 409 and "整改" in r.get_json()["message"]
    # A failed verification opens it again; a passed one lets the case close.
    _step(hr, c.id, a["id"], "verify", expect=422, passed=False)
    again = _step(hr, c.id, a["id"], "verify", passed=False, note="巡检表未执行")["result"]
    assert again["state"] == "open"
    _step(head, c.id, a["id"], "complete", note="已执行并签字")
    done = _step(hr, c.id, a["id"], "verify", passed=True, note="现场核实")["result"]
    assert done["state"] == "verified"
    r = hr.post(
        f"/api/v1/complaint/{c.id}/transition",
        json={"action": "close", "close_note": "结案", "customer_informed": "phone"},
    )
    assert r.status_code == 200, r.get_json()
    events = [e["action"] for e in get_timeline(hr, c.id)["result"]]
    assert events.count("corrective_done") == 2 and "corrective_rejected" in events
    assert "corrective_verified" in events


def test_only_valid_cases_and_the_case_page_and_the_monthly_analysis(app, api, web, make_complaint, org):
    head = api("zhuguan_a")
    owner = org.staff_of("zhuguan_a").id
    plain = make_complaint(received_at=RECEIVED, now=RECEIVED)
    act(
        app,
        org,
        plain,
        "judge_invalid",
        "renshi",
        at(2026, 10, 13, 9, 40),
        validity_reason="不属实",
        polite_reply="感谢",
    )
    _add(head, plain.id, expect=409, description="x", owner=owner)
    c = _case(app, org, make_complaint)
    # From the case page form.
    page = web("zhuguan_a")
    show = page.get(f"/complaintview/show/{c.id}").get_data(as_text=True)
    assert "corrective-actions" in show
    r = page.post(
        f"/complaintview/corrective/{c.id}",
        data={"step": "add", "kind": "temporary", "description": "<b>封存</b>库存", "owner": owner, "due_at": ""},
    )
    assert r.status_code in (302, 303)
    row = db.session.scalars(select(CorrectiveAction).where(CorrectiveAction.complaint_id == c.id)).one()
    assert row.kind == "temporary" and row.description == "<b>封存</b>库存"
    html = page.get(f"/complaintview/show/{c.id}").get_data(as_text=True)
    assert "&lt;b&gt;封存&lt;/b&gt;库存" in html and "<b>封存</b>" not in html
    # The monthly analysis of the month it was added in lists it.
    from app.quality import reports
    from app.quality.analytics import period_containing
    from app.timeutil import local_date

    data = reports.report_data(db.session, period_containing("month", local_date(row.created_at)))
    assert [(a["number"], a["kind"]) for a in data["corrective"]] == [(c.number, "临时对策")]
