"""What the complaint screens and the complaint REST resource both show: JSON shapes of a
case's events, actions and corrective actions, masked contacts, attachments."""

from __future__ import annotations

import io
from typing import Any

from flask import abort, request, send_file
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm.util import identity_key

from app import labels, settings
from app.access import privacy, scope
from app.complaints import corrective, policy_rules, regulator, workflow
from app.complaints import steps as services
from app.extensions import db
from app.i18n import _l
from app.models import (
    Attachment,
    Complaint,
    ComplaintEvent,
    CorrectiveAction,
    Department,
    Level,
)
from app.time_limits import sla
from app.time_limits.deadlines import STAGES, UNIT_LABELS
from app.timeutil import format_local, utcnow
from app.views.base import current_viewer
from app.views.security import current_principal, current_user

# Column lists that the screen and the REST resource of a model share.
COMPLAINT_EDIT_COLUMNS = [
    "received_at",
    "channel",
    "subject",
    "content",
    "customer_demand",
    "category",
    "level",
    "department",
    "staff",
]


COMPLAINT_LABELS = {
    "number": _l("Complaint no."),
    "received_at": _l("Received at"),
    "registered_at": _l("Registered at"),
    "channel": _l("Channel"),
    "customer": _l("Customer"),
    "customer_name": _l("Customer name"),
    "customer_phone": _l("Customer phone"),
    "customer_email": _l("Customer e-mail"),
    "customer_address": _l("Customer address"),
    "subject": _l("Subject"),
    "content": _l("Complaint content"),
    "customer_demand": _l("Customer demand"),
    "category": _l("Category"),
    "level": _l("Level"),
    "department": _l("Complained department"),
    "staff": _l("Complained staff"),
    "first_responder": _l("First responder"),
    "status": _l("Status"),
    "validity": _l("Validity"),
    "validity_reason": _l("Reason of judgement"),
    "reasonable": _l("Demand reasonable"),
    "polite_reply": _l("Polite reply"),
    "findings": _l("Investigation findings"),
    "responsible_staff": _l("Responsible person"),
    "resolution_plan": _l("Resolution plan"),
    "reply_text": _l("Reply to customer"),
    "feedback_note": _l("Feedback"),
    "satisfaction": _l("Satisfaction"),
    "follow_up_note": _l("Follow-up record"),
    "close_note": _l("Final result and evaluation"),
    "judged_at": _l("Judged at"),
    "dispatched_at": _l("Dispatched at"),
    "regulator_body": _l("Transferring body"),
    "regulator_ref": _l("Transfer reference number"),
    "complainant_count": _l("Number of complainants"),
    "incident_date": _l("Incident date"),
    "batch_no": _l("Product batch / lot number"),
    "signed_at": _l("Signed for at"),
    "escalated_to_head_office_at": _l("Escalated to the head office at"),
    "escalated_to_head_office_by": _l("Escalated to the head office by"),
    "investigation_started_at": _l("Investigation started at"),
    "planned_at": _l("Plan drafted at"),
    "replied_at": _l("Replied at"),
    "fed_back_at": _l("Fed back at"),
    "followed_up_at": _l("Followed up at"),
    "closed_at": _l("Closed at"),
    "archived_at": _l("Archived at"),
    "version": _l("Version"),
    "investigate_due": _l("Investigation due"),
    "reply_due": _l("Reply due"),
    "follow_up_due": _l("Follow-up due"),
    "next_due_at": _l("Next deadline"),
    "deadline_status": _l("Deadline"),
    "overdue": _l("Overdue"),
    "warned": _l("Warned"),
    "supervised": _l("Under supervision"),
    "reopen_count": _l("Times reopened"),
    "case_type": _l("Case type"),
    "original": _l("Original complaint"),
    "customer_informed_at": _l("Customer told the result at"),
    "customer_informed_by": _l("Customer told the result by"),
    "customer_informed_method": _l("How the customer was told the result"),
    "customer_informed_note": _l("What the customer was told"),
}


def corrective_json(a: CorrectiveAction) -> dict[str, Any]:
    return {
        "id": a.id,
        "complaint_id": a.complaint_id,
        "kind": a.kind,
        "kind_label": str(corrective.KIND_LABELS.get(a.kind, a.kind)),
        "description": a.description,
        "owner": {"id": a.owner_id, "name": a.owner.name if a.owner else None},
        "due_at": a.due_at.isoformat() if a.due_at else None,
        "state": a.state,
        "state_label": str(corrective.STATE_LABELS.get(a.state, a.state)),
        "done_at": a.done_at.isoformat() if a.done_at else None,
        "done_note": a.done_note,
        "verified_at": a.verified_at.isoformat() if a.verified_at else None,
        "verify_note": a.verify_note,
        "overdue": a.overdue_at is not None,
        "escalated": a.escalated_at is not None,
    }


def reveal_roles() -> list[str]:
    return list(settings.get(db.session, "privacy.reveal_roles") or [])


def reveal_contact(complaint: Complaint) -> dict[str, Any]:
    """The case's customer in full, for the caller, written to the access log (raises RevealRefused)."""
    user = current_user()
    return privacy.reveal(
        db.session,
        current_viewer(),
        complaint,
        reveal_roles(),
        username=user.username if user else None,
        ip=request.remote_addr,
    )


def mask_complaint_json(row: Any, complaint_id: Any, viewer: privacy.Viewer, customer_ids: dict[int, int]) -> None:
    """Mask the customer of one serialised complaint (hidden from a complained staff member)."""
    if isinstance(row, dict) and isinstance(row.get("customer"), dict):
        privacy.mask_customer_json(row["customer"], viewer.mode(customer_ids.get(complaint_id)))


