"""Display labels of the portal's closed sets, translatable (zh by default)."""

from __future__ import annotations

from typing import Any

from app.i18n import _l

STATUS = {
    "registered": _l("Registered"),
    "judged": _l("Judged"),
    "dispatched": _l("Dispatched"),
    "investigating": _l("Investigating"),
    "planned": _l("Plan drafted"),
    "replied": _l("Replied"),
    "fed_back": _l("Fed back"),
    "followed_up": _l("Followed up"),
    "closed": _l("Closed"),
    "archived": _l("Archived"),
}

VALIDITY = {"valid": _l("Valid"), "invalid": _l("Invalid")}

SATISFACTION = {
    "satisfied": _l("Satisfied"),
    "basically_satisfied": _l("Basically satisfied"),
    "unsatisfied": _l("Unsatisfied"),
}


def label(mapping: dict[str, Any], value: Any) -> str:
    """The translated label of an enum value (or of its ``.value``); '' for None."""
    if value is None:
        return ""
    key = getattr(value, "value", value)
    return str(mapping.get(key, key))


def status_label(value: Any) -> str:
    return label(STATUS, value)


FIELD = {
    "received_at": _l("Received at"),
    "channel": _l("Channel"),
    "subject": _l("Subject"),
    "content": _l("Complaint content"),
    "customer_demand": _l("Customer demand"),
    "category": _l("Category"),
    "level": _l("Level"),
    "department": _l("Complained department"),
    "staff": _l("Complained staff"),
}

ACTION = {
    "edit": _l("Intake corrected"),
    "register": _l("Registered"),
    "attach": _l("File attached"),
    "warning": _l("Deadline warning"),
    "overdue": _l("Deadline missed"),
    "escalation": _l("Escalated"),
    "deadline_recomputed": _l("Deadlines recomputed"),
    "phrase_confirmed": _l("Forbidden phrases sent after confirmation"),
    "regulator_reply": _l("Reply report to the regulator issued"),
    "corrective_added": _l("Corrective action added"),
    "corrective_done": _l("Corrective action done"),
    "corrective_verified": _l("Corrective action verified"),
    "corrective_rejected": _l("Corrective action not effective"),
    "corrective_overdue": _l("Corrective action overdue"),
    "corrective_escalated": _l("Corrective action escalated"),
    "pause_cap_reached": _l("Pause reached the cap"),
    "cluster_linked": _l("Linked into a cluster of complaints"),
    "cluster_reply": _l("Unified reply of the cluster"),
    "cluster_level_raised": _l("Level raised: the same problem repeated in the month"),
    "group_complaint": _l("Group complaint (群体性投诉)"),
}

# Timeline kind of each recorded action (workflow actions add theirs in app/views.py).
KIND = {
    "edit": "note",
    "register": "transition",
    "attach": "attachment",
    "warning": "warning",
    "overdue": "overdue",
    "escalation": "escalation",
    "deadline_recomputed": "recompute",
    "phrase_confirmed": "warning",
    "regulator_reply": "report",
    "corrective_added": "note",
    "corrective_done": "transition",
    "corrective_verified": "transition",
    "corrective_rejected": "warning",
    "corrective_overdue": "overdue",
    "corrective_escalated": "escalation",
    "pause_cap_reached": "pause",
    "cluster_linked": "note",
    "cluster_reply": "note",
    "cluster_level_raised": "escalation",
    "group_complaint": "escalation",
}

FOLLOW_UP_METHOD = {
    "phone": _l("Phone call"),
    "visit": _l("Visit"),
    "sms": _l("Text message"),
    "wechat": _l("WeChat"),
    "email": _l("E-mail"),
    "in_person": _l("Face to face"),
}

CASE_TYPE = {
    "complaint": _l("Complaint (投诉)"),
    "escalated": _l("Escalated re-complaint (升级投诉)"),
    "appeal": _l("Appeal (申诉)"),
    "revisit": _l("Reprocessing after follow-up (回访再处理)"),
    "supervision": _l("Supervision (督办)"),
}

STAGE_STATE = {"open": _l("Running"), "met": _l("Done"), "cancelled": _l("Not applicable")}

PAUSE_STATE = {
    "running": _l("Paused"),
    "awaiting_approval": _l("Paused, awaiting the general manager's approval"),
    "ended": _l("Resumed"),
    "rejected": _l("Rejected by the general manager"),
}

UNIT_KIND = {
    "company": _l("Company"),
    "branch": _l("Branch"),
    "management_office": _l("Management office"),
    "outlet": _l("Outlet"),
}

EXTENSION_STATUS = {"pending": _l("Pending"), "approved": _l("Approved"), "refused": _l("Refused")}


def action_label(action: str) -> str:
    from app.complaints.workflow import TRANSITIONS

    if action in TRANSITIONS:
        return str(TRANSITIONS[action].label)
    return str(ACTION.get(action, action))


def action_kind(action: str) -> str:
    from app.complaints.workflow import TRANSITIONS

    if action in TRANSITIONS:
        return TRANSITIONS[action].kind
    return KIND.get(action, "note")
