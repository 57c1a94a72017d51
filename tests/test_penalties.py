"""Penalty rules and cases: the approval chain by role, the head-as-subject path, appeals, scope.

The first part exercises the plain domain module (app/discipline/penalties.py) without a
database; the rest drives cases through the service layer on the real databases.
"""

from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app import db
from app.access import scope
from app.complaints.step_types import Actor
from app.discipline import cases as discipline
from app.discipline import ledger, notices, penalties
from app.discipline.penalties import Terms
from app.lifecycle import TransitionError, ValidationFailed
from app.models import Document, Notification, Penalty, PenaltyRule
from app.timeutil import LOCAL_TZ

TIER1 = SimpleNamespace(
    tier=1,
    clause="第六条第1款A",
    sanction="fine",
    fine_min=30,
    fine_max=100,
    score_deduction=0,
    withhold_performance_pay=False,
    active=True,
    sort=0,
)
TIER2 = SimpleNamespace(
    tier=2,
    clause="第六条第2款A",
    sanction="warning",
    fine_min=200,
    fine_max=200,
    score_deduction=5,
    withhold_performance_pay=False,
    active=True,
    sort=3,
)
TIER5 = SimpleNamespace(
    tier=5,
    clause="第六条第5款A",
    sanction="dismissal",
    fine_min=0,
    fine_max=0,
    score_deduction=0,
    withhold_performance_pay=False,
    active=True,
    sort=10,
)

HEAD_GC = Actor(user_id=2, roles=frozenset({"部门主管"}), staff_id=100, department_ids=frozenset({1}))
HR = Actor(user_id=3, roles=frozenset({"人事行政经理"}), staff_id=200, department_ids=frozenset({6}))


# --- Domain rules (no database) ----------------------------------------------------------------


def test_fine_must_lie_in_the_rule_range_and_points_follow_the_rule():
    assert penalties.check_terms(TIER1, Terms("fine", 50, 0, False)) == {}
    errors = penalties.check_terms(TIER1, Terms("fine", 120, 3, False))
    assert set(errors) == {"fine_amount", "score_deduction"}
    assert "30" in errors["fine_amount"][0] and "100" in errors["fine_amount"][0]
    assert "sanction" in penalties.check_terms(TIER2, Terms("fine", 200, 5, False))


def test_top_tier_allows_dismissal_or_expulsion():
    assert penalties.allowed_sanctions(TIER5) == ("dismissal", "expulsion")
    assert penalties.check_terms(TIER5, Terms("expulsion", 0, 0, False)) == {}


def test_a_reduction_may_only_lighten():
    current = Terms("warning", 200, 5, False)
    assert penalties.check_reduction(current, Terms("fine", 100, 0, False)) == {}
    assert set(penalties.check_reduction(current, Terms("reprimand", 300, 5, True))) == {
        "sanction",
        "fine_amount",
        "withhold_performance_pay",
    }
    assert "decision" in penalties.check_reduction(current, current)


def test_appeal_period_counts_working_days_after_service():
    from app.time_limits.calendar import WorkCalendar, parse_blocks

    cal = WorkCalendar(blocks=parse_blocks(None), overrides={})
    # Served on Friday 2026-11-20: Mon 23, Tue 24, Wed 25.
    assert penalties.appeal_deadline(cal, date(2026, 11, 20), 3) == date(2026, 11, 25)
    # Served before National Day: the holiday week does not count.
    assert penalties.appeal_deadline(cal, date(2026, 9, 30), 1) > date(2026, 10, 7)


def test_next_tier_and_repeat_suggestion():
    tier3 = SimpleNamespace(tier=3, clause="第六条第3款A", active=True, sort=6)
    assert penalties.next_tier([TIER1, TIER2, tier3, TIER5], TIER2) == [tier3]
    assert penalties.next_tier([TIER1, TIER5], TIER5) == []
    assert penalties.suggested_tier([2], 2, 5) == 3
    assert penalties.suggested_tier([1], 2, 5) is None
    assert penalties.suggested_tier([5], 5, 5) is None


