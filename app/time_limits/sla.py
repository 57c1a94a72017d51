"""Time limits of cases: clocks, the deadline scan, extensions and recomputation.

The service side of ``app/deadlines.py`` and ``app/calendar.py``: it reads the
rules and the calendar from the database, starts and stops each stage's clock as
the case moves, and records warnings, overdue marks and escalations exactly once
(a unique key per deadline, kind and instant, enforced by the database).

Lock order, everywhere: the complaint row first, then its deadlines.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, attributes, selectinload

from app import settings, signals
from app.extensions import insert_or_skip
from app.i18n import _l, translated
from app.models import (
    CalendarOverride,
    ClockPause,
    Complaint,
    ComplaintEvent,
    ComplaintStatus,
    Deadline,
    Extension,
    Setting,
    SlaRule,
)
from app.time_limits import bulk, deadlines
from app.time_limits.calendar import WorkCalendar, parse_blocks
from app.time_limits.deadlines import STAGES, Schedule, next_check, pause_minutes, resolve_rule, schedule
from app.timeutil import LOCAL_TZ, format_local, to_local, utcnow

log = logging.getLogger(__name__)

SCAN_LOCK_KEY = 4_201_120  # pg advisory lock id of the deadline scan
CALENDAR_VERSION_KEY = "calendar.version"
CALENDAR_TTL = 30.0
# database URL -> (expires, calendar); a change in this process clears it at once,
# another process sees it within CALENDAR_TTL seconds.
_calendar_cache: dict[str, tuple[float, WorkCalendar]] = {}


# --- Calendar and rules from the database --------------------------------------------------


def load_calendar(session: Session) -> WorkCalendar:
    """The working calendar (office hours + overrides), kept for a short while per process."""
    bind = str(session.get_bind().url)
    hit = _calendar_cache.get(bind)
    if hit is not None and hit[0] > _time.monotonic():
        return hit[1]
    overrides = {row.day: row.is_workday for row in session.scalars(select(CalendarOverride))}
    blocks = parse_blocks(settings.get(session, "office_hours"))
    calendar = WorkCalendar(blocks=blocks, overrides=overrides)
    _calendar_cache[bind] = (_time.monotonic() + CALENDAR_TTL, calendar)
    return calendar


def forget_calendar() -> None:
    """Drop the cached calendars (after changes made outside the ORM, e.g. a restore)."""
    _calendar_cache.clear()


@event.listens_for(Session, "after_flush")
def _calendar_flushed(session: Session, flush_context: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, CalendarOverride) for obj in changed) or any(
        isinstance(obj, Setting) and obj.key in ("office_hours", CALENDAR_VERSION_KEY) for obj in changed
    ):
        _calendar_cache.clear()
        session.info["calendar_changed"] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _calendar_settled(session: Session, *args: Any) -> None:
    if session.info.pop("calendar_changed", False):
        _calendar_cache.clear()


def calendar_changed(session: Session) -> None:
    """Mark the calendar as changed (deletes leave no updated_at behind)."""
    settings.put(session, CALENDAR_VERSION_KEY, int(settings.get(session, CALENDAR_VERSION_KEY) or 0) + 1)


_ACTIVE_RULES = select(SlaRule).where(SlaRule.active.is_(True))  # built once: every registration reads it


def load_rules(session: Session) -> list[SlaRule]:
    return list(session.scalars(_ACTIVE_RULES))


# --- Clocks --------------------------------------------------------------------------------


def lock_complaint(session: Session, complaint: Complaint) -> None:
    """Take the case's row lock (PostgreSQL) and reload it, before touching its clocks."""
    if session.get_bind().dialect.name == "postgresql" and complaint.id is not None:
        session.execute(select(Complaint.id).where(Complaint.id == complaint.id).with_for_update())
        session.refresh(complaint)


def _start(
    session: Session, complaint: Complaint, event: str, at: datetime, cal: WorkCalendar, rules: list[SlaRule]
) -> list[Deadline]:
    started = []
    for stage in STAGES.values():
        if event not in stage.starts_on:
            continue
        rule = resolve_rule(rules, stage.code, *_level_and_channel(complaint))
        if rule is None:
            continue
        previous = [d for d in complaint.deadlines if d.stage == stage.code]
        for d in previous:
            if d.state == "open":
                d.state, d.next_check_at = "cancelled", None
        started.append(
            _start_one(complaint, stage.code, rule, at, cal, max((d.cycle for d in previous), default=0) + 1)
        )
    return started


