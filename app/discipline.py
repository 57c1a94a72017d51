"""Service layer of discipline: penalty cases, appeals, notices, circulars and the ledger.

Applies the rules of :mod:`app.penalties` to the database inside the caller's
transaction (the caller commits). Views, the REST API and the CLI call these
functions; none of them writes penalty state by itself.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app import documents, liability, numbering, penalties, scope, settings
from app.i18n import _, _l
from app.models import (
    Appeal,
    Commendation,
    Complaint,
    Department,
    Document,
    Penalty,
    PenaltyEvent,
    PenaltyLink,
    PenaltyRule,
    PenaltyStatus,
    Sanction,
    Staff,
)
from app.services import ValidationFailed, actor_for
from app.timeutil import LOCAL_TZ, UTC, chinese_date, local_date, utcnow
from app.workflow import TransitionError

VERSION_CONFLICT = _l("Someone else changed this penalty meanwhile; reload and try again.")


def _v(value: Any) -> Any:
    return getattr(value, "value", value)


# --- Facts -----------------------------------------------------------------------------------


def heads_department(session: Session, staff_id: int | None) -> bool:
    """Whether the staff member heads a department (then 人事行政经理 proposes, 总经理 decides)."""
    if staff_id is None:
        return False
    return session.scalar(select(Department.id).where(Department.head_id == staff_id).limit(1)) is not None


def case_facts(penalty: Penalty) -> penalties.CaseFacts:
    return penalties.CaseFacts(
        status=_v(penalty.status),
        staff_id=penalty.staff_id,
        department_id=penalty.department_id,
        subject_is_head=bool(penalty.subject_is_head),
        head_failed_to_act=bool(penalty.head_failed_to_act),
        terms=penalties.Terms.of(penalty) if penalty.sanction is not None else None,
        issued_on=local_date(penalty.issued_at) if penalty.issued_at else None,
        served_on=penalty.served_on,
        appeal_deadline=penalty.appeal_deadline,
        has_appeal=bool(penalty.appeals),
    )


def available_steps(session: Session, penalty: Penalty, principal: Any) -> list[penalties.Step]:
    return penalties.available(actor_for(principal), case_facts(penalty))


# --- Opening and editing a case -----------------------------------------------------------------


CASE_FIELDS = (
    "staff",
    "rule",
    "complaint",
    "incident_date",
    "facts",
    "sanction",
    "fine_amount",
    "score_deduction",
    "withhold_performance_pay",
    "circular_required",
    "head_failed_to_act",
)


def _check_case(
    session: Session, principal: Any, data: dict[str, Any], penalty: Penalty | None = None
) -> tuple[Staff, PenaltyRule, Complaint | None, penalties.Terms, bool]:
    """Validate a case's fields and the actor's right to propose it; raise with every reason."""
    errors: dict[str, list[str]] = {}
    staff = data.get("staff")
    rule = data.get("rule")
    complaint = data.get("complaint")
    if not isinstance(staff, Staff):
        errors.setdefault("staff", []).append(str(_l("Please choose the staff member.")))
    elif not staff.active and penalty is None:
        errors.setdefault("staff", []).append(str(_l("%(name)s is no longer active.", name=staff.name)))
    if not isinstance(rule, PenaltyRule):
        errors.setdefault("rule", []).append(str(_l("Please choose the rule applied.")))
    elif not rule.active and (penalty is None or penalty.rule_id != rule.id):
        errors.setdefault("rule", []).append(str(_l("The rule %(clause)s is no longer in force.", clause=rule.clause)))
    facts = data.get("facts")
    if not isinstance(facts, str) or not facts.strip():
        errors.setdefault("facts", []).append(str(_l("Please describe the facts.")))
    if complaint is not None and isinstance(staff, Staff):
        named = {s.id for s in complaint.staff} | {complaint.responsible_staff_id}
        if staff.id not in named and staff.department_id != complaint.department_id:
            errors.setdefault("complaint", []).append(
                str(
                    _l(
                        "%(name)s is neither named in complaint %(number)s nor works in its department.",
                        name=staff.name,
                        number=complaint.number,
                    )
                )
            )
    if complaint is not None and not scope.can_see(session, Complaint, complaint.id, principal):
        errors.setdefault("complaint", []).append(str(_l("This complaint is outside your scope.")))
    terms = None
    if isinstance(rule, PenaltyRule):
        defaults = penalties.default_terms(rule)
        try:
            terms = penalties.Terms(
                sanction=_v(data.get("sanction") or defaults.sanction),
                fine_amount=_amount(data.get("fine_amount"), defaults.fine_amount),
                score_deduction=_amount(data.get("score_deduction"), defaults.score_deduction),
                withhold_performance_pay=_flag(data.get("withhold_performance_pay"), defaults.withhold_performance_pay),
            )
        except ValueError as exc:
            errors.setdefault("fine_amount", []).append(str(exc))
        else:
            for name, messages in penalties.check_terms(rule, terms).items():
                errors.setdefault(name, []).extend(messages)
    subject_is_head = heads_department(session, staff.id) if isinstance(staff, Staff) else False
    if isinstance(staff, Staff):
        facts_ = penalties.CaseFacts(
            status="draft",
            staff_id=staff.id,
            department_id=staff.department_id,
            subject_is_head=subject_is_head,
            head_failed_to_act=bool(data.get("head_failed_to_act")),
        )
        refusal = penalties.proposer_refusal(actor_for(principal), facts_)
        if refusal:
            raise TransitionError("role", refusal)
    if errors:
        raise ValidationFailed(errors)
    return staff, rule, complaint, terms, subject_is_head  # type: ignore[return-value]


def _amount(value: Any, default: int) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    return penalties.parse_amount(value)


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on", "y"}


def open_case(session: Session, principal: Any, data: dict[str, Any], now: datetime | None = None) -> Penalty:
    """Open a penalty case as a draft (from a complaint, or from an inspection without one)."""
    now = now or utcnow()
    staff, rule, complaint, terms, subject_is_head = _check_case(session, principal, data)
    year = local_date(now).year
    penalty = Penalty(
        number=numbering.penalty_number(year, numbering.next_value(session, "penalty", str(year))),
        complaint=complaint,
        staff=staff,
        department_id=staff.department_id,
        rule=rule,
        source="complaint" if complaint is not None else "inspection",
        incident_date=_date_or_none(data.get("incident_date")),
        facts=data["facts"].strip(),
        sanction=Sanction(terms.sanction),
        fine_amount=terms.fine_amount,
        score_deduction=terms.score_deduction,
        withhold_performance_pay=terms.withhold_performance_pay,
        circular_required=_flag(data.get("circular_required"), bool(rule.circular_required)),
        subject_is_head=subject_is_head,
        head_failed_to_act=bool(data.get("head_failed_to_act")) and not subject_is_head,
        status=PenaltyStatus.draft,
        created_by_id=principal.user_id,
        created_at=now,
    )
    session.add(penalty)
    record_event(
        penalty, "open", principal.user_id, to_status="draft", at=now, data={"rule": rule.clause, **terms.as_dict()}
    )
    session.flush()
    return penalty


def edit_case(
    session: Session, penalty: Penalty, principal: Any, data: dict[str, Any], now: datetime | None = None
) -> Penalty:
    """Change a draft or returned case; only its proposer may, and the terms are checked again."""
    now = now or utcnow()
    if _v(penalty.status) not in penalties.EDITABLE:
        raise TransitionError(
            "state",
            str(
                _l(
                    "A penalty can be changed only as a draft or after it was returned; it is %(status)s.",
                    status=penalties.status_label(penalty.status),
                )
            ),
        )
    merged = {name: getattr(penalty, name) for name in CASE_FIELDS}
    merged.update({k: v for k, v in data.items() if k in CASE_FIELDS})
    staff, rule, complaint, terms, subject_is_head = _check_case(session, principal, merged, penalty)
    refusal = penalties.proposer_refusal(actor_for(principal), case_facts(penalty))
    if refusal:
        raise TransitionError("role", refusal)
    penalty.staff, penalty.department_id, penalty.rule, penalty.complaint = staff, staff.department_id, rule, complaint
    penalty.source = "complaint" if complaint is not None else "inspection"
    penalty.incident_date = _date_or_none(merged.get("incident_date"))
    penalty.facts = merged["facts"].strip()
    penalty.sanction = Sanction(terms.sanction)
    penalty.fine_amount, penalty.score_deduction = terms.fine_amount, terms.score_deduction
    penalty.withhold_performance_pay = terms.withhold_performance_pay
    penalty.circular_required = _flag(merged.get("circular_required"), bool(rule.circular_required))
    penalty.subject_is_head = subject_is_head
    penalty.head_failed_to_act = bool(merged.get("head_failed_to_act")) and not subject_is_head
    record_event(penalty, "edit", principal.user_id, at=now, data={"rule": rule.clause, **terms.as_dict()})
    _flush(session)
    return penalty


def _date_or_none(value: Any) -> date | None:
    if value is None or value == "":
        return None
    return penalties.parse_date(value)


def record_event(
    penalty: Penalty,
    action: str,
    actor_id: int | None,
    note: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> PenaltyEvent:
    """Append one line to the case's timeline (never updated afterwards)."""
    event = PenaltyEvent(
        action=action,
        actor_id=actor_id,
        note=note,
        from_status=from_status,
        to_status=to_status,
        data=data,
        at=at or utcnow(),
    )
    penalty.events.append(event)
    return event