def customer_ids_of(complaint_ids: list[Any]) -> dict[int, int]:
    """{complaint: its customer}: from the cases the request has already loaded (a list's page),
    the others in one query."""
    ids = [i for i in complaint_ids if isinstance(i, int)]
    known: dict[int, int] = {}
    for pk in ids:
        loaded = db.session.identity_map.get(identity_key(Complaint, pk))
        state = loaded.__dict__ if loaded is not None else {}  # what is loaded and not expired
        if "customer_id" in state:
            known[pk] = state["customer_id"]
        elif state.get("customer") is not None:  # the row's columns were chosen; its customer joined
            known[pk] = state["customer"].id
    missing = [pk for pk in ids if pk not in known]
    if missing:
        statement = select(Complaint.id, Complaint.customer_id).where(Complaint.id.in_(missing))
        known.update(db.session.execute(statement).all())
    return known


# The badges' titles, translated when a badge shows one (a list page shows 75 badges: translating
# all three titles for each cost 225 look-ups of the translations a page).
_BADGE_TITLES = {"late": _l("Overdue"), "warned": _l("Warned: due soon"), "today": _l("Due today")}


def deadline_badge(due: Any, state: str) -> Markup:
    """A due time coloured by urgency: late (red), warned (amber), due today (blue)."""
    if due is None:
        return (
            Markup('<span class="deadline-late">%s</span>') % str(_BADGE_TITLES["late"])
            if state == "late"
            else Markup("")
        )
    title = _BADGE_TITLES.get(state)
    return Markup('<span class="deadline-%s" title="%s">%s</span>') % (
        state or "ok",
        str(title) if title is not None else "",
        format_local(due),
    )


def transition_options(complaint: Complaint, t: workflow.Transition) -> dict[str, list[tuple[Any, str]]]:
    """Choices for the select fields of an action form."""
    options: dict[str, list[tuple[Any, str]]] = {}
    for f in t.fields:
        if f.kind == "choice":
            mapping = {**labels.STEP_CHOICE, **UNIT_LABELS}
            options[f.name] = [(c, str(mapping.get(c, c))) for c in f.choices]
        elif f.kind == "stage":
            running = sla.extendable_stages(complaint, utcnow())
            options[f.name] = [(code, str(STAGES[code].label)) for code in running]
        elif f.kind == "staff":
            options[f.name] = [
                (p.id, p.name) for p in services.staff_of_department(db.session, complaint.department_id)
            ]
        elif f.kind == "level":
            options[f.name] = [
                (lv.id, lv.name)
                for lv in db.session.scalars(select(Level).where(Level.active.is_(True)).order_by(Level.rank, Level.id))
            ]
        elif f.kind == "department":
            options[f.name] = [
                (d.id, d.name)
                for d in db.session.scalars(
                    select(Department).where(Department.active.is_(True)).order_by(Department.sort)
                )
            ]
    return options


def event_json(e: ComplaintEvent, regulator_case: bool = False) -> dict[str, Any]:
    label = labels.action_label(e.action)
    if regulator_case and e.action in regulator.REGULATOR_STEP_ZH:
        # A regulator case's steps carry the ETC policy's names (派单, 预警, 催办, 回复, 审核 …).
        label = f"{regulator.REGULATOR_STEP_ZH[e.action]}（{label}）"
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "action": e.action,
        "kind": labels.action_kind(e.action),
        "label": label,
        "actor": {"id": e.actor.id, "username": e.actor.username, "name": e.actor.first_name} if e.actor else None,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "note": e.note,
        "data": e.data,
    }


def pause_json(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "state": p.state,
        "state_label": labels.label(labels.PAUSE_STATE, p.state),
        "started_at": p.started_at.isoformat(),
        "ended_at": p.ended_at.isoformat() if p.ended_at else None,
        "reason": p.reason,
        "expected_resume": p.expected_resume.isoformat() if p.expected_resume else None,
        "customer_informed": p.customer_informed,
        "requested_by": p.requested_by.username if p.requested_by else None,
        "approved_by": p.approved_by.username if p.approved_by else None,
        "working_minutes": p.working_minutes,
        "natural_minutes": p.natural_minutes,
    }


def transition_json(t: workflow.Transition, complaint: Complaint) -> dict[str, Any]:
    options = transition_options(complaint, t)
    suggested = policy_rules.suggested_values(complaint, t.action)
    return {
        "action": t.action,
        "label": str(t.label),
        "kind": t.kind,
        "target": t.target,
        "fields": [
            {
                "name": f.name,
                "label": str(f.label),
                "required": f.required,
                "kind": f.kind,
                "choices": [c for c, _label in options.get(f.name, [])] or list(f.choices),
                "suggested": suggested.get(f.name),
            }
            for f in t.fields
        ],
    }


def send_attachment(attachment_id: int) -> Any:
    """Send an attachment's stored bytes if the caller's scope covers it, else 404."""
    principal = current_principal()
    row = db.session.scalars(
        select(Attachment).where(Attachment.id == attachment_id, scope.criterion(Attachment, principal))
    ).first()
    if row is None:
        abort(404)
    return send_file(
        io.BytesIO(row.data),
        mimetype=row.content_type,
        as_attachment=True,
        download_name=row.filename,
        max_age=0,
    )


def attachment_json(row: Attachment) -> dict[str, Any]:
    return {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "description": row.description,
        "uploaded_at": row.uploaded_at.isoformat() if row.uploaded_at else None,
    }