@event.listens_for(Session, "before_flush")
def _clocks_follow_department(session: Session, flush_context: Any, instances: Any) -> None:
    """A case moved to another department takes its clocks along (statistics, digests)."""
    for obj in session.dirty:
        if isinstance(obj, Complaint):
            history = attributes.get_history(obj, "department")
            if history.added:
                new = history.added[0]
                for d in obj.deadlines:
                    d.department_id = new.id if new is not None else None


def _level_and_channel(complaint: Complaint) -> tuple[Optional[int], Optional[int]]:
    """The case's level and channel ids, also before its first flush (relationships set, ids not yet)."""
    level = complaint.level.id if complaint.level is not None else complaint.level_id
    channel = complaint.channel.id if complaint.channel is not None else complaint.channel_id
    return level, channel


def start_registration_clocks(session: Session, complaint: Complaint, now: datetime) -> list[Deadline]:
    """The clocks of a newly registered case, started in memory: nothing is flushed, nobody is told."""
    with session.no_autoflush:  # the case is inserted once, with its deadlines
        started = _start(
            session, complaint, "register", complaint.received_at, load_calendar(session), load_rules(session)
        )
        refresh(complaint, now)
    return started


def after_transition(
    session: Session,
    complaint: Complaint,
    t: Any,
    before: str,
    after: str,
    now: datetime,
    values: Optional[dict[str, Any]] = None,
    actor_id: Optional[int] = None,
) -> None:
    """Stop the clocks a step meets, start those it starts, close them all at the end."""
    values = values or {}
    for d in complaint.deadlines:
        if d.state == "open" and t.action in STAGES[d.stage].met_by:
            d.state, d.met_at, d.next_check_at = "met", now, None
    happened = [t.action]
    if t.action == "follow_up" and after == ComplaintStatus.investigating.value:
        complaint.reopen_count = (complaint.reopen_count or 0) + 1
        happened.append("reopen")
    if t.action == "rule_dispute" and values.get("decision") == "reassign":
        # The new department's limits run from the ruling; the customer's (reply) keeps running.
        happened.append("dispute_reassigned")
    _start_for(session, complaint, happened, now)
    if after in (ComplaintStatus.closed.value, ComplaintStatus.archived.value):
        for d in complaint.deadlines:
            if d.state == "open":
                d.state, d.next_check_at = "cancelled", None
    _clock_step(session, complaint, t.action, values, actor_id, now)
    refresh(complaint, now)
    signals.step_taken.send(
        complaint, session=session, transition=t, before=before, after=after, now=now, values=values, actor_id=actor_id
    )


def _start_for(session: Session, complaint: Complaint, happened: list[str], now: datetime) -> None:
    """Start the clocks of the stages that start on what happened (calendar and rules loaded once, if needed)."""
    cal = rules = None
    for what in happened:
        if any(what in s.starts_on for s in STAGES.values()):
            cal = cal or load_calendar(session)
            rules = rules if rules is not None else load_rules(session)
            _start(session, complaint, what, now, cal, rules)


def _clock_step(
    session: Session,
    complaint: Complaint,
    action: str,
    values: dict[str, Any],
    actor_id: Optional[int],
    now: datetime,
) -> None:
    """What a step does to the clocks themselves: extensions, supervision, pauses."""
    if action == "request_extension":
        request_extension(session, complaint, values, actor_id, now)
    elif action == "decide_extension":
        decide_extension(session, complaint, values, actor_id, now)
    elif action == "escalate":
        complaint.supervised = True
    elif action == "pause":
        pause_clock(session, complaint, values, actor_id, now)
    elif action == "resume":
        resume_clock(session, complaint, now, actor_id, "ended")
    elif action == "approve_pause":
        pause = active_pause(complaint)
        if pause is not None:
            pause.state, pause.approved_by_id, pause.decided_at = "running", actor_id, now
    elif action == "reject_pause":
        resume_clock(session, complaint, now, actor_id, "rejected")


