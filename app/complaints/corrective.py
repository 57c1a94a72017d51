"""Corrective actions (整改措施, 纠正与预防) of valid complaints.

A valid complaint can carry corrective actions: what, owner, due date. For quality
complaints the manufacturers' policies ask for a temporary countermeasure (临时对策,
default within 8 working hours) and a permanent one (永久对策, default within 2
working days); when no due time is given these defaults apply on the working-day
calendar. The owner (or the department head) marks an action done; 人事行政经理
verifies it at follow-up (passed, or failed: it opens again). A case is not closed
while an action is unverified. The scan marks overdue actions once and escalates
them to 总经理 once, one working day later; the monthly analysis lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app import settings
from app.access.roles import DEPARTMENT_HEAD as HEAD
from app.access.roles import GENERAL_MANAGER as GM
from app.access.roles import HR_MANAGER as HR
from app.i18n import _l
from app.lifecycle import TransitionError
from app.messages import notify
from app.models import Complaint, ComplaintEvent, ComplaintStatus, CorrectiveAction, Staff
from app.time_limits.sla import load_calendar
from app.timeutil import as_utc, format_local, utcnow

KINDS = ("temporary", "permanent", "general")
KIND_LABELS = {
    "temporary": _l("Temporary countermeasure"),
    "permanent": _l("Permanent countermeasure"),
    "general": _l("Corrective action"),
}
KIND_ZH = {"temporary": "临时对策", "permanent": "永久对策", "general": "整改措施"}
STATE_LABELS = {"open": _l("Open"), "done": _l("Done, to verify"), "verified": _l("Verified")}
STATE_ZH = {"open": "未完成", "done": "已完成待验证", "verified": "已验证"}
# Stages at which actions may be added (a valid case being handled, up to its follow-up).
ADD_STATUSES = ("dispatched", "investigating", "planned", "replied", "fed_back", "followed_up")
DEFAULT_DUE = {
    "temporary": ("corrective.temporary_working_hours", "working_hours"),
    "permanent": ("corrective.permanent_working_days", "working_days"),
    "general": ("corrective.general_working_days", "working_days"),
}


class CorrectiveError(TransitionError):
    """A refused step: ``kind`` is state | role | scope | fields (HTTP 409 / 403 / 403 / 422), as for lifecycle steps."""


def _status(complaint: Complaint) -> str:
    return getattr(complaint.status, "value", complaint.status)


def _roles(principal: Any) -> frozenset[str]:
    return frozenset(principal.roles) if principal.staff_id is not None else frozenset()


def heads_case(principal: Any, complaint: Complaint) -> bool:
    return HEAD in _roles(principal) and complaint.department_id in principal.acting_department_ids


def may_add(principal: Any, complaint: Complaint) -> bool:
    roles = _roles(principal)
    return HR in roles or heads_case(principal, complaint)


def may_complete(principal: Any, action: CorrectiveAction) -> bool:
    return action.owner_id == principal.staff_id or heads_case(principal, action.complaint) or HR in _roles(principal)


def may_verify(principal: Any) -> bool:
    return HR in _roles(principal)


def default_due(session: Session, kind: str, start: datetime) -> datetime:
    key, unit = DEFAULT_DUE.get(kind, DEFAULT_DUE["general"])
    amount = int(settings.get(session, key) or 0) or (8 if unit == "working_hours" else 2)
    return load_calendar(session).add(start, amount, unit)


def _event(
    session: Session,
    complaint: Complaint,
    action: str,
    actor_id: Optional[int],
    note: str,
    at: datetime,
    dedup_key: Optional[str] = None,
    **data: Any,
) -> None:
    session.add(
        ComplaintEvent(
            complaint_id=complaint.id,
            at=at,
            actor_id=actor_id,
            action=action,
            note=note,
            data=data or None,
            dedup_key=dedup_key,
        )
    )


def add(
    session: Session, complaint: Complaint, principal: Any, data: dict[str, Any], now: Optional[datetime] = None
) -> CorrectiveAction:
    """Add one action to a valid case being handled."""
    now = now or utcnow()
    _check_may_add(principal, complaint)
    errors: dict[str, list[str]] = {}
    kind = str(data.get("kind") or "general")
    if kind not in KINDS:
        errors.setdefault("kind", []).append(str(_l("Choose temporary, permanent or general.")))
    description = str(data.get("description") or "").strip()
    if not description:
        errors.setdefault("description", []).append(str(_l("Please describe the action.")))
    elif len(description) > 2000:
        errors.setdefault("description", []).append(str(_l("At most 2000 characters.")))
    owner = _owner(session, data, errors)
    due_at = _due_at(session, data.get("due_at"), kind, now, errors)
    if errors:
        raise CorrectiveError("fields", "; ".join(m for v in errors.values() for m in v), errors)
    action = CorrectiveAction(
        complaint_id=complaint.id,
        kind=kind,
        description=description,
        owner_id=owner.id,
        due_at=due_at,
        state="open",
        created_by_id=principal.user_id,
        created_at=now,
    )
    session.add(action)
    session.flush()
    _event(
        session,
        complaint,
        "corrective_added",
        principal.user_id,
        f"{KIND_ZH[kind]}：{description}（责任人 {owner.name}，期限 {format_local(due_at)}）",
        now,
        corrective_action=action.id,
        kind=kind,
        due_at=due_at.isoformat(),
    )
    _tell_owner(session, complaint, action, owner, now)
    return action


def _check_may_add(principal: Any, complaint: Complaint) -> None:
    """A valid case being handled, and the head of its department or the HR manager adding."""
    if complaint.is_archived or _status(complaint) not in ADD_STATUSES:
        raise CorrectiveError(
            "state", str(_l("Corrective actions are added while a case is handled, before it is closed."))
        )
    if getattr(complaint.validity, "value", complaint.validity) != "valid":
        raise CorrectiveError("state", str(_l("Only a valid (成立) complaint carries corrective actions.")))
    if not may_add(principal, complaint):
        raise CorrectiveError(
            "role", str(_l("Only the head of the complained department or the HR manager adds corrective actions."))
        )


def _owner(session: Session, data: dict[str, Any], errors: dict[str, list[str]]) -> Optional[Staff]:
    """The active staff member chosen to carry the action out."""
    owner = None
    try:
        owner_id = int(data.get("owner") or 0)
    except (TypeError, ValueError):
        owner_id = 0
    if owner_id:
        owner = session.get(Staff, owner_id)
    if owner is None or not owner.active:
        errors.setdefault("owner", []).append(str(_l("Choose the staff member who carries the action out.")))
    return owner


def _due_at(session: Session, due: Any, kind: str, now: datetime, errors: dict[str, list[str]]) -> Optional[datetime]:
    """The due time given (in the future), or the kind's default from now."""
    if due in (None, ""):
        return default_due(session, kind, now)
    try:
        due_at = as_utc(datetime.fromisoformat(str(due)) if not isinstance(due, datetime) else due)
    except ValueError:
        due_at = None
        errors.setdefault("due_at", []).append(str(_l("Give the due time as 2026-11-30T18:00.")))
    if due_at is not None and due_at <= now:
        errors.setdefault("due_at", []).append(str(_l("The due time must lie in the future.")))
    return due_at