def test_who_proposes_for_whom():
    ordinary = penalties.CaseFacts(status="draft", staff_id=101, department_id=1)
    assert penalties.proposer_refusal(HEAD_GC, ordinary) is None
    assert penalties.proposer_refusal(HR, ordinary) is not None  # only when the head failed to act
    assert penalties.proposer_refusal(HR, penalties.CaseFacts("draft", 101, 1, head_failed_to_act=True)) is None
    other_department = penalties.CaseFacts(status="draft", staff_id=301, department_id=2)
    assert penalties.proposer_refusal(HEAD_GC, other_department) is not None
    against_a_head = penalties.CaseFacts(status="draft", staff_id=300, department_id=2, subject_is_head=True)
    assert penalties.proposer_refusal(HEAD_GC, against_a_head) is not None
    assert penalties.proposer_refusal(HR, against_a_head) is None
    against_itself = penalties.CaseFacts(status="draft", staff_id=100, department_id=1, subject_is_head=True)
    assert penalties.proposer_refusal(HEAD_GC, against_itself) is not None


def test_late_appeal_and_future_service_are_field_errors():
    served = penalties.CaseFacts("served", 101, 1, served_on=date(2026, 11, 20), appeal_deadline=date(2026, 11, 25))
    with pytest.raises(TransitionError) as late:
        penalties.check("record_appeal", HR, served, {"filed_on": "2026-11-26", "grounds": "不服"}, date(2026, 11, 30))
    assert late.value.kind == "fields" and "2026-11-25" in late.value.errors["filed_on"][0]
    step, values = penalties.check(
        "record_appeal", HR, served, {"filed_on": "2026-11-25", "grounds": "不服"}, date(2026, 11, 30)
    )
    assert step.target == "appealed" and values["filed_on"] == date(2026, 11, 25)
    issued = penalties.CaseFacts("issued", 101, 1, issued_on=date(2026, 11, 20))
    with pytest.raises(TransitionError) as future:
        penalties.check("serve", HR, issued, {"served_on": "2026-12-01"}, date(2026, 11, 30))
    assert "served_on" in future.value.errors


# --- The chain through the service, by role ----------------------------------------------------------


def _statuses(penalty):
    return [(e.action, e.to_status) for e in penalty.events]


def test_head_proposes_hr_reviews_gm_approves_hr_issues_and_serves(discipline_kit, org):
    kit = discipline_kit
    penalty = kit.open(staff="刘强", by="zhuguan_a")
    assert penalty.status.value == "draft" and penalty.number.startswith("CF")
    assert penalty.fine_amount == 200 and penalty.score_deduction == 5 and penalty.circular_required
    kit.step(penalty, "propose", "zhuguan_a")
    kit.step(penalty, "review", "renshi", note="情况属实")
    kit.step(penalty, "approve", "zongjingli")
    kit.step(penalty, "issue_notice", "renshi")
    today = datetime.now(LOCAL_TZ).date()
    kit.step(penalty, "serve", "renshi", served_on=today.isoformat())
    assert penalty.status.value == "served" and penalty.appeal_deadline > today
    assert _statuses(penalty) == [
        ("open", "draft"),
        ("propose", "proposed"),
        ("review", "reviewed"),
        ("approve", "approved"),
        ("issue_notice", "issued"),
        ("circular_drafted", None),  # tier 2 calls for a 通报 (第六条: 并通报全公司)
        ("serve", "served"),
    ]
    assert penalty.proposed_by.username == "zhuguan_a" and penalty.decided_by.username == "zongjingli"
    notice = notices.current_notice(db.session, penalty)
    assert notice.number == f"人行罚字〔{today.year}〕1号" and notice.version == 1


@pytest.mark.parametrize(
    "status_steps, action, who",
    [
        ([], "review", "renshi"),  # a draft is not reviewed
        ([("propose", "zhuguan_a")], "approve", "zongjingli"),  # GM decides after review only
        ([("propose", "zhuguan_a")], "review", "zhuguan_a"),  # the head does not review
        ([("propose", "zhuguan_a"), ("review", "renshi")], "approve", "renshi"),  # HR does not approve
        ([("propose", "zhuguan_a"), ("review", "renshi")], "approve", "zhuguan_b"),
        ([("propose", "zhuguan_a"), ("review", "renshi"), ("approve", "zongjingli")], "issue_notice", "zongjingli"),
        ([], "propose", "zhuguan_b"),  # another department's head
        ([], "propose", "kefu"),
    ],
)
def test_steps_out_of_turn_or_role_are_refused(discipline_kit, status_steps, action, who):
    penalty = discipline_kit.open()
    for step, by in status_steps:
        discipline_kit.step(penalty, step, by)
    with pytest.raises(TransitionError) as refused:
        discipline_kit.step(penalty, action, who)
    assert refused.value.kind in ("state", "role")


