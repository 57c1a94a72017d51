"""Service layer of discipline: penalty cases, appeals, notices, circulars and the ledger.

Applies the rules of :mod:`app.penalties` to the database inside the caller's
transaction (the caller commits). Views, the REST API and the CLI call these
functions; none of them writes penalty state by itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import settings
from app.access import scope
from app.discipline import liability, penalties
from app.discipline.ledger import effective_in
from app.documents import render as documents
from app.i18n import _l
from app.lifecycle import TransitionError, record_event, value_of
from app.messages import notify
from app.models import (
    Commendation,
    Document,
    Notification,
    Penalty,
)
from app.timeutil import chinese_date, local_date, utcnow

NOTICE_HEADINGS = {
    "original": "处罚通知书",
    "corrected": "处罚通知书（更正）",
    "changed": "处罚变更通知书",
    "revoked": "撤销处罚决定通知书",
}


def penalty_facts(penalty: Penalty) -> dict[str, Any]:
    """A penalty as the document templates print it (Chinese names, plain values)."""
    staff, rule = penalty.staff, penalty.rule
    complaint = penalty.complaint
    return {
        "number": penalty.number,
        "staff_name": staff.name,
        "employee_no": staff.employee_no,
        "position": staff.position or "",
        "department": penalty.department.name,
        "facts": penalty.facts,
        "incident_date": penalty.incident_date,
        "clause": rule.clause,
        "rule_description": rule.description,
        "tier": rule.tier,
        "sanction": penalties.SANCTION_NAMES_ZH[value_of(penalty.sanction)],
        "sanction_code": value_of(penalty.sanction),
        "fine_amount": int(penalty.fine_amount or 0),
        "fine_capital": documents.cn_capital(penalty.fine_amount or 0),
        "score_deduction": int(penalty.score_deduction or 0),
        "withhold_performance_pay": bool(penalty.withhold_performance_pay),
        "circular_required": bool(penalty.circular_required),
        "legal_referral": bool(rule.legal_referral),
        "subject_is_head": bool(penalty.subject_is_head),
        "complaint_number": complaint.number if complaint is not None else None,
        "complaint_received": local_date(complaint.received_at) if complaint is not None else None,
        # Chained liability (连带扣分): the counted links, printed as lines of the 通报.
        "chained": liability.chained_facts(penalty),
    }


def issue_notice(
    session: Session,
    penalty: Penalty,
    user_id: int | None,
    now: datetime,
    variant: str = "original",
    reason: str | None = None,
) -> Document:
    """Issue the 处罚通知书 (or its correction, change or revocation), superseding the current one."""
    previous = documents.current_document(session, "penalty_notice", penalty_id=penalty.id)
    heading = NOTICE_HEADINGS[variant]
    context = {
        "heading": heading,
        "variant": variant,
        "penalty": penalty_facts(penalty),
        "appeal_days": int(settings.get(session, "penalty.appeal_working_days") or 3),
        "change_reason": reason,
    }
    doc = documents.issue_document(
        session,
        "penalty_notice",
        f"{heading}：{penalty.staff.name}",
        context,
        penalty_id=penalty.id,
        complaint_id=penalty.complaint_id,
        supersedes=previous,
        issued_by_id=user_id,
        note=reason,
        now=now,
    )
    penalty.issued_at = now
    return doc


def issue_chain_notices(session: Session, penalty: Penalty, user_id: int | None, now: datetime) -> list[Document]:
    """Each person liable by chain gets their own notice (setting ``penalty.chain_documents`` = notice)."""
    issued = []
    facts = penalty_facts(penalty)
    for link in penalty.links:
        if link.role == liability.RESPONSIBLE or not link.counted or link.staff is None:
            continue
        period = f"chain-{link.position}"
        previous = documents.current_document(session, "penalty_notice", penalty_id=penalty.id, period=period)
        heading = "连带责任扣分通知书"
        context = {
            "heading": heading,
            "variant": "chained",
            "penalty": facts,
            "link": {
                "role": liability.ROLE_NAMES_ZH[link.role],
                "staff_name": link.staff.name,
                "employee_no": link.staff.employee_no,
                "position": link.staff.position or "",
                "department": link.department.name if link.department is not None else "",
                "points": link.points,
                "fine": link.fine,
                "fine_capital": documents.cn_capital(link.fine or 0),
            },
            "appeal_days": int(settings.get(session, "penalty.appeal_working_days") or 3),
            "change_reason": None,
        }
        issued.append(
            documents.issue_document(
                session,
                "penalty_notice",
                f"{heading}：{link.staff.name}",
                context,
                penalty_id=penalty.id,
                complaint_id=penalty.complaint_id,
                period=period,
                supersedes=previous,
                issued_by_id=user_id,
                now=now,
            )
        )
    return issued


def current_notice(session: Session, penalty: Penalty) -> Document | None:
    return documents.current_document(session, "penalty_notice", penalty_id=penalty.id)


@dataclass
class Batch:
    pdf: bytes = b""
    included: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def batch_notices(session: Session, ids: Iterable[Any], principal: Any) -> Batch:
    """The current notices of the given penalties (in scope, issued) merged into one PDF."""
    wanted = [int(i) for i in ids if str(i).strip().isdecimal()]
    rows = {
        p.id: p
        for p in session.scalars(select(Penalty).where(Penalty.id.in_(wanted), scope.criterion(Penalty, principal)))
    }
    batch = Batch()
    parts = []
    for pid in dict.fromkeys(wanted):
        penalty = rows.get(pid)
        if penalty is None:
            continue
        doc = current_notice(session, penalty)
        if doc is None:
            batch.skipped.append(penalty.number)
            continue
        parts.append(doc.content)
        batch.included.append(penalty.number)
    if parts:
        batch.pdf = documents.merge_pdfs(parts)
    return batch


CIRCULAR_STATUSES = ("issued", "served", "appealed")


def _require_hr(principal: Any) -> None:
    if not principal.has_role(penalties.HR):
        raise TransitionError("role", str(_l("Only the HR & administration manager issues notices and circulars.")))


def chain_documents(session: Session) -> str:
    """How chained persons are told: "circular" (a line in the 通报) or "notice" (their own notice)."""
    mode = settings.get(session, "penalty.chain_documents")
    return mode if mode in liability.DOCUMENT_MODES else "circular"


def circular_refusal(session: Session, penalty: Penalty, reason: str | None) -> TransitionError | None:
    """Why a 通报 of this penalty may not be issued now with this reason (None: it may).

    The rule decides: a case whose rule calls for a 通报 gets one plainly; a 通报 for a rule
    that does not call for one, or a second 通报 of the same case, is deliberate and needs a reason.
    """
    if value_of(penalty.status) not in CIRCULAR_STATUSES:
        return TransitionError("state", str(_l("A penalty is circulated after its notice is issued.")))
    if reason:
        return None
    previous = documents.current_document(session, "circular", penalty_id=penalty.id)
    if previous is not None:
        return TransitionError(
            "state",
            str(
                _l(
                    "Circular %(number)s was already issued for this case: a re-issue needs a reason.",
                    number=previous.number,
                )
            ),
        )
    if not penalty.circular_required:
        return TransitionError(
            "state",
            str(_l("The rule of this case does not call for a company-wide circular: issuing one needs a reason.")),
        )
    return None


def circular_context(session: Session, penalty: Penalty) -> tuple[str, dict[str, Any]]:
    """The heading and template data of a penalty's 通报 (the draft and the issued one are the same)."""
    p = penalty_facts(penalty)
    heading = f"关于对{p['department']}{p['staff_name']}的处罚通报"
    return heading, {"heading": heading, "penalty": p, "chain_lines": chain_documents(session) == "circular"}