def lock_penalty(session: Session, penalty: Penalty) -> None:
    """Take the case's row lock (PostgreSQL) and reload it before a step."""
    if session.get_bind().dialect.name == "postgresql" and penalty.id is not None:
        session.execute(select(Penalty.id).where(Penalty.id == penalty.id).with_for_update())
        session.refresh(penalty)


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        session.rollback()
        raise TransitionError("version", str(VERSION_CONFLICT)) from exc


# --- The approval chain ---------------------------------------------------------------------


def take_step(
    session: Session,
    penalty: Penalty,
    action: str,
    principal: Any,
    raw: dict[str, Any],
    now: datetime | None = None,
    expected_version: Any = None,
) -> PenaltyEvent:
    """Take one step of the chain and record it; raises TransitionError (state/role/fields/version)."""
    now = now or utcnow()
    lock_penalty(session, penalty)
    if expected_version not in (None, "") and str(expected_version) != str(penalty.version):
        raise TransitionError("version", str(VERSION_CONFLICT))
    facts = case_facts(penalty)
    step, values = penalties.check(action, actor_for(principal), facts, raw, local_date(now))
    before = facts.status
    after = step.target_for(facts, values)
    data = _apply(session, penalty, step, values, principal.user_id, now)
    penalty.status = PenaltyStatus(after)
    note = values.get("note") or values.get("reason") or values.get("grounds")
    event = record_event(
        penalty, action, principal.user_id, note=note, from_status=before, to_status=after, at=now, data=data or None
    )
    if action == "approve" and penalty.links:
        # One timeline line for the chain, vacancies included (a vacant link is skipped and noted).
        record_event(
            penalty,
            "chain",
            principal.user_id,
            note=liability.timeline_note(list(penalty.links)),
            at=now,
            data={"links": [liability.link_json(k) for k in penalty.links]},
        )
    _flush(session)
    _notify_step(session, penalty, action, after, now)
    if action == "approve":
        liability.warn_thresholds(session, penalty, now)
    return event


