"""Display labels of the portal's closed sets, translatable (zh by default)."""

from __future__ import annotations

from typing import Any

from app.i18n import _l, print_language

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


def printed(mapping: dict[str, Any], value: Any) -> str:
    """The label as formal documents print it (Simplified Chinese, whatever the screen's language)."""
    with print_language():
        return label(mapping, value)


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
    # Steps of the lifecycle (app/complaints/workflow.py): buttons and timeline alike.
    "judge_valid": _l("Judge valid (成立)"),
    "judge_invalid": _l("Judge invalid (不成立) and reply politely"),
    "dispatch": _l("Dispatch to the department"),
    "first_contact": _l("First response to the customer (首次响应)"),
    "second_contact": _l("Second response to the customer (二次响应)"),
    "change_level": _l("Change the complaint level"),
    "sign_for": _l("Sign for the case (签收)"),
    "start_investigation": _l("Start investigation"),
    "object_dispatch": _l("Object to the dispatch (责任异议)"),
    "rule_dispute": _l("Rule the dispute (分管领导裁定)"),
    "propose_plan": _l("Record findings and plan"),
    "reply": _l("Reply to the customer"),
    "feed_back": _l("Feed back to HR"),
    "follow_up": _l("Record the follow-up visit"),
    "close": _l("Close the case"),
    "confirm_informed": _l("Confirm the customer was told the result"),
    "recomplain": _l("Customer complains again: open an escalated complaint (升级投诉)"),
    "archive": _l("Archive"),
    "report_to_leader": _l("Report to the leader (major case)"),
    "report_to_gm": _l("Report to the general manager (major case)"),
    "submit_written_report": _l("Submit the written report (major case)"),
    "request_extension": _l("Request more time (延期)"),
    "decide_extension": _l("Decide the extension request"),
    "mark_repeat": _l("Link as a repeat of an earlier complaint"),
    "escalate": _l("Supervise (督办)"),
    "escalate_to_head_office": _l("Escalate to the head office (上报总部)"),
    "remind": _l("Remind (催办)"),
    "pause": _l("Pause the clock (暂停计时)"),
    "resume": _l("Resume the clock"),
    "approve_pause": _l("Approve the long pause"),
    "reject_pause": _l("Reject the long pause (the clock resumes)"),
    # Lines the system and the other features record.
    "edit": _l("Intake corrected"),
    "register": _l("Registration"),
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
    "recomplained": _l("The customer complained again: an escalated complaint was opened"),
    "grievance_converted": _l("Converted from a dissatisfaction ticket (不满工单)"),
    "anonymised": _l("Personal data anonymised"),
    "unresolved_level_raised": _l("Level raised: a valid complaint unresolved for a month"),
    "contacts_exhausted": _l("Contacts exhausted: escalated to the general manager"),
    "same_batch": _l("Same batch complained of by two customers"),
}

# Timeline kind of each recorded action; a lifecycle step not listed is a "transition".
KIND = {
    "object_dispatch": "dispute",
    "rule_dispute": "dispute",
    "confirm_informed": "note",
    "recomplain": "escalation",
    "report_to_leader": "report",
    "report_to_gm": "report",
    "submit_written_report": "report",
    "request_extension": "extension",
    "decide_extension": "extension",
    "mark_repeat": "note",
    "escalate": "escalation",
    "escalate_to_head_office": "escalation",
    "remind": "reminder",
    "pause": "pause",
    "resume": "pause",
    "approve_pause": "pause",
    "reject_pause": "pause",
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
    "recomplained": "escalation",
    "grievance_converted": "transition",
    "anonymised": "note",
    "unresolved_level_raised": "escalation",
    "contacts_exhausted": "escalation",
    "same_batch": "warning",
}

# The lifecycle steps (app/complaints/workflow.py has one Transition for each).
STEP_ACTIONS = frozenset(
    {
        "judge_valid",
        "judge_invalid",
        "dispatch",
        "first_contact",
        "second_contact",
        "change_level",
        "sign_for",
        "start_investigation",
        "object_dispatch",
        "rule_dispute",
        "propose_plan",
        "reply",
        "feed_back",
        "follow_up",
        "close",
        "confirm_informed",
        "recomplain",
        "archive",
        "report_to_leader",
        "report_to_gm",
        "submit_written_report",
        "request_extension",
        "decide_extension",
        "mark_repeat",
        "escalate",
        "escalate_to_head_office",
        "remind",
        "pause",
        "resume",
        "approve_pause",
        "reject_pause",
    }
)

FOLLOW_UP_METHOD = {
    "phone": _l("Phone call"),
    "visit": _l("Visit"),
    "sms": _l("Text message"),
    "wechat": _l("WeChat"),
    "email": _l("E-mail"),
    "in_person": _l("Face to face"),
}

# Decisions offered by step forms (extensions, disputes).
DECISION = {
    "approve": _l("Approve"),
    "refuse": _l("Refuse"),
    "uphold": _l("Uphold: the department keeps the case"),
    "reassign": _l("Reassign to another department"),
}

# Every closed set a step form offers as a choice (the clock units add theirs where they are known).
STEP_CHOICE = {**SATISFACTION, **FOLLOW_UP_METHOD, **DECISION}


CASE_TYPE = {
    "complaint": _l("Complaint (投诉)"),
    "escalated": _l("Escalated re-complaint (升级投诉)"),
    "appeal": _l("Appeal (申诉)"),
    "revisit": _l("Reprocessing after follow-up (回访再处理)"),
    "supervision": _l("Supervision (督办)"),
}

# Stages that carry a clock (app/time_limits/deadlines.py has one Stage for each).
STAGE = {
    "investigate": _l("Investigation started"),
    "reply": _l("Satisfactory reply"),
    "first_response": _l("First response to the customer"),
    "second_response": _l("Second response to the customer"),
    "follow_up": _l("Follow-up visit"),
    "sign_in": _l("Dispatch signed for (签收)"),
    "notify_department": _l("Department notified"),
    "report_leader": _l("Reported to the leader"),
    "report_gm": _l("Reported to the general manager"),
    "written_report": _l("Written report on a major case"),
    "resolve": _l("Resolution (解决/办结)"),
    "inform": _l("Result told to the complainant"),
    "raise_level": _l("Unresolved valid complaint raised to a major level"),
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

# Inbox messages: 待办 asks the recipient to act, 知会 reports progress.
NOTIFICATION_CATEGORY = {"todo": _l("To do (待办)"), "info": _l("For information (知会)")}


def action_label(action: str) -> str:
    """The translated name of a timeline line's action (the raw code only if unknown)."""
    return str(ACTION.get(action, action))


def action_kind(action: str) -> str:
    """The kind of a timeline line: transition, escalation, reminder, extension, report, note …"""
    if action in KIND:
        return KIND[action]
    return "transition" if action in STEP_ACTIONS else "note"