def reschedule_case(
    session: Session,
    complaint: Complaint,
    now: datetime,
    actor_id: Optional[int],
    reason: str,
    new_clocks_from: Optional[datetime] = None,
) -> list[dict[str, Any]]:
    """After an edit of the receipt time, level or channel: move, start or stop the clocks
    that registration starts, as if the case had been registered so. Returns the moves.

    A clock the case did not have yet starts at ``new_clocks_from`` when given (a level raised
    later: its chain runs from the raising), else at the case's receipt."""
    status = getattr(complaint.status, "value", complaint.status)
    if status in (ComplaintStatus.closed.value, ComplaintStatus.archived.value):
        return []
    cal, rules = load_calendar(session), load_rules(session)
    moves: list[dict[str, Any]] = []
    for stage in STAGES.values():
        if "register" not in stage.starts_on:
            continue
        rule = resolve_rule(rules, stage.code, *_level_and_channel(complaint))
        cycles = [d for d in complaint.deadlines if d.stage == stage.code]
        first = min(cycles, key=lambda d: d.cycle) if cycles else None
        if first is None:
            if rule is not None:
                started = _start_one(complaint, stage.code, rule, new_clocks_from or complaint.received_at, cal, 1)
                moves.append({"stage": stage.code, "from": None, "to": started.due_at.isoformat()})
            continue
        if first.state != "open" or len(cycles) > 1:
            continue  # done, or restarted by a reopened case: history stays as it was
        old = first.due_at
        if rule is None:
            first.state, first.next_check_at = "cancelled", None
            moves.append({"stage": stage.code, "from": old.isoformat(), "to": None})
            continue
        first.started_at = complaint.received_at
        if _reschedule(first, cal, now, rule):
            moves.append({"stage": stage.code, "from": old.isoformat(), "to": first.due_at.isoformat()})
    if moves:
        refresh(complaint, now)
        note = "；".join(
            f"{STAGES[m['stage']].label}: "
            f"{format_local(datetime.fromisoformat(m['from'])) if m['from'] else '—'} → "
            f"{format_local(datetime.fromisoformat(m['to'])) if m['to'] else _l('no time limit')}"
            for m in moves
        )
        complaint.events.append(
            ComplaintEvent(
                action="deadline_recomputed",
                actor_id=actor_id,
                note=f"{reason}：{note}",
                data={"moves": moves, "reason": reason},
                at=now,
            )
        )
    return moves


def _start_one(
    complaint: Complaint, stage: str, rule: SlaRule, at: datetime, cal: WorkCalendar, cycle: int
) -> Deadline:
    plan = schedule(cal, rule, at)
    deadline = Deadline(
        stage=stage,
        department_id=complaint.department_id if complaint.department_id else complaint.department.id,
        cycle=cycle,
        rule_id=rule.id,
        started_at=at,
        due_at=plan.due_at,
        warn_at=plan.warn_at,
        escalate_at=plan.escalate_at,
        state="open",
        next_check_at=next_check(plan.warn_at, False, plan.due_at, False, plan.escalate_at, False),
    )
    complaint.deadlines.append(deadline)
    return deadline


def open_stages(complaint: Complaint) -> frozenset[str]:
    return frozenset(d.stage for d in complaint.deadlines if d.state == "open")


def extendable_stages(complaint: Complaint, now: datetime) -> frozenset[str]:
    """Running department clocks that may still be extended (before they are due)."""
    return frozenset(
        d.stage
        for d in complaint.deadlines
        if d.state == "open"
        and STAGES[d.stage].extendable
        and d.due_at > now
        and STAGES[d.stage].responsible == deadlines.HEAD_TOKEN
    )


def pending_extension(session: Session, complaint: Complaint) -> Optional[Extension]:
    if complaint.id is None:
        return None
    return session.scalars(
        select(Extension).where(Extension.complaint_id == complaint.id, Extension.status == "pending")
    ).first()


def refresh(complaint: Complaint, now: datetime) -> None:
    """Copy the clocks onto the case row: the three stage dues, next due, warned, overdue."""
    latest: dict[str, Deadline] = {}
    for d in complaint.deadlines:
        if d.state == "cancelled":
            continue
        if d.stage not in latest or d.cycle > latest[d.stage].cycle:
            latest[d.stage] = d
    for stage, column in deadlines.DENORMALISED.items():
        setattr(complaint, column, latest[stage].due_at if stage in latest else None)
    running = [d for d in complaint.deadlines if d.state == "open"]
    # A paused clock stands still: judged as at the instant it stopped.
    now = min(now, complaint.paused_since) if complaint.paused_since is not None else now
    complaint.next_due_at = min((d.due_at for d in running), default=None)
    complaint.overdue = any(d.due_at <= now for d in running)
    complaint.warned = any(d.warn_at is not None and d.warn_at <= now for d in running)


# --- Clock pause (暂停计时) ---------------------------------------------------------------------


