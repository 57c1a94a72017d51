"""The shapes of the complaint lifecycle table: a step's input (:class:`Field`), a step
(:class:`Transition`), and who asks (:class:`Actor`) about which case (:class:`CaseFacts`).

app/complaints/workflow.py holds the table itself and the checks. Plain Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from app import labels


@dataclass(frozen=True)
class Field:
    """An input of an action: where it is stored and how it is checked."""

    name: str
    label: Any
    required: bool = True
    kind: str = "text"  # text | choice | staff | bool | department | date | datetime | int | stage | complaint
    choices: tuple[str, ...] = ()
    target: Optional[str] = None  # complaint attribute; None = not stored on the case
    aliases: tuple[str, ...] = ()  # other names accepted from API clients
    from_note: bool = False  # an empty field takes the step's note
    default: Any = None
    # Said or sent to the customer: checked for forbidden service phrases (app/phrases.py).
    customer_facing: bool = False


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: Optional[str]  # None = status unchanged (escalation, reminder …)
    roles: frozenset[str]
    fields: tuple[Field, ...] = ()
    stamp: Optional[str] = None  # complaint attribute set to the time of the step
    # Who acts instead of the department head when the head is a complained person.
    recusal_roles: frozenset[str] = frozenset()
    department_step: bool = False
    branch: Optional[Callable[[Mapping[str, Any]], Optional[str]]] = None
    style: str = "primary"
    # Case attributes set to constants by the step (e.g. validity = "valid").
    sets: tuple[tuple[str, Any], ...] = ()
    # Only offered while this stage's clock runs (e.g. the major-case report chain).
    requires_stage: Optional[str] = None
    # Extra condition on the case and the actor (e.g. who decides an extension).
    guard: Optional[Callable[[Actor, CaseFacts], bool]] = None
    # While the case's clock is paused: False = not offered, True = only then, None = either.
    while_paused: Optional[bool] = False
    # Roles that may take a department step whatever their department (e.g. 人事行政经理).
    any_department_roles: frozenset[str] = frozenset()
    # Open to a first responder who reads the case only through ownership (首问负责制).
    owner_step: bool = False
    # Taken by the head of the case's department or of a unit above it (branch hierarchy).
    unit_step: bool = False
    # Roles that take the step for every case of a cluster at once (集中性投诉统一答复).
    cluster_roles: frozenset[str] = frozenset()

    @property
    def label(self) -> Any:
        """The step's name, as buttons and the timeline show it (app/labels.py)."""
        return labels.ACTION[self.action]

    @property
    def kind(self) -> str:
        """Kind of the timeline entry (transition, escalation, reminder, extension, report)."""
        return labels.action_kind(self.action)

    def target_for(self, values: Mapping[str, Any], current: str) -> str:
        if self.branch is not None:
            chosen = self.branch(values)
            if chosen:
                return chosen
        return self.target or current


@dataclass(frozen=True)
class Actor:
    """Who wants to act, as far as the lifecycle cares."""

    user_id: Optional[int]
    roles: frozenset[str]
    staff_id: Optional[int] = None
    department_ids: frozenset[int] = field(default_factory=frozenset)
    # Departments the actor oversees as the head of their unit (read, and unit steps only).
    unit_department_ids: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class CaseFacts:
    """What the lifecycle needs to know about a case beyond its status."""

    status: str
    department_id: Optional[int]
    subject_staff_ids: frozenset[int] = frozenset()
    head_staff_id: Optional[int] = None
    level_rank: int = 0
    # The role the case's level names to approve more time (超时需经…批准); None: by rank.
    extension_approver: Optional[str] = None
    open_stages: frozenset[str] = frozenset()
    extendable_stages: frozenset[str] = frozenset()
    pending_extension: bool = False
    # The receiving department signed for the dispatched case (签收).
    signed: bool = False
    pending_extension_late: bool = False  # asked later than the notice: 总经理 decides
    paused: bool = False  # the clock stands still (暂停计时), also while awaiting approval
    pause_awaiting_approval: bool = False
    # 首问负责制: who registered the case, whether the customer was confirmed told the result,
    # and whether the actor reaches the case only as its first responder (read-only but for owner steps).
    first_responder_id: Optional[int] = None
    customer_informed: bool = False
    owner_view_only: bool = False
    # Kind of the unit the case's department belongs to (None: the company itself).
    unit_kind: Optional[str] = None
    escalated_to_head_office: bool = False
    # Responsibility disputes: the department's supervising leader (a user id), an open dispute,
    # whether it is still the working day the department received the case, and whether the
    # department objected to this case already (its ruling is final).
    supervisor_id: Optional[int] = None
    open_dispute: bool = False
    objection_in_time: bool = False
    objected_already: bool = False
    received_on: Optional[str] = None  # the working day of receipt, for the refusal's wording
    # The step is part of a cluster's unified response (集中性投诉统一答复).
    cluster_reply: bool = False

    @property
    def head_is_subject(self) -> bool:
        return self.head_staff_id is not None and self.head_staff_id in self.subject_staff_ids
