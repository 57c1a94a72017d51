"""Service layer: applies the domain rules to the database inside one transaction.

Views, the REST API, jobs and the CLI call these functions; none of them writes
complaint state by itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app import settings, signals, validation
from app.complaints import similarity
from app.documents import numbering
from app.i18n import _l
from app.lifecycle import Errors, record_event
from app.models import (
    CaseType,
    Channel,
    Complaint,
    ComplaintStatus,
    Customer,
    Department,
    Level,
)
from app.time_limits import sla
from app.timeutil import as_utc, local_date, utcnow

# Built once: every registration from typed details looks its caller up.
_CUSTOMER_BY_PHONE = select(Customer).where(Customer.phone == bindparam("phone")).order_by(Customer.id).limit(1)


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
        customer = session.scalars(_CUSTOMER_BY_PHONE, {"phone": phone}).first()
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
    errors.add("incident_date", validation.check_incident_date(data.get("incident_date"), now))
    errors.add("batch_no", validation.check_batch_no(data.get("batch_no")))
    count = data.get("complainant_count")
    if count not in (None, "") and (int_or_none(count) is None or int_or_none(count) < 1):
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
    customer = _intake_customer(session, data)
    complaint = _new_complaint(actor_id, data, customer, now)
    raised_from = _raise_group_complaint(session, complaint)
    original = _mark_repeat(session, complaint)
    _record_registration(complaint, actor_id, now, original, raised_from)
    sla.start_registration_clocks(session, complaint, now)  # from when the case was received
    if customer.id is None and complaint not in session:
        session.flush()  # a new caller is written before the counter's row is locked
    signals.case_numbering.send(complaint, session=session, now=now)
    # Numbered last: the counter's row stays locked until the commit, so concurrent
    # registrations wait on each other only from here on. Everything that can be read or
    # worked out before is done above; what follows writes the case and tells its people.
    complaint.number = number or numbering.next_complaint_number(session, local_date(now))
    session.add(complaint)
    signals.case_registered.send(complaint, session=session, now=now)
    return complaint


def _intake_customer(session: Session, data: dict[str, Any]) -> Customer:
    """The customer chosen at intake, or the one found or created from the typed details."""
    return data.get("customer") or find_or_create_customer(
        session,
        data.get("customer_name"),
        data.get("customer_phone"),
        data.get("customer_email"),
        data.get("customer_address"),
    )


def _new_complaint(
    actor_id: Optional[int],
    data: dict[str, Any],
    customer: Customer,
    now: datetime,
) -> Complaint:
    """The new case row built from the intake fields (not yet numbered nor added to the session)."""
    content = data["content"].strip()
    complaint = Complaint(
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
    complaint.complainant_count = int_or_none(data.get("complainant_count")) or 1
    complaint.incident_date = data.get("incident_date") or None
    complaint.batch_no = (data.get("batch_no") or "").strip() or None
    return complaint


def _mark_repeat(session: Session, complaint: Complaint) -> Optional[Complaint]:
    """Flag the case as a repeat of an earlier one within the window; returns that one or None."""
    original = detect_repeat(session, complaint, int(settings.get(session, "repeat.window_days") or 30))
    if original is not None:
        complaint.is_repeat, complaint.repeat_of = True, original
    return original


def _record_registration(
    complaint: Complaint,
    actor_id: Optional[int],
    now: datetime,
    original: Optional[Complaint],
    raised_from: Optional[Level],
) -> None:
    """The timeline of a new case: its registration and, for a 群体性投诉, the raised level."""
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
    if raised_from is None:
        return
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


def lowest_major_level(session: Session) -> Optional[Level]:
    return session.scalars(
        select(Level).where(Level.active.is_(True), Level.is_major.is_(True)).order_by(Level.rank, Level.id).limit(1)
    ).first()


def _raise_group_complaint(session: Session, complaint: Complaint) -> Optional[Level]:
    """A 群体性投诉 (complainants at or above the setting) is at least the first major level.

    Returns the level chosen at intake when it was raised, else None.
    """
    threshold = int_or_none(settings.get(session, "cluster.group_complainants")) or 5
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


def int_or_none(value: Any) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


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
    signals.case_recomplained.send(escalated, session=session, original=original, now=now)
    return escalated


def detect_repeat(session: Session, complaint: Complaint, window_days: int) -> Optional[Complaint]:
    """The same customer's earlier complaint within the window about the same problem: the one
    whose text is the most similar, at ``cluster.similarity_threshold`` or more (else None)."""
    if complaint.customer is None or complaint.customer.id is None:
        return None
    since = complaint.received_at - timedelta(days=window_days)
    earlier = list(
        session.scalars(
            select(Complaint)
            .where(
                Complaint.customer_id == complaint.customer.id,
                Complaint.received_at >= since,
                Complaint.received_at <= complaint.received_at,
            )
            .order_by(Complaint.received_at.desc(), Complaint.id.desc())
            .limit(50)
        )
    )
    earlier = [c for c in earlier if c is not complaint]
    if not earlier:
        return None
    ranked = similarity.rank(
        similarity.case_text(complaint.subject, complaint.content),
        [similarity.case_text(c.subject, c.content) for c in earlier],
        similarity.threshold(session),
    )
    # The best match; among equals the latest (``earlier`` is newest first and the sort is stable).
    return earlier[ranked[0][0]] if ranked else None