NOTICE_STEPS = ("issue_notice", "reissue_notice", "decide_appeal")


def issue_previews(session: Session, penalty: Penalty) -> dict[str, dict[str, Any]]:
    """What each document-issuing action of the case would issue: kind, 文号 preview, recipient.

    Shown in the confirmation before issuing (keys: the step actions and "circular").
    """
    notice = {
        "kind": documents.KIND_NAMES_ZH["penalty_notice"],
        "number": documents.preview_number(session, "penalty_notice"),
        "recipient": f"{penalty.staff.name}（{penalty.department.name}）",
    }
    previous = documents.current_document(session, "circular", penalty_id=penalty.id)
    circular = {
        "kind": documents.KIND_NAMES_ZH["circular"],
        "number": documents.preview_number(session, "circular"),
        "recipient": "各部门、全体员工",
        "required": bool(penalty.circular_required),
        "previous": previous.number if previous is not None else None,
        "needs_reason": previous is not None or not penalty.circular_required,
    }
    return {**{action: notice for action in NOTICE_STEPS}, "circular": circular}


def circular_draft_pdf(session: Session, penalty: Penalty) -> bytes:
    """The draft of a penalty's 通报: what issuing it now would print, with the 文号 left open."""
    heading, context = circular_context(session, penalty)
    return documents.render_draft(session, "circular", heading, context)