def _tell_owner(session: Session, complaint: Complaint, action: CorrectiveAction, owner: Staff, now: datetime) -> None:
    outbox = notify.Outbox(session, now)
    if owner.user_id:
        outbox.add(
            outbox.user(owner.user_id),
            "corrective",
            f"{complaint.number}：{KIND_ZH[action.kind]}待完成",
            f"{action.description}（期限 {format_local(action.due_at)}）",
            complaint.id,
            f"corrective:{action.id}:owner",
        )
    outbox.flush()


def complete(
    session: Session, action: CorrectiveAction, principal: Any, note: str, now: Optional[datetime] = None
) -> CorrectiveAction:
    now = now or utcnow()
    if action.complaint.is_archived or action.state != "open":
        raise CorrectiveError("state", str(_l("Only an open corrective action can be marked done.")))
    if not may_complete(principal, action):
        raise CorrectiveError("role", str(_l("The owner, the department head or the HR manager marks an action done.")))
    if not (note or "").strip():
        raise CorrectiveError("fields", str(_l("Say what was done.")), {"note": [str(_l("Say what was done."))]})
    action.state, action.done_at, action.done_note = "done", now, note.strip()
    _event(
        session,
        action.complaint,
        "corrective_done",
        principal.user_id,
        f"{KIND_ZH.get(action.kind, '')}已完成：{note.strip()}",
        now,
        corrective_action=action.id,
        late=action.due_at < now,
    )
    return action


