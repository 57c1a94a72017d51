"""The case file as a printed form (客户投诉记录表): every field, its time limits and its history.

Labels of statuses, stages and actions are the portal's own (app/labels.py), printed in
Simplified Chinese whatever the screen's language, so the form and the timeline agree.
"""

from __future__ import annotations

from typing import Any, Optional

from sqlalchemy.orm import Session

from app import labels
from app.access import privacy
from app.documents import render as documents
from app.i18n import print_language
from app.models import Complaint
from app.time_limits import sla
from app.timeutil import format_local, utcnow


def record_form_context(complaint: Complaint, customer_mode: str = "masked") -> dict[str, Any]:
    """Every field of the case file, its time limits and its history, as the form prints them.

    The customer's contact details are masked (``customer_mode`` "hidden" for a complained
    staff member: see app/privacy.py).
    """
    with print_language():
        return _record_form_fields(complaint, privacy.customer_fields(complaint.customer, customer_mode))


def _when(value: Any) -> str:
    """A stored instant as the form prints it (Asia/Shanghai), or blank."""
    return format_local(value) if value else ""


def _record_form_fields(complaint: Complaint, customer: dict[str, Any]) -> dict[str, Any]:
    """The form's data; called in the print language (labels come out in Chinese)."""
    return {
        "complaint": {
            **_intake_part(complaint, customer),
            **_judgement_part(complaint),
            **_handling_part(complaint),
            **_closing_part(complaint),
        },
        "deadlines": _deadline_rows(complaint),
        "events": _event_rows(complaint),
        "printed_at": format_local(utcnow()),
    }


def _intake_part(complaint: Complaint, customer: dict[str, Any]) -> dict[str, Any]:
    """The case as registered: number, times, channel, customer, classification and text."""
    return {
        "number": complaint.number,
        "received_at": _when(complaint.received_at),
        "registered_at": _when(complaint.registered_at),
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
    }


def _judgement_part(complaint: Complaint) -> dict[str, Any]:
    """Whether the complaint holds and is reasonable, and why."""
    validity = getattr(complaint.validity, "value", complaint.validity)
    return {
        "validity": {"valid": "成立", "invalid": "不成立"}.get(validity, ""),
        "reasonable": "" if complaint.reasonable is None else ("合理" if complaint.reasonable else "不合理"),
        "validity_reason": complaint.validity_reason or "",
        "polite_reply": complaint.polite_reply or "",
        "judged_at": _when(complaint.judged_at),
    }


def _handling_part(complaint: Complaint) -> dict[str, Any]:
    """Dispatch, investigation, reply and feedback to the customer."""
    return {
        "dispatched_at": _when(complaint.dispatched_at),
        "signed_at": _when(complaint.signed_at),
        "investigation_started_at": _when(complaint.investigation_started_at),
        "responsible_staff": complaint.responsible_staff.name if complaint.responsible_staff else "",
        "findings": complaint.findings or "",
        "resolution_plan": complaint.resolution_plan or "",
        "reply_text": complaint.reply_text or "",
        "replied_at": _when(complaint.replied_at),
        "feedback_note": complaint.feedback_note or "",
        "fed_back_at": _when(complaint.fed_back_at),
    }


def _closing_part(complaint: Complaint) -> dict[str, Any]:
    """Follow-up, closing, archiving and the status now."""
    return {
        "satisfaction": labels.label(labels.SATISFACTION, complaint.satisfaction),
        "followed_up_at": _when(complaint.followed_up_at),
        "follow_up_note": complaint.follow_up_note or "",
        "close_note": complaint.close_note or "",
        "closed_at": _when(complaint.closed_at),
        "archived_at": _when(complaint.archived_at),
        "status": labels.status_label(complaint.status),
    }


def _deadline_rows(complaint: Complaint) -> list[dict[str, Any]]:
    """The case's time limits in the order they started (cancelled ones left out)."""
    return [
        {
            "stage": labels.label(labels.STAGE, d.stage),
            "due_at": _when(d.due_at),
            "state": labels.label(labels.STAGE_STATE, d.state),
            "late": d.late,
        }
        for d in sorted(complaint.deadlines, key=lambda d: (d.started_at, d.id))
        if d.state != "cancelled"
    ]


def _event_rows(complaint: Complaint) -> list[dict[str, Any]]:
    """The case's history, oldest first."""
    return [
        {
            "at": _when(e.at),
            "action": labels.action_label(e.action),
            "actor": e.actor.first_name if e.actor else "系统",
            "note": e.note or "",
        }
        for e in sorted(complaint.events, key=lambda e: (e.at, e.id))
    ]


def record_form_pdf(
    session: Session, complaint: Complaint, actor_id: Optional[int], hide_customer: bool = False
) -> tuple[bytes, Any]:
    """The 客户投诉记录表 of a case: printed fresh while open; once archived, stored once and kept.

    Returns the PDF bytes and the stored document (None while the case is open). With
    ``hide_customer`` (a complained staff member asks) it is always printed fresh,
    without the customer's name and contact details, and not stored.
    """
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