def active_pause(complaint: Complaint) -> Optional[ClockPause]:
    """The case's running (or awaiting approval) pause, if any."""
    return next((p for p in reversed(complaint.pauses) if p.active), None)


def pause_cap_minutes(session: Session, cal: WorkCalendar) -> float:
    """The longest pause (working minutes) that needs no 总经理 approval."""
    try:
        days = float(settings.get(session, "pause.cap_working_days"))
    except (TypeError, ValueError):
        days = 5.0
    return days * cal.minutes_per_day


def resume_instant(cal: WorkCalendar, day: Any) -> datetime:
    """When a pause expected to end on ``day`` ends: the start of that day's office hours."""
    return datetime.combine(day, cal.blocks[0][0], LOCAL_TZ)


def pause_clock(
    session: Session, complaint: Complaint, values: dict[str, Any], actor_id: Optional[int], now: datetime
) -> ClockPause:
    """Stop the case's clocks: no warning or overdue fires until it resumes.

    A pause expected to last longer than the cap waits for 总经理's approval (paused meanwhile).
    """
    cal = load_calendar(session)
    expected = values.get("expected_resume")
    longer = expected is not None and cal.working_minutes_between(
        now, resume_instant(cal, expected)
    ) > pause_cap_minutes(session, cal)
    pause = ClockPause(
        complaint=complaint,
        started_at=now,
        reason=str(values.get("reason") or "").strip(),
        expected_resume=expected,
        customer_informed=str(values.get("customer_informed") or "").strip(),
        requested_by_id=actor_id,
        state="awaiting_approval" if longer else "running",
    )
    session.add(pause)
    complaint.paused_since = now
    for d in complaint.deadlines:
        if d.state == "open":
            d.next_check_at = None
    return pause


def resume_clock(
    session: Session, complaint: Complaint, now: datetime, actor_id: Optional[int], state: str = "ended"
) -> list[dict[str, Any]]:
    """End the running pause; every open clock of the case moves by the time it stood still."""
    pause = active_pause(complaint)
    complaint.paused_since = None
    if pause is None:  # pragma: no cover - the workflow offers resume only while paused
        return []
    cal = load_calendar(session)
    pause.ended_at, pause.state = now, state
    if state == "rejected":
        pause.approved_by_id, pause.decided_at = actor_id, now  # who decided; the state says how
    pause.working_minutes = pause_minutes(cal, "working_days", pause.started_at, now)
    pause.natural_minutes = pause_minutes(cal, "minutes", pause.started_at, now)
    moves: list[dict[str, Any]] = []
    for d in complaint.deadlines:
        if d.state != "open":
            continue
        unit = d.rule.unit if d.rule is not None else "minutes"
        shift = max(pause_minutes(cal, unit, max(pause.started_at, d.started_at), now), 0)
        old = d.due_at
        d.paused_minutes = (d.paused_minutes or 0) + shift
        if d.rule is None:  # its rule was deleted: move its instants by the wall time paused
            d.due_at += timedelta(minutes=shift)
            d.warn_at = d.warn_at + timedelta(minutes=shift) if d.warn_at is not None else None
            d.escalate_at = d.escalate_at + timedelta(minutes=shift) if d.escalate_at is not None else None
        _reschedule(d, cal, now)
        _arm(d)  # armed again for the scan (also a clock whose rule is gone)
        if d.due_at != old:
            moves.append({"stage": d.stage, "from": old.isoformat(), "to": d.due_at.isoformat()})
    if moves:
        note = "；".join(
            f"{STAGES[m['stage']].label}: {format_local(datetime.fromisoformat(m['from']))} → "
            f"{format_local(datetime.fromisoformat(m['to']))}"
            for m in moves
        )
        reason = str(_l("Clock resumed after a pause"))
        complaint.events.append(
            ComplaintEvent(
                action="deadline_recomputed",
                actor_id=actor_id,
                note=f"{reason}：{note}",
                data={
                    "moves": moves,
                    "reason": reason,
                    "pause_id": pause.id,
                    "working_minutes": pause.working_minutes,
                    "natural_minutes": pause.natural_minutes,
                },
                at=now,
            )
        )
    return moves


