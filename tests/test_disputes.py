"""Responsibility disputes (责任异议) and the supervising leader (分管领导).

The receiving department may object to a dispatch on the working day it receives the case
(有异议的，应在收到投诉处理单据的当日给出核查结果); the department's supervising leader, or
总经理, rules: uphold (the department keeps it) or reassign. The customer's clock (reply) keeps
running from registration; the new department's investigation limit runs from the ruling.
"""

from __future__ import annotations

from datetime import timedelta

from sla_support import act, at, get_case, get_timeline, iso_local, take

from app import db, lifecycle
from app.models import Dispute, Notification

RECEIVED = at(2026, 10, 13, 9, 30)  # Tuesday
DISPATCHED = at(2026, 10, 13, 10, 0)
OBJECTED = at(2026, 10, 13, 15, 0)
RULED = at(2026, 10, 14, 10, 0)  # Wednesday


def _dispatched(app, org, make_complaint, dispatched=DISPATCHED, received=RECEIVED):
    c = make_complaint(received_at=received, now=received)
    act(app, org, c, "judge_valid", "renshi", received + timedelta(minutes=10))
    act(app, org, c, "dispatch", "renshi", dispatched)
    return c


def _deadlines(client, cid):
    """stage -> the latest cycle of its clock, as the timeline API shows it."""
    latest = {}
    for d in get_timeline(client, cid)["deadlines"]:
        if d["stage"] not in latest or d["cycle"] > latest[d["stage"]]["cycle"]:
            latest[d["stage"]] = d
    return latest


def test_demo_departments_are_supervised_by_the_general_manager_and_editable(app, api, org):
    hr = api("renshi")
    gm_id = org.user("zongjingli").id
    departments = hr.get("/api/v1/department/?q=(page_size:100)").json["result"]
    assert departments and all(d["supervisor"]["id"] == gm_id for d in departments)
    ba = org.dept("BA")
    r = hr.put(f"/api/v1/department/{ba.id}", json={"supervisor": org.user("renshi").id})
    assert r.status_code == 200, r.json
    shown = hr.get(f"/api/v1/department/{ba.id}").json["result"]
    assert shown["supervisor"]["username"] == "renshi"


def test_dispute_upheld_the_department_keeps_the_case_and_its_clocks(app, api, org, make_complaint):
    c = _dispatched(app, org, make_complaint)
    hr = api("renshi")
    before = _deadlines(hr, c.id)
    head = api("zhuguan_a")
    offered = [t["action"] for t in head.get(f"/api/v1/complaint/{c.id}/transitions").json["result"]]
    assert "object_dispatch" not in offered  # the real clock is weeks past the day of receipt
    act(app, org, c, "object_dispatch", "zhuguan_a", OBJECTED, reason="电梯由维保公司负责，不属本部门")
    dispute = db.session.query(Dispute).filter_by(complaint_id=c.id).one()
    assert dispute.state == "open" and dispute.from_department.code == "GC"
    # The supervising leader (the demo 总经理) is told.
    told = db.session.query(Notification).filter_by(complaint_id=c.id, kind="dispute").all()
    assert org.user("zongjingli").id in {n.user_id for n in told}
    # Only one open dispute at a time.
    try:
        act(app, org, c, "object_dispatch", "zhuguan_a", OBJECTED + timedelta(minutes=5), reason="再次异议")
        raise AssertionError("a second objection was accepted")
    except lifecycle.TransitionError as exc:
        db.session.rollback()
        assert exc.kind == "state"
    act(app, org, c, "rule_dispute", "zongjingli", RULED, decision="uphold", note="属工程部职责")
    db.session.refresh(c)
    db.session.refresh(dispute)
    assert dispute.state == "upheld" and dispute.ruled_by_id == org.user("zongjingli").id
    assert c.department.code == "GC" and c.status.value == "dispatched"
    after = _deadlines(hr, c.id)
    assert after["investigate"]["due_at"] == before["investigate"]["due_at"]
    assert after["reply"]["due_at"] == before["reply"]["due_at"]
    actions = [e["action"] for e in get_timeline(hr, c.id)["result"]]
    assert actions.count("object_dispatch") == 1 and actions.count("rule_dispute") == 1
    # The ruling is final: the department cannot object again.
    take(head, c.id, "object_dispatch", expect=409, reason="仍有异议")


def test_dispute_reassigned_restarts_the_investigation_clock_from_the_ruling(app, api, org, make_complaint):
    from app.time_limits import sla

    c = _dispatched(app, org, make_complaint)
    hr = api("renshi")
    before = _deadlines(hr, c.id)
    act(app, org, c, "start_investigation", "zhuguan_a", at(2026, 10, 13, 11, 0))
    act(app, org, c, "object_dispatch", "zhuguan_a", OBJECTED, reason="系秩序部巡查范围")
    ba = org.dept("BA")
    act(app, org, c, "rule_dispute", "zongjingli", RULED, decision="reassign", department=ba.id, note="改派")
    db.session.refresh(c)
    assert c.department_id == ba.id and c.status.value == "dispatched" and c.signed_at is None
    after = _deadlines(hr, c.id)
    # The customer's clock keeps running from registration.
    assert after["reply"]["due_at"] == before["reply"]["due_at"] and after["reply"]["cycle"] == 1
    # The new department's investigation limit: 1 working day from the ruling (Wed 10:00 -> Thu 10:00).
    expected = sla.load_calendar(db.session).add(RULED, 1, "working_days")
    assert iso_local(after["investigate"]["due_at"]) == expected == at(2026, 10, 15, 10, 0)
    assert after["investigate"]["state"] == "open" and after["investigate"]["cycle"] == 2
    case = get_case(hr, c.id)
    assert iso_local(case["investigate_due"]) == expected
    dispute = db.session.query(Dispute).filter_by(complaint_id=c.id).one()
    assert dispute.state == "reassigned" and dispute.to_department_id == ba.id
    # The new department takes it up; the old one no longer acts on it.
    take(api("zhuguan_a"), c.id, "start_investigation", expect=403)
    act(app, org, c, "start_investigation", "zhuguan_b", at(2026, 10, 14, 14, 0))
    db.session.refresh(c)
    assert c.status.value == "investigating"
    timeline = get_timeline(hr, c.id)["result"]
    ruling = next(e for e in timeline if e["action"] == "rule_dispute")
    assert ruling["from_status"] == "investigating" and ruling["to_status"] == "dispatched"


