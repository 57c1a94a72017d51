"""通报 by rule: 第六条 tiers 2–4 ("并通报全公司") draft a 通报 when the notice is issued and ask
人事行政经理 to issue it (a task until it is issued); tiers 1 and 5 do not. A 通报 the rule does
not call for, or a second one for the same case, is deliberate: it needs a reason. Issuing
shows what will be issued (kind, 文号, recipient) before the click that issues it.
"""

import io
from datetime import datetime

from pypdf import PdfReader
from sqlalchemy import select

from app import db
from app.discipline import notices
from app.models import Document, Notification, PenaltyEvent, PenaltyRule
from app.seed import defaults
from app.timeutil import LOCAL_TZ


def _text(doc) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(doc.content)).pages)


def _tasks(org, penalty):
    return db.session.scalars(
        select(Notification).where(
            Notification.user_id == org.user("renshi").id,
            Notification.link == f"/penaltyview/show/{penalty.id}",
            Notification.kind == "task",
        )
    ).all()


def test_the_seeded_tiers_follow_the_seed_text():
    """Tiers 2–4 say 并通报全公司; tier 1 does not, and tier 5 (辞退/开除) does not either."""
    by_tier: dict[int, set[bool]] = {}
    for tier, clause, *_terms, circular, _legal in defaults.PENALTY_RULES:
        if clause.startswith("第六条"):
            by_tier.setdefault(tier, set()).add(circular)
    assert by_tier == {1: {False}, 2: {True}, 3: {True}, 4: {True}, 5: {False}}


def test_issuing_a_tier_2_notice_drafts_the_circular_and_asks_hr_until_it_is_issued(discipline_kit, org):
    penalty = discipline_kit.issued(staff="刘强", clause="第六条第2款A")

    assert penalty.circular_due_at is not None
    assert [p.id for p in notices.circulars_due(db.session, org.principal("renshi"))] == [penalty.id]
    (task,) = _tasks(org, penalty)
    assert task.kind == "task" and task.read_at is None and penalty.number in task.title
    drafted = db.session.scalars(
        select(PenaltyEvent).where(PenaltyEvent.penalty_id == penalty.id, PenaltyEvent.action == "circular_drafted")
    ).all()
    assert len(drafted) == 1
    # The notice and the 通报 agree: the notice says 通报全公司, and the 通报 is there to issue.
    assert "通报全公司" in _text(notices.current_notice(db.session, penalty))
    assert db.session.scalars(select(Document).where(Document.kind == "circular")).all() == []

    doc = notices.issue_penalty_circular(db.session, penalty, org.principal("renshi"))
    db.session.commit()

    assert "刘强" in _text(doc) and doc.penalty_id == penalty.id
    assert penalty.circular_due_at is None and notices.circulars_due(db.session, org.principal("renshi")) == []
    assert all(t.read_at is not None for t in _tasks(org, penalty))


def test_tier_1_and_tier_5_notices_draft_no_circular(discipline_kit, org):
    fine = discipline_kit.issued(staff="刘强", clause="第六条第1款A")
    dismissal = discipline_kit.issued(staff="孙海", clause="第六条第5款A")
    for penalty in (fine, dismissal):
        assert penalty.circular_due_at is None and _tasks(org, penalty) == []
        assert "不通报" in _text(notices.current_notice(db.session, penalty))
    assert not discipline_kit.rule("第六条第5款A").circular_required


def test_a_circular_the_rule_does_not_call_for_needs_a_reason_over_the_api(discipline_kit, api):
    penalty = discipline_kit.issued(staff="刘强", clause="第六条第1款A")
    hr = api("renshi")
    r = hr.post(f"/api/v1/penalty/{penalty.id}/circular")
    assert r.status_code == 409 and "原因" in r.json["message"]
    assert hr.post(f"/api/v1/penalty/{penalty.id}/circular", json=["x"]).status_code == 400
    assert hr.post(f"/api/v1/penalty/{penalty.id}/circular", json={"reason": 5}).status_code == 400
    assert db.session.scalars(select(Document).where(Document.kind == "circular")).all() == []

    r = hr.post(f"/api/v1/penalty/{penalty.id}/circular", json={"reason": "同类问题本月已发生三次，通报警示"})
    assert r.status_code == 201, r.json
    doc = db.session.get(Document, r.json["id"])
    assert doc.note == "同类问题本月已发生三次，通报警示"
    event = db.session.scalars(
        select(PenaltyEvent).where(PenaltyEvent.penalty_id == penalty.id, PenaltyEvent.action == "circular")
    ).one()
    assert "同类问题本月已发生三次" in event.note and doc.number in event.note