def check_pause_caps(session: Session, now: datetime) -> int:
    """Running pauses that reached the cap without approval go to 总经理 (still paused)."""
    running = session.scalars(
        select(ClockPause).where(ClockPause.state == "running", ClockPause.approved_by_id.is_(None))
    ).all()
    if not running:
        return 0
    cal = load_calendar(session)
    cap = pause_cap_minutes(session, cal)
    postgres = session.get_bind().dialect.name == "postgresql"
    capped = 0
    for pause in running:
        if cal.working_minutes_between(pause.started_at, now) < cap:
            continue
        if postgres:  # lock order: the case first; a case being changed now waits for the next pass
            locked = session.execute(
                select(Complaint.id).where(Complaint.id == pause.complaint_id).with_for_update(skip_locked=True)
            ).first()
            if locked is None:
                continue
            session.refresh(pause)
            if pause.state != "running" or pause.approved_by_id is not None:
                continue
        pause.state = "awaiting_approval"
        complaint = pause.complaint
        note = str(
            _l(
                "The pause reached the cap of %(days)s working days: 总经理 must approve it",
                days=round(cap / cal.minutes_per_day, 1),
            )
        )
        session.add(
            ComplaintEvent(
                complaint_id=complaint.id,
                action="pause_cap_reached",
                note=note,
                data={"pause_id": pause.id, "started_at": pause.started_at.isoformat()},
                at=now,
                dedup_key=f"pause:{pause.id}:cap",
            )
        )
        signals.pause_cap_reached.send(complaint, session=session, pause_id=pause.id, note=note, now=now)
        capped += 1
    session.flush()
    return capped


def paused_working_minutes(
    session: Session, complaint_ids: Optional[Iterable[int]] = None, now: Optional[datetime] = None
) -> dict[int, int]:
    """Total working minutes each case's clock stood paused (a running pause up to ``now``)."""
    now = now or utcnow()
    stmt = select(ClockPause)
    if complaint_ids is not None:
        stmt = stmt.where(ClockPause.complaint_id.in_(list(complaint_ids)))
    cal = None
    totals: dict[int, int] = {}
    for pause in session.scalars(stmt):
        if pause.working_minutes is not None:
            minutes = pause.working_minutes
        else:
            cal = cal or load_calendar(session)
            minutes = pause_minutes(cal, "working_days", pause.started_at, pause.ended_at or now)
        totals[pause.complaint_id] = totals.get(pause.complaint_id, 0) + minutes
    return totals


# --- Extensions (延期) ----------------------------------------------------------------------


def request_extension(
    session: Session, complaint: Complaint, values: dict[str, Any], actor_id: Optional[int], now: datetime
) -> Extension:
    stage = values["stage"]
    deadline = next(d for d in complaint.deadlines if d.state == "open" and d.stage == stage)
    late = extension_request_late(session, deadline.due_at, now)
    extension = Extension(
        complaint=complaint,
        deadline=deadline,
        requested_by_id=actor_id,
        requested_at=now,
        reason=str(values.get("reason") or "").strip(),
        amount=int(values["amount"]),
        unit=values["unit"],
        status="pending",
        old_due_at=deadline.due_at,
        consent_by=str(values.get("consent_by") or "").strip() or None,
        consent_at=values.get("consent_at") or now,
        consent_method=values.get("consent_method"),
        late_request=late,
    )
    session.add(extension)
    return extension


def extension_request_late(session: Session, due_at: datetime, now: datetime) -> bool:
    """Whether a request at ``now`` comes later than the notice the policy asks for.

    With the default notice of 1 working day a request is in time when a full working
    day is left before the deadline, or when it is asked on an earlier working day than
    the deadline's (e.g. Tuesday for a Wednesday 10:00 deadline).
    """
    cal = load_calendar(session)
    try:
        notice = float(settings.get(session, "extension.notice_working_days"))
    except (TypeError, ValueError):
        notice = 1.0
    if notice <= 0 or cal.working_minutes_between(now, due_at) >= notice * cal.minutes_per_day:
        return False
    latest = to_local(due_at).date()
    for _ in range(max(int(notice), 1)):
        latest -= timedelta(days=1)
        for _ in range(3660):  # back to the previous workday (weekends, holidays)
            if cal.is_workday(latest):
                break
            latest -= timedelta(days=1)
    return to_local(now).date() > latest


def decide_extension(
    session: Session, complaint: Complaint, values: dict[str, Any], actor_id: Optional[int], now: datetime
) -> Extension:
    extension = pending_extension(session, complaint)
    if extension is None:  # pragma: no cover - the workflow guard prevents it
        raise ValueError("no pending extension")
    extension.decided_by_id, extension.decided_at = actor_id, now
    extension.decision_note = (values.get("note") or "").strip() or None
    if values.get("decision") == "approve":
        cal = load_calendar(session)
        d = extension.deadline
        d.extension_minutes = (d.extension_minutes or 0) + deadlines.extension_minutes(
            cal, extension.amount, extension.unit
        )
        _reschedule(d, cal, now)
        extension.status, extension.new_due_at = "approved", d.due_at
    else:
        extension.status = "refused"
    return extension


