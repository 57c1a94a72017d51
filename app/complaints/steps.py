"""Service layer: applies the domain rules to the database inside one transaction.

Views, the REST API, jobs and the CLI call these functions; none of them writes
complaint state by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, attributes
from sqlalchemy.orm.exc import StaleDataError

from app import lifecycle, signals
from app.access import scope
from app.complaints import corrective, phrases, workflow
from app.complaints.intake import int_or_none, open_escalated_complaint
from app.i18n import _l
from app.labels import FIELD
from app.lifecycle import Errors, record_event
from app.models import (
    Complaint,
    ComplaintEvent,
    Department,
    Dispute,
    Extension,
    FollowUp,
    Level,
    Staff,
)
from app.time_limits import sla
from app.timeutil import as_utc, to_local, utcnow

# Before dispatch the department is part of the intake; from dispatch on only the dispatch step moves it.
DEPARTMENT_EDITABLE = ("registered", "judged")
DEPARTMENT_BY_DISPATCH_ONLY = _l(
    "The department of a dispatched case cannot be changed by editing it: use the dispatch step "
    "(the department objects to the dispatch, and the ruling reassigns the case)."
)

EDIT_AUDITED = (
    "received_at",
    "channel",
    "subject",
    "content",
    "customer_demand",
    "category",
    "level",
    "department",
    "staff",
)


def after_case_edit(
    session: Session, complaint: Complaint, actor_id: Optional[int], now: Optional[datetime] = None
) -> None:
    """Record an edit of the intake on the timeline, and move the clocks it affects.

    Raises ``ValidationFailed`` when the edit moves a dispatched case to another department:
    that goes through the dispatch step (objection and ruling), with its timeline, clocks and
    notifications, never through a plain edit.
    """
    now = now or utcnow()
    changed = [name for name in EDIT_AUDITED if attributes.get_history(complaint, name).has_changes()]
    if not changed:
        return
    if "department" in changed and lifecycle.value_of(complaint.status) not in DEPARTMENT_EDITABLE:
        raise lifecycle.ValidationFailed({"department": [str(DEPARTMENT_BY_DISPATCH_ONLY)]})
    record_event(
        complaint, "edit", actor_id, note="、".join(str(_l_field(n)) for n in changed), data={"fields": changed}, at=now
    )
    if {"received_at", "level", "channel"} & set(changed):
        sla.reschedule_case(session, complaint, now, actor_id, str(_l("Intake corrected")))


def _l_field(name: str) -> Any:
    return FIELD.get(name, name)


def staff_of_department(session: Session, department_id: int) -> Iterable[Staff]:
    return session.scalars(
        select(Staff).where(Staff.department_id == department_id, Staff.active.is_(True)).order_by(Staff.name)
    )


# --- Attachments ----------------------------------------------------------------------


# --- Lifecycle ------------------------------------------------------------------------------


def actor_for(principal: Any) -> workflow.Actor:
    return workflow.Actor(
        user_id=principal.user_id,
        roles=frozenset(principal.roles) if principal.staff_id is not None else frozenset(),
        staff_id=principal.staff_id,
        # A unit head only reads its unit's departments; it acts on those it heads.
        department_ids=frozenset(principal.acting_department_ids),
        unit_department_ids=frozenset(principal.unit_department_ids),
    )


def case_facts(
    session: Session,
    complaint: Complaint,
    now: Optional[datetime] = None,
    principal: Any = None,
    cluster_reply: bool = False,
    extensions: Optional[Sequence[Extension]] = None,
) -> workflow.CaseFacts:
    """What the workflow decides the case's steps on. ``extensions``: the case's extension requests,
    when the caller has them loaded (the case page shows them), so they are not asked for again."""
    now = now or utcnow()
    owner_view_only = principal is not None and not scope.acts_by_role(principal, complaint)
    department = complaint.department
    if extensions is None:
        pending = sla.pending_extension(session, complaint)
    else:
        pending = next((e for e in extensions if e.status == "pending"), None)
    return workflow.CaseFacts(
        status=getattr(complaint.status, "value", complaint.status),
        department_id=complaint.department_id,
        subject_staff_ids=frozenset(s.id for s in complaint.staff),
        head_staff_id=department.head_id if department is not None else None,
        level_rank=complaint.level.rank if complaint.level is not None else 0,
        extension_approver=complaint.level.extension_approver if complaint.level is not None else None,
        open_stages=sla.open_stages(complaint),
        extendable_stages=sla.extendable_stages(complaint, now),
        pending_extension=pending is not None,
        pending_extension_late=bool(pending is not None and pending.late_request),
        paused=complaint.paused_since is not None,
        pause_awaiting_approval=any(p.state == "awaiting_approval" for p in complaint.pauses),
        signed=complaint.signed_at is not None,
        first_responder_id=complaint.first_responder_id,
        customer_informed=complaint.customer_informed_at is not None,
        owner_view_only=owner_view_only,
        unit_kind=_unit_kind(department),
        escalated_to_head_office=complaint.escalated_to_head_office_at is not None,
        **_dispute_facts(session, complaint, now),
        cluster_reply=cluster_reply,
    )


def received_by_department_at(complaint: Complaint) -> Optional[datetime]:
    """When the case's current department received it: the dispatch, or the ruling that reassigned it."""
    moments = [complaint.dispatched_at] + [
        d.ruled_at
        for d in complaint.disputes
        if d.state == "reassigned" and d.to_department_id == complaint.department_id
    ]
    found = [as_utc(m) for m in moments if m is not None]
    return max(found) if found else None


