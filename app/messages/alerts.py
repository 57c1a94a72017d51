"""Who is told what when a case moves or a clock runs out (messages in zh by default)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Optional

from sqlalchemy.orm import Session

from app import signals
from app.access.roles import GENERAL_MANAGER as GM
from app.access.roles import HR_MANAGER as HR
from app.i18n import _l, translated
from app.labels import status_label
from app.messages import notify
from app.models import Complaint, Deadline, SlaRule
from app.time_limits.deadlines import FIRST_RESPONDER, HEAD_TOKEN, STAGES
from app.time_limits.sla import pending_extension
from app.timeutil import format_local


def _send(
    session: Session,
    complaint: Complaint,
    tokens: Iterable[str],
    kind: str,
    title: str,
    body: str,
    now: datetime,
    dedup_key: Optional[str] = None,
    webhook: bool = False,
    new_case: bool = False,
    outbox: Optional[notify.Outbox] = None,
) -> int:
    outbox = outbox or notify.Outbox(session, now)
    if new_case:
        outbox.new_case(complaint.id)
    count = outbox.add(outbox.recipients(tokens, complaint), kind, title, body, complaint.id, dedup_key, webhook)
    outbox.flush()
    return count


def responsible_tokens(complaint: Complaint, stage_code: str) -> list[str]:
    """Who must act for a stage now: before dispatch that is HR, afterwards the stage's owner."""
    stage = STAGES[stage_code]
    status = getattr(complaint.status, "value", complaint.status)
    if stage.responsible_before_dispatch and status in ("registered", "judged"):
        return [stage.responsible_before_dispatch]
    return [stage.responsible]


def _title(complaint: Complaint, text: Any) -> str:
    return f"[{complaint.number}] {text}"


def _told_of_new_case(complaint: Complaint) -> list[str]:
    """Who is told of a new case: its department's heads, HR and the GM for a major one, else HR."""
    return [HEAD_TOKEN, HR, GM] if complaint.level is not None and complaint.level.is_major else [HR]


_NEW_CASE_OUTBOX = "alerts_new_case_outbox"


@signals.case_numbering.connect
def before_numbering(complaint: Complaint, *, session: Session, now: datetime, **_: Any) -> None:
    """Who will be told of the new case is read before it takes its number (the day's counter stays
    locked from then until the commit); its message is written once it has the number."""
    outbox = notify.Outbox(session, now)
    outbox.prefetch(_told_of_new_case(complaint))
    session.info[_NEW_CASE_OUTBOX] = (complaint, outbox)


@signals.case_registered.connect
def on_register(complaint: Complaint, *, session: Session, now: datetime, **_: Any) -> None:
    session.flush()  # the case needs its id for links and keys
    prepared, outbox = session.info.pop(_NEW_CASE_OUTBOX, (None, None))
    outbox = outbox if prepared is complaint else None
    body = f"{complaint.department.name}：{complaint.subject or ''}"
    when = _stage_and_deadline(next_deadline(complaint))
    key, tokens = f"register:{complaint.id}", _told_of_new_case(complaint)
    if complaint.level is not None and complaint.level.is_major:
        title = _title(complaint, _l("Major complaint received: %(level)s", level=complaint.level.name)) + when
        _send(session, complaint, tokens, "major", title, body, now, key, webhook=True, new_case=True, outbox=outbox)
    else:
        title = _title(complaint, _l("New complaint to judge")) + when
        _send(session, complaint, tokens, "new", title, body, now, key, new_case=True, outbox=outbox)


# action -> (who must act: 待办, who is told: 知会, message). The first responder (首问责任人) is told
# the progress of every step of the case they registered (知会), with their own wording, unless they
# must act themselves.
_ON_ACTION: dict[str, tuple[list[str], list[str], Any]] = {
    "dispatch": ([HEAD_TOKEN], [], _l("A complaint was dispatched to your department")),
    "reply": ([], [HR], _l("The department replied to the customer")),
    "feed_back": ([HR], [], _l("The department fed back: the follow-up visit is due")),
    "escalate": ([HEAD_TOKEN], [HR, GM], _l("The complaint is now under supervision (督办)")),
    "escalate_to_head_office": (
        [HR, GM],
        [],
        _l("A case beyond its unit's authority was escalated to the head office"),
    ),
    "remind": ([], [], _l("Reminder (催办): please handle this complaint")),
    "request_extension": ([], [], _l("An extension was requested")),
    "decide_extension": ([], [HEAD_TOKEN], _l("The extension request was decided")),
    "report_to_leader": ([], [HR], _l("A major complaint was reported to the leader")),
    "report_to_gm": ([GM], [], _l("A major complaint was reported to you")),
    "submit_written_report": ([], [HR, GM], _l("The written report of a major complaint was submitted")),
    "pause": ([], [HR], _l("The case's clock was paused")),
    "resume": ([], [HEAD_TOKEN, HR], _l("The case's clock was resumed")),
    "approve_pause": ([], [HEAD_TOKEN, HR], _l("The long pause was approved")),
    "reject_pause": ([], [HEAD_TOKEN, HR], _l("The long pause was rejected: the clock runs again")),
    "confirm_informed": ([HR], [], _l("The customer was told the result: the case may be closed")),
    "recomplain": ([HR], [], _l("The customer complained again: an escalated complaint was opened")),
}
# Internal steps that the first responder is not told about (a request, a nudge to the handlers).
_NOT_FOR_OWNER = ("remind", "request_extension", "mark_repeat")


