"""Case pages (complaint, penalty): the sections that have data, grouped by stage, and the next step.

A view declares its ``show_fieldsets`` by stage; :func:`filled_sections` keeps the fields that
hold a value and drops a stage with none, so an early case shows no empty later-stage rows.
The next step comes from the lifecycle tables (:mod:`app.views.todo`'s main steps).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Optional

from markupsafe import Markup
from sqlalchemy import Select, bindparam, exists, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.access.roles import BUSINESS_ROLES, DEPARTMENT_HEAD, HR_MANAGER
from app.complaints import workflow
from app.discipline import penalties
from app.i18n import _
from app.lifecycle import value_of
from app.models import (
    AccessLog,
    Attachment,
    ClockPause,
    Complaint,
    CorrectiveAction,
    Dispute,
    Document,
    Extension,
    Penalty,
)
from app.time_limits.deadlines import STAGES
from app.timeutil import format_local
from app.views import todo

# The relationships of a case its page reads whole: set empty without a query when it has none.
_COLLECTIONS = ("pauses", "disputes", "attachments")


@functools.cache
def _parts_statement() -> Select:
    """Which optional parts a case has, in one statement of index probes (built once per process)."""
    pk = bindparam("complaint_id")
    return select(
        exists().where(Extension.complaint_id == pk).label("extensions"),
        exists().where(ClockPause.complaint_id == pk).label("pauses"),
        exists().where(Dispute.complaint_id == pk).label("disputes"),
        exists().where(Attachment.complaint_id == pk).label("attachments"),
        exists().where(CorrectiveAction.complaint_id == pk).label("corrective_actions"),
        exists().where(Penalty.complaint_id == pk).label("penalties"),
        exists().where(Document.complaint_id == pk).label("documents"),
        exists()
        .where(AccessLog.target_type == "complaint", AccessLog.target_id == pk, AccessLog.action == "reveal")
        .label("reveals"),
    )


def present_parts(session: Session, complaint: Complaint) -> frozenset[str]:
    """The optional parts the case has: extensions, pauses, disputes, attachments, corrective actions,
    penalties, documents and reveals of its contact details.

    Most cases have few of them, and the page read each with a statement of its own: eight round
    trips, built and run, for mostly empty answers. One statement answers which exist; the page reads
    only those, and the case's collections it has none of are set empty, so no lazy load runs."""
    row = session.execute(_parts_statement(), {"complaint_id": complaint.id}).one()
    present = frozenset(name for name, has in row._mapping.items() if has)
    for name in _COLLECTIONS:
        if name not in present and name not in complaint.__dict__:
            set_committed_value(complaint, name, [])
    return present


@dataclass(frozen=True)
class Section:
    title: str
    rows: list[tuple[str, str, Any]]  # (column, label, shown value)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, set)) and not value)


def _shown(view: Any, column: str, value: Any) -> Any:
    formatter = view.formatters_columns.get(column)
    if formatter is not None:
        return formatter(value)
    if isinstance(value, datetime):
        return format_local(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, (list, tuple)):
        return "、".join(str(v) for v in value)
    return value


def filled_sections(view: Any, item: Any) -> list[Section]:
    """The view's stage sections, each with the fields that hold a value; empty stages left out."""
    sections = []
    for title, spec in view.show_fieldsets:
        rows = []
        for column in spec["fields"]:
            value = getattr(item, column, None)
            if _empty(value):
                continue
            shown = _shown(view, column, value)
            if _empty(shown):
                continue
            rows.append((column, str(view.label_columns.get(column, column)), shown))
        if rows:
            sections.append(Section(str(title), rows))
    return sections


@dataclass(frozen=True)
class NextStep:
    label: str
    who: str
    due: Optional[datetime] = None
    due_label: str = ""


def _who(roles: frozenset[str]) -> str:
    return "、".join(r for r in BUSINESS_ROLES if r in roles)


def _complaint_step_applies(t: workflow.Transition, complaint: Any) -> bool:
    if t.action == "sign_for":
        return complaint.signed_at is None
    if t.action == "start_investigation":
        return complaint.signed_at is not None
    if t.action == "confirm_informed":
        return complaint.customer_informed_at is None
    return True


def _complaint_who(t: workflow.Transition, complaint: Any) -> str:
    if t.owner_step:
        return str(complaint.first_responder.first_name) if complaint.first_responder else _who(t.roles)
    if t.department_step:
        return f"{complaint.department.name}{_who(t.roles)}"
    return _who(t.roles)


def _open_deadline(complaint: Any) -> tuple[Optional[datetime], str]:
    running = [d for d in complaint.deadlines if d.state == "open"]
    if not running:
        return complaint.next_due_at, ""
    first = min(running, key=lambda d: d.due_at)
    stage = STAGES.get(first.stage)
    return first.due_at, str(stage.label) if stage is not None else first.stage


def complaint_next_steps(complaint: Any) -> list[NextStep]:
    """What the case waits for now (who takes it) and the running deadline; [] once archived."""
    status = value_of(complaint.status)
    if complaint.paused_since is not None:
        return [
            NextStep(
                str(workflow.TRANSITIONS["resume"].label), _complaint_who(workflow.TRANSITIONS["resume"], complaint)
            )
        ]
    due, stage = _open_deadline(complaint)
    return [
        NextStep(str(t.label), _complaint_who(t, complaint), due, stage)
        for t in todo.main_transitions()
        if status in t.sources and _complaint_step_applies(t, complaint)
    ]


def penalty_next_steps(penalty: Any) -> list[NextStep]:
    """The penalty chain's next step and who takes it; a served case shows its appeal deadline."""
    status = value_of(penalty.status)
    steps = [penalties.STEPS["propose"]] + todo.main_steps()
    found = []
    for s in steps:
        if status not in s.sources:
            continue
        roles = s.roles
        if s.proposer_step:
            roles = (
                frozenset({HR_MANAGER})
                if penalty.subject_is_head or penalty.head_failed_to_act
                else frozenset({DEPARTMENT_HEAD})
            )
        found.append(NextStep(str(s.label), _who(roles)))
    if status == "served" and penalty.appeal_deadline is not None:
        found.append(NextStep(str(_("Appeal period")), "", None, penalty.appeal_deadline.isoformat()))
    return found


def due_text(step: NextStep) -> Markup:
    if step.due is None:
        return Markup("%s") % step.due_label
    return Markup("%s %s") % (format_local(step.due), f"（{step.due_label}）" if step.due_label else "")
