"""Service layer: applies the domain rules to the database inside one transaction.

Views, the REST API, jobs and the CLI call these functions; none of them writes
complaint state by itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Optional

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app import numbering, phrases, settings, validation, workflow
from app.i18n import _l
from app.models import (
    Attachment,
    CaseType,
    Channel,
    Complaint,
    ComplaintEvent,
    ComplaintStatus,
    Customer,
    Department,
    Dispute,
    FollowUp,
    Level,
    Staff,
)
from app.timeutil import as_utc, local_date, to_local, utcnow


class ValidationFailed(Exception):
    """Bad input: ``errors`` maps each field to its message(s) in the user's language."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Errors:
    """Collects per-field messages, then raises them all at once."""

    items: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: Optional[str]) -> None:
        if message:
            self.items.setdefault(name, []).append(str(message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def record_event(
    complaint: Complaint,
    action: str,
    actor_id: Optional[int],
    note: Optional[str] = None,
    from_status: Optional[str] = None,
    to_status: Optional[str] = None,
    data: Optional[dict[str, Any]] = None,
    at: Optional[datetime] = None,
    dedup_key: Optional[str] = None,
) -> ComplaintEvent:
    """Append one line to the case history (never updated afterwards)."""
    event = ComplaintEvent(
        action=action,
        actor_id=actor_id,
        note=note,
        from_status=from_status,
        to_status=to_status,
        data=data,
        at=at or utcnow(),
        dedup_key=dedup_key,
    )
    complaint.events.append(event)
    return event


def find_or_create_customer(
    session: Session,
    name: Optional[str],
    phone: Optional[str],
    email: Optional[str] = None,
    address: Optional[str] = None,
) -> Customer:
    """The customer with this phone number, completed with new details, or a new one."""
    phone = validation.normalize_phone(phone)
    customer = None
    if phone:
        customer = session.scalars(
            select(Customer).where(Customer.phone == phone).order_by(Customer.id).limit(1)
        ).first()
    if customer is None:
        customer = Customer(name=(name or "").strip() or str(_l("Anonymous")), phone=phone or None)
        session.add(customer)
    if email and not customer.email:
        customer.email = email.strip()
    if address and not customer.address:
        customer.address = address.strip()
    return customer


def validate_intake(data: dict[str, Any], now: datetime) -> None:
    """Check a registration before anything is written; raise all field errors together."""
    errors = Errors()
    errors.add(
        "content",
        validation.check_required_text(
            data.get("content"), str(_l("Please describe what the customer complains about."))
        ),
    )
    if data.get("customer") is None:
        errors.add(
            "customer_name",
            validation.check_required_text(data.get("customer_name"), str(_l("Please enter the customer's name.")), 64),
        )
        errors.add("customer_phone", validation.check_phone(data.get("customer_phone")))
        errors.add("customer_email", validation.check_email(data.get("customer_email")))
    for name, message in (
        ("channel", _l("Please choose the channel the complaint came through.")),
        ("category", _l("Please choose a complaint category.")),
        ("level", _l("Please choose a complaint level.")),
        ("department", _l("Please choose the complained department.")),
    ):
        if data.get(name) is None:
            errors.add(name, str(message))
    department = data.get("department")
    if isinstance(department, Department) and not department.active:
        errors.add("department", str(_l("The department “%(name)s” is no longer active.", name=department.name)))
    for person in data.get("staff") or []:
        if department is not None and person.department_id != getattr(department, "id", None):
            errors.add(
                "staff",
                str(_l("%(name)s does not work in the complained department.", name=person.name)),
            )
    errors.add("received_at", validation.check_received_at(data.get("received_at"), now))
    channel = data.get("channel")
    ref = (data.get("regulator_ref") or "").strip() if isinstance(data.get("regulator_ref"), str) else ""
    if isinstance(channel, Channel) and channel.is_regulator and not ref:
        errors.add(
            "regulator_ref",
            str(_l("A case transferred by a regulator needs the transfer's reference number (转办单号).")),
        )
    for name in ("regulator_ref", "regulator_body"):
        if isinstance(data.get(name), str) and len(data[name].strip()) > 64:
            errors.add(name, str(_l("At most %(n)d characters.", n=64)))
    if data.get("subject") and len(data["subject"]) > 200:
        errors.add("subject", str(_l("At most %(n)d characters.", n=200)))
    count = data.get("complainant_count")
    if count not in (None, "") and (_int_or_none(count) is None or _int_or_none(count) < 1):
        errors.add("complainant_count", str(_l("The number of complainants must be a whole number of at least 1.")))
    errors.raise_if_any()


def register_complaint(
    session: Session,
    actor_id: Optional[int],
    data: dict[str, Any],
    now: Optional[datetime] = None,
    number: Optional[str] = None,
) -> Complaint:
    """Register a complaint from validated intake fields and record who took it in.

    ``data`` holds ORM objects for channel/category/level/department/staff and either
    ``customer`` or the customer's name, phone, email and address. ``number`` is a
    complaint number reserved earlier (a converted 不满工单 keeps its number).
    """
    now = now or utcnow()
    validate_intake(data, now)
    customer = data.get("customer") or find_or_create_customer(
        session,
        data.get("customer_name"),
        data.get("customer_phone"),
        data.get("customer_email"),
        data.get("customer_address"),
    )
    content = data["content"].strip()
    complaint = Complaint(
        number=number or numbering.next_complaint_number(session, local_date(now)),
        received_at=as_utc(data.get("received_at")) or now,
        registered_at=now,
        channel=data["channel"],
        customer=customer,
        subject=(data.get("subject") or "").strip() or _summary(content),
        content=content,
        customer_demand=(data.get("customer_demand") or "").strip() or None,
        category=data["category"],
        level=data["level"],
        department=data["department"],
        staff=list(data.get("staff") or []),
        first_responder_id=actor_id,
        status=ComplaintStatus.registered,
    )
    if data["channel"].is_regulator:
        complaint.regulator_ref = (data.get("regulator_ref") or "").strip() or None
        complaint.regulator_body = (data.get("regulator_body") or "").strip() or data["channel"].name
    complaint.complainant_count = _int_or_none(data.get("complainant_count")) or 1
    raised_from = _raise_group_complaint(session, complaint)
    original = detect_repeat(session, complaint, int(settings.get(session, "repeat.window_days") or 30))
    if original is not None:
        complaint.is_repeat, complaint.repeat_of = True, original
    session.add(complaint)
    record_event(
        complaint,
        "register",
        actor_id,
        note=None,
        to_status=ComplaintStatus.registered.value,
        at=now,
        data={
            "channel": complaint.channel.name if complaint.channel else None,
            "repeat_of": original.number if original is not None else None,
        },
    )
    if raised_from is not None:
        record_event(
            complaint,
            "group_complaint",
            actor_id,
            note=str(
                _l(
                    "群体性投诉 of %(n)d complainants: the level is at least %(level)s (was %(old)s).",
                    n=complaint.complainant_count,
                    level=complaint.level.name,
                    old=raised_from.name,
                )
            ),
            at=now,
            data={"complainant_count": complaint.complainant_count, "from_level": raised_from.name},
        )
    from app import sla  # the clocks start when the case was received

    sla.start_clock(session, complaint, now)
    return complaint


def lowest_major_level(session: Session) -> Optional[Level]:
    return session.scalars(
        select(Level).where(Level.active.is_(True), Level.is_major.is_(True)).order_by(Level.rank, Level.id).limit(1)
    ).first()


def _raise_group_complaint(session: Session, complaint: Complaint) -> Optional[Level]:
    """A 群体性投诉 (complainants at or above the setting) is at least the first major level.

    Returns the level chosen at intake when it was raised, else None.
    """
    threshold = _int_or_none(settings.get(session, "cluster.group_complainants")) or 5
    if complaint.complainant_count < threshold or complaint.level is None or complaint.level.is_major:
        return None
    major = lowest_major_level(session)
    if major is None or major.rank <= complaint.level.rank:
        return None
    chosen, complaint.level = complaint.level, major
    return chosen


def _summary(content: str, length: int = 30) -> str:
    line = " ".join(content.split())
    return line if len(line) <= length else line[: length - 1] + "…"


def earlier_complaints(session: Session, phone: Optional[str], limit: int = 20) -> list[Complaint]:
    """A caller's earlier complaints by phone number, newest first (intake look-up)."""
    phone = validation.normalize_phone(phone)
    if not phone:
        return []
    stmt = (
        select(Complaint)
        .join(Customer, Complaint.customer_id == Customer.id)
        .where(Customer.phone == phone)
        .order_by(Complaint.received_at.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


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
    """Record an edit of the intake on the timeline, and move the clocks it affects."""
    from sqlalchemy.orm import attributes

    from app import sla

    now = now or utcnow()
    changed = [name for name in EDIT_AUDITED if attributes.get_history(complaint, name).has_changes()]
    if not changed:
        return
    record_event(
        complaint, "edit", actor_id, note="、".join(str(_l_field(n)) for n in changed), data={"fields": changed}, at=now
    )
    if {"received_at", "level", "channel"} & set(changed):
        sla.reschedule_case(session, complaint, now, actor_id, str(_l("Intake corrected")))


def _l_field(name: str) -> Any:
    from app.labels import FIELD

    return FIELD.get(name, name)


def _size(n: int) -> str:
    """A file size people read: KB below a megabyte."""
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{max(n / 1024, 0.1):.1f} KB"


def staff_of_department(session: Session, department_id: int) -> Iterable[Staff]:
    return session.scalars(
        select(Staff).where(Staff.department_id == department_id, Staff.active.is_(True)).order_by(Staff.name)
    )


# --- Attachments ----------------------------------------------------------------------


def add_attachment(
    complaint: Complaint,
    filename: str,
    data: bytes,
    content_type: Optional[str],
    actor_id: Optional[int],
    allowed: dict[str, str],
    max_bytes: int,
    description: Optional[str] = None,
) -> Attachment:
    """Attach an evidence file after checking its type and size; refuse with the reason."""
    if complaint.is_archived:
        raise ValidationFailed({"file": [str(_l("The case is archived and can no longer be changed."))]})
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    ext = os.path.splitext(name)[1].lower()
    if not name:
        raise ValidationFailed({"file": [str(_l("Please choose a file to upload."))]})
    if ext not in allowed:
        raise ValidationFailed(
            {
                "file": [
                    str(
                        _l(
                            "Files of type “%(ext)s” are not accepted. Allowed: %(allowed)s.",
                            ext=ext or name,
                            allowed=", ".join(sorted(allowed)),
                        )
                    )
                ]
            }
        )
    if len(data) == 0:
        raise ValidationFailed({"file": [str(_l("The file is empty."))]})
    if len(data) > max_bytes:
        raise ValidationFailed(
            {
                "file": [
                    str(
                        _l(
                            "The file is %(size)s; at most %(limit)s is accepted.",
                            size=_size(len(data)),
                            limit=_size(max_bytes),
                        )
                    )
                ]
            }
        )
    attachment = Attachment(
        filename=name[:255],
        content_type=allowed[ext],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        description=(description or "").strip()[:255] or None,
        uploaded_by_id=actor_id,
    )
    complaint.attachments.append(attachment)
    record_event(complaint, "attach", actor_id, note=name, data={"size": len(data)})
    return attachment


# --- Lifecycle ------------------------------------------------------------------------------


class Conflict(Exception):
    """The case changed meanwhile (stale version) or is in a state that forbids the step."""


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
) -> workflow.CaseFacts:
    from app import scope, sla

    now = now or utcnow()
    owner_view_only = principal is not None and not scope.acts_by_role(principal, complaint)
    department = complaint.department
    pending = sla.pending_extension(session, complaint)
    return workflow.CaseFacts(
        status=getattr(complaint.status, "value", complaint.status),
        department_id=complaint.department_id,
        subject_staff_ids=frozenset(s.id for s in complaint.staff),
        head_staff_id=department.head_id if department is not None else None,
        level_rank=complaint.level.rank if complaint.level is not None else 0,
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
    from app import sla

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


def available_transitions(session: Session, complaint: Complaint, principal: Any) -> list[workflow.Transition]:
    return workflow.available(actor_for(principal), case_facts(session, complaint, principal=principal))


def _resolve_values(
    session: Session, complaint: Complaint, t: workflow.Transition, raw: dict[str, Any], now: Optional[datetime] = None
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    errors = Errors()
    for f in t.fields:
        value = raw.get(f.name)
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                value = None
        if value is None:
            values[f.name] = None
            continue
        if f.kind == "department":
            department = session.get(Department, _int_or_none(value)) if _int_or_none(value) else None
            if department is None or not department.active:
                errors.add(f.name, str(_l("There is no such active department.")))
            value = department
        elif f.kind == "staff":
            person = session.get(Staff, _int_or_none(value)) if _int_or_none(value) else None
            if person is None or person.department_id != complaint.department_id:
                errors.add(f.name, str(_l("Please choose a staff member of the complained department.")))
            value = person
        elif f.kind == "level":
            level = session.get(Level, _int_or_none(value)) if _int_or_none(value) else None
            if level is None and isinstance(value, str) and value.strip():
                level = session.scalars(select(Level).where(Level.code == value.strip())).first()
            if level is None or not level.active:
                errors.add(f.name, str(_l("There is no such active complaint level.")))
            elif level.id == complaint.level_id:
                errors.add(f.name, str(_l("The case already has this level.")))
            value = level
        elif f.kind == "bool":
            value = value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on", "是"}
        elif f.kind == "int":
            value = _int_or_none(value)
        elif f.kind == "date":
            day = _date_or_none(value)
            if day is None:
                errors.add(f.name, str(_l("Please enter a date as YYYY-MM-DD.")))
            elif t.action == "pause" and day < to_local(now or utcnow()).date():
                errors.add(f.name, str(_l("The expected resume date cannot be in the past.")))
            value = day
        elif f.kind == "datetime":
            moment = _datetime_or_none(value)
            if moment is None:
                errors.add(f.name, str(_l("Please enter a date and time as YYYY-MM-DD HH:MM.")))
            elif moment > (now or utcnow()) + timedelta(minutes=5):
                errors.add(f.name, str(_l("This time cannot be in the future.")))
            elif complaint.received_at is not None and moment < complaint.received_at:
                errors.add(f.name, str(_l("This time cannot be before the complaint was received.")))
            value = moment
        elif f.kind == "complaint":
            original = session.scalars(select(Complaint).where(Complaint.number == str(value).strip())).first()
            if original is None or original.id == complaint.id:
                errors.add(f.name, str(_l("There is no other complaint numbered “%(n)s”.", n=value)))
            elif original.received_at > complaint.received_at:
                errors.add(f.name, str(_l("The earlier complaint must have been received before this one.")))
            value = original
        values[f.name] = value
    if t.action == "rule_dispute" and values.get("decision") == "reassign":
        target = values.get("department")
        if target is None and not errors.items.get("department"):
            errors.add("department", str(_l("Please choose the department the case goes to.")))
        elif target is not None and target.id == complaint.department_id:
            errors.add("department", str(_l("Please choose another department than the one that has the case.")))
    errors.raise_if_any()
    return values


def _empty_value(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _first_extendable(complaint: Complaint, now: datetime) -> Optional[str]:
    """The running department clock due first (the one an extension request is about)."""
    from app import sla

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


def _int_or_none(value: Any) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


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
    from app import sla

    now = now or utcnow()
    sla.lock_complaint(session, complaint)
    if expected_version not in (None, "") and _int_or_none(expected_version) != complaint.version:
        raise workflow.TransitionError(
            "version", str(_l("Someone else changed this case meanwhile; reload and try again."))
        )
    action, given = workflow.resolve_action(action, raw_values)
    t = workflow.TRANSITIONS.get(action)
    raw_values = given
    if t is not None:
        if (
            t.action == "request_extension"
            and _empty_value(given.get("amount"))
            and not _empty_value(given.get("hours"))
        ):
            given = {**given, "amount": given["hours"], "unit": given.get("unit") or "working_hours"}
        raw_values = workflow.normalize(t, given)
        if t.action == "request_extension" and _empty_value(raw_values.get("stage")):
            raw_values["stage"] = _first_extendable(complaint, now)
    facts = case_facts(session, complaint, now, principal, cluster_reply=cluster_reply)
    t = workflow.check(action, actor_for(principal), facts, raw_values)
    if t.action == "close":
        from app import corrective

        waiting = corrective.unverified(session, complaint.id)
        if waiting:
            raise workflow.TransitionError(
                "state",
                str(
                    _l(
                        "%(n)s corrective action(s) of this case are not verified yet: verify them before closing.",
                        n=waiting,
                    )
                ),
            )
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
        raise workflow.TransitionError(
            "version", str(_l("Someone else changed this case meanwhile; reload and try again."))
        ) from exc
    return event


# --- Forbidden service phrases in customer-facing texts ---------------------------------------

# The field (JSON key, form checkbox) by which a user confirms sending a text with forbidden phrases.
CONFIRM_PHRASES = "confirm_phrases"


class PhrasesRefused(workflow.TransitionError):
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
    from app import alerts

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
    alerts.on_dispute(session, complaint, dispute, now)
    return dispute


def rule_dispute(
    session: Session, complaint: Complaint, values: dict[str, Any], actor_id: Optional[int], now: datetime
) -> Dispute:
    """The supervising leader's ruling: the department keeps the case, or it goes to another one.

    On reassignment the case goes back to ``dispatched`` for the new department, which must
    sign for it again; the investigation clock restarts from the ruling (app/sla.py).
    """
    from app import alerts

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
    alerts.on_dispute_ruled(session, complaint, dispute, now)
    return dispute


def next_level(session: Session, level: Optional[Level]) -> Optional[Level]:
    """The active level one rank above ``level`` (the top level stays where it is)."""
    if level is None:
        return None
    higher = session.scalars(
        select(Level).where(Level.active.is_(True), Level.rank > level.rank).order_by(Level.rank, Level.id).limit(1)
    ).first()
    return higher or level


def open_escalated_complaint(
    session: Session, original: Complaint, values: dict[str, Any], actor_id: Optional[int], now: datetime
) -> Complaint:
    """升级投诉 / 二次投诉: a new case linked to ``original``, one level higher, starting the flow again."""
    from app import alerts

    escalated = register_complaint(
        session,
        actor_id,
        {
            "customer": original.customer,
            "channel": original.channel,
            "content": values["content"],
            "subject": _summary(values["content"]),
            "customer_demand": original.customer_demand,
            "category": original.category,
            "level": next_level(session, original.level),
            "department": values.get("department") or original.department,
            "staff": list(original.staff) if not values.get("department") else [],
        },
        now=now,
    )
    escalated.case_type = CaseType.escalated
    escalated.original = original
    escalated.is_repeat, escalated.repeat_of = True, original
    record_event(
        escalated,
        "recomplained",
        actor_id,
        note=values.get("note"),
        at=now,
        data={"original": original.number, "original_level": original.level.name if original.level else None},
    )
    session.flush()
    alerts.on_recomplaint(session, escalated, original, now)
    return escalated


def detect_repeat(session: Session, complaint: Complaint, window_days: int) -> Optional[Complaint]:
    """The latest earlier complaint of the same customer about the same department or category."""
    if complaint.customer is None or complaint.customer.id is None:
        return None
    since = complaint.received_at - timedelta(days=window_days)
    return session.scalars(
        select(Complaint)
        .where(
            Complaint.customer_id == complaint.customer.id,
            Complaint.received_at >= since,
            Complaint.received_at <= complaint.received_at,
            or_(Complaint.department_id == complaint.department.id, Complaint.category_id == complaint.category.id),
        )
        .order_by(Complaint.received_at.desc())
        .limit(1)
    ).first()


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

# Formal documents are printed in Chinese whatever the reader's screen language is.
STATUS_ZH = {
    "registered": "已登记",
    "judged": "已判定",
    "dispatched": "已转派",
    "investigating": "调查中",
    "planned": "已拟定方案",
    "replied": "已答复",
    "fed_back": "已反馈",
    "followed_up": "已回访",
    "closed": "已结案",
    "archived": "已归档",
}
SATISFACTION_ZH = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}
STAGE_ZH = {
    "investigate": "展开调查",
    "reply": "满意答复",
    "follow_up": "回访",
    "notify_department": "通知部门",
    "report_leader": "报告分管领导",
    "report_gm": "报告总经理",
    "written_report": "书面报告",
}
DEADLINE_STATE_ZH = {"open": "进行中", "met": "已完成", "cancelled": "不适用"}
ACTION_ZH = {
    "register": "登记受理",
    "attach": "上传附件",
    "judge_valid": "判定成立",
    "judge_invalid": "判定不成立并婉转答复",
    "dispatch": "转派部门",
    "start_investigation": "开始调查",
    "propose_plan": "拟定处理方案",
    "reply": "答复客户",
    "feed_back": "反馈处理结果",
    "follow_up": "回访客户",
    "close": "结案",
    "archive": "归档",
    "report_to_leader": "报告分管领导",
    "report_to_gm": "报告总经理",
    "submit_written_report": "提交书面报告",
    "request_extension": "申请延期",
    "decide_extension": "审批延期",
    "escalate": "督办",
    "remind": "催办",
    "warning": "时限预警",
    "overdue": "超时",
    "escalation": "超时升级",
    "deadline_recomputed": "时限重算",
    "phrase_confirmed": "确认发送含服务忌语的文字",
    "pause": "暂停计时",
    "resume": "恢复计时",
    "approve_pause": "批准暂停计时",
    "reject_pause": "驳回暂停计时",
    "pause_cap_reached": "暂停超限待批",
    "sign_for": "签收",
    "object_dispatch": "责任异议",
    "rule_dispute": "分管领导裁定异议",
}


def record_form_context(complaint: Complaint, customer_mode: str = "masked") -> dict[str, Any]:
    """Every field of the case file, its time limits and its history, as the form prints them.

    The customer's contact details are masked (``customer_mode`` "hidden" for a complained
    staff member: see app/privacy.py).
    """
    from app import privacy
    from app.timeutil import format_local

    def when(value: Any) -> str:
        return format_local(value) if value else ""

    customer = privacy.customer_fields(complaint.customer, customer_mode)
    validity = getattr(complaint.validity, "value", complaint.validity)
    return {
        "complaint": {
            "number": complaint.number,
            "received_at": when(complaint.received_at),
            "registered_at": when(complaint.registered_at),
            "channel": complaint.channel.name if complaint.channel else "",
            "first_responder": complaint.first_responder.first_name if complaint.first_responder else "",
            "customer_name": customer["name"] or "",
            "customer_phone": customer["phone"] or "",
            "customer_address": customer["address"] or "",
            "category": complaint.category.name if complaint.category else "",
            "level": complaint.level.name if complaint.level else "",
            "department": complaint.department.name if complaint.department else "",
            "staff": "、".join(s.name for s in complaint.staff),
            "subject": complaint.subject or "",
            "content": complaint.content or "",
            "customer_demand": complaint.customer_demand or "",
            "validity": {"valid": "成立", "invalid": "不成立"}.get(validity, ""),
            "reasonable": "" if complaint.reasonable is None else ("合理" if complaint.reasonable else "不合理"),
            "validity_reason": complaint.validity_reason or "",
            "polite_reply": complaint.polite_reply or "",
            "judged_at": when(complaint.judged_at),
            "dispatched_at": when(complaint.dispatched_at),
            "signed_at": when(complaint.signed_at),
            "investigation_started_at": when(complaint.investigation_started_at),
            "responsible_staff": complaint.responsible_staff.name if complaint.responsible_staff else "",
            "findings": complaint.findings or "",
            "resolution_plan": complaint.resolution_plan or "",
            "reply_text": complaint.reply_text or "",
            "replied_at": when(complaint.replied_at),
            "feedback_note": complaint.feedback_note or "",
            "fed_back_at": when(complaint.fed_back_at),
            "satisfaction": SATISFACTION_ZH.get(getattr(complaint.satisfaction, "value", complaint.satisfaction), ""),
            "followed_up_at": when(complaint.followed_up_at),
            "follow_up_note": complaint.follow_up_note or "",
            "close_note": complaint.close_note or "",
            "closed_at": when(complaint.closed_at),
            "archived_at": when(complaint.archived_at),
            "status": STATUS_ZH.get(complaint.status.value, complaint.status.value),
        },
        "deadlines": [
            {
                "stage": STAGE_ZH.get(d.stage, d.stage),
                "due_at": when(d.due_at),
                "state": DEADLINE_STATE_ZH.get(d.state, d.state),
                "late": d.late,
            }
            for d in sorted(complaint.deadlines, key=lambda d: (d.started_at, d.id))
            if d.state != "cancelled"
        ],
        "events": [
            {
                "at": when(e.at),
                "action": ACTION_ZH.get(e.action, e.action),
                "actor": e.actor.first_name if e.actor else "系统",
                "note": e.note or "",
            }
            for e in sorted(complaint.events, key=lambda e: (e.at, e.id))
        ],
        "printed_at": format_local(utcnow()),
    }


REGULATOR_REPLY_STATUSES = ("replied", "fed_back", "followed_up", "closed", "archived")
# The ETC policy's names of a regulator case's steps, shown on its timeline.
REGULATOR_STEP_ZH = {
    "register": "受理",
    "dispatch": "派单",
    "warning": "预警",
    "remind": "催办",
    "reply": "回复",
    "regulator_reply": "审核",
    "follow_up": "回访",
    "close": "结案",
    "archive": "归档",
}


def issue_regulator_reply(
    session: Session, complaint: Complaint, principal: Any, now: Optional[datetime] = None
) -> Any:
    """Review (审核) the department's reply and issue the formal reply report to the regulator.

    Only 人事行政经理 issues it, only for a regulator case that has been replied to; a new
    report supersedes the previous one. Recorded on the case's timeline."""
    from app import corrective, documents, privacy, sla

    now = now or utcnow()
    if not (complaint.channel is not None and complaint.channel.is_regulator):
        raise workflow.TransitionError("state", str(_l("This case was not transferred by a regulator.")))
    if getattr(complaint.status, "value", complaint.status) not in REGULATOR_REPLY_STATUSES:
        raise workflow.TransitionError(
            "state", str(_l("The reply report is issued once the department has replied to the customer."))
        )
    if principal.staff_id is None or "人事行政经理" not in principal.roles:
        raise workflow.TransitionError(
            "role", str(_l("The HR & administration manager reviews and issues the reply report."))
        )
    sla.lock_complaint(session, complaint)
    context = record_form_context(complaint)
    context["complaint"] = {
        **context["complaint"],
        "regulator_body": complaint.regulator_body or complaint.channel.name,
        "regulator_ref": complaint.regulator_ref or "—",
        "customer_phone_masked": privacy.mask_phone(complaint.customer.phone if complaint.customer else None) or "",
    }
    context["corrective"] = corrective.for_complaint(session, complaint.id)
    previous = documents.current_document(session, "regulator_reply", complaint_id=complaint.id)
    doc = documents.issue_document(
        session,
        "regulator_reply",
        f"关于{complaint.regulator_ref or complaint.number}号转办件的回复报告",
        context,
        complaint_id=complaint.id,
        supersedes=previous,
        issued_by_id=principal.user_id,
        now=now,
    )
    record_event(
        complaint,
        "regulator_reply",
        principal.user_id,
        note=f"审核并出具回复报告 {doc.number}（{complaint.regulator_body or complaint.channel.name}）",
        at=now,
        data={"document": doc.id, "number": doc.number},
    )
    return doc


def record_form_pdf(
    session: Session, complaint: Complaint, actor_id: Optional[int], hide_customer: bool = False
) -> tuple[bytes, Any]:
    """The 客户投诉记录表 of a case: printed fresh while open; once archived, stored once and kept.

    Returns the PDF bytes and the stored document (None while the case is open). With
    ``hide_customer`` (a complained staff member asks) it is always printed fresh,
    without the customer's name and contact details, and not stored.
    """
    from app import documents, sla

    if not complaint.is_archived or hide_customer:
        return documents.render_pdf(
            documents.TEMPLATES["record_form"],
            {
                **documents.common_context(session),
                **record_form_context(complaint, "hidden" if hide_customer else "masked"),
                "document": {"title": f"客户投诉记录表 {complaint.number}", "number": None},
            },
        ), None
    sla.lock_complaint(session, complaint)  # one stored copy even when two people print at once
    stored = documents.current_document(session, "record_form", complaint_id=complaint.id)
    if stored is None:
        stored = documents.issue_document(
            session,
            "record_form",
            f"客户投诉记录表 {complaint.number}",
            record_form_context(complaint),
            complaint_id=complaint.id,
            issued_by_id=actor_id,
        )
        session.commit()
    return stored.content, stored