def _arm(d: Deadline) -> None:
    """Set when the scan must look at this clock next (its next warning, due or escalation)."""
    d.next_check_at = next_check(
        d.warn_at,
        d.warned_at is not None,
        d.due_at,
        d.overdue_at is not None,
        d.escalate_at,
        d.escalated_at is not None,
    )


def _reschedule(d: Deadline, cal: WorkCalendar, now: datetime, rule: Optional[SlaRule] = None) -> bool:
    """Recompute a running clock's instants from its rule; True when its due time moved."""
    rule = rule or d.rule
    if rule is None:
        return False
    plan: Schedule = schedule(cal, rule, d.started_at, d.extension_minutes or 0, d.paused_minutes or 0)
    moved = plan.due_at != d.due_at
    d.rule_id = rule.id
    d.due_at, d.warn_at, d.escalate_at = plan.due_at, plan.warn_at, plan.escalate_at
    # A clock that is no longer due (or warned) can be warned / marked again later.
    if d.overdue_at is not None and d.due_at > now:
        d.overdue_at = None
        d.escalated_at = None
    if d.warned_at is not None and d.warn_at is not None and d.warn_at > now:
        d.warned_at = None
    _arm(d)
    if d.complaint is not None and d.complaint.paused_since is not None:
        d.next_check_at = None  # the scan leaves a paused case alone; resuming sets it again
    return moved


def recompute_open(
    session: Session,
    reason: str,
    now: Optional[datetime] = None,
    stage: Optional[str] = None,
    actor_id: Optional[int] = None,
) -> int:
    """Recompute the running clocks after a calendar or rule change; the timeline says so.

    Returns the number of cases whose deadlines moved.
    """
    now = now or utcnow()
    cal = load_calendar(session)
    rules = load_rules(session)
    stmt = (
        select(Complaint)
        .join(Deadline, Deadline.complaint_id == Complaint.id)
        .where(Deadline.state == "open")
        .options(selectinload(Complaint.deadlines))
        .distinct()
    )
    if stage:
        stmt = stmt.where(Deadline.stage == stage)
    changed = 0
    for complaint in session.scalars(stmt):
        moves = _recompute_case(complaint, cal, rules, now, stage)
        if moves:
            changed += 1
            refresh(complaint, now)
            _flags_update(session, complaint)
            _record_moves(session, complaint, moves, reason, actor_id, now)
    return changed


def _recompute_case(
    complaint: Complaint, cal: WorkCalendar, rules: list[SlaRule], now: datetime, stage: Optional[str]
) -> list[dict[str, Any]]:
    """Reschedule one case's running clocks (of ``stage`` only, if given); the moves made.

    A clock whose rule no longer applies is cancelled (moved to no time limit).
    """
    moves = []
    for d in complaint.deadlines:
        if d.state != "open" or (stage and d.stage != stage):
            continue
        rule = resolve_rule(rules, d.stage, *_level_and_channel(complaint))
        old = d.due_at
        if rule is None:
            d.state, d.next_check_at = "cancelled", None
            moves.append({"stage": d.stage, "from": old.isoformat(), "to": None})
            continue
        if _reschedule(d, cal, now, rule):
            moves.append({"stage": d.stage, "from": old.isoformat(), "to": d.due_at.isoformat()})
    return moves


def _record_moves(
    session: Session,
    complaint: Complaint,
    moves: list[dict[str, Any]],
    reason: str,
    actor_id: Optional[int],
    now: datetime,
) -> None:
    """The case's timeline says why and how its time limits moved."""
    note = "；".join(
        f"{STAGES[m['stage']].label}: {format_local(datetime.fromisoformat(m['from']))} → "
        f"{format_local(datetime.fromisoformat(m['to'])) if m['to'] else _l('no time limit')}"
        for m in moves
    )
    session.add(
        ComplaintEvent(
            complaint_id=complaint.id,
            action="deadline_recomputed",
            actor_id=actor_id,
            note=f"{reason}：{note}",
            data={"moves": moves, "reason": reason},
            at=now,
        )
    )