def objection_day(session: Session, complaint: Complaint) -> Optional[date]:
    """The working day on which the department may object: the day of receipt, or the next workday."""
    received = received_by_department_at(complaint)
    if received is None:
        return None
    cal = sla.load_calendar(session)
    day = to_local(received).date()
    return day if cal.is_workday(day) else cal.next_workday(day)


def _dispute_facts(session: Session, complaint: Complaint, now: datetime) -> dict[str, Any]:
    department = complaint.department
    disputes = list(complaint.disputes) if complaint.id is not None else []
    day = objection_day(session, complaint) if complaint.dispatched_at is not None else None
    return {
        "supervisor_id": department.supervisor_id if department is not None else None,
        "open_dispute": any(d.state == "open" for d in disputes),
        "objected_already": any(d.from_department_id == complaint.department_id for d in disputes),
        "objection_in_time": day is not None and to_local(now).date() <= day,
        "received_on": day.isoformat() if day is not None else None,
    }


def _unit_kind(department: Optional[Department]) -> Optional[str]:
    """The kind of unit the department belongs to; None for the company itself."""
    unit = department.unit if department is not None else None
    return getattr(unit.kind, "value", unit.kind) if unit is not None else None


def available_transitions(
    session: Session, complaint: Complaint, principal: Any, extensions: Optional[Sequence[Extension]] = None
) -> list[workflow.Transition]:
    facts = case_facts(session, complaint, principal=principal, extensions=extensions)
    return workflow.available(actor_for(principal), facts)


class _Resolving(NamedTuple):
    """What resolving a step's field values needs besides the value."""

    session: Session
    complaint: Complaint
    t: workflow.Transition
    errors: Errors
    now: Optional[datetime]