def verify(
    session: Session,
    action: CorrectiveAction,
    principal: Any,
    passed: bool,
    note: str,
    now: Optional[datetime] = None,
) -> CorrectiveAction:
    """Verification at follow-up: passed, or failed (the action opens again with a new due time)."""
    now = now or utcnow()
    if action.complaint.is_archived or action.state != "done":
        raise CorrectiveError("state", str(_l("Only an action marked done can be verified.")))
    if not may_verify(principal):
        raise CorrectiveError("role", str(_l("The HR manager verifies corrective actions at follow-up.")))
    if passed:
        action.state, action.verified_at, action.verified_by_id = "verified", now, principal.user_id
        action.verify_note = (note or "").strip() or None
        text = f"{KIND_ZH.get(action.kind, '')}验证通过" + (f"：{note.strip()}" if note and note.strip() else "")
    else:
        if not (note or "").strip():
            raise CorrectiveError(
                "fields",
                str(_l("Say why the action did not pass.")),
                {"note": [str(_l("Say why the action did not pass."))]},
            )
        action.state, action.done_at, action.done_note = "open", None, None
        action.overdue_at = action.escalated_at = None
        action.verify_note = note.strip()
        action.due_at = max(action.due_at, default_due(session, action.kind, now))
        text = f"{KIND_ZH.get(action.kind, '')}验证未通过，重新整改：{note.strip()}"
    _event(
        session,
        action.complaint,
        "corrective_verified" if passed else "corrective_rejected",
        principal.user_id,
        text,
        now,
        corrective_action=action.id,
    )
    return action