def next_deadline(complaint: Complaint) -> Optional[Deadline]:
    """The case's running time limit that falls due first (None when no clock runs)."""
    running = [d for d in complaint.deadlines if d.state == "open" and d.due_at is not None]
    return min(running, key=lambda d: d.due_at) if running else None


def _stage_and_deadline(deadline: Optional[Deadline]) -> str:
    """ "（环节：开始调查，时限：2026-12-06 17:00）" — empty when no clock runs."""
    if deadline is None:
        return ""
    text = _l(
        "(stage: %(stage)s, due %(due)s)",
        stage=STAGES[deadline.stage].label,
        due=format_local(deadline.due_at),
    )
    return str(text)


def _who_acts_and_who_is_told(
    session: Session, complaint: Complaint, action: str, after: str
) -> tuple[list[str], list[str], Any]:
    todo, info, message = _ON_ACTION.get(action, ([], [], None))
    if action == "follow_up" and after == "investigating":
        todo, info, message = [HEAD_TOKEN], [HR], _l("The customer is not satisfied: the case is reopened")
    elif action == "remind":
        running = [d.stage for d in complaint.deadlines if d.state == "open"]
        todo = responsible_tokens(complaint, running[0]) if running else [HEAD_TOKEN]
    elif action == "request_extension":
        pending = pending_extension(session, complaint)
        late = pending is not None and pending.late_request
        todo = [GM] if (late or (complaint.level is not None and complaint.level.rank >= 2)) else [HR]
    elif action == "pause" and complaint.pauses and complaint.pauses[-1].state == "awaiting_approval":
        todo, info, message = [GM], [HR], _l("A pause longer than the cap awaits your approval")
    return list(todo), list(info), message


@signals.step_taken.connect
def on_transition(
    complaint: Complaint,
    *,
    session: Session,
    transition: Any,
    before: str,
    after: str,
    now: datetime,
    values: dict[str, Any],
    **_: Any,
) -> None:
    """Tell who must act on the case now (待办), who follows it (知会), and its first responder."""
    t = transition
    todo, info, message = _who_acts_and_who_is_told(session, complaint, t.action, after)
    body = str(values.get("note") or values.get("reason") or values.get("report") or "") or status_label(after)
    when = _stage_and_deadline(next_deadline(complaint))
    outbox = notify.Outbox(session, now)
    acting = outbox.recipients(todo, complaint) if message else []
    told = outbox.recipients(info, complaint) if message else []
    owner = []
    if t.action not in _NOT_FOR_OWNER and (message or before != after or t.kind != "transition"):
        owner = outbox.recipients([FIRST_RESPONDER], complaint)
    busy = {user_id for user_id, _ in acting}
    webhook = t.action in ("escalate", "escalate_to_head_office")
    if acting:
        outbox.add(acting, t.action, _title(complaint, message) + when, body, complaint.id, webhook=webhook)
        webhook = False
    told = [r for r in told if r[0] not in busy]
    if told:
        outbox.add(
            told, t.action, _title(complaint, message) + when, body, complaint.id, webhook=webhook, category="info"
        )
    busy |= {user_id for user_id, _ in told}
    owner = [r for r in owner if r[0] not in busy]
    if owner:
        progress = _l("The complaint you registered: %(action)s", action=t.label)
        outbox.add(owner, t.action, _title(complaint, progress) + when, body, complaint.id, category="info")
    outbox.flush()


@signals.case_recomplained.connect
def on_recomplaint(escalated: Complaint, *, session: Session, original: Complaint, now: datetime, **_: Any) -> None:
    """An escalated re-complaint (二次投诉) is reported to the supervising leader at once.

    Departments name no supervising leader (分管领导) yet, so 总经理 is told, with the
    department head and 人事行政经理.
    """
    title = _title(
        escalated,
        _l(
            "Escalated re-complaint (二次投诉): the customer did not accept the reply to %(original)s",
            original=original.number,
        ),
    )
    body = f"{escalated.department.name}：{escalated.subject or ''}"
    outbox = notify.Outbox(session, now)
    # The original case's first responder owns the matter too.
    recipients = outbox.recipients([GM, HEAD_TOKEN, HR], escalated) + outbox.user(original.first_responder_id)
    outbox.add(recipients, "recomplaint", title, body, escalated.id, f"recomplaint:{escalated.id}", True)
    outbox.flush()


def _supervisor_or_gm(outbox: notify.Outbox, complaint: Complaint) -> list[notify.Recipient]:
    """The department's supervising leader (分管领导); without one, the 总经理 users."""
    department = complaint.department
    supervisor = department.supervisor_id if department is not None else None
    return outbox.user(supervisor) if supervisor is not None else outbox.role(GM)


