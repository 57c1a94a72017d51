"""What complaints and penalty cases share as lifecycles: their errors and their timeline.

Both a complaint (投诉) and a penalty case (处罚案件) move through a table of steps; a
step that may not be taken raises :class:`TransitionError`, bad input raises
:class:`ValidationFailed`, and every step taken is one line appended to the case's
timeline by :func:`record_event`. Plain Python over the models; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional, Union

from app.models import Complaint, ComplaintEvent, Penalty, PenaltyEvent
from app.timeutil import utcnow


class TransitionError(Exception):
    """A step that may not be taken now; ``kind`` says why (state, role, scope, fields, version)."""

    def __init__(self, kind: str, message: str, errors: Optional[dict[str, list[str]]] = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.errors = errors or {}


class ValidationFailed(Exception):
    """Bad input: ``errors`` maps each field to its message(s) in the user's language."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class Conflict(Exception):
    """The case changed meanwhile (stale version) or is in a state that forbids the step."""


@dataclass
class Errors:
    """Collects per-field messages, then raises them all at once."""

    items: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: Optional[str]) -> None:
        if message:
            self.items.setdefault(name, []).append(str(message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def value_of(value: Any) -> Any:
    """The stored value of an enum member (or the value itself)."""
    return getattr(value, "value", value)


Case = Union[Complaint, Penalty]


def record_event(
    case: Case,
    action: str,
    actor_id: Optional[int],
    note: Optional[str] = None,
    from_status: Optional[str] = None,
    to_status: Optional[str] = None,
    data: Optional[dict[str, Any]] = None,
    at: Optional[datetime] = None,
    dedup_key: Optional[str] = None,
) -> Union[ComplaintEvent, PenaltyEvent]:
    """Append one line to the timeline of a complaint or a penalty case (never updated afterwards).

    ``dedup_key`` (complaints only) makes a line recorded by the scheduler unique."""
    values: dict[str, Any] = {
        "action": action,
        "actor_id": actor_id,
        "note": note,
        "from_status": from_status,
        "to_status": to_status,
        "data": data,
        "at": at or utcnow(),
    }
    if isinstance(case, Penalty):
        event: Union[ComplaintEvent, PenaltyEvent] = PenaltyEvent(**values)
    else:
        event = ComplaintEvent(**values, dedup_key=dedup_key)
    case.events.append(event)
    return event