def test_objection_after_the_day_of_receipt_is_refused_with_the_rules_wording(app, api, org, make_complaint):
    c = _dispatched(app, org, make_complaint, dispatched=at(2026, 10, 16, 10, 0))  # Friday
    try:
        act(app, org, c, "object_dispatch", "zhuguan_a", at(2026, 10, 19, 9, 30), reason="不属本部门")  # Monday
        raise AssertionError("a late objection was accepted")
    except lifecycle.TransitionError as exc:
        db.session.rollback()
        assert exc.kind == "state" and "2026-10-16" in exc.message
    # Through the API (the real clock is later still): 409 with the rule's wording, in Chinese.
    r = api("zhuguan_a").post(
        f"/api/v1/complaint/{c.id}/transition", json={"action": "object_dispatch", "reason": "不属本部门"}
    )
    assert r.status_code == 409, r.json
    assert "收到投诉处理单据的当日" in r.json["message"]
    assert db.session.query(Dispute).filter_by(complaint_id=c.id).count() == 0


def test_a_case_received_on_a_rest_day_may_be_objected_to_on_the_next_workday(app, org, make_complaint):
    from app.time_limits import sla

    cal = sla.load_calendar(db.session)
    saturday = at(2026, 10, 17, 10, 0)
    assert not cal.is_workday(saturday.date()) and cal.is_workday(at(2026, 10, 19).date())
    c = _dispatched(app, org, make_complaint, dispatched=saturday, received=at(2026, 10, 16, 16, 0))
    act(app, org, c, "object_dispatch", "zhuguan_a", at(2026, 10, 19, 17, 0), reason="不属本部门")
    assert db.session.query(Dispute).filter_by(complaint_id=c.id, state="open").count() == 1


def test_only_the_supervising_leader_or_the_general_manager_rules(app, api, org, make_complaint):
    c = _dispatched(app, org, make_complaint)
    # Another department's head cannot object.
    take(api("zhuguan_b"), c.id, "object_dispatch", expect=403, reason="不是我们的")
    act(app, org, c, "object_dispatch", "zhuguan_a", OBJECTED, reason="不属本部门")
    for login in ("renshi", "zhuguan_a", "zhuguan_b", "kefu"):
        take(api(login), c.id, "rule_dispute", expect=403, decision="uphold")
    # A deputy named as the department's supervising leader rules (here: the HR manager's user).
    hr = api("renshi")
    gc = org.dept("GC")
    assert hr.put(f"/api/v1/department/{gc.id}", json={"supervisor": org.user("renshi").id}).status_code == 200
    take(hr, c.id, "rule_dispute", expect=422, decision="reassign")  # reassign needs the department
    take(hr, c.id, "rule_dispute", expect=422, decision="reassign", department=gc.id)  # not the same one
    body = take(hr, c.id, "rule_dispute", decision="uphold", note="维持")
    assert body["result"]["status"] == "dispatched"
    assert db.session.query(Dispute).filter_by(complaint_id=c.id).one().state == "upheld"
    take(api("zongjingli"), c.id, "rule_dispute", expect=409, decision="uphold")  # nothing open any more


def test_dashboard_counts_disputes_per_department(app, api, org, make_complaint):
    now = at(2026, 11, 23, 10, 0)
    ba = org.dept("BA")
    first = _dispatched(
        app, org, make_complaint, dispatched=now - timedelta(hours=1), received=now - timedelta(hours=2)
    )
    second = _dispatched(
        app, org, make_complaint, dispatched=now - timedelta(hours=1), received=now - timedelta(hours=2)
    )
    act(app, org, first, "object_dispatch", "zhuguan_a", now, reason="不属本部门")
    act(app, org, second, "object_dispatch", "zhuguan_a", now, reason="不属本部门")
    act(app, org, first, "rule_dispute", "zongjingli", now + timedelta(hours=1), decision="reassign", department=ba.id)
    data = api("renshi").get("/api/v1/dashboard/data?period=month&at=2026-11-23").json
    disputes = data["disputes"]
    assert disputes["total"] == 2 and disputes["reassigned"] == 1 and disputes["open"] == 1
    row = disputes["by_department"][0]
    assert row["department"] == "工程部" and row["count"] == 2
    # A department head sees its own department's count only.
    assert api("zhuguan_b").get("/api/v1/dashboard/data?period=month&at=2026-11-23").json["disputes"]["total"] == 0
    assert api("zhuguan_a").get("/api/v1/dashboard/data?period=month&at=2026-11-23").json["disputes"]["total"] == 2
