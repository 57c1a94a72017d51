"""Stages with a clock, and how a rule turns into a schedule.

A *stage* says which lifecycle events start its clock, which actions meet it and
who is responsible; an administrator's *rule* (``SlaRule`` rows) gives its limit,
warning point and escalation. :func:`schedule` computes due / warning / escalation
instants on a :class:`app.calendar.WorkCalendar`.

Plain Python: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional, Protocol

from app import labels
from app.access.roles import CUSTOMER_SERVICE, GENERAL_MANAGER, HR_MANAGER
from app.i18n import _l
from app.time_limits.calendar import WorkCalendar

# Role tokens used by rules and stages.
HEAD_TOKEN = "department_head"
FIRST_RESPONDER = "first_responder"
ROLE_TOKENS = {
    HEAD_TOKEN: _l("Head of the complained department"),
    FIRST_RESPONDER: _l("First responder"),
    HR_MANAGER: HR_MANAGER,
    GENERAL_MANAGER: GENERAL_MANAGER,
    CUSTOMER_SERVICE: CUSTOMER_SERVICE,
}


@dataclass(frozen=True)
class Stage:
    code: str
    starts_on: tuple[str, ...]  # lifecycle events that start (or restart) the clock
    met_by: tuple[str, ...]  # actions that stop the clock in time (or late)
    responsible: str  # role token of who must act
    extendable: bool = True
    # Who acts before the department has the case (registered/judged cases).
    responsible_before_dispatch: Optional[str] = None

    @property
    def label(self) -> Any:
        """The stage's name (app/labels.py), on screens and printed forms alike."""
        return labels.STAGE[self.code]


STAGES: dict[str, Stage] = {
    s.code: s
    for s in (
        Stage(
            "investigate",
            # A dispute ruled in favour of another department restarts its clock from the ruling.
            ("register", "dispute_reassigned"),
            ("start_investigation",),
            HEAD_TOKEN,
            responsible_before_dispatch=HR_MANAGER,
        ),
        Stage(
            "reply",
            ("register", "reopen"),
            ("reply",),
            HEAD_TOKEN,
            responsible_before_dispatch=HR_MANAGER,
        ),
        Stage(
            "first_response",
            ("register",),
            ("first_contact", "reply"),
            FIRST_RESPONDER,
            extendable=False,
        ),
        Stage(
            "second_response",
            ("first_contact",),
            ("second_contact", "reply"),
            HEAD_TOKEN,
            extendable=False,
            responsible_before_dispatch=HR_MANAGER,
        ),
        Stage(
            "sign_in",
            ("dispatch", "dispute_reassigned"),
            ("sign_for", "start_investigation"),
            HEAD_TOKEN,
            extendable=False,
        ),
        Stage("follow_up", ("reply",), ("follow_up",), HR_MANAGER),
        # Resolution (解决 / 办结) of the case, e.g. 物业 SOP 重大 within 10 days; the department's
        # feedback that the case is dealt with meets it.
        Stage(
            "resolve",
            ("register",),
            ("feed_back",),
            HEAD_TOKEN,
            responsible_before_dispatch=HR_MANAGER,
        ),
        # Telling the complainant the result after resolution (办理结果告知).
        Stage("inform", ("feed_back",), ("confirm_informed", "close"), FIRST_RESPONDER, extendable=False),
        # A valid complaint still unresolved at the limit is raised to the next major level
        # (物业 SOP: 有效投诉在一个月内得不到合理解决的 → 重大投诉); see complaints.policy_rules.
        Stage("raise_level", ("judge_valid",), ("feed_back",), HR_MANAGER, extendable=False),
        Stage(
            "notify_department",
            ("register",),
            ("dispatch",),
            HR_MANAGER,
            extendable=False,
        ),
        Stage(
            "report_leader",
            ("register",),
            ("report_to_leader",),
            HR_MANAGER,
            extendable=False,
        ),
        Stage(
            "report_gm",
            ("register",),
            ("report_to_gm",),
            HR_MANAGER,
            extendable=False,
        ),
        Stage(
            "written_report",
            ("register",),
            ("submit_written_report",),
            HEAD_TOKEN,
            extendable=False,
        ),
    )
}

# Stages whose due time is copied onto the complaint row (list view, API).
DENORMALISED = {"investigate": "investigate_due", "reply": "reply_due", "follow_up": "follow_up_due"}

