"""Dissatisfaction tickets (不满工单) and the counts of escalated re-complaints (二次投诉).

A 客服 who settles a grievance on the spot, with an explanation the customer
accepts, records a short ticket: no dispatch, no clock, no penalty. The ticket
reserves a complaint number (TS…) when it is recorded; if the customer comes back,
:func:`convert` registers a complaint under that number with the ticket's time of
receipt, so the complaint's clock runs from the first contact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app import lifecycle, validation
from app.complaints import intake
from app.complaints import steps as services
from app.documents import numbering
from app.i18n import _l
from app.models import CaseType, Complaint, Department, Grievance
from app.timeutil import as_utc, local_date, utcnow


class AlreadyConverted(Exception):
    """The ticket already became a complaint (a second conversion is refused)."""


def record(
    session: Session, actor_id: Optional[int], data: dict[str, Any], now: Optional[datetime] = None
) -> Grievance:
    """Record a 不满工单 from its short form; refuse bad input with every field's message."""
    now = now or utcnow()
    _check_ticket(data, now)
    customer = intake.find_or_create_customer(session, data.get("customer_name"), data.get("customer_phone"))
    ticket = Grievance(
        # The complaint number is reserved now: a converted ticket keeps it.
        number=numbering.next_complaint_number(session, local_date(now)),
        received_at=as_utc(data.get("received_at")) or now,
        registered_at=now,
        channel=data["channel"],
        customer=customer,
        department=data.get("department"),
        content=data["content"].strip(),
        explanation=data["explanation"].strip(),
        accepted=True,
        recorded_by_id=actor_id,
    )
    session.add(ticket)
    session.flush()
    return ticket


def _check_ticket(data: dict[str, Any], now: datetime) -> None:
    """Check the short form before anything is written; raise every field's message together."""
    errors = lifecycle.Errors()
    errors.add(
        "customer_name",
        validation.check_required_text(data.get("customer_name"), str(_l("Please enter the customer's name.")), 64),
    )
    errors.add("customer_phone", validation.check_phone(data.get("customer_phone")))
    if data.get("channel") is None:
        errors.add("channel", str(_l("Please choose the channel the complaint came through.")))
    errors.add(
        "content",
        validation.check_required_text(
            data.get("content"), str(_l("Please describe what the customer complains about."))
        ),
    )
    errors.add(
        "explanation",
        validation.check_required_text(
            data.get("explanation"), str(_l("Please record the explanation given to the customer."))
        ),
    )
    if not services.confirmed(data.get("accepted")):
        errors.add(
            "accepted",
            str(
                _l(
                    "A dissatisfaction ticket is only for a grievance the customer accepted as settled; "
                    "otherwise register a complaint."
                )
            ),
        )
    errors.add("received_at", validation.check_received_at(data.get("received_at"), now))
    department = data.get("department")
    if department is not None and not department.active:
        errors.add("department", str(_l("The department “%(name)s” is no longer active.", name=department.name)))
    errors.raise_if_any()


def convert(
    session: Session,
    ticket: Grievance,
    actor_id: Optional[int],
    data: dict[str, Any],
    now: Optional[datetime] = None,
) -> Complaint:
    """The customer came back: register the ticket as a complaint with its number and time of receipt."""
    now = now or utcnow()
    if ticket.complaint_id is not None:
        raise AlreadyConverted(
            str(_l("The ticket %(number)s was already converted into a complaint.", number=ticket.number))
        )
    content = (data.get("content") or "").strip()
    complaint = intake.register_complaint(
        session,
        actor_id,
        {
            "customer": ticket.customer,
            "channel": data.get("channel") or ticket.channel,
            "received_at": ticket.received_at,
            "content": f"{ticket.content}\n{content}" if content else ticket.content,
            "customer_demand": data.get("customer_demand"),
            "category": data.get("category"),
            "level": data.get("level"),
            "department": data.get("department") or ticket.department,
            "staff": data.get("staff") or [],
        },
        now=now,
        number=ticket.number,
    )
    lifecycle.record_event(
        complaint,
        "grievance_converted",
        actor_id,
        note=ticket.explanation,
        at=now,
        data={"grievance": ticket.number, "grievance_id": ticket.id},
    )
    ticket.complaint = complaint
    ticket.converted_at = now
    session.flush()
    return complaint


def _by_department(
    session: Session, model: Any, time_column: Any, start: datetime, end: datetime, *where: ColumnElement[bool]
) -> list[dict[str, Any]]:
    rows = session.execute(
        select(model.department_id, Department.name, func.count(model.id))
        .outerjoin(Department, Department.id == model.department_id)
        .where(time_column >= start, time_column < end, *where)
        .group_by(model.department_id, Department.name)
        .order_by(func.count(model.id).desc(), Department.name)
    ).all()
    return [{"department_id": d, "department": name or "—", "count": int(n)} for d, name, n in rows]


def grievance_counts(
    session: Session, start: datetime, end: datetime, criterion: ColumnElement[bool]
) -> dict[str, Any]:
    """不满工单 received in [start, end) by department, counted apart from complaints."""
    rows = _by_department(session, Grievance, Grievance.received_at, start, end, criterion)
    converted = session.scalar(
        select(func.count(Grievance.id)).where(
            Grievance.received_at >= start, Grievance.received_at < end, Grievance.complaint_id.is_not(None), criterion
        )
    )
    return {"total": sum(r["count"] for r in rows), "converted": int(converted or 0), "by_department": rows}


def recomplaint_counts(
    session: Session, start: datetime, end: datetime, criterion: ColumnElement[bool]
) -> dict[str, Any]:
    """Escalated re-complaints (二次投诉) received in [start, end), per department."""
    rows = _by_department(
        session, Complaint, Complaint.received_at, start, end, Complaint.case_type == CaseType.escalated, criterion
    )
    return {"total": sum(r["count"] for r in rows), "by_department": rows}