def _apply(
    session: Session, penalty: Penalty, step: penalties.Step, values: dict[str, Any], user_id: int | None, now: datetime
) -> dict[str, Any]:
    """The effects of a step beyond the status: who and when, terms, appeals, documents."""
    action = step.action
    data: dict[str, Any] = {}
    if action == "propose":
        penalty.proposed_by_id, penalty.proposed_at, penalty.return_reason = user_id, now, None
        if penalty.subject_is_head or penalty.head_failed_to_act:
            penalty.reviewed_by_id, penalty.reviewed_at = user_id, now
    elif action == "review":
        penalty.reviewed_by_id, penalty.reviewed_at = user_id, now
    elif action in ("return", "reject"):
        penalty.return_reason = values["reason"]
    elif action == "approve":
        penalty.decided_by_id, penalty.decided_at = user_id, now
        # Chained liability: every linked deduction is created with the approval, in its transaction.
        liability.resolve(session, penalty, now)
    elif action == "issue_notice":
        data["document"] = issue_notice(session, penalty, user_id, now).number
        if chain_documents(session) == "notice":
            chained = issue_chain_notices(session, penalty, user_id, now)
            if chained:
                data["chain_documents"] = [d.number for d in chained]
    elif action == "serve":
        penalty.served_on = values["served_on"]
        days = int(settings.get(session, "penalty.appeal_working_days") or 3)
        from app import sla

        penalty.appeal_deadline = penalties.appeal_deadline(sla.load_calendar(session), values["served_on"], days)
        data.update(served_on=penalty.served_on.isoformat(), appeal_deadline=penalty.appeal_deadline.isoformat())
    elif action == "record_appeal":
        penalty.appeals.append(
            Appeal(filed_on=values["filed_on"], grounds=values["grounds"], recorded_by_id=user_id, recorded_at=now)
        )
        data["filed_on"] = values["filed_on"].isoformat()
    elif action == "decide_appeal":
        data.update(_decide_appeal(session, penalty, values, user_id, now))
    elif action == "reissue_notice":
        if values.get("facts"):
            data["previous_facts"] = penalty.facts
            penalty.facts = values["facts"]
        data["document"] = issue_notice(session, penalty, user_id, now, "corrected", values["reason"]).number
        penalty.served_on = penalty.appeal_deadline = None
    return data