def issue_penalty_circular(
    session: Session, penalty: Penalty, principal: Any, now: datetime | None = None, reason: str | None = None
) -> Document:
    """A company-wide 通报 of one penalty, once its notice is issued (a re-issue supersedes).

    Refused without a ``reason`` when the rule does not call for a 通报 or one was already issued.
    Issuing it closes the "通报待签发" task of the case.
    """
    now = now or utcnow()
    _require_hr(principal)
    reason = (reason or "").strip() or None
    refusal = circular_refusal(session, penalty, reason)
    if refusal is not None:
        raise refusal
    heading, context = circular_context(session, penalty)
    previous = documents.current_document(session, "circular", penalty_id=penalty.id)
    doc = documents.issue_document(
        session,
        "circular",
        heading,
        context,
        penalty_id=penalty.id,
        complaint_id=penalty.complaint_id,
        supersedes=previous,
        issued_by_id=principal.user_id,
        note=reason,
        now=now,
    )
    action = "circular" if previous is None else "reissue_circular"
    note = doc.number if reason is None else f"{doc.number}：{reason}"
    record_event(penalty, action, principal.user_id, note=note, at=now, data={"document": doc.number, "reason": reason})
    penalty.circular_due_at = None
    _close_tasks(session, penalty, now)
    session.flush()
    return doc


def draft_circular(session: Session, penalty: Penalty, now: datetime) -> bool:
    """The notice of a case whose rule calls for a 通报 was issued: ask 人事行政经理 to issue it.

    The case is marked ``circular_due_at`` (listed under 待签发通报 until the 通报 is issued) and
    each 人事行政经理 gets a task in the inbox; returns whether a draft was made.
    """
    if not penalty.circular_required or penalty.circular_due_at is not None:
        return False
    if documents.current_document(session, "circular", penalty_id=penalty.id) is not None:
        return False
    penalty.circular_due_at = now
    record_event(penalty, "circular_drafted", None, note=str(_l("Circular drafted: awaiting issue.")), at=now)
    notify.notify(
        session,
        notify.users_for(session, penalties.HR),
        "task",
        str(_l("Penalty %(case)s: review and issue the circular", case=f"{penalty.number} {penalty.staff.name}")),
        link=f"/penaltyview/show/{penalty.id}",
        dedup_key=_task_key(penalty),
        now=now,
    )
    return True


def cancel_circular(session: Session, penalty: Penalty, now: datetime) -> None:
    """The case no longer awaits its 通报 (revoked): clear the mark and close the inbox tasks."""
    if penalty.circular_due_at is not None:
        penalty.circular_due_at = None
        _close_tasks(session, penalty, now)


def _task_key(penalty: Penalty) -> str:
    return f"circular_due:{penalty.id}"


def _close_tasks(session: Session, penalty: Penalty, now: datetime) -> None:
    """The 通报 is issued: its inbox tasks are done (marked read for every 人事行政经理)."""
    session.execute(
        update(Notification)
        .where(Notification.dedup_key.like(_task_key(penalty) + ":%"), Notification.read_at.is_(None))
        .values(read_at=now)
    )


def circulars_due(session: Session, principal: Any) -> list[Penalty]:
    """The cases in scope whose 通报 awaits issue, oldest first (the 待签发通报 task list)."""
    return list(
        session.scalars(
            select(Penalty)
            .where(Penalty.circular_due_at.is_not(None), scope.criterion(Penalty, principal))
            .order_by(Penalty.circular_due_at, Penalty.id)
        )
    )


def issue_monthly_circular(session: Session, month: date, principal: Any, now: datetime | None = None) -> Document:
    """The month's 通报: its penalties and commendations together (a reissue supersedes)."""
    now = now or utcnow()
    _require_hr(principal)
    rows = session.scalars(select(Penalty).where(effective_in(month)).order_by(Penalty.decided_at, Penalty.id)).all()
    following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    praised = session.scalars(
        select(Commendation)
        .where(Commendation.commended_on >= month, Commendation.commended_on < following)
        .order_by(Commendation.commended_on, Commendation.id)
    ).all()
    period = f"{month:%Y-%m}"
    period_cn = chinese_date(month).split("月")[0] + "月"
    heading = f"关于{period_cn}服务投诉处罚及表扬情况的通报"
    items = [penalty_facts(p) for p in rows]
    context = {
        "heading": heading,
        "penalty": None,
        "period_cn": period_cn,
        "penalties": items,
        "fine_total": sum(i["fine_amount"] for i in items),
        "score_total": sum(i["score_deduction"] for i in items),
        "chain_lines": chain_documents(session) == "circular",
        "chained": [{**c, "number": i["number"], "responsible": i["staff_name"]} for i in items for c in i["chained"]],
        "commendations": [
            {
                "staff_name": c.staff.name,
                "department": c.department.name,
                "date": c.commended_on,
                "source": penalties.COMMENDATION_SOURCE_NAMES_ZH.get(c.source, c.source),
                "content": c.content,
            }
            for c in praised
        ],
    }
    previous = documents.current_document(session, "circular", period=period)
    return documents.issue_document(
        session,
        "circular",
        heading,
        context,
        period=period,
        supersedes=previous,
        issued_by_id=principal.user_id,
        now=now,
    )
