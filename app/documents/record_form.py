"""Service layer: applies the domain rules to the database inside one transaction.

Views, the REST API, jobs and the CLI call these functions; none of them writes
complaint state by itself.
"""

from __future__ import annotations

from typing import Any, Optional

from sqlalchemy.orm import Session

from app.models import (
    Complaint,
)
from app.timeutil import utcnow

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
    from app.access import privacy
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


def record_form_pdf(
    session: Session, complaint: Complaint, actor_id: Optional[int], hide_customer: bool = False
) -> tuple[bytes, Any]:
    """The 客户投诉记录表 of a case: printed fresh while open; once archived, stored once and kept.

    Returns the PDF bytes and the stored document (None while the case is open). With
    ``hide_customer`` (a complained staff member asks) it is always printed fresh,
    without the customer's name and contact details, and not stored.
    """
    from app.documents import render as documents
    from app.time_limits import sla

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