def _decide_appeal(
    session: Session, penalty: Penalty, values: dict[str, Any], user_id: int | None, now: datetime
) -> dict[str, Any]:
    appeal = next((a for a in reversed(penalty.appeals) if a.decision is None), None)
    current = penalties.Terms.of(penalty)
    decision = values["decision"]
    if appeal is not None:
        appeal.decision = {"uphold": "upheld", "reduce": "reduced", "revoke": "revoked"}[decision]
        appeal.decision_reason = values["reason"]
        appeal.decided_by_id, appeal.decided_at = user_id, now
        appeal.previous_terms = current.as_dict()
    data: dict[str, Any] = {"decision": decision}
    if decision == "reduce":
        new = penalties.reduced_terms(current, values)
        penalty.sanction = Sanction(new.sanction)
        penalty.fine_amount, penalty.score_deduction = new.fine_amount, new.score_deduction
        penalty.withhold_performance_pay = new.withhold_performance_pay
        for link in penalty.links:
            if link.role == liability.RESPONSIBLE:
                link.points, link.fine = new.score_deduction, new.fine_amount
        data.update(before=current.as_dict(), after=new.as_dict())
        data["document"] = issue_notice(session, penalty, user_id, now, "changed", values["reason"]).number
        penalty.served_on = penalty.appeal_deadline = None
    elif decision == "revoke":
        penalty.revoked_at = now
        data["document"] = issue_notice(session, penalty, user_id, now, "revoked", values["reason"]).number
    return data


# --- Notices -----------------------------------------------------------------------------------

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
        "sanction": penalties.SANCTION_NAMES_ZH[_v(penalty.sanction)],
        "sanction_code": _v(penalty.sanction),
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


# --- Circulars (通报) ---------------------------------------------------------------------------

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
    if _v(penalty.status) not in CIRCULAR_STATUSES:
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