def _resolve_values(
    session: Session, complaint: Complaint, t: workflow.Transition, raw: dict[str, Any], now: Optional[datetime] = None
) -> dict[str, Any]:
    """The step's field values as objects (department, staff, level, dates…); raise with every wrong one."""
    values: dict[str, Any] = {}
    errors = Errors()
    ctx = _Resolving(session, complaint, t, errors, now)
    for f in t.fields:
        value = raw.get(f.name)
        if isinstance(value, str):
            value = value.strip() or None
        resolve = _RESOLVERS.get(f.kind)
        if value is not None and resolve is not None:
            value = resolve(ctx, f.name, value)
        values[f.name] = value
    if t.action == "rule_dispute" and values.get("decision") == "reassign":
        target = values.get("department")
        if target is None and not errors.items.get("department"):
            errors.add("department", str(_l("Please choose the department the case goes to.")))
        elif target is not None and target.id == complaint.department_id:
            errors.add("department", str(_l("Please choose another department than the one that has the case.")))
    errors.raise_if_any()
    return values


def _department_value(ctx: _Resolving, name: str, value: Any) -> Optional[Department]:
    department = ctx.session.get(Department, int_or_none(value)) if int_or_none(value) else None
    if department is None or not department.active:
        ctx.errors.add(name, str(_l("There is no such active department.")))
    return department


def _staff_value(ctx: _Resolving, name: str, value: Any) -> Optional[Staff]:
    person = ctx.session.get(Staff, int_or_none(value)) if int_or_none(value) else None
    if person is None or person.department_id != ctx.complaint.department_id:
        ctx.errors.add(name, str(_l("Please choose a staff member of the complained department.")))
    return person


def _level_value(ctx: _Resolving, name: str, value: Any) -> Optional[Level]:
    """A level by id or code, active and other than the case's."""
    level = ctx.session.get(Level, int_or_none(value)) if int_or_none(value) else None
    if level is None and isinstance(value, str) and value.strip():
        level = ctx.session.scalars(select(Level).where(Level.code == value.strip())).first()
    if level is None or not level.active:
        ctx.errors.add(name, str(_l("There is no such active complaint level.")))
    elif level.id == ctx.complaint.level_id:
        ctx.errors.add(name, str(_l("The case already has this level.")))
    return level