def test_head_opens_cases_only_for_own_staff(discipline_kit):
    with pytest.raises(TransitionError) as refused:
        discipline_kit.open(staff="吴刚", by="zhuguan_a")  # 保安部
    assert refused.value.kind == "role"
    with pytest.raises(TransitionError):
        discipline_kit.open(staff="刘强", by="kefu")


def test_case_against_a_head_is_proposed_by_hr_and_decided_by_gm(discipline_kit):
    kit = discipline_kit
    for head in ("zhuguan_a", "zhuguan_b"):  # neither itself nor another head may open it
        with pytest.raises(TransitionError):
            kit.open(staff="张建国", by=head, clause="第六条第3款B")
    penalty = kit.open(staff="张建国", by="renshi", clause="第六条第3款B", facts="工程部主管管理不力，投诉屡次超时。")
    assert penalty.subject_is_head
    kit.step(penalty, "propose", "renshi")
    assert penalty.status.value == "reviewed"  # HR's own proposal goes straight to the GM
    with pytest.raises(TransitionError):
        kit.step(penalty, "approve", "renshi")
    kit.step(penalty, "approve", "zongjingli")
    kit.step(penalty, "issue_notice", "renshi")
    text = notices.current_notice(db.session, penalty).content
    assert text.startswith(b"%PDF")


def test_hr_proposes_for_ordinary_staff_only_when_the_head_failed_to_act(discipline_kit):
    with pytest.raises(TransitionError):
        discipline_kit.open(staff="孙海", by="renshi")
    penalty = discipline_kit.open(staff="孙海", by="renshi", head_failed_to_act=True)
    discipline_kit.step(penalty, "propose", "renshi")
    assert penalty.status.value == "reviewed"
    with pytest.raises(TransitionError):  # the head does not take over a case HR proposes
        discipline_kit.step(penalty, "withdraw", "zhuguan_a")


def test_rejection_returns_the_case_with_its_reason_and_it_can_be_proposed_again(discipline_kit, org):
    kit = discipline_kit
    penalty = kit.open()
    kit.step(penalty, "propose", "zhuguan_a")
    kit.step(penalty, "review", "renshi")
    with pytest.raises(TransitionError) as missing:
        kit.step(penalty, "reject", "zongjingli")
    assert "reason" in missing.value.errors
    kit.step(penalty, "reject", "zongjingli", reason="事实不清，请补充监控记录")
    assert penalty.status.value == "returned" and penalty.return_reason == "事实不清，请补充监控记录"
    discipline.edit_case(db.session, penalty, org.principal("zhuguan_a"), {"facts": "补充：监控显示其拒绝登记报修。"})
    db.session.commit()
    kit.step(penalty, "propose", "zhuguan_a")
    assert penalty.status.value == "proposed" and penalty.return_reason is None
    actions = [e.action for e in penalty.events]
    assert actions == ["open", "propose", "review", "reject", "edit", "propose"]
    hr_inbox = db.session.scalars(select(Notification.title).where(Notification.user_id == org.user("renshi").id))
    assert any(penalty.number in title for title in hr_inbox)
    proposer_inbox = db.session.scalars(
        select(Notification.link).where(Notification.user_id == org.user("zhuguan_a").id)
    )
    assert f"/penaltyview/show/{penalty.id}" in list(proposer_inbox)


def test_amounts_are_checked_against_the_rule(discipline_kit):
    with pytest.raises(ValidationFailed) as bad:
        discipline_kit.open(clause="第六条第1款A", fine_amount=150)
    assert "fine_amount" in bad.value.errors
    penalty = discipline_kit.open(clause="第六条第1款A", fine_amount=80)
    assert penalty.fine_amount == 80 and penalty.sanction.value == "fine"


def test_stale_version_is_a_conflict(discipline_kit, org):
    penalty = discipline_kit.open()
    with pytest.raises(TransitionError) as stale:
        discipline.take_step(
            db.session, penalty, "propose", org.principal("zhuguan_a"), {}, expected_version=penalty.version + 3
        )
    assert stale.value.kind == "version"