def parse_month(text: Any) -> date:
    """``2026-11`` -> 2026-11-01; raises ValueError with a readable message."""
    try:
        year, month = str(text or "").strip().split("-")[:2]
        return date(int(year), int(month), 1)
    except (ValueError, TypeError) as exc:
        raise ValueError(str(_l("Please give the month as YYYY-MM."))) from exc


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The UTC instants of a local (Asia/Shanghai) calendar month: [start, end)."""
    start = datetime(month.year, month.month, 1, tzinfo=LOCAL_TZ)
    following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    end = datetime(following.year, following.month, 1, tzinfo=LOCAL_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


def _effective_in(month: date) -> Any:
    return effective_between(*month_bounds(month))


def effective_between(start: datetime, end: datetime) -> Any:
    """Penalties in force decided in [start, end): what ledgers, circulars and reports count."""
    return and_(Penalty.status.in_(penalties.EFFECTIVE), Penalty.decided_at >= start, Penalty.decided_at < end)


def issue_monthly_circular(session: Session, month: date, principal: Any, now: datetime | None = None) -> Document:
    """The month's 通报: its penalties and commendations together (a reissue supersedes)."""
    now = now or utcnow()
    _require_hr(principal)
    rows = session.scalars(select(Penalty).where(_effective_in(month)).order_by(Penalty.decided_at, Penalty.id)).all()
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


# --- Earlier offences ---------------------------------------------------------------------------


def earlier_offences(session: Session, penalty: Penalty, now: datetime | None = None) -> penalties.Summary:
    """The staff member's other penalties of the last 12 months and the rule's next tier."""
    now = now or utcnow()
    since = now - timedelta(days=penalties.REPEAT_WINDOW_DAYS)
    when = func.coalesce(Penalty.decided_at, Penalty.proposed_at, Penalty.created_at)
    earlier = session.scalars(
        select(Penalty)
        .where(
            Penalty.staff_id == penalty.staff_id,
            Penalty.id != penalty.id,
            Penalty.status.in_(penalties.EFFECTIVE + penalties.PENDING),
            when >= since,
        )
        .order_by(when.desc())
    ).all()
    rules = session.scalars(select(PenaltyRule).where(PenaltyRule.active.is_(True))).all()
    top = max((r.tier for r in rules), default=penalty.rule.tier)
    tiers = [p.rule.tier for p in earlier if _v(p.status) in penalties.EFFECTIVE]
    return penalties.Summary(
        earlier=list(earlier),
        next_rules=penalties.next_tier(rules, penalty.rule),
        suggested_tier=penalties.suggested_tier(tiers, penalty.rule.tier, top),
    )


# --- Monthly ledger (payroll) ----------------------------------------------------------------------


def _ledger_entries(in_scope: Any) -> Any:
    """Every deduction of the ledger: each case's own terms, plus its counted chained links."""
    own = select(
        Penalty.staff_id.label("staff_id"),
        Penalty.department_id.label("department_id"),
        Penalty.id.label("penalty_id"),
        Penalty.fine_amount.label("fine"),
        Penalty.score_deduction.label("points"),
        case((Penalty.withhold_performance_pay.is_(True), 1), else_=0).label("withheld"),
        literal(0).label("chained"),
    ).where(in_scope)
    chained = (
        select(
            PenaltyLink.staff_id,
            PenaltyLink.department_id,
            PenaltyLink.penalty_id,
            PenaltyLink.fine,
            PenaltyLink.points,
            literal(0),
            literal(1),
        )
        .join(Penalty, Penalty.id == PenaltyLink.penalty_id)
        .where(
            in_scope,
            PenaltyLink.counted.is_(True),
            PenaltyLink.role != liability.RESPONSIBLE,
            PenaltyLink.staff_id.is_not(None),
        )
    )
    return union_all(own, chained).subquery("entries")


