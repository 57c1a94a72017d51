"""The seed policies' level schemes as presets loaded from the UI, each driving a case with time travel.

Four-level scheme (bank lobby): a 危机事件 received Tue 2026-10-13 10:00 must get its first
response by 10:10; missing it drafts an 80 元 overtime fine once; the first contact starts
the 24-hour second response; the dispatched case must be signed for within 10 minutes.
"""

from __future__ import annotations

from collections import Counter

from sla_support import act, at, get_timeline, iso_local, take, travel
from sqlalchemy import select

from app import db
from app.models import Level, Penalty, SlaRule

RECEIVED = at(2026, 10, 13, 10, 0)


def _deadlines(client, cid):
    return {d["stage"]: d for d in get_timeline(client, cid)["deadlines"]}


def _sla(client, cid):
    return Counter(
        ((e.get("data") or {}).get("stage"), e["action"])
        for e in get_timeline(client, cid)["result"]
        if e["action"] in ("warning", "overdue", "escalation")
    )


def test_presets_are_listed_and_loaded_from_the_ui_by_admin_only(app, web, api):
    admin = web("admin")
    page = admin.get("/policypresets/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for name in ("重大/重要/轻微", "不满意/十分不满意/重大投诉/危机事件", "有效投诉与沟通性投诉"):
        assert name in text
    r = admin.post("/policypresets/load/property_sop")
    assert r.status_code in (302, 303)
    active = set(db.session.scalars(select(Level.code).where(Level.active.is_(True))))
    assert active == {"ps_major", "ps_important", "ps_minor"}
    rules = db.session.scalars(select(SlaRule).join(Level).where(Level.code == "ps_important")).all()
    assert {(r.stage, r.amount, r.unit) for r in rules} >= {("report_leader", 1, "natural_hours")}
    # Loading twice leaves the same rules; an unknown preset is refused.
    admin.post("/policypresets/load/property_sop")
    again = db.session.scalars(select(SlaRule).join(Level).where(Level.code == "ps_important")).all()
    assert len(again) == len(rules)
    assert api("renshi").post("/api/v1/policy_preset/nonsense/load").status_code == 404
    assert api("kefu").post("/api/v1/policy_preset/four_level/load").status_code == 403
    assert api("zhuguan_a").get("/api/v1/policy_preset/").status_code == 403
    listed = api("renshi").get("/api/v1/policy_preset/").get_json()
    assert listed["current"] == "property_sop"
    assert {p["code"] for p in listed["result"]} == {
        "property_sop",
        "four_level",
        "effective_communicative",
        "window_service",
        "telecom_si",
        "etc_promise",
        "three_working_days",
    }


def test_four_level_first_and_second_response_sign_in_and_an_overtime_fine(app, api, make_complaint, org):
    hr = api("renshi")
    assert hr.post("/api/v1/policy_preset/four_level/load").status_code == 200
    c = make_complaint(level="fl_crisis", received_at=RECEIVED, now=RECEIVED)
    first = _deadlines(hr, c.id)["first_response"]
    assert iso_local(first["due_at"]) == at(2026, 10, 13, 10, 10)
    for when in (at(2026, 10, 13, 10, 9), at(2026, 10, 13, 10, 11), at(2026, 10, 13, 10, 12)):
        travel(app, when, only=["deadline_scan"])
    assert _sla(hr, c.id)[("first_response", "overdue")] == 1
    fines = db.session.scalars(select(Penalty).where(Penalty.complaint_id == c.id)).all()
    assert [(p.fine_amount, p.staff_id, p.status.value) for p in fines] == [(80, org.staff_of("kefu").id, "draft")]
    # The first contact (by the first responder) meets the clock late and starts the second response.
    act(app, org, c, "first_contact", "kefu", at(2026, 10, 13, 10, 15), note="已致电客户致歉并说明处理安排")
    deadlines = _deadlines(hr, c.id)
    assert deadlines["first_response"]["state"] == "met" and deadlines["first_response"]["late"] is True
    assert iso_local(deadlines["second_response"]["due_at"]) == at(2026, 10, 14, 10, 15)
    # Dispatch: the department signs for it within 10 minutes.
    act(app, org, c, "judge_valid", "renshi", at(2026, 10, 13, 10, 16))
    act(app, org, c, "dispatch", "renshi", at(2026, 10, 13, 10, 20))
    assert iso_local(_deadlines(hr, c.id)["sign_in"]["due_at"]) == at(2026, 10, 13, 10, 30)
    act(app, org, c, "sign_for", "zhuguan_a", at(2026, 10, 13, 10, 25))
    act(app, org, c, "second_contact", "zhuguan_a", at(2026, 10, 14, 9, 0), note="已上门查看并约定维修时间")
    travel(app, at(2026, 10, 14, 12, 0), only=["deadline_scan"])
    got = _sla(hr, c.id)
    assert ("sign_in", "overdue") not in got and ("second_response", "overdue") not in got
    # The seed's scheme has no reply limit of its own: no fine but the one miss, however often the scan runs.
    assert ("reply", "overdue") not in got
    travel(app, at(2026, 10, 14, 12, 5), only=["deadline_scan"])
    fines = db.session.scalars(select(Penalty).where(Penalty.complaint_id == c.id)).all()
    assert len(fines) == 1


def test_a_communicative_complaint_turned_into_an_effective_one_gets_the_effective_chain(app, api, make_complaint, org):
    hr = api("renshi")
    assert hr.post("/api/v1/policy_preset/effective_communicative/load").status_code == 200
    c = make_complaint(level="ec_vent", received_at=RECEIVED, now=RECEIVED)
    assert iso_local(_deadlines(hr, c.id)["reply"]["due_at"]) == at(2026, 10, 14, 10, 0)  # 1 working day
    effective = db.session.scalars(select(Level).where(Level.code == "ec_effective")).one()
    take(api("zhuguan_a"), c.id, "change_level", expect=403, level=effective.id, note="x")
    take(hr, c.id, "change_level", expect=422, level=effective.id)  # say why
    body = take(hr, c.id, "change_level", level=effective.id, note="客户情绪背后是真实的服务过错")
    assert body["result"]["level"]["id"] == effective.id
    reply = _deadlines(hr, c.id)["reply"]
    assert reply["state"] == "open"
    assert iso_local(reply["due_at"]) > at(2026, 10, 14, 10, 0)  # 2 working days from receipt
    actions = [e["action"] for e in get_timeline(hr, c.id)["result"]]
    assert "change_level" in actions and "deadline_recomputed" in actions