UNIT_LABELS = {
    "working_days": _l("working days"),
    "working_hours": _l("working hours"),
    "natural_months": _l("calendar months"),
    "natural_days": _l("calendar days"),
    "natural_hours": _l("hours"),
    "minutes": _l("minutes"),
}


class RuleLike(Protocol):
    id: Any
    stage: str
    level_id: Optional[int]
    channel_id: Optional[int]
    amount: int
    unit: str
    warn_ratio: float
    escalate_after: int
    active: bool


def resolve_rule(
    rules: Iterable[RuleLike], stage: str, level_id: Optional[int], channel_id: Optional[int]
) -> Optional[RuleLike]:
    """The most specific active rule for a stage: channel+level, channel, level, then general."""
    best: Optional[RuleLike] = None
    best_score = -1
    for rule in rules:
        if not rule.active or rule.stage != stage:
            continue
        if rule.level_id is not None and rule.level_id != level_id:
            continue
        if rule.channel_id is not None and rule.channel_id != channel_id:
            continue
        score = (2 if rule.channel_id is not None else 0) + (1 if rule.level_id is not None else 0)
        if score > best_score or (score == best_score and best is not None and rule.id < best.id):
            best, best_score = rule, score
    return best


@dataclass(frozen=True)
class Schedule:
    due_at: datetime
    warn_at: Optional[datetime]
    escalate_at: Optional[datetime]


def schedule(
    cal: WorkCalendar, rule: RuleLike, started_at: datetime, extension_minutes: int = 0, paused_minutes: int = 0
) -> Schedule:
    """Due, warning and escalation instants of a stage started at ``started_at``.

    An approved extension adds working minutes (or wall minutes for natural units)
    after the rule's own limit. Time the case's clock stood paused moves every
    instant by the same amount, in the same kind of minutes.
    """
    ratio = rule.warn_ratio if rule.warn_ratio is not None else 0.9
    paused = paused_minutes or 0
    if rule.unit in ("working_days", "working_hours"):
        # Working time is counted in minutes from the start: the warning point is a
        # fraction of the same count, no need to measure the span again.
        per_unit = cal.minutes_per_day if rule.unit == "working_days" else 60
        total = rule.amount * per_unit + (extension_minutes or 0)
        due = cal.add_working_minutes(started_at, total + paused)
        warn = cal.add_working_minutes(started_at, total * ratio + paused) if 0 < ratio < 1 else None
    else:
        due = cal.add(started_at, rule.amount, rule.unit)
        if extension_minutes:
            due = cal.add(due, extension_minutes, "minutes")
        warn = cal.fraction(started_at, due, rule.unit, ratio) if 0 < ratio < 1 else None
        if paused:
            due = cal.add(due, paused, "minutes")
            warn = cal.add(warn, paused, "minutes") if warn is not None else None
    escalate = cal.add(due, rule.escalate_after, rule.unit) if rule.escalate_after and rule.escalate_after > 0 else None
    return Schedule(due, warn, escalate)


def pause_minutes(cal: WorkCalendar, unit: str, start: datetime, end: datetime) -> int:
    """How far a pause from ``start`` to ``end`` moves a clock counted in ``unit``."""
    if unit in ("working_days", "working_hours"):
        return round(cal.working_minutes_between(start, end))
    return round((end - start).total_seconds() / 60)


def extension_minutes(cal: WorkCalendar, amount: int, unit: str) -> int:
    """An extension expressed in the minutes :func:`schedule` adds."""
    if unit == "working_days":
        return amount * cal.minutes_per_day
    if unit == "working_hours":
        return amount * 60
    if unit == "natural_hours":
        return amount * 60
    if unit == "natural_days":
        return amount * 1440
    if unit == "natural_months":
        return amount * 30 * 1440
    return amount


def next_check(
    warn_at: Optional[datetime],
    warned: bool,
    due_at: datetime,
    overdue: bool,
    escalate_at: Optional[datetime],
    escalated: bool,
) -> Optional[datetime]:
    """When the deadline scan must look at this clock again (None: nothing left to do)."""
    pending = []
    if warn_at is not None and not warned and not overdue:
        pending.append(warn_at)
    if not overdue:
        pending.append(due_at)
    if escalate_at is not None and not escalated:
        pending.append(escalate_at)
    return min(pending) if pending else None