_FLAG_COLUMNS = ("investigate_due", "reply_due", "follow_up_due", "next_due_at", "overdue", "warned", "supervised")


def _flags_update(session: Session, complaint: Complaint) -> None:
    _flags_update_many(session, [complaint])


def _flags_update_many(session: Session, complaints: list[Complaint]) -> None:
    """Write the cases' deadline columns without bumping their version (system bookkeeping)."""
    if not complaints:
        return

    bulk.update_many(session, complaints, _FLAG_COLUMNS)


# --- The deadline scan ------------------------------------------------------------------------


def _insert_events(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert timeline events unless their dedup key exists; return the keys inserted."""
    inserted: set[str] = set()
    # One cached statement run with many parameter sets (insertmanyvalues), not a
    # .values(list) that SQLAlchemy compiles anew with thousands of parameters per batch.
    stmt = insert_or_skip(ComplaintEvent.__table__, "dedup_key", "dedup_key")
    for i in range(0, len(rows), 500):
        inserted.update(session.execute(stmt, rows[i : i + 500]).scalars())
    return inserted


def scan(
    session: Session,
    now: Optional[datetime] = None,
    batch: int = 2000,
    budget_seconds: float = 20.0,
    complaint_id: Optional[int] = None,
) -> dict[str, Any]:
    """Record every warning, overdue mark and escalation due at ``now``, exactly once.

    Cost follows the number of clocks due (an index on open ``next_check_at``), not
    the number of cases; events and messages are written in bulk per batch. On
    PostgreSQL one scheduler scans at a time (advisory lock), and cases a user is
    changing right now (row locked) are left for the next pass.
    """
    now = now or utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres and complaint_id is None and not session.scalar(select(func.pg_try_advisory_xact_lock(SCAN_LOCK_KEY))):
        return {"skipped": "another scheduler is scanning"}
    counts = {"warning": 0, "overdue": 0, "escalation": 0, "checked": 0}
    if complaint_id is None:
        counts["pauses_capped"] = check_pause_caps(session, now)
    started = _time.monotonic()
    rules = {r.id: r for r in session.scalars(select(SlaRule))}
    queued: dict[str, Any] = {}  # what receivers of clock_event queue until the batch is done
    last_id = 0
    while _time.monotonic() - started < budget_seconds:
        query = (
            select(Deadline.id, Deadline.complaint_id)
            .where(Deadline.state == "open", Deadline.next_check_at <= now, Deadline.id > last_id)
            .order_by(Deadline.id)
            .limit(batch)
        )
        if complaint_id is not None:
            query = query.where(Deadline.complaint_id == complaint_id)
        ids = session.execute(query).all()
        if not ids:
            break
        last_id = ids[-1][0]
        pending = _check_due(session, ids, postgres, now, counts)
        with session.no_autoflush:
            _record_due(session, pending, rules, counts, queued, now)
        signals.scan_batch_done.send(session, batch=queued, now=now)
        session.flush()
        if len(ids) < batch:
            break
    else:
        counts["more"] = True  # stopped on the time budget: the next pass takes the rest
    return counts


Pending = list[tuple[Complaint, Deadline, str, dict[str, Any]]]


def _check_due(session: Session, ids: Sequence[Any], postgres: bool, now: datetime, counts: dict[str, Any]) -> Pending:
    """Lock the batch's cases (skipping those being changed) and list the marks due on their clocks."""
    lock = (
        select(Complaint)
        .where(Complaint.id.in_(sorted({c for _, c in ids})))
        .options(selectinload(Complaint.deadlines))
    )
    if postgres:
        lock = lock.with_for_update(skip_locked=True, of=Complaint)
    due_ids = {i for i, _ in ids}
    pending: Pending = []
    texts: dict[int, str] = {}  # each note's wording translated once a batch
    for complaint in session.scalars(lock):
        for d in complaint.deadlines:
            if d.id not in due_ids or d.state != "open":
                continue
            if complaint.paused_since is not None:
                d.next_check_at = None  # paused: nothing fires until the clock resumes
                continue
            counts["checked"] += 1
            for kind in _due_kinds(d, now):
                pending.append((complaint, d, kind, _mark(complaint, d, kind, now, texts)))
            _arm(d)
    return pending


def _record_due(
    session: Session,
    pending: Pending,
    rules: dict[int, SlaRule],
    counts: dict[str, Any],
    queued: dict[str, Any],
    now: datetime,
) -> None:
    """Write the batch's events (once each), announce them, refresh the touched cases' flags.

    Called without autoflush: nothing is flushed until the cases' flags are written in bulk (an
    escalation's ``supervised`` would otherwise go out as one versioned UPDATE per case)."""
    # The marked clocks in one statement, before any query autoflushes them one by one.
    bulk.update_many(session, list({id(d): d for _, d, _, _ in pending}.values()), _MARK_COLUMNS)
    inserted = _insert_events(session, [row for *_, row in pending])
    announced = sorted({complaint.id for complaint, _, _, row in pending if row["dedup_key"] in inserted})
    if announced:
        signals.scan_batch_due.send(session, complaint_ids=announced, batch=queued, now=now)
    touched: dict[int, Complaint] = {}
    for complaint, d, kind, row in pending:
        if row["dedup_key"] not in inserted:
            continue
        counts[kind] += 1
        touched[complaint.id] = complaint
        signals.clock_event.send(
            complaint,
            session=session,
            deadline=d,
            rule=rules.get(d.rule_id),
            kind=kind,
            note=row["note"],
            dedup_key=row["dedup_key"],
            now=now,
            batch=queued,
        )
    for complaint in touched.values():
        refresh(complaint, now)
    _flags_update_many(session, list(touched.values()))


_MARK_COLUMNS = ("warned_at", "overdue_at", "escalated_at", "next_check_at")


def _due_kinds(d: Deadline, now: datetime) -> list[str]:
    kinds = []
    if d.warn_at is not None and d.warned_at is None and d.warn_at <= now:
        kinds.append("warning")
    if d.overdue_at is None and d.due_at <= now:
        kinds.append("overdue")
    if d.escalate_at is not None and d.escalated_at is None and d.escalate_at <= now:
        kinds.append("escalation")
    return kinds


_MARK_NOTES = {
    "warning": _l("%(stage)s is due at %(due)s"),
    "overdue": _l("%(stage)s was due at %(due)s and is overdue"),
    "escalation": _l("%(stage)s still overdue since %(due)s: escalated"),
}


def _mark(complaint: Complaint, d: Deadline, kind: str, now: datetime, texts: dict[int, str]) -> dict[str, Any]:
    """Mark the clock for ``kind`` and return the timeline row that records it (once)."""
    instant = {"warning": d.warn_at, "overdue": d.due_at, "escalation": d.escalate_at}[kind]
    if kind == "warning":
        d.warned_at = now
    elif kind == "overdue":
        d.overdue_at = now
    else:
        d.escalated_at = now
        complaint.supervised = True
    note = translated(texts, _MARK_NOTES[kind]) % {
        "stage": translated(texts, STAGES[d.stage].label),
        "due": format_local(d.due_at),
    }
    return {
        "complaint_id": complaint.id,
        "at": now,
        "actor_id": None,
        "action": kind,
        "from_status": None,
        "to_status": None,
        "note": note,
        "data": {
            "stage": d.stage,
            "cycle": d.cycle,
            "due_at": d.due_at.isoformat(),
            "scheduled_at": instant.isoformat(),
        },
        "dedup_key": f"sla:{d.id}:{kind}:{int(instant.timestamp())}",
    }


# --- Back-fill ---------------------------------------------------------------------------------


def backfill(session: Session, now: Optional[datetime] = None) -> int:
    """Start clocks for open cases that have none (databases from before time limits)."""
    now = now or utcnow()
    open_without = session.scalars(
        select(Complaint)
        .where(Complaint.status.in_([s.value for s in ComplaintStatus if s.value not in ("closed", "archived")]))
        .where(~select(Deadline.id).where(Deadline.complaint_id == Complaint.id).exists())
    ).all()
    if not open_without:
        return 0
    cal, rules = load_calendar(session), load_rules(session)
    for complaint in open_without:
        _start(session, complaint, "register", complaint.received_at, cal, rules)
        refresh(complaint, now)
    return len(open_without)


def open_deadlines(session: Session, department_ids: Optional[Iterable[int]] = None) -> Any:
    stmt = select(Deadline).where(Deadline.state == "open")
    if department_ids is not None:
        stmt = stmt.join(Complaint).where(Complaint.department_id.in_(list(department_ids)))
    return stmt


def due_today_or_late(now: datetime) -> tuple[datetime, datetime]:
    """The window of a digest: everything due before the end of today (Asia/Shanghai)."""
    local = to_local(now)
    end = local.replace(hour=23, minute=59, second=59, microsecond=0)
    return now, end + timedelta(seconds=1)