def ledger(session: Session, month: date, principal: Any) -> dict[str, Any]:
    """Fines, points and sanctions of a month per staff member and per department (SQL aggregates).

    Chained deductions (连带扣分) count on their person's row and department; the
    confirmed forbidden service phrases (服务忌语) of the month are a column per staff.
    """
    from app import phrases

    in_scope = and_(_effective_in(month), scope.criterion(Penalty, principal))
    e = _ledger_entries(in_scope)
    own_case = case((e.c.chained == 0, e.c.penalty_id))
    per_staff = session.execute(
        select(
            Staff.id,
            Staff.employee_no,
            Staff.name,
            Department.name,
            func.count(own_case),
            func.coalesce(func.sum(e.c.fine), 0),
            func.coalesce(func.sum(e.c.points), 0),
            func.max(e.c.withheld),
            func.coalesce(func.sum(e.c.chained), 0),
        )
        .select_from(e)
        .join(Staff, Staff.id == e.c.staff_id)
        .join(Department, Department.id == e.c.department_id)
        .group_by(Staff.id, Staff.employee_no, Staff.name, Department.name)
        .order_by(Department.name, Staff.employee_no)
    ).all()
    per_department = session.execute(
        select(
            Department.id,
            Department.name,
            func.count(own_case),
            func.count(func.distinct(e.c.staff_id)),
            func.coalesce(func.sum(e.c.fine), 0),
            func.coalesce(func.sum(e.c.points), 0),
            func.coalesce(func.sum(e.c.withheld), 0),
            func.coalesce(func.sum(e.c.chained), 0),
        )
        .select_from(e)
        .join(Department, Department.id == e.c.department_id)
        .group_by(Department.id, Department.name)
        .order_by(Department.name)
    ).all()
    details = session.scalars(select(Penalty).where(in_scope).order_by(Penalty.decided_at, Penalty.id)).all()
    links = session.execute(
        select(PenaltyLink, Penalty)
        .join(Penalty, Penalty.id == PenaltyLink.penalty_id)
        .where(in_scope, PenaltyLink.role != liability.RESPONSIBLE)
        .order_by(Penalty.decided_at, Penalty.id, PenaltyLink.position)
    ).all()
    sanctions: dict[int, list[str]] = {}
    for p in details:
        sanctions.setdefault(p.staff_id, []).append(penalties.sanction_label(p.sanction))
    staff_rows = [
        {
            "staff_id": r[0],
            "employee_no": r[1],
            "name": r[2],
            "department": r[3],
            "count": int(r[4]),
            "chained": int(r[8]),
            "fines": int(r[5]),
            "points": int(r[6]),
            "performance_pay_withheld": bool(r[7]),
            "sanctions": "、".join(sanctions.get(r[0], [])),
            "phrase_hits": 0,
        }
        for r in per_staff
    ]
    # 服务忌语: confirmed forbidden phrases of the month, for the staff the caller may see.
    hits = phrases.hits_per_staff(
        session,
        *month_bounds(month),
        department_ids=None if principal.is_company_wide else principal.department_ids,
    )
    by_staff = {r["staff_id"]: r for r in staff_rows}
    missing = [h["staff_id"] for h in hits if h["staff_id"] not in by_staff]
    if missing:
        for staff_id, employee_no, name, department in session.execute(
            select(Staff.id, Staff.employee_no, Staff.name, Department.name)
            .join(Department, Department.id == Staff.department_id)
            .where(Staff.id.in_(missing))
        ):
            by_staff[staff_id] = {
                "staff_id": staff_id,
                "employee_no": employee_no,
                "name": name,
                "department": department,
                "count": 0,
                "chained": 0,
                "fines": 0,
                "points": 0,
                "performance_pay_withheld": False,
                "sanctions": "",
                "phrase_hits": 0,
            }
    for h in hits:
        if h["staff_id"] in by_staff:
            by_staff[h["staff_id"]]["phrase_hits"] = int(h["hits"])
    staff_rows = sorted(by_staff.values(), key=lambda r: (r["department"], r["employee_no"]))
    chained_rows = [
        {
            "penalty_id": p.id,
            "number": p.number,
            "role": link.role,
            "role_label": liability.role_label(link.role),
            "staff": link.staff.name if link.staff is not None else None,
            "employee_no": link.staff.employee_no if link.staff is not None else None,
            "department": link.department.name if link.department is not None else None,
            "responsible": p.staff.name,
            "clause": p.rule.clause,
            "points": link.points,
            "fine": link.fine,
            "counted": bool(link.counted),
            "vacant": bool(link.vacant),
            "note": link.note,
            "decided_at": p.decided_at.isoformat() if p.decided_at else None,
        }
        for link, p in links
    ]
    counted = [r for r in chained_rows if r["counted"]]
    return {
        "month": f"{month:%Y-%m}",
        "staff": staff_rows,
        "departments": [
            {
                "department_id": r[0],
                "department": r[1],
                "count": int(r[2]),
                "staff": int(r[3]),
                "fines": int(r[4]),
                "points": int(r[5]),
                "performance_pay_withheld": int(r[6]),
                "chained": int(r[7]),
            }
            for r in per_department
        ],
        "penalties": [
            {
                "id": p.id,
                "number": p.number,
                "staff": p.staff.name,
                "employee_no": p.staff.employee_no,
                "department": p.department.name,
                "clause": p.rule.clause,
                "sanction": penalties.sanction_label(p.sanction),
                "fine_amount": p.fine_amount,
                "score_deduction": p.score_deduction,
                "performance_pay_withheld": p.withhold_performance_pay,
                "decided_at": p.decided_at.isoformat() if p.decided_at else None,
                "status": penalties.status_label(p.status),
            }
            for p in details
        ],
        "chained": chained_rows,
        "totals": {
            "count": len(details),
            "fines": sum(p.fine_amount for p in details) + sum(r["fine"] for r in counted),
            "points": sum(p.score_deduction for p in details) + sum(r["points"] for r in counted),
        },
        "chained_totals": {
            "count": len(counted),
            "fines": sum(r["fine"] for r in counted),
            "points": sum(r["points"] for r in counted),
        },
        "phrase_hits": sum(r["phrase_hits"] for r in staff_rows),
    }