@signals.dispute_opened.connect
def on_dispute(complaint: Complaint, *, session: Session, dispute: Any, now: datetime, **_: Any) -> None:
    """A department objects to a dispatch: its supervising leader must rule (HR is told too)."""
    title = _title(
        complaint,
        _l("%(department)s objects to the dispatch: please rule", department=dispute.from_department.name),
    )
    outbox = notify.Outbox(session, now)
    recipients = _supervisor_or_gm(outbox, complaint) + outbox.role(HR)
    outbox.add(recipients, "dispute", title, dispute.reason, complaint.id, f"dispute:{dispute.id}")
    outbox.flush()


@signals.dispute_ruled.connect
def on_dispute_ruled(complaint: Complaint, *, session: Session, dispute: Any, now: datetime, **_: Any) -> None:
    """The ruling goes to the objecting department, the new one (if reassigned) and HR."""
    if dispute.state == "reassigned":
        text = _l("Dispute ruled: the case goes to %(department)s", department=dispute.to_department.name)
    else:
        text = _l("Dispute ruled: %(department)s keeps the case", department=dispute.from_department.name)
    outbox = notify.Outbox(session, now)
    recipients = outbox.heads(dispute.from_department_id) + outbox.role(HR)
    if dispute.to_department_id is not None:
        recipients += outbox.heads(dispute.to_department_id)
    outbox.add(
        recipients, "dispute", _title(complaint, text), dispute.ruling_note or "", complaint.id, f"ruling:{dispute.id}"
    )
    outbox.flush()


@signals.pause_cap_reached.connect
def on_pause_cap(complaint: Complaint, *, session: Session, pause_id: int, note: str, now: datetime, **_: Any) -> None:
    """A running pause reached the cap: 总经理 must approve it."""
    title = _title(complaint, _l("A pause longer than the cap awaits your approval"))
    _send(session, complaint, [GM, HR], "pause_cap", title, note, now, f"pause-cap:{pause_id}")


def _batch_outbox(session: Session, batch: dict[str, Any], now: datetime) -> notify.Outbox:
    """The outbox the scan's batch queues its messages in (sent when the batch is done)."""
    if "outbox" not in batch:
        batch["outbox"] = notify.Outbox(session, now)
    return batch["outbox"]


@signals.scan_batch_due.connect
def on_scan_batch(
    session: Session, *, complaint_ids: list[int], batch: dict[str, Any], now: datetime, **_: Any
) -> None:
    """The messages already sent on the batch's cases, read in one query (each event merges
    a repeat into them; read case by case, they were half of a scan's time)."""
    _batch_outbox(session, batch, now).read_recent(complaint_ids)


_SLA_TITLES = {
    "warning": _l("%(stage)s: deadline approaching (due %(due)s)"),
    "overdue": _l("%(stage)s: deadline missed (due %(due)s)"),
    "escalation": _l("%(stage)s: escalated, deadline still missed (due %(due)s)"),
}


@signals.clock_event.connect
def on_sla_event(
    complaint: Complaint,
    *,
    session: Session,
    deadline: Deadline,
    rule: Optional[SlaRule],
    kind: str,
    note: str,
    dedup_key: str,
    now: datetime,
    batch: dict[str, Any],
    **_: Any,
) -> None:
    """Queue the messages of a warning, missed deadline or escalation (sent with the batch)."""
    d, key = deadline, dedup_key
    if kind == "warning" and d.due_at <= now:
        return  # a warning recorded after its deadline passed (scheduler was down) tells nobody
    outbox = _batch_outbox(session, batch, now)
    acting = outbox.recipients(responsible_tokens(complaint, d.stage), complaint)
    told: list[notify.Recipient] = []
    if kind in ("warning", "overdue") and rule is not None and rule.remind_roles:
        told = outbox.recipients(rule.remind_roles.split(","), complaint)  # 提醒对象 are told, not asked
    if kind == "escalation":
        acting = outbox.recipients([rule.escalate_role] if rule is not None and rule.escalate_role else [GM], complaint)
    texts = batch.setdefault("texts", {})  # each wording translated once a batch
    template = translated(texts, _SLA_TITLES[kind])
    title = _title(
        complaint, template % {"stage": translated(texts, STAGES[d.stage].label), "due": format_local(d.due_at)}
    )
    webhook = kind in ("overdue", "escalation")
    outbox.add(acting, kind, title, note, complaint.id, key, webhook=webhook)
    busy = {user_id for user_id, _ in acting}
    outbox.add([r for r in told if r[0] not in busy], kind, title, note, complaint.id, key, category="info")


@signals.scan_batch_done.connect
def send_queued(session: Session, *, batch: dict[str, Any], **_: Any) -> None:
    """Send what the scan's batch queued (one insert for all its messages)."""
    outbox = batch.get("outbox")
    if outbox is not None:
        outbox.flush()
