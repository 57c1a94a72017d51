"""Service layer: applies the domain rules to the database inside one transaction.

Views, the REST API, jobs and the CLI call these functions; none of them writes
complaint state by itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy.orm import Session

from app import lifecycle
from app.access import privacy
from app.access.roles import HR_MANAGER
from app.complaints import corrective
from app.documents import render as documents
from app.documents.record_form import record_form_context
from app.i18n import _l
from app.lifecycle import record_event
from app.models import (
    Complaint,
)
from app.time_limits import sla
from app.timeutil import utcnow

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
    now = now or utcnow()
    if not (complaint.channel is not None and complaint.channel.is_regulator):
        raise lifecycle.TransitionError("state", str(_l("This case was not transferred by a regulator.")))
    if getattr(complaint.status, "value", complaint.status) not in REGULATOR_REPLY_STATUSES:
        raise lifecycle.TransitionError(
            "state", str(_l("The reply report is issued once the department has replied to the customer."))
        )
    if principal.staff_id is None or HR_MANAGER not in principal.roles:
        raise lifecycle.TransitionError(
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