# --- Appeals and supersession ------------------------------------------------------------------------


def _served(kit, days_ago=0, **kw):
    when = datetime.now(LOCAL_TZ) - timedelta(days=days_ago)
    penalty = kit.issued(now=when, **kw)
    kit.step(penalty, "serve", "renshi", now=when, served_on=when.date().isoformat())
    return penalty


def test_reduced_appeal_issues_a_new_notice_that_supersedes_the_old(discipline_kit):
    kit = discipline_kit
    penalty = _served(kit)
    first = notices.current_notice(db.session, penalty)
    first_bytes, first_sha = first.content, first.sha256
    kit.step(
        penalty,
        "record_appeal",
        "renshi",
        filed_on=penalty.served_on.isoformat(),
        grounds="当日系设备故障，并非态度问题。",
    )
    with pytest.raises(TransitionError):
        kit.step(penalty, "decide_appeal", "renshi", decision="uphold", reason="x")
    with pytest.raises(TransitionError) as heavier:
        kit.step(penalty, "decide_appeal", "zongjingli", decision="reduce", reason="x", fine_amount=500)
    assert "fine_amount" in heavier.value.errors
    kit.step(
        penalty,
        "decide_appeal",
        "zongjingli",
        decision="reduce",
        reason="情节较轻，改为经济处罚。",
        sanction="fine",
        fine_amount=100,
        score_deduction=0,
    )
    assert penalty.status.value == "issued" and penalty.sanction.value == "fine" and penalty.fine_amount == 100
    second = notices.current_notice(db.session, penalty)
    assert second.id != first.id and second.version == 2 and second.supersedes_id == first.id
    db.session.refresh(first)
    assert first.superseded_at is not None and first.content == first_bytes and first.sha256 == first_sha
    assert penalty.appeals[0].decision == "reduced" and penalty.appeals[0].previous_terms["fine_amount"] == 200
    kit.step(penalty, "serve", "renshi", served_on=datetime.now(LOCAL_TZ).date().isoformat())
    with pytest.raises(TransitionError):  # one appeal per penalty
        kit.step(penalty, "record_appeal", "renshi", filed_on=penalty.served_on.isoformat(), grounds="again")


def test_revoked_appeal_issues_a_revocation_and_leaves_the_ledger(discipline_kit, org):
    kit = discipline_kit
    penalty = _served(kit)
    kit.step(penalty, "record_appeal", "renshi", filed_on=penalty.served_on.isoformat(), grounds="认定有误")
    kit.step(penalty, "decide_appeal", "zongjingli", decision="revoke", reason="经复核，投诉不属实。")
    assert penalty.status.value == "revoked" and penalty.revoked_at is not None
    docs = db.session.scalars(select(Document).where(Document.penalty_id == penalty.id).order_by(Document.id)).all()
    assert [d.version for d in docs] == [1, 2] and docs[1].title.startswith("撤销处罚决定通知书")
    month = ledger.parse_month(datetime.now(LOCAL_TZ).strftime("%Y-%m"))
    assert ledger.ledger(db.session, month, org.principal("renshi"))["totals"]["count"] == 0


def test_appeal_after_the_period_is_refused(discipline_kit):
    kit = discipline_kit
    penalty = _served(kit, days_ago=30)
    with pytest.raises(TransitionError) as late:
        kit.step(penalty, "record_appeal", "renshi", filed_on=datetime.now(LOCAL_TZ).date().isoformat(), grounds="x")
    assert "filed_on" in late.value.errors


def test_correction_reissues_a_new_version_and_keeps_both(discipline_kit):
    kit = discipline_kit
    penalty = kit.issued()
    kit.step(penalty, "reissue_notice", "renshi", reason="事实描述有误", facts="更正后的事实。")
    docs = db.session.scalars(select(Document).where(Document.penalty_id == penalty.id).order_by(Document.id)).all()
    assert len(docs) == 2 and docs[0].superseded_at is not None and docs[1].supersedes_id == docs[0].id
    assert docs[0].number != docs[1].number and docs[1].seq == docs[0].seq + 1
    assert penalty.facts == "更正后的事实。"


# --- Earlier offences, scope, ledger -------------------------------------------------------------