def ledger_xlsx(data: dict[str, Any]) -> bytes:
    """The ledger as an Excel workbook for payroll: per staff, per department, every penalty."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    yes, no = _("Yes"), _("No")
    book = Workbook()
    sheets = [
        (
            _("Per staff member"),
            [
                _("Employee no."),
                _("Name"),
                _("Department"),
                _("Penalties"),
                _("Sanctions"),
                _("Fines (yuan)"),
                _("Points deducted"),
                _("Performance pay withheld"),
                _("Chained deductions"),
                _("Forbidden service phrases"),
            ],
            [
                [
                    r["employee_no"],
                    r["name"],
                    r["department"],
                    r["count"],
                    r["sanctions"],
                    r["fines"],
                    r["points"],
                    yes if r["performance_pay_withheld"] else no,
                    r["chained"],
                    r["phrase_hits"],
                ]
                for r in data["staff"]
            ],
        ),
        (
            _("Per department"),
            [
                _("Department"),
                _("Penalties"),
                _("Staff penalised"),
                _("Fines (yuan)"),
                _("Points deducted"),
                _("Performance pay withheld (staff)"),
                _("Chained deductions"),
            ],
            [
                [
                    r["department"],
                    r["count"],
                    r["staff"],
                    r["fines"],
                    r["points"],
                    r["performance_pay_withheld"],
                    r["chained"],
                ]
                for r in data["departments"]
            ],
        ),
        (
            _("Penalties"),
            [
                _("Case no."),
                _("Employee no."),
                _("Name"),
                _("Department"),
                _("Clause"),
                _("Sanction"),
                _("Fines (yuan)"),
                _("Points deducted"),
                _("Performance pay withheld"),
                _("Decided at"),
                _("Status"),
            ],
            [
                [
                    r["number"],
                    r["employee_no"],
                    r["staff"],
                    r["department"],
                    r["clause"],
                    r["sanction"],
                    r["fine_amount"],
                    r["score_deduction"],
                    yes if r["performance_pay_withheld"] else no,
                    (r["decided_at"] or "")[:16].replace("T", " "),
                    r["status"],
                ]
                for r in data["penalties"]
            ],
        ),
        (
            _("Chained deductions"),
            [
                _("Case no."),
                _("Person responsible"),
                _("Clause"),
                _("Liable as"),
                _("Employee no."),
                _("Name"),
                _("Department"),
                _("Points deducted"),
                _("Fines (yuan)"),
                _("Deducted"),
                _("Note"),
                _("Decided at"),
            ],
            [
                [
                    r["number"],
                    r["responsible"],
                    r["clause"],
                    r["role_label"],
                    r["employee_no"] or "",
                    r["staff"] or _("(vacant)"),
                    r["department"] or "",
                    r["points"],
                    r["fine"],
                    yes if r["counted"] else no,
                    r["note"] or "",
                    (r["decided_at"] or "")[:16].replace("T", " "),
                ]
                for r in data["chained"]
            ],
        ),
    ]
    for index, (title, header, rows) in enumerate(sheets):
        sheet = book.active if index == 0 else book.create_sheet()
        sheet.title = f"{title}"[:31]
        sheet.append([_("Month"), data["month"]])
        sheet.append(header)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        sheet.freeze_panes = "A3"
        for column in sheet.columns:
            width = max(len(str(c.value or "")) for c in column)
            sheet.column_dimensions[column[0].column_letter].width = min(60, max(10, width * 2 + 2))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- Commendations --------------------------------------------------------------------------------


def check_commendation(item: Commendation) -> None:
    """Fill the department from the staff member and check the fields; raise ValidationFailed."""
    errors: dict[str, list[str]] = {}
    if item.staff is None:
        errors.setdefault("staff", []).append(str(_l("Please choose the staff member.")))
    else:
        item.department_id = item.staff.department_id
    if item.source not in penalties.COMMENDATION_SOURCES:
        errors.setdefault("source", []).append(
            str(
                _l(
                    "“%(value)s” is not one of: %(choices)s.",
                    value=item.source,
                    choices=", ".join(penalties.COMMENDATION_SOURCES),
                )
            )
        )
    if not (item.content or "").strip():
        errors.setdefault("content", []).append(str(_l("Please describe what the employee was praised for.")))
    if item.commended_on is None:
        errors.setdefault("commended_on", []).append(str(_l("Please enter the date.")))
    if errors:
        raise ValidationFailed(errors)


# --- Notifications ------------------------------------------------------------------------------


def _notify_step(session: Session, penalty: Penalty, action: str, status: str, now: datetime) -> None:
    from app import notify

    link = f"/penaltyview/show/{penalty.id}"
    subject = f"{penalty.number} {penalty.staff.name}"
    if action == "propose" and status == "proposed":
        users, title = (
            notify.users_for(session, penalties.HR),
            _l("Penalty %(case)s proposed: please review", case=subject),
        )
    elif status == "reviewed":
        users, title = (
            notify.users_for(session, penalties.GM),
            _l("Penalty %(case)s awaits your decision", case=subject),
        )
    elif status == "returned":
        users = [u for u in (penalty.proposed_by, penalty.created_by) if u is not None]
        title = _l("Penalty %(case)s was returned: %(reason)s", case=subject, reason=penalty.return_reason or "")
    elif status == "approved":
        users, title = (
            notify.users_for(session, penalties.HR),
            _l("Penalty %(case)s approved: issue the notice", case=subject),
        )
    elif action == "record_appeal":
        users, title = notify.users_for(session, penalties.GM), _l("Appeal against penalty %(case)s", case=subject)
    elif action == "decide_appeal":
        users, title = notify.users_for(session, penalties.HR), _l("Appeal on penalty %(case)s decided", case=subject)
    else:
        return
    notify.notify(session, users, "penalty", str(title), link=link, now=now)


__all__ = [
    "Batch",
    "available_steps",
    "batch_notices",
    "case_facts",
    "current_notice",
    "earlier_offences",
    "edit_case",
    "issue_monthly_circular",
    "issue_notice",
    "issue_penalty_circular",
    "ledger",
    "ledger_xlsx",
    "month_bounds",
    "open_case",
    "parse_month",
    "take_step",
]
