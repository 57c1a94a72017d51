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

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import settings
from app.access import scope
from app.discipline import liability, penalties
from app.discipline.ledger import effective_in
from app.documents import render as documents
from app.i18n import _l
from app.lifecycle import TransitionError, record_event, value_of
from app.models import (
    Commendation,
    Document,
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
    wanted = [int(i) for i in ids if str(i).strip().isdigit()]
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


def issue_penalty_circular(session: Session, penalty: Penalty, principal: Any, now: datetime | None = None) -> Document:
    """A company-wide 通报 of one penalty, once its notice is issued (a new one supersedes)."""
    now = now or utcnow()
    _require_hr(principal)
    if value_of(penalty.status) not in CIRCULAR_STATUSES:
        raise TransitionError("state", str(_l("A penalty is circulated after its notice is issued.")))
    p = penalty_facts(penalty)
    heading = f"关于对{p['department']}{p['staff_name']}的处罚通报"
    previous = documents.current_document(session, "circular", penalty_id=penalty.id)
    doc = documents.issue_document(
        session,
        "circular",
        heading,
        {"heading": heading, "penalty": p, "chain_lines": chain_documents(session) == "circular"},
        penalty_id=penalty.id,
        supersedes=previous,
        issued_by_id=principal.user_id,
        now=now,
    )
    record_event(penalty, "circular", principal.user_id, note=doc.number, at=now, data={"document": doc.number})
    session.flush()
    return doc


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
