"""Overtime fines (超时扣罚): a missed deadline drafts one penalty case for review, never a fine.

A 工程部 case received Tue 2026-09-29 10:00 must have its investigation started by
Wed 30 Sep 10:00 (1 working day). The investigation rule carries a 50 元 overtime fine.
"""

from __future__ import annotations

from sla_support import at, travel
from sqlalchemy import select

from app import db
from app.models import Penalty, SlaRule

RECEIVED = at(2026, 9, 29, 10, 0)


def _fine_on(stage: str, amount: int) -> None:
    for rule in db.session.scalars(select(SlaRule).where(SlaRule.stage == stage, SlaRule.level_id.is_(None))):
        rule.overtime_fine = amount
    db.session.commit()


def _take(client, pid, action, expect=200, **fields):
    r = client.post(f"/api/v1/penalty/{pid}/transition", json={"action": action, **fields})
    assert r.status_code == expect, (action, r.status_code, r.get_json())
    return r.get_json()


def test_a_miss_drafts_one_case_against_the_responsible_head_for_review(app, api, make_complaint, org):
    _fine_on("investigate", 50)
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    hr, gm, head = api("renshi"), api("zongjingli"), api("zhuguan_a")
    # Dispatched the same day: from then on the head of 工程部 has to start the investigation.
    for action in ("judge_valid", "dispatch"):
        r = hr.post(f"/api/v1/complaint/{c.id}/transition", json={"action": action})
        assert r.status_code == 200, r.get_json()
    travel(app, at(2026, 9, 30, 9, 59))
    assert db.session.scalars(select(Penalty).where(Penalty.complaint_id == c.id)).all() == []
    for when in (at(2026, 9, 30, 10, 1), at(2026, 9, 30, 11, 0), at(2026, 10, 8, 12, 0)):
        travel(app, when)  # the scan runs again and again: still one case per miss
    drafts = db.session.scalars(select(Penalty).where(Penalty.complaint_id == c.id, Penalty.source == "overtime")).all()
    assert len(drafts) == 1, [p.facts for p in drafts]
    penalty = drafts[0]
    assert penalty.staff_id == org.staff("张建国").id  # head of 工程部
    assert penalty.fine_amount == 50 and penalty.status.value == "draft"
    assert c.number in penalty.facts and "超时" in penalty.facts
    assert penalty.rule.clause == "超时扣罚"

    # Nothing is fined without review: 人事行政经理 proposes it (a case against a head), 总经理 decides.
    listed = hr.get(f"/api/v1/penalty/{penalty.id}").get_json()["result"]
    assert listed["fine_amount"] == 50
    own = head.get(f"/api/v1/penalty/{penalty.id}/transitions")
    assert own.status_code == 403 or own.get_json()["result"] == []  # the head cannot act on its own case
    _take(hr, penalty.id, "propose")
    _take(gm, penalty.id, "approve")
    timeline = hr.get(f"/api/v1/penalty/{penalty.id}/timeline").get_json()["result"]
    assert [e["action"] for e in timeline] == ["open", "propose", "approve"]
    # 人事行政经理 was told that a draft awaits review.
    from app.models import Notification

    told = db.session.scalars(select(Notification).where(Notification.kind == "penalty")).all()
    assert any(n.user_id == org.user("renshi").id and penalty.number in n.title for n in told)


def test_no_fine_on_the_rule_drafts_nothing_and_a_met_deadline_drafts_nothing(app, api, make_complaint, org):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    travel(app, at(2026, 10, 9, 12, 0))
    assert db.session.scalars(select(Penalty).where(Penalty.complaint_id == c.id)).all() == []

    _fine_on("investigate", 30)
    hr, head = api("renshi"), api("zhuguan_a")
    c2 = make_complaint(received_at=at(2026, 10, 12, 10, 0), now=at(2026, 10, 12, 10, 0))
    for client, action in ((hr, "judge_valid"), (hr, "dispatch"), (head, "start_investigation")):
        r = client.post(f"/api/v1/complaint/{c2.id}/transition", json={"action": action})
        assert r.status_code == 200, r.get_json()
    travel(app, at(2026, 10, 20, 12, 0))
    fines = db.session.scalars(select(Penalty).where(Penalty.complaint_id == c2.id)).all()
    # The investigation started in time; only the reply clock (no fine on its rule) ran out.
    assert fines == []


def test_the_fine_is_editable_on_the_rule_and_checked(api):
    hr = api("renshi")
    rule = db.session.scalars(select(SlaRule).where(SlaRule.stage == "reply")).first()
    r = hr.put(f"/api/v1/slarule/{rule.id}", json={"overtime_fine": -5})
    assert r.status_code in (400, 422), r.get_json()
    r = hr.put(f"/api/v1/slarule/{rule.id}", json={"overtime_fine": 80})
    assert r.status_code == 200, r.get_json()
    assert hr.get(f"/api/v1/slarule/{rule.id}").get_json()["result"]["overtime_fine"] == 80
