"""Service layer of discipline: penalty cases, appeals, notices, circulars and the ledger.

Applies the rules of :mod:`app.penalties` to the database inside the caller's
transaction (the caller commits). Views, the REST API and the CLI call these
functions; none of them writes penalty state by itself.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app import settings, validation
from app.access import scope
from app.complaints.steps import actor_for
from app.discipline import liability, penalties
from app.discipline.notices import cancel_circular, chain_documents, draft_circular, issue_chain_notices, issue_notice
from app.documents import numbering
from app.i18n import _l
from app.lifecycle import TransitionError, ValidationFailed, record_event, value_of
from app.messages import notify
from app.models import (
    Appeal,
    Commendation,
    Complaint,
    Department,
    Penalty,
    PenaltyEvent,
    PenaltyRule,
    PenaltyStatus,
    Sanction,
    Staff,
)
from app.time_limits import sla
from app.timeutil import local_date, utcnow

VERSION_CONFLICT = _l("Someone else changed this penalty meanwhile; reload and try again.")


# --- Facts -----------------------------------------------------------------------------------


def heads_department(session: Session, staff_id: int | None) -> bool:
    """Whether the staff member heads a department (then 人事行政经理 proposes, 总经理 decides)."""
    if staff_id is None:
        return False
    return session.scalar(select(Department.id).where(Department.head_id == staff_id).limit(1)) is not None


def case_facts(penalty: Penalty) -> penalties.CaseFacts:
    return penalties.CaseFacts(
        status=value_of(penalty.status),
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
    _check_fields(data, penalty, errors)
    if complaint is not None:
        _check_complaint(session, principal, complaint, staff, errors)
    terms = _terms(rule, data, errors) if isinstance(rule, PenaltyRule) else None
    subject_is_head = False
    if isinstance(staff, Staff):
        subject_is_head = heads_department(session, staff.id)
        _check_proposer(principal, staff, subject_is_head, data)
    if errors:
        raise ValidationFailed(errors)
    return staff, rule, complaint, terms, subject_is_head  # type: ignore[return-value]


def _check_fields(data: dict[str, Any], penalty: Penalty | None, errors: dict[str, list[str]]) -> None:
    """The staff member and rule are chosen and still active (unless already the case's), the facts written."""
    staff = data.get("staff")
    rule = data.get("rule")
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
    message = _incident_date_refusal(data.get("incident_date"))
    if message:
        errors.setdefault("incident_date", []).append(message)


def _incident_date_refusal(value: Any) -> str | None:
    """A real calendar day, not in the future and not before 2000 (older dates are typing mistakes)."""
    if value is None or value == "":
        return None
    try:
        day = penalties.parse_date(value)
    except ValueError as exc:
        return str(exc)
    if day > local_date(utcnow()):
        return str(_l("The incident date cannot be in the future."))
    if day < validation.EARLIEST.date():
        return str(_l("The incident date cannot be before %(day)s.", day="2000-01-01"))
    return None


def _check_complaint(
    session: Session, principal: Any, complaint: Complaint, staff: Any, errors: dict[str, list[str]]
) -> None:
    """The complaint names the staff member or is of their department, and the actor may see it."""
    if isinstance(staff, Staff):
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
    if not scope.can_see(session, Complaint, complaint.id, principal):
        errors.setdefault("complaint", []).append(str(_l("This complaint is outside your scope.")))


def _terms(rule: PenaltyRule, data: dict[str, Any], errors: dict[str, list[str]]) -> penalties.Terms | None:
    """The terms asked for (the rule's defaults where blank), checked against the rule."""
    defaults = penalties.default_terms(rule)
    try:
        terms = penalties.Terms(
            sanction=value_of(data.get("sanction") or defaults.sanction),
            fine_amount=_amount(data.get("fine_amount"), defaults.fine_amount),
            score_deduction=_amount(data.get("score_deduction"), defaults.score_deduction),
            withhold_performance_pay=_flag(data.get("withhold_performance_pay"), defaults.withhold_performance_pay),
        )
    except ValueError as exc:
        errors.setdefault("fine_amount", []).append(str(exc))
        return None
    for name, messages in penalties.check_terms(rule, terms).items():
        errors.setdefault(name, []).extend(messages)
    return terms


def _check_proposer(principal: Any, staff: Staff, subject_is_head: bool, data: dict[str, Any]) -> None:
    """Raise TransitionError when the actor may not propose a case against this staff member."""
    facts = penalties.CaseFacts(
        status="draft",
        staff_id=staff.id,
        department_id=staff.department_id,
        subject_is_head=subject_is_head,
        head_failed_to_act=bool(data.get("head_failed_to_act")),
    )
    refusal = penalties.proposer_refusal(actor_for(principal), facts)
    if refusal:
        raise TransitionError("role", refusal)


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
    if value_of(penalty.status) not in penalties.EDITABLE:
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
    if action == "issue_notice":
        draft_circular(session, penalty, now)  # the rule calls for a 通报: 人事行政经理 is asked to issue it
    _flush(session)
    _notify_step(session, penalty, action, after, now)
    if action == "approve":
        liability.warn_thresholds(session, penalty, now)
    return event


def _apply(
    session: Session, penalty: Penalty, step: penalties.Step, values: dict[str, Any], user_id: int | None, now: datetime
) -> dict[str, Any]:
    """The effects of a step beyond the status: who and when, terms, appeals, documents."""
    effect = _EFFECTS.get(step.action)
    return effect(session, penalty, values, user_id, now) if effect is not None else {}


def _propose(session: Session, penalty: Penalty, values: dict[str, Any], user_id: int | None, now: datetime) -> dict:
    penalty.proposed_by_id, penalty.proposed_at, penalty.return_reason = user_id, now, None
    if penalty.subject_is_head or penalty.head_failed_to_act:
        penalty.reviewed_by_id, penalty.reviewed_at = user_id, now
    return {}


def _review(session: Session, penalty: Penalty, values: dict[str, Any], user_id: int | None, now: datetime) -> dict:
    penalty.reviewed_by_id, penalty.reviewed_at = user_id, now
    return {}


def _send_back(session: Session, penalty: Penalty, values: dict[str, Any], user_id: int | None, now: datetime) -> dict:
    penalty.return_reason = values["reason"]
    return {}


def _approve(session: Session, penalty: Penalty, values: dict[str, Any], user_id: int | None, now: datetime) -> dict:
    penalty.decided_by_id, penalty.decided_at = user_id, now
    # Chained liability: every linked deduction is created with the approval, in its transaction.
    liability.resolve(session, penalty, now)
    return {}


def _issue(session: Session, penalty: Penalty, values: dict[str, Any], user_id: int | None, now: datetime) -> dict:
    data: dict[str, Any] = {"document": issue_notice(session, penalty, user_id, now).number}
    if chain_documents(session) == "notice":
        chained = issue_chain_notices(session, penalty, user_id, now)
        if chained:
            data["chain_documents"] = [d.number for d in chained]
    return data


def _serve(session: Session, penalty: Penalty, values: dict[str, Any], user_id: int | None, now: datetime) -> dict:
    penalty.served_on = values["served_on"]
    days = int(settings.get(session, "penalty.appeal_working_days") or 3)
    penalty.appeal_deadline = penalties.appeal_deadline(sla.load_calendar(session), values["served_on"], days)
    return {"served_on": penalty.served_on.isoformat(), "appeal_deadline": penalty.appeal_deadline.isoformat()}


def _record_appeal(
    session: Session, penalty: Penalty, values: dict[str, Any], user_id: int | None, now: datetime
) -> dict:
    penalty.appeals.append(
        Appeal(filed_on=values["filed_on"], grounds=values["grounds"], recorded_by_id=user_id, recorded_at=now)
    )
    return {"filed_on": values["filed_on"].isoformat()}


def _reissue(session: Session, penalty: Penalty, values: dict[str, Any], user_id: int | None, now: datetime) -> dict:
    data: dict[str, Any] = {}
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
        cancel_circular(session, penalty, now)  # a revoked penalty is not circulated: its task is void
        data["document"] = issue_notice(session, penalty, user_id, now, "revoked", values["reason"]).number
    return data


# What each step does beyond its status change (steps not listed change the status only).
_EFFECTS = {
    "propose": _propose,
    "review": _review,
    "return": _send_back,
    "reject": _send_back,
    "approve": _approve,
    "issue_notice": _issue,
    "serve": _serve,
    "record_appeal": _record_appeal,
    "decide_appeal": _decide_appeal,
    "reissue_notice": _reissue,
}


# --- Notices -----------------------------------------------------------------------------------


# --- Circulars (通报) ---------------------------------------------------------------------------


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
    tiers = [p.rule.tier for p in earlier if value_of(p.status) in penalties.EFFECTIVE]
    return penalties.Summary(
        earlier=list(earlier),
        next_rules=penalties.next_tier(rules, penalty.rule),
        suggested_tier=penalties.suggested_tier(tiers, penalty.rule.tier, top),
    )


# --- Monthly ledger (payroll) ----------------------------------------------------------------------


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
                    "Please choose “%(field)s” (%(choices)s).",
                    field=_l("Source"),
                    choices="/".join(
                        str(penalties.COMMENDATION_SOURCE_LABELS[c]) for c in penalties.COMMENDATION_SOURCES
                    ),
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
    "available_steps",
    "case_facts",
    "earlier_offences",
    "edit_case",
    "open_case",
    "take_step",
]