def test_review_shows_earlier_penalties_of_twelve_months_and_the_next_tier(discipline_kit):
    kit = discipline_kit
    old = kit.issued(now=datetime.now(LOCAL_TZ) - timedelta(days=400))
    recent = kit.issued(now=datetime.now(LOCAL_TZ) - timedelta(days=30))
    current = kit.open()
    kit.step(current, "propose", "zhuguan_a")
    summary = discipline.earlier_offences(db.session, current)
    assert [p.id for p in summary.earlier] == [recent.id]
    assert old.id not in [p.id for p in summary.earlier]
    assert {r.tier for r in summary.next_rules} == {3}
    assert summary.suggested_tier == 3


def _visible(org, login):
    principal = org.principal(login)
    return set(db.session.scalars(select(Penalty.number).where(scope.criterion(Penalty, principal))))


def test_scope_head_sees_own_department_but_not_cases_against_itself(discipline_kit, org):
    kit = discipline_kit
    staff_case = kit.open(staff="刘强", by="zhuguan_a")
    head_case = kit.open(staff="张建国", by="renshi", clause="第六条第3款B")
    security_case = kit.open(staff="吴刚", by="zhuguan_b")
    assert _visible(org, "zhuguan_a") == {staff_case.number}
    assert _visible(org, "zhuguan_b") == {security_case.number}
    assert _visible(org, "kefu") == set()
    assert (
        _visible(org, "renshi")
        == _visible(org, "zongjingli")
        == {staff_case.number, head_case.number, security_case.number}
    )


def test_ledger_sums_the_month_per_staff_and_department(discipline_kit, org):
    kit = discipline_kit
    kit.issued(staff="刘强")
    kit.issued(staff="刘强", clause="第六条第1款B", fine_amount=50)
    kit.issued(staff="吴刚", by="zhuguan_b", clause="第六条第4款A")
    kit.open(staff="孙海")  # a draft is not in the ledger
    month = ledger.parse_month(datetime.now(LOCAL_TZ).strftime("%Y-%m"))
    data = ledger.ledger(db.session, month, org.principal("renshi"))
    staff = {r["name"]: r for r in data["staff"]}
    assert staff["刘强"]["count"] == 2 and staff["刘强"]["fines"] == 250 and staff["刘强"]["points"] == 5
    assert staff["吴刚"]["fines"] == 1000 and staff["吴刚"]["performance_pay_withheld"]
    departments = {r["department"]: r for r in data["departments"]}
    assert departments["工程部"]["fines"] == 250 and departments["保安部"]["performance_pay_withheld"] == 1
    assert data["totals"] == {"count": 3, "fines": 1250, "points": 5}
    previous = ledger.ledger(db.session, date(2020, 1, 1), org.principal("renshi"))
    assert previous["totals"]["count"] == 0


def test_default_rules_cover_the_five_tiers_and_seeding_is_idempotent(app):
    from app.seed import defaults as seed

    rules = db.session.scalars(select(PenaltyRule).order_by(PenaltyRule.sort)).all()
    assert {r.tier for r in rules} == {1, 2, 3, 4, 5} and len(rules) == 22
    tier4 = next(r for r in rules if r.clause == "第六条第4款A")
    assert tier4.sanction.value == "major_demerit" and tier4.fine_min == 1000 and tier4.withhold_performance_pay
    assert seed.seed_defaults(db.session)["penalty_rule"] == 0


def test_upheld_appeal_keeps_the_notice_and_a_draft_can_be_withdrawn(discipline_kit):
    kit = discipline_kit
    penalty = _served(kit)
    notice = notices.current_notice(db.session, penalty)
    kit.step(penalty, "record_appeal", "renshi", filed_on=penalty.served_on.isoformat(), grounds="处罚过重")
    kit.step(penalty, "decide_appeal", "zongjingli", decision="uphold", reason="事实清楚，维持原处理。")
    assert penalty.status.value == "served" and penalty.appeals[0].decision == "upheld"
    assert notices.current_notice(db.session, penalty).id == notice.id
    draft = kit.open(staff="孙海")
    with pytest.raises(TransitionError):
        kit.step(draft, "withdraw", "zhuguan_b")
    kit.step(draft, "withdraw", "zhuguan_a", reason="重复立案")
    assert draft.status.value == "cancelled"