def _bool_value(ctx: _Resolving, name: str, value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on", "是"}


def _int_value(ctx: _Resolving, name: str, value: Any) -> Optional[int]:
    return int_or_none(value)


def _date_value(ctx: _Resolving, name: str, value: Any) -> Optional[date]:
    day = _date_or_none(value)
    if day is None:
        ctx.errors.add(name, str(_l("Please enter a date as YYYY-MM-DD.")))
    elif ctx.t.action == "pause" and day < to_local(ctx.now or utcnow()).date():
        ctx.errors.add(name, str(_l("The expected resume date cannot be in the past.")))
    return day


def _datetime_value(ctx: _Resolving, name: str, value: Any) -> Optional[datetime]:
    """A past instant, not before the complaint was received."""
    moment = _datetime_or_none(value)
    if moment is None:
        ctx.errors.add(name, str(_l("Please enter a date and time as YYYY-MM-DD HH:MM.")))
    elif moment > (ctx.now or utcnow()) + timedelta(minutes=5):
        ctx.errors.add(name, str(_l("This time cannot be in the future.")))
    elif ctx.complaint.received_at is not None and moment < ctx.complaint.received_at:
        ctx.errors.add(name, str(_l("This time cannot be before the complaint was received.")))
    return moment


def _complaint_value(ctx: _Resolving, name: str, value: Any) -> Optional[Complaint]:
    """Another, earlier complaint by its number."""
    original = ctx.session.scalars(select(Complaint).where(Complaint.number == str(value).strip())).first()
    if original is None or original.id == ctx.complaint.id:
        ctx.errors.add(name, str(_l("There is no other complaint numbered “%(n)s”.", n=value)))
    elif original.received_at > ctx.complaint.received_at:
        ctx.errors.add(name, str(_l("The earlier complaint must have been received before this one.")))
    return original


# How a field's submitted value becomes its object, by kind (other kinds keep the text).
_RESOLVERS: dict[str, Callable[[_Resolving, str, Any], Any]] = {
    "department": _department_value,
    "staff": _staff_value,
    "level": _level_value,
    "bool": _bool_value,
    "int": _int_value,
    "date": _date_value,
    "datetime": _datetime_value,
    "complaint": _complaint_value,
}


def _empty_value(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _first_extendable(complaint: Complaint, now: datetime) -> Optional[str]:
    """The running department clock due first (the one an extension request is about)."""
    stages = sla.extendable_stages(complaint, now)
    running = sorted((d.due_at, d.stage) for d in complaint.deadlines if d.state == "open" and d.stage in stages)
    return running[0][1] if running else None


def _date_or_none(value: Any) -> Optional[date]:
    """A date from ``YYYY-MM-DD`` or an ISO time (its Asia/Shanghai day)."""
    if isinstance(value, datetime):
        return to_local(value).date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return to_local(moment).date() if moment.tzinfo is not None else moment.date()


def _datetime_or_none(value: Any) -> Optional[datetime]:
    """An aware instant from an ISO time; without an offset it is Asia/Shanghai wall time."""
    if isinstance(value, datetime):
        return as_utc(value)
    try:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return as_utc(moment)


def take_transition(
    session: Session,
    complaint: Complaint,
    action: str,
    principal: Any,
    raw_values: dict[str, Any],
    now: Optional[datetime] = None,
    expected_version: Optional[int] = None,
    cluster_reply: bool = False,
) -> ComplaintEvent:
    """Take one lifecycle step and record it; raises TransitionError, ValidationFailed or Conflict.

    ``cluster_reply``: the step is part of a cluster's unified response (app/clusters.py).
    The caller commits. The complaint's version column makes a concurrent second
    step fail at flush time (StaleDataError -> Conflict), so exactly one wins.
    """
    now = now or utcnow()
    sla.lock_complaint(session, complaint)
    if expected_version not in (None, "") and int_or_none(expected_version) != complaint.version:
        raise _version_conflict()
    action, raw_values = _normalized(complaint, action, raw_values, now)
    facts = case_facts(session, complaint, now, principal, cluster_reply=cluster_reply)
    t = workflow.check(action, actor_for(principal), facts, raw_values)
    if t.action == "close":
        _check_corrective_verified(session, complaint)
    values = _resolve_values(session, complaint, t, raw_values, now)
    flagged = customer_facing_hits(session, t, values)
    if flagged and not confirmed(raw_values.get(CONFIRM_PHRASES)):
        raise PhrasesRefused(flagged, {f.name: f.label for f in t.fields})
    raw_note = raw_values.get("note")
    note = (raw_note.strip() or None) if isinstance(raw_note, str) else None
    before, after = workflow.apply(complaint, t, values, now)
    event = record_event(
        complaint,
        action,
        principal.user_id,
        note=note,
        from_status=before,
        to_status=after,
        at=now,
        data=_event_data(values),
    )
    if flagged:
        _record_confirmed_phrases(session, complaint, flagged, principal, now)
    _record_side_effects(session, complaint, t, values, principal.user_id, now)
    sla.after_transition(session, complaint, t, before, after, now, values, principal.user_id)
    if t.action == "change_level":
        # The new level's chain of time limits replaces the old one (e.g. 沟通性 -> 有效投诉).
        sla.reschedule_case(session, complaint, now, principal.user_id, str(_l("Complaint level changed")))
    try:
        session.flush()
    except StaleDataError as exc:
        session.rollback()
        raise _version_conflict() from exc
    return event


def _version_conflict() -> lifecycle.TransitionError:
    return lifecycle.TransitionError(
        "version", str(_l("Someone else changed this case meanwhile; reload and try again."))
    )


def _normalized(
    complaint: Complaint, action: str, raw_values: dict[str, Any], now: datetime
) -> tuple[str, dict[str, Any]]:
    """The step's action and its values as the workflow reads them.

    An extension asked in ``hours`` is an amount of working hours; without a stage it is
    about the running department clock due first.
    """
    action, given = workflow.resolve_action(action, raw_values)
    t = workflow.TRANSITIONS.get(action)
    if t is None:
        return action, given
    if t.action == "request_extension" and _empty_value(given.get("amount")) and not _empty_value(given.get("hours")):
        given = {**given, "amount": given["hours"], "unit": given.get("unit") or "working_hours"}
    values = workflow.normalize(t, given)
    if t.action == "request_extension" and _empty_value(values.get("stage")):
        values["stage"] = _first_extendable(complaint, now)
    return action, values


def _check_corrective_verified(session: Session, complaint: Complaint) -> None:
    """A case closes only when its corrective actions are verified."""
    waiting = corrective.unverified(session, complaint.id)
    if waiting:
        raise lifecycle.TransitionError(
            "state",
            str(
                _l(
                    "%(n)s corrective action(s) of this case are not verified yet: verify them before closing.",
                    n=waiting,
                )
            ),
        )


# --- Forbidden service phrases in customer-facing texts ---------------------------------------

# The field (JSON key, form checkbox) by which a user confirms sending a text with forbidden phrases.
CONFIRM_PHRASES = "confirm_phrases"


class PhrasesRefused(lifecycle.TransitionError):
    """A customer-facing text still holds forbidden phrases and saving them was not confirmed."""

    def __init__(self, hits: dict[str, list[phrases.Hit]], labels: Optional[dict[str, Any]] = None):
        labels = labels or {}
        listed = "；".join(
            f"{labels.get(name, name)}：{describe_hits(found)}" if labels.get(name) else describe_hits(found)
            for name, found in hits.items()
        )
        super().__init__(
            "phrases",
            str(
                _l(
                    "The text contains forbidden service phrases: %(hits)s. Rephrase it, or confirm that it is "
                    "to be sent as it is.",
                    hits=listed,
                )
            ),
        )
        self.hits = hits


def describe_hits(hits: Iterable[phrases.Hit]) -> str:
    """“喂， 干什么”（suggestion …）、… in the user's language."""
    return "、".join(
        str(_l("“%(text)s” (suggested: %(suggestion)s)", text=h.text or h.phrase, suggestion=h.suggestion))
        if h.suggestion
        else f"“{h.text or h.phrase}”"
        for h in hits
    )


def confirmed(value: Any) -> bool:
    """Whether a confirmation field (JSON true, a ticked checkbox, "1", "是" …) says yes."""
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in {"1", "y", "true", "yes", "on", "是", "确认"}


def customer_facing_hits(
    session: Session, t: workflow.Transition, values: dict[str, Any]
) -> dict[str, list[phrases.Hit]]:
    """Forbidden phrases in the step's customer-facing fields, by field name."""
    found: dict[str, list[phrases.Hit]] = {}
    for f in t.fields:
        value = values.get(f.name)
        if f.customer_facing and isinstance(value, str) and value:
            hits = phrases.check(session, value)
            if hits:
                found[f.name] = hits
    return found


def _record_confirmed_phrases(
    session: Session,
    complaint: Complaint,
    flagged: dict[str, list[phrases.Hit]],
    principal: Any,
    now: datetime,
) -> None:
    """Put a confirmed text's forbidden phrases on the timeline and count them for the staff member."""
    words = [h.phrase for hits in flagged.values() for h in hits]
    record_event(
        complaint,
        "phrase_confirmed",
        principal.user_id,
        note="、".join(dict.fromkeys(words)),
        at=now,
        data={"phrases": words, "hits": {name: [h.as_json() for h in hits] for name, hits in flagged.items()}},
    )
    for name, hits in flagged.items():
        phrases.record_hits(session, hits, name, principal.user_id, principal.staff_id, now, complaint_id=complaint.id)


def check_reply_script(session: Session, text: Optional[str], principal: Any, confirm: Any) -> list[phrases.Hit]:
    """Refuse a reply script (话术) with forbidden phrases unless confirmed; count confirmed ones."""
    hits = phrases.check(session, text or "")
    if hits and not confirmed(confirm):
        raise PhrasesRefused({"standard_reply": hits})
    if hits:
        phrases.record_hits(session, hits, "reply_script", principal.user_id, principal.staff_id, utcnow())
    return hits


def _record_side_effects(
    session: Session,
    complaint: Complaint,
    t: workflow.Transition,
    values: dict[str, Any],
    actor_id: Optional[int],
    now: datetime,
) -> None:
    """What a step records besides the case fields: the follow-up visit, the repeat link."""
    if t.action == "follow_up":
        session.add(
            FollowUp(
                complaint=complaint,
                called_by_id=actor_id,
                called_at=now,
                method=values.get("method") or "phone",
                satisfaction=values["satisfaction"],
                customer_words=values.get("customer_words"),
                note=values.get("follow_up_note"),
                department_id=complaint.department_id,
            )
        )
    elif t.action == "mark_repeat":
        complaint.repeat_of = values["original"]
        complaint.is_repeat = True
    elif t.action == "confirm_informed" or (t.action == "close" and values.get("customer_informed")):
        if complaint.customer_informed_at is None or t.action == "confirm_informed":
            complaint.customer_informed_at = now
            complaint.customer_informed_by_id = actor_id
    elif t.action == "recomplain":
        open_escalated_complaint(session, complaint, values, actor_id, now)
    elif t.action == "escalate_to_head_office":
        complaint.escalated_to_head_office_by_id = actor_id
    elif t.action == "object_dispatch":
        open_dispute(session, complaint, values, actor_id, now)
    elif t.action == "rule_dispute":
        rule_dispute(session, complaint, values, actor_id, now)


# --- Responsibility disputes (责任异议) ----------------------------------------------------------


def open_dispute(
    session: Session, complaint: Complaint, values: dict[str, Any], actor_id: Optional[int], now: datetime
) -> Dispute:
    """The receiving department objects to the dispatch; its supervising leader is told."""
    dispute = Dispute(
        complaint=complaint,
        from_department_id=complaint.department_id,
        objected_by_id=actor_id,
        reason=values["reason"],
        at=now,
        state="open",
    )
    session.add(dispute)
    session.flush()
    signals.dispute_opened.send(complaint, session=session, dispute=dispute, now=now)
    return dispute


def rule_dispute(
    session: Session, complaint: Complaint, values: dict[str, Any], actor_id: Optional[int], now: datetime
) -> Dispute:
    """The supervising leader's ruling: the department keeps the case, or it goes to another one.

    On reassignment the case goes back to ``dispatched`` for the new department, which must
    sign for it again; the investigation clock restarts from the ruling (app/sla.py).
    """
    dispute = next(d for d in reversed(complaint.disputes) if d.state == "open")
    dispute.ruled_by_id, dispute.ruled_at, dispute.ruling_note = actor_id, now, values.get("note")
    if values.get("decision") == "reassign":
        dispute.state = "reassigned"
        dispute.to_department = values["department"]
        complaint.department = values["department"]
        complaint.signed_at = None
        complaint.investigation_started_at = None
    else:
        dispute.state = "upheld"
    session.flush()
    signals.dispute_ruled.send(complaint, session=session, dispute=dispute, now=now)
    return dispute


def _event_data(values: dict[str, Any]) -> Optional[dict[str, Any]]:
    data: dict[str, Any] = {}
    for key, value in values.items():
        if value is None or key == "note":
            continue
        if hasattr(value, "id"):
            data[key] = {"id": value.id, "name": str(value)}
        elif isinstance(value, (date, datetime)):
            data[key] = value.isoformat()
        else:
            data[key] = value
    return data or None


# --- The case file as a printed form (客户投诉记录表) ----------------------------------------------