def unverified(session: Session, complaint_id: int) -> int:
    """How many actions of a case still wait (open or done but not verified)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(CorrectiveAction)
            .where(CorrectiveAction.complaint_id == complaint_id, CorrectiveAction.state != "verified")
        )
        or 0
    )


def scan(session: Session, now: Optional[datetime] = None) -> dict[str, int]:
    """Mark overdue actions once (owner and head told) and escalate them once to 总经理
    one working day later. Safe to run again and again; the caller commits."""
    now = now or utcnow()
    totals = {"overdue": 0, "escalated": 0}
    after: Optional[int] = 0
    while after is not None:
        counts, after = scan_batch(session, now, after, limit=500)
        totals = {key: totals[key] + counts[key] for key in totals}
    return totals


def scan_batch(
    session: Session, now: datetime, after_id: int = 0, limit: int = 500
) -> tuple[dict[str, int], Optional[int]]:
    """One batch of :func:`scan`: the actions past due with a mark still to make, by id after
    ``after_id``; their counts and the id the next batch starts after (None: none is left)."""
    counts = {"overdue": 0, "escalated": 0}
    rows = session.scalars(
        select(CorrectiveAction)
        .join(Complaint, Complaint.id == CorrectiveAction.complaint_id)
        .where(
            CorrectiveAction.state == "open",
            CorrectiveAction.due_at <= now,
            CorrectiveAction.id > after_id,
            or_(CorrectiveAction.overdue_at.is_(None), CorrectiveAction.escalated_at.is_(None)),
            Complaint.status != ComplaintStatus.archived,
        )
        .order_by(CorrectiveAction.id)
        .limit(limit)
    ).all()
    if not rows:
        return counts, None
    cal = load_calendar(session)
    outbox = notify.Outbox(session, now)
    for action in rows:
        if action.overdue_at is None and _mark_overdue(session, outbox, action, now):
            counts["overdue"] += 1
        if action.escalated_at is None and cal.add(action.due_at, 1, "working_days") <= now:
            if _escalate(session, outbox, action, now):
                counts["escalated"] += 1
    outbox.flush()
    session.flush()
    return counts, rows[-1].id if len(rows) == limit else None


def _recorded(session: Session, key: str) -> bool:
    """Whether the timeline holds the event of this dedup key already (another run did it)."""
    return session.scalar(select(ComplaintEvent.id).where(ComplaintEvent.dedup_key == key)) is not None


def _mark_overdue(session: Session, outbox: notify.Outbox, action: CorrectiveAction, now: datetime) -> bool:
    """Mark one action overdue and tell its owner and the department's heads; False if done already."""
    complaint = action.complaint
    key = f"corrective:{action.id}:overdue:{int(action.due_at.timestamp())}"
    if _recorded(session, key):
        return False
    action.overdue_at = now
    note = f"{KIND_ZH.get(action.kind, '')}“{action.description[:40]}”期限 {format_local(action.due_at)} 已过，仍未完成"
    _event(session, complaint, "corrective_overdue", None, note, now, corrective_action=action.id, dedup_key=key)
    recipients = list(outbox.heads(complaint.department_id))
    if action.owner.user_id:
        recipients += outbox.user(action.owner.user_id)
    outbox.add(recipients, "overdue", f"{complaint.number}：整改措施超期", note, complaint.id, key)
    return True


def _escalate(session: Session, outbox: notify.Outbox, action: CorrectiveAction, now: datetime) -> bool:
    """Escalate one action a working day overdue to 总经理 (the case becomes supervised); False if done."""
    complaint = action.complaint
    key = f"corrective:{action.id}:escalation:{int(action.due_at.timestamp())}"
    if _recorded(session, key):
        return False
    action.escalated_at = now
    complaint.supervised = True
    note = f"{KIND_ZH.get(action.kind, '')}“{action.description[:40]}”超期一个工作日仍未完成，已上报总经理督办"
    _event(session, complaint, "corrective_escalated", None, note, now, corrective_action=action.id, dedup_key=key)
    outbox.add(
        outbox.role(GM) + outbox.role(HR),
        "escalation",
        f"{complaint.number}：整改措施超期升级",
        note,
        complaint.id,
        key,
        webhook=True,
    )
    return True


def for_period(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The actions due or added in [start, end) with their state (the monthly analysis lists them)."""
    return _rows(
        session.scalars(
            select(CorrectiveAction)
            .where(
                ((CorrectiveAction.created_at >= start) & (CorrectiveAction.created_at < end))
                | ((CorrectiveAction.due_at >= start) & (CorrectiveAction.due_at < end))
            )
            .order_by(CorrectiveAction.due_at, CorrectiveAction.id)
        )
    )


def for_complaint(session: Session, complaint_id: int) -> list[dict[str, Any]]:
    """Every action of one case, as the analysis lists them (the regulator's reply report)."""
    return _rows(
        session.scalars(
            select(CorrectiveAction)
            .where(CorrectiveAction.complaint_id == complaint_id)
            .order_by(CorrectiveAction.due_at, CorrectiveAction.id)
        )
    )


def _rows(actions: Iterable[CorrectiveAction]) -> list[dict[str, Any]]:
    return [
        {
            "number": a.complaint.number,
            "department": a.complaint.department.name if a.complaint.department else "",
            "kind": KIND_ZH.get(a.kind, a.kind),
            "description": a.description,
            "owner": a.owner.name,
            "due_at": format_local(a.due_at),
            "state": STATE_ZH.get(a.state, a.state),
            "late": bool(a.overdue_at) or (a.done_at is not None and a.done_at > a.due_at),
        }
        for a in actions
    ]