def test_a_second_circular_is_a_reissue_with_a_reason(discipline_kit, api):
    penalty = discipline_kit.issued(staff="刘强", clause="第六条第2款A")
    hr = api("renshi")
    first = hr.post(f"/api/v1/penalty/{penalty.id}/circular")
    assert first.status_code == 201, first.json
    again = hr.post(f"/api/v1/penalty/{penalty.id}/circular")
    assert again.status_code == 409 and first.json["result"]["number"] in again.json["message"]
    assert len(db.session.scalars(select(Document).where(Document.kind == "circular")).all()) == 1

    r = hr.post(f"/api/v1/penalty/{penalty.id}/circular", json={"reason": "更正当事人岗位"})
    assert r.status_code == 201
    second = db.session.get(Document, r.json["id"])
    assert second.supersedes_id == first.json["id"] and second.note == "更正当事人岗位"
    actions = db.session.scalars(
        select(PenaltyEvent.action).where(PenaltyEvent.penalty_id == penalty.id).order_by(PenaltyEvent.id)
    ).all()
    assert actions[-2:] == ["circular", "reissue_circular"]


def test_the_penalty_page_confirms_what_will_be_issued(discipline_kit, web):
    year = datetime.now(LOCAL_TZ).year
    approved = discipline_kit.open(staff="刘强", clause="第六条第2款A")
    discipline_kit.step(approved, "propose", "zhuguan_a")
    discipline_kit.step(approved, "review", "renshi")
    discipline_kit.step(approved, "approve", "zongjingli")
    page = web("renshi").get(f"/penaltyview/show/{approved.id}").get_data(as_text=True)
    # The issue step's dialog shows the kind, the expected 文号 and the recipient.
    assert "处罚通知书" in page and f"人行罚字〔{year}〕1号" in page and "刘强（工程部）" in page

    fine = discipline_kit.issued(staff="孙海", clause="第六条第1款A")
    page = web("renshi").get(f"/penaltyview/show/{fine.id}").get_data(as_text=True)
    assert f"人行通字〔{year}〕1号" in page and "各部门、全体员工" in page
    assert "签发全公司通报</button>" not in page.replace("\n", "").replace("  ", "")
    assert 'name="reason" required' in page
    # Posting the screen's form without a reason issues nothing and says why.
    r = web("renshi").post(f"/penaltyview/circular/{fine.id}", data={}, follow_redirects=True)
    assert "原因" in r.get_data(as_text=True)
    assert db.session.scalars(select(Document).where(Document.kind == "circular")).all() == []


def test_the_circular_draft_is_unnumbered_and_not_stored(discipline_kit, web):
    penalty = discipline_kit.issued(staff="刘强", clause="第六条第2款A")
    r = web("renshi").get(f"/penaltyview/circular_draft/{penalty.id}")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(r.data)).pages)
    assert "签发时编号" in text and "刘强" in text
    assert db.session.scalars(select(Document).where(Document.kind == "circular")).all() == []
    assert web("zhuguan_a").get(f"/penaltyview/circular_draft/{penalty.id}").status_code == 403


def test_rules_stay_editable(discipline_kit):
    rule = db.session.scalars(select(PenaltyRule).where(PenaltyRule.clause == "第六条第5款A")).one()
    rule.circular_required = True
    db.session.commit()
    penalty = discipline_kit.issued(staff="孙海", clause="第六条第5款A")
    assert penalty.circular_due_at is not None


def test_a_revoked_penalty_no_longer_awaits_its_circular(discipline_kit, org):
    penalty = discipline_kit.issued(staff="刘强", clause="第六条第2款A")
    today = datetime.now(LOCAL_TZ).date().isoformat()
    discipline_kit.step(penalty, "serve", "renshi", served_on=today)
    discipline_kit.step(penalty, "record_appeal", "renshi", filed_on=today, grounds="事实有误")
    discipline_kit.step(penalty, "decide_appeal", "zongjingli", decision="revoke", reason="经复核，投诉不属实。")
    assert penalty.circular_due_at is None
    assert all(t.read_at is not None for t in _tasks(org, penalty))
    assert notices.circulars_due(db.session, org.principal("renshi")) == []
