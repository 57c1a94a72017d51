"""Overtime fines (超时扣罚): a missed deadline drafts a penalty case, never a fine.

A time-limit rule may name a fine (the policies' 20/30/50/80 元 per level). When the
deadline scan records that a clock ran out, :func:`draft_for_miss` opens a penalty case
against the person responsible for that stage, with the facts filled in, as a draft
that 人事行政经理 proposes and 总经理 decides through the normal chain. One miss drafts
one case, however often the scan runs (``Penalty.source_key`` is unique).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import lifecycle, signals
from app.access.roles import HR_MANAGER
from app.discipline import cases as discipline
from app.documents import numbering
from app.messages import alerts, notify
from app.models import (
    Complaint,
    Deadline,
    Penalty,
    PenaltyRule,
    PenaltyStatus,
    Sanction,
    SlaRule,
    Staff,
)
from app.time_limits.deadlines import FIRST_RESPONDER, HEAD_TOKEN, STAGES
from app.timeutil import format_local, local_date

# The penalty rule that overtime fines are drafted under (seeded by app/seed/defaults.py).
OVERTIME_CLAUSE = "超时扣罚"

log = logging.getLogger(__name__)


def miss_key(d: Deadline) -> str:
    return f"overtime:{d.id}:{int(d.due_at.timestamp())}"


def responsible_staff(session: Session, complaint: Complaint, stage_code: str) -> Optional[Staff]:
    """The staff member who had to act for ``stage_code`` now (None when the post is vacant)."""
    token = alerts.responsible_tokens(complaint, stage_code)[0]
    if token == HEAD_TOKEN:
        department = complaint.department
        if department is not None and department.head_id is not None:
            return session.get(Staff, department.head_id)
        users = notify.department_heads(session, complaint.department_id)
    elif token == FIRST_RESPONDER:
        users = [complaint.first_responder] if complaint.first_responder is not None else []
    else:
        users = notify.users_for(session, token, complaint)
    for user in users:
        staff = session.scalar(select(Staff).where(Staff.user_id == user.id))
        if staff is not None:
            return staff
    return None


@signals.clock_event.connect
def on_clock_event(
    complaint: Complaint,
    *,
    session: Session,
    deadline: Deadline,
    rule: Optional[SlaRule],
    kind: str,
    now: datetime,
    **_: Any,
) -> None:
    """A missed clock (never a warning or an escalation) drafts its overtime fine."""
    if kind == "overdue":
        draft_for_miss(session, complaint, deadline, rule, now)


def draft_for_miss(
    session: Session, complaint: Complaint, d: Deadline, rule: Optional[SlaRule], now: datetime
) -> Optional[Penalty]:
    """Draft the overtime penalty case of one missed deadline (once), or None."""
    if rule is None or not rule.overtime_fine or rule.overtime_fine <= 0:
        return None
    key = miss_key(d)
    penalty_rule = _overtime_penalty_rule(session, rule, key)
    if penalty_rule is None:
        return None
    staff = responsible_staff(session, complaint, d.stage)
    if staff is None:
        log.info("overtime fine of case %s not drafted: nobody holds the responsible post", complaint.number)
        return None
    facts = _overtime_facts(complaint, d, rule, now)
    penalty = _write_draft(session, complaint, d, rule, penalty_rule, staff, facts, key, now)
    if penalty is not None:
        _tell_hr(session, complaint, penalty, facts, key, now)
    return penalty


def _overtime_penalty_rule(session: Session, rule: SlaRule, key: str) -> Optional[PenaltyRule]:
    """The active 超时扣罚 penalty rule, or None when this miss was drafted already or the rule is missing."""
    if session.scalar(select(Penalty.id).where(Penalty.source_key == key)) is not None:
        return None
    penalty_rule = session.scalar(select(PenaltyRule).where(PenaltyRule.clause == OVERTIME_CLAUSE))
    if penalty_rule is None or not penalty_rule.active:
        log.warning("overtime fine of rule %s not drafted: penalty rule %s missing", rule.id, OVERTIME_CLAUSE)
        return None
    return penalty_rule


def _overtime_facts(complaint: Complaint, d: Deadline, rule: SlaRule, now: datetime) -> str:
    """The facts of the drafted case: which time limit of which case ran out, and the fine."""
    stage = STAGES[d.stage]
    return (
        f"投诉 {complaint.number} 的“{stage.label}”时限为 {format_local(d.due_at)}，"
        f"至 {format_local(now)} 仍未完成，按时限规则“{rule}”超时扣罚 {rule.overtime_fine} 元。"
    )


def _write_draft(
    session: Session,
    complaint: Complaint,
    d: Deadline,
    rule: SlaRule,
    penalty_rule: PenaltyRule,
    staff: Staff,
    facts: str,
    key: str,
    now: datetime,
) -> Optional[Penalty]:
    """Add the draft case and its opening event in a savepoint; None if another process won the race."""
    subject_is_head = bool(discipline.heads_department(session, staff.id))
    fine = min(max(rule.overtime_fine, penalty_rule.fine_min), penalty_rule.fine_max or rule.overtime_fine)
    nested = session.begin_nested()
    try:
        penalty = _draft_penalty(session, complaint, d, penalty_rule, staff, facts, key, fine, subject_is_head, now)
        session.add(penalty)
        lifecycle.record_event(
            penalty,
            "open",
            None,
            note=facts,
            to_status="draft",
            at=now,
            data={"source": "overtime", "deadline": d.id, "stage": d.stage, "fine": fine},
        )
        session.flush()
        nested.commit()
    except IntegrityError:  # another scheduler drafted the same miss meanwhile
        nested.rollback()
        return None
    return penalty


def _draft_penalty(
    session: Session,
    complaint: Complaint,
    d: Deadline,
    penalty_rule: PenaltyRule,
    staff: Staff,
    facts: str,
    key: str,
    fine: Any,
    subject_is_head: bool,
    now: datetime,
) -> Penalty:
    """The draft penalty row of one miss, numbered in this year's penalty sequence."""
    year = local_date(now).year
    return Penalty(
        number=numbering.penalty_number(year, numbering.next_value(session, "penalty", str(year))),
        complaint=complaint,
        staff=staff,
        department_id=staff.department_id,
        rule=penalty_rule,
        source="overtime",
        source_key=key,
        incident_date=local_date(d.due_at),
        facts=facts,
        sanction=Sanction.fine,
        fine_amount=fine,
        score_deduction=penalty_rule.score_deduction,
        withhold_performance_pay=False,
        circular_required=False,
        subject_is_head=subject_is_head,
        # Drafted by the system: 人事行政经理 reviews and proposes it, 总经理 decides.
        head_failed_to_act=not subject_is_head,
        status=PenaltyStatus.draft,
        created_at=now,
    )


def _tell_hr(session: Session, complaint: Complaint, penalty: Penalty, facts: str, key: str, now: datetime) -> None:
    """Tell 人事行政经理 that a drafted overtime case waits for review."""
    outbox = notify.Outbox(session, now)
    outbox.add(
        outbox.recipients([HR_MANAGER], complaint),
        "penalty",
        f"{complaint.number}：超时扣罚待审核（{penalty.number}）",
        facts,
        complaint.id,
        f"{key}:hr",
        link=f"/penaltyview/show/{penalty.id}",
    )
    outbox.flush()
