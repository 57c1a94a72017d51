"""The complaint lifecycle as data.

``TRANSITIONS`` says, for each action, from which statuses it may be taken, where
it leads, which roles may take it, which fields it requires and which case fields
and stage timestamp it records. Views, the REST API, jobs and the demo generator
ask this module; nothing else decides whether a step is allowed.

This module is plain Python: no Flask, no database session.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Optional

from app import labels
from app.access.roles import CUSTOMER_SERVICE
from app.access.roles import CUSTOMER_SERVICE as CS
from app.access.roles import DEPARTMENT_HEAD as HEAD
from app.access.roles import GENERAL_MANAGER as GM
from app.access.roles import HR_MANAGER as HR
from app.complaints.step_types import Actor, CaseFacts, Field, Transition
from app.i18n import _l
from app.lifecycle import TransitionError, value_of

COMPANY_UNIT = "company"

OPEN = (
    "registered",
    "judged",
    "dispatched",
    "investigating",
    "planned",
    "replied",
    "fed_back",
    "followed_up",
)

SATISFACTION_VALUES = ("satisfied", "basically_satisfied", "unsatisfied")
FOLLOW_UP_METHODS = ("phone", "visit", "sms", "wechat", "email")
# How the customer was told the result (首问负责制): the follow-up channels, or face to face.
INFORM_METHODS = FOLLOW_UP_METHODS + ("in_person",)
# Statuses in which the customer has had the department's reply (re-complaint, telling the result).
REPLIED = ("replied", "fed_back", "followed_up")


def _reopen_if_unsatisfied(values: Mapping[str, Any]) -> Optional[str]:
    return "investigating" if values.get("satisfaction") == "unsatisfied" else None


def _can_request_extension(actor: Actor, case: CaseFacts) -> bool:
    return bool(case.extendable_stages) and not case.pending_extension


def _can_decide_extension(actor: Actor, case: CaseFacts) -> bool:
    # 人事行政经理 decides; from 重要 (rank 2) upwards, or for a request made later than
    # the policy's notice, the general manager does.
    # A level may name its approver instead (物业 SOP: 轻微 by the manager, 重要 by 总经理).
    if not case.pending_extension:
        return False
    if case.extension_approver and not case.pending_extension_late:
        return case.extension_approver in actor.roles
    if case.level_rank >= 2 or case.pending_extension_late:
        return GM in actor.roles
    return HR in actor.roles


def _can_decide_pause(actor: Actor, case: CaseFacts) -> bool:
    return case.pause_awaiting_approval


def _can_confirm_informed(actor: Actor, case: CaseFacts) -> bool:
    # The first responder owns telling the customer; 人事行政经理 may confirm instead.
    return not case.customer_informed and (
        HR in actor.roles or (actor.user_id is not None and actor.user_id == case.first_responder_id)
    )


def _can_escalate_to_head_office(actor: Actor, case: CaseFacts) -> bool:
    # Only a department of a unit below the company has a head office above it.
    return case.unit_kind not in (None, COMPANY_UNIT) and not case.escalated_to_head_office


def _can_object(actor: Actor, case: CaseFacts) -> bool:
    # 有异议的，应在收到投诉处理单据的当日给出核查结果: on the working day of receipt, once.
    return case.objection_in_time and not case.open_dispute and not case.objected_already


def _can_rule_dispute(actor: Actor, case: CaseFacts) -> bool:
    # The supervising leader (分管领导) of the case's department rules; 总经理 always may.
    return case.open_dispute and (
        GM in actor.roles or (actor.user_id is not None and actor.user_id == case.supervisor_id)
    )


def _reassign_if_decided(values: Mapping[str, Any]) -> Optional[str]:
    return "dispatched" if values.get("decision") == "reassign" else None


DISPUTE_DECISIONS = ("uphold", "reassign")


EXTENSION_UNITS = ("working_days", "working_hours", "natural_days", "natural_hours", "minutes")
# The most one request may add, per unit (a month of work; longer needs a new case plan).
MAX_EXTENSION = {"working_days": 30, "working_hours": 240, "natural_days": 30, "natural_hours": 720, "minutes": 43200}


NOTE = Field("note", _l("Note"), required=False)

TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition(
            "judge_valid",
            ("registered",),
            "judged",
            frozenset({HR}),
            fields=(
                Field(
                    "validity_reason",
                    _l("Reason of judgement"),
                    required=False,
                    target="validity_reason",
                    aliases=("reason",),
                    from_note=True,
                ),
                Field("reasonable", _l("Demand reasonable"), required=False, kind="bool", target="reasonable"),
            ),
            stamp="judged_at",
            sets=(("validity", "valid"),),
        ),
        Transition(
            "judge_invalid",
            ("registered",),
            "closed",
            frozenset({HR}),
            fields=(
                Field("validity_reason", _l("Reason of judgement"), target="validity_reason", aliases=("reason",)),
                Field(
                    "polite_reply",
                    _l("Polite reply"),
                    target="polite_reply",
                    aliases=("reply", "reply_text"),
                    customer_facing=True,
                ),
            ),
            stamp="judged_at",
            style="warning",
            sets=(("validity", "invalid"),),
        ),
        Transition(
            "dispatch",
            ("judged",),
            "dispatched",
            frozenset({HR}),
            fields=(
                Field(
                    "department",
                    _l("Complained department"),
                    required=False,
                    kind="department",
                    target="department",
                ),
            ),
            stamp="dispatched_at",
        ),
        Transition(
            "first_contact",
            ("registered", "judged", "dispatched", "investigating", "planned"),
            None,
            frozenset({HEAD}),
            fields=(Field("note", _l("What the customer was told"), required=True),),
            department_step=True,
            any_department_roles=frozenset({HR, CS}),
            recusal_roles=frozenset({HR}),
            requires_stage="first_response",
        ),
        Transition(
            "second_contact",
            ("registered", "judged", "dispatched", "investigating", "planned"),
            None,
            frozenset({HEAD}),
            fields=(Field("note", _l("What the customer was told"), required=True),),
            department_step=True,
            any_department_roles=frozenset({HR}),
            recusal_roles=frozenset({HR}),
            requires_stage="second_response",
        ),
        Transition(
            "change_level",
            ("registered", "judged", "dispatched", "investigating", "planned", "replied", "fed_back", "followed_up"),
            None,
            frozenset({HR, GM}),
            fields=(
                Field("level", _l("New level"), kind="level", target="level"),
                Field("note", _l("Why"), required=True),
            ),
            while_paused=None,
        ),
        Transition(
            "sign_for",
            ("dispatched",),
            None,
            frozenset({HEAD}),
            stamp="signed_at",
            recusal_roles=frozenset({HR}),
            department_step=True,
            guard=lambda actor, case: not case.signed,
        ),
        Transition(
            "start_investigation",
            ("dispatched",),
            "investigating",
            frozenset({HEAD}),
            stamp="investigation_started_at",
            recusal_roles=frozenset({HR}),
            department_step=True,
        ),
        Transition(
            "object_dispatch",
            ("dispatched", "investigating"),
            None,
            frozenset({HEAD}),
            fields=(Field("reason", _l("Why the case is not the department's"), target=None, from_note=True),),
            department_step=True,
            guard=_can_object,
            style="warning",
        ),
        Transition(
            "rule_dispute",
            ("dispatched", "investigating"),
            None,
            frozenset({GM, HR, HEAD, CS}),
            fields=(
                Field(
                    "decision",
                    _l("Ruling"),
                    kind="choice",
                    choices=DISPUTE_DECISIONS,
                    aliases=("ruling", "result"),
                ),
                Field(
                    "department",
                    _l("New department (when reassigned)"),
                    required=False,
                    kind="department",
                    target=None,
                    aliases=("to_department",),
                ),
                NOTE,
            ),
            branch=_reassign_if_decided,
            guard=_can_rule_dispute,
        ),
        Transition(
            "propose_plan",
            ("investigating",),
            "planned",
            frozenset({HEAD}),
            fields=(
                Field(
                    "findings",
                    _l("Investigation findings"),
                    required=False,
                    target="findings",
                    aliases=("finding", "investigation"),
                ),
                Field(
                    "responsible_staff",
                    _l("Responsible person"),
                    required=False,
                    kind="staff",
                    target="responsible_staff",
                ),
                Field(
                    "resolution_plan",
                    _l("Resolution plan"),
                    required=False,
                    target="resolution_plan",
                    aliases=("plan",),
                    from_note=True,
                ),
            ),
            stamp="planned_at",
            recusal_roles=frozenset({HR}),
            department_step=True,
        ),
        Transition(
            "reply",
            ("planned",),
            "replied",
            frozenset({HEAD}),
            fields=(
                Field(
                    "reply_text",
                    _l("Reply to customer"),
                    target="reply_text",
                    aliases=("reply", "text"),
                    customer_facing=True,
                ),
            ),
            stamp="replied_at",
            recusal_roles=frozenset({HR}),
            department_step=True,
            cluster_roles=frozenset({HR}),
        ),
        Transition(
            "feed_back",
            ("replied",),
            "fed_back",
            frozenset({HEAD}),
            fields=(
                Field(
                    "feedback_note",
                    _l("Feedback"),
                    required=False,
                    target="feedback_note",
                    aliases=("feedback",),
                    from_note=True,
                ),
            ),
            stamp="fed_back_at",
            recusal_roles=frozenset({HR}),
            department_step=True,
        ),
        Transition(
            "follow_up",
            ("fed_back",),
            "followed_up",
            frozenset({HR}),
            fields=(
                Field(
                    "satisfaction",
                    _l("Satisfaction"),
                    kind="choice",
                    choices=SATISFACTION_VALUES,
                    target="satisfaction",
                ),
                Field(
                    "method",
                    _l("How the customer was contacted"),
                    required=False,
                    kind="choice",
                    choices=FOLLOW_UP_METHODS,
                    default="phone",
                ),
                Field("customer_words", _l("What the customer said"), required=False, aliases=("words",)),
                Field(
                    "follow_up_note",
                    _l("Follow-up record"),
                    required=False,
                    target="follow_up_note",
                    from_note=True,
                    customer_facing=True,
                ),
            ),
            stamp="followed_up_at",
            branch=_reopen_if_unsatisfied,
        ),
        Transition(
            "close",
            ("followed_up",),
            "closed",
            frozenset({HR}),
            fields=(
                Field(
                    "close_note",
                    _l("Final result and evaluation"),
                    required=False,
                    target="close_note",
                    aliases=("result",),
                    from_note=True,
                ),
                # 人事行政经理 may confirm, while closing, that the customer was told the result.
                Field(
                    "customer_informed",
                    _l("How the customer was told the result"),
                    required=False,
                    kind="choice",
                    choices=INFORM_METHODS,
                    target="customer_informed_method",
                    aliases=("informed_method",),
                ),
            ),
            stamp="closed_at",
            style="success",
        ),
        Transition(
            "confirm_informed",
            REPLIED,
            None,
            frozenset({HR, HEAD, GM, CUSTOMER_SERVICE}),
            fields=(
                Field(
                    "method",
                    _l("How the customer was told the result"),
                    kind="choice",
                    choices=INFORM_METHODS,
                    target="customer_informed_method",
                    aliases=("customer_informed", "informed_method", "how"),
                ),
                Field(
                    "informed_note",
                    _l("What the customer was told"),
                    required=False,
                    target="customer_informed_note",
                    from_note=True,
                ),
            ),
            stamp="customer_informed_at",
            guard=_can_confirm_informed,
            owner_step=True,
            style="success",
        ),
        Transition(
            "recomplain",
            REPLIED + ("closed",),
            None,
            frozenset({HR, CUSTOMER_SERVICE}),
            fields=(
                Field("content", _l("What the customer complains about now"), target=None, aliases=("text",)),
                Field(
                    "department",
                    _l("Department (empty: the same department)"),
                    required=False,
                    kind="department",
                    target=None,
                ),
                NOTE,
            ),
            style="danger",
        ),
        Transition(
            "archive",
            ("closed",),
            "archived",
            frozenset({HR}),
            stamp="archived_at",
            style="default",
        ),
        Transition(
            "report_to_leader",
            OPEN,
            None,
            frozenset({HR, CUSTOMER_SERVICE}),
            fields=(Field("note", _l("Reported to whom and how"), target=None),),
            requires_stage="report_leader",
            style="warning",
            while_paused=None,
        ),
        Transition(
            "report_to_gm",
            OPEN,
            None,
            frozenset({HR, HEAD}),
            fields=(Field("note", _l("Reported to whom and how"), target=None),),
            requires_stage="report_gm",
            style="warning",
            while_paused=None,
        ),
        Transition(
            "submit_written_report",
            OPEN,
            None,
            frozenset({HEAD, HR}),
            fields=(Field("report", _l("Written report"), target=None, aliases=("text",), from_note=True),),
            requires_stage="written_report",
            while_paused=None,
        ),
        Transition(
            "request_extension",
            OPEN,
            None,
            frozenset({HEAD}),
            fields=(
                Field("stage", _l("Stage"), kind="stage", required=False),
                Field("amount", _l("Extra time"), kind="int", aliases=("days",)),
                Field(
                    "unit", _l("Unit"), kind="choice", choices=EXTENSION_UNITS, required=False, default="working_days"
                ),
                Field("reason", _l("Reason"), target=None, from_note=True),
                Field("consent_by", _l("Customer who agreed to the longer time"), aliases=("consented_by",)),
                Field(
                    "consent_method",
                    _l("How the customer agreed"),
                    kind="choice",
                    choices=FOLLOW_UP_METHODS,
                    aliases=("consent_how",),
                ),
                Field(
                    "consent_at",
                    _l("When the customer agreed (default: now)"),
                    kind="datetime",
                    required=False,
                    aliases=("consented_at",),
                ),
            ),
            recusal_roles=frozenset({HR}),
            department_step=True,
            guard=_can_request_extension,
            style="default",
        ),
        Transition(
            "decide_extension",
            OPEN,
            None,
            frozenset({HR, GM}),
            fields=(
                Field("decision", _l("Decision"), kind="choice", choices=("approve", "refuse"), aliases=("result",)),
                Field("note", _l("Note"), required=False),
            ),
            guard=_can_decide_extension,
            while_paused=None,
        ),
        Transition(
            "mark_repeat",
            OPEN + ("closed",),
            None,
            frozenset({HR, CUSTOMER_SERVICE}),
            fields=(
                Field(
                    "original",
                    _l("Number of the earlier complaint"),
                    kind="complaint",
                    aliases=("repeat_of", "original_number"),
                ),
            ),
            style="default",
            while_paused=None,
        ),
        Transition(
            "escalate",
            OPEN,
            None,
            frozenset({HR, GM}),
            fields=(Field("note", _l("Instructions"), target=None, aliases=("instructions",)),),
            style="danger",
            while_paused=None,
        ),
        Transition(
            "escalate_to_head_office",
            OPEN,
            None,
            frozenset({HEAD}),
            fields=(
                Field(
                    "reason",
                    _l("Why the case is beyond the unit's authority"),
                    target=None,
                    from_note=True,
                ),
            ),
            stamp="escalated_to_head_office_at",
            unit_step=True,
            guard=_can_escalate_to_head_office,
            style="danger",
            while_paused=None,
        ),
        Transition(
            "remind",
            OPEN,
            None,
            frozenset({HR, GM}),
            fields=(NOTE,),
            style="default",
            while_paused=None,
        ),
        Transition(
            "pause",
            OPEN,
            None,
            frozenset({HEAD}),
            fields=(
                Field("reason", _l("Why the case must wait (test, sample, third party, documents)"), from_note=True),
                Field(
                    "expected_resume",
                    _l("Expected resume date"),
                    kind="date",
                    aliases=("expected_resume_date", "until"),
                ),
                Field(
                    "customer_informed",
                    _l("How the customer was told"),
                    aliases=("customer_notified", "informed"),
                ),
            ),
            recusal_roles=frozenset({HR}),
            department_step=True,
            any_department_roles=frozenset({HR}),
            style="default",
        ),
        Transition(
            "resume",
            OPEN,
            None,
            frozenset({HEAD}),
            fields=(NOTE,),
            recusal_roles=frozenset({HR, GM}),
            department_step=True,
            any_department_roles=frozenset({HR, GM}),
            while_paused=True,
        ),
        Transition(
            "approve_pause",
            OPEN,
            None,
            frozenset({GM}),
            fields=(NOTE,),
            guard=_can_decide_pause,
            style="success",
            while_paused=True,
        ),
        Transition(
            "reject_pause",
            OPEN,
            None,
            frozenset({GM}),
            fields=(NOTE,),
            guard=_can_decide_pause,
            style="warning",
            while_paused=True,
        ),
    )
}


# Values API clients may send for a choice, in Chinese or other common spellings.
CHOICE_ALIASES = {
    "满意": "satisfied",
    "基本满意": "basically_satisfied",
    "basically satisfied": "basically_satisfied",
    "basic": "basically_satisfied",
    "不满意": "unsatisfied",
    "dissatisfied": "unsatisfied",
    "not_satisfied": "unsatisfied",
    "approved": "approve",
    "approval": "approve",
    "yes": "approve",
    "批准": "approve",
    "同意": "approve",
    "refused": "refuse",
    "reject": "refuse",
    "rejected": "refuse",
    "no": "refuse",
    "驳回": "refuse",
    "不同意": "refuse",
    "电话": "phone",
    "上门": "visit",
    "短信": "sms",
    "微信": "wechat",
    "邮件": "email",
    "工作日": "working_days",
    "days": "working_days",
    "hours": "working_hours",
    "维持": "uphold",
    "维持原派": "uphold",
    "upheld": "uphold",
    "改派": "reassign",
    "reassigned": "reassign",
}

# Other action names accepted from API clients: name -> (action, preset values).
ACTION_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "approve_extension": ("decide_extension", {"decision": "approve"}),
    "refuse_extension": ("decide_extension", {"decision": "refuse"}),
    "reject_extension": ("decide_extension", {"decision": "refuse"}),
    "supervise": ("escalate", {}),
    "pause_clock": ("pause", {}),
    "resume_clock": ("resume", {}),
    "reminder": ("remind", {}),
    "followup": ("follow_up", {}),
    "feedback": ("feed_back", {}),
    "investigate": ("start_investigation", {}),
    "object": ("object_dispatch", {}),
    "dispute": ("object_dispatch", {}),
    "uphold_dispute": ("rule_dispute", {"decision": "uphold"}),
    "reassign_dispute": ("rule_dispute", {"decision": "reassign"}),
    "plan": ("propose_plan", {}),
}


def resolve_action(action: str, raw: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The canonical action for an alias, with the values the alias implies."""
    name, preset = ACTION_ALIASES.get(action, (action, {}))
    return name, {**preset, **dict(raw)}


def normalize(t: Transition, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Field values under their canonical names, choice spellings mapped, note and defaults applied."""
    values = dict(raw)
    for f in t.fields:
        value = values.get(f.name)
        if _empty(value):
            for alias in f.aliases:
                if not _empty(raw.get(alias)):
                    value = raw[alias]
                    break
        if _empty(value) and f.from_note and not _empty(raw.get("note")):
            value = raw["note"]
        if _empty(value) and f.default is not None:
            value = f.default
        if f.kind == "choice" and isinstance(value, str):
            value = CHOICE_ALIASES.get(value.strip(), CHOICE_ALIASES.get(value.strip().lower(), value.strip()))
        values[f.name] = value
    return values


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def role_allows(t: Transition, actor: Actor, case: CaseFacts) -> bool:
    """Whether the actor's roles (and department, for department steps) allow ``t``."""
    if actor.staff_id is not None and actor.staff_id in case.subject_staff_ids:
        return False  # the person complained about steps aside
    if case.owner_view_only and not t.owner_step:
        return False  # a first responder outside the department reads; the department acts
    if t.unit_step:
        overseen = actor.department_ids | actor.unit_department_ids
        return bool(actor.roles & t.roles) and case.department_id in overseen
    if t.department_step:
        if actor.roles & t.any_department_roles:
            return True
        if case.cluster_reply and actor.roles & t.cluster_roles:
            return True
        if case.head_is_subject:
            return bool(actor.roles & t.recusal_roles)
        return bool(actor.roles & t.roles) and case.department_id in actor.department_ids
    return bool(actor.roles & t.roles)


def offered(t: Transition, case: CaseFacts) -> bool:
    """Whether the case is in a state where ``t`` makes sense at all."""
    if case.status not in t.sources:
        return False
    if t.requires_stage is not None and t.requires_stage not in case.open_stages:
        return False
    if t.while_paused is not None and t.while_paused != case.paused:
        return False
    return True


def available(actor: Actor, case: CaseFacts) -> list[Transition]:
    """The actions ``actor`` may take on the case now, in lifecycle order."""
    return [
        t
        for t in TRANSITIONS.values()
        if offered(t, case) and role_allows(t, actor, case) and (t.guard is None or t.guard(actor, case))
    ]


def check(action: str, actor: Actor, case: CaseFacts, values: Mapping[str, Any]) -> Transition:
    """Validate one step; return its transition or raise :class:`TransitionError`."""
    t = TRANSITIONS.get(action)
    if t is None:
        raise TransitionError("fields", str(_l("Unknown action “%(action)s”.", action=action)))
    _check_state(t, case)
    if not role_allows(t, actor, case):
        if actor.staff_id is not None and actor.staff_id in case.subject_staff_ids:
            message = _l("You are a complained person of this case and must step aside.")
        else:
            message = _l("Your role may not take “%(action)s” on this case.", action=t.label)
        raise TransitionError("role", str(message))
    if t.guard is not None and not t.guard(actor, case):
        raise _guard_refusal(t, case)
    _check_fields(t, case, values)
    if t.action == "close" and not case.customer_informed and _empty(values.get("customer_informed")):
        raise TransitionError(
            "state",
            str(
                _l(
                    "The case cannot be closed yet: please first confirm that the customer was told the result "
                    "(how: %(methods)s).",
                    methods="/".join(str(labels.FOLLOW_UP_METHOD[m]) for m in INFORM_METHODS),
                )
            ),
        )
    return t


def _check_state(t: Transition, case: CaseFacts) -> None:
    """The case is not archived, its clock is paused or not as the step needs, and it offers the step."""
    if case.status == "archived":
        raise TransitionError("state", str(_l("The case is archived and can no longer be changed.")))
    if case.status in t.sources and t.while_paused is not None and t.while_paused != case.paused:
        message = (
            _l("The case's clock is paused: resume it first.") if case.paused else _l("The case's clock is not paused.")
        )
        raise TransitionError("state", str(message))
    if not offered(t, case):
        raise TransitionError(
            "state",
            str(
                _l(
                    "“%(action)s” cannot be taken while the case is %(status)s.",
                    action=t.label,
                    status=_status_label(case.status),
                )
            ),
        )


def _guard_refusal(t: Transition, case: CaseFacts) -> TransitionError:
    """Why a step's guard refused it, as precisely as the case tells."""
    explain = _GUARD_REASONS.get(t.action)
    error = explain(t, case) if explain is not None else None
    return error or TransitionError("state", str(_l("“%(action)s” is not possible on this case now.", action=t.label)))


def _extension_refused(t: Transition, case: CaseFacts) -> Optional[TransitionError]:
    if case.pending_extension:
        return TransitionError("role", str(_l("Your role may not take “%(action)s” on this case.", action=t.label)))
    return None


def _pause_refused(t: Transition, case: CaseFacts) -> Optional[TransitionError]:
    return TransitionError("state", str(_l("No pause of this case awaits approval.")))


def _objection_refused(t: Transition, case: CaseFacts) -> Optional[TransitionError]:
    if case.open_dispute:
        return TransitionError("state", str(_l("An objection to this case awaits the ruling already.")))
    if case.objected_already:
        return TransitionError("state", str(_l("The department objected to this case already; the ruling is final.")))
    return TransitionError(
        "state",
        str(
            _l(
                "An objection must be raised on the day the case is received (有异议的，应在收到投诉处理"
                "单据的当日给出核查结果): the department received it on %(day)s; it can no longer object.",
                day=case.received_on or "—",
            )
        ),
    )


def _ruling_refused(t: Transition, case: CaseFacts) -> Optional[TransitionError]:
    if not case.open_dispute:
        return TransitionError("state", str(_l("No dispute of this case awaits a ruling.")))
    return TransitionError(
        "role", str(_l("Only the supervising leader of the department (分管领导) or 总经理 rules the dispute."))
    )


def _confirmation_refused(t: Transition, case: CaseFacts) -> Optional[TransitionError]:
    if not case.customer_informed:
        return TransitionError(
            "role", str(_l("Only the first responder of the case or 人事行政经理 confirms that the customer was told."))
        )
    return TransitionError("state", str(_l("It is already confirmed that the customer was told the result.")))


def _head_office_refused(t: Transition, case: CaseFacts) -> Optional[TransitionError]:
    if case.escalated_to_head_office:
        return TransitionError("state", str(_l("The case was escalated to the head office already.")))
    return TransitionError(
        "state", str(_l("The department belongs to the head office: there is no unit above it to escalate from."))
    )


# The specific reason of a refused guard, per step (others: "not possible on this case now").
_GUARD_REASONS: dict[str, Callable[[Transition, CaseFacts], Optional[TransitionError]]] = {
    "decide_extension": _extension_refused,
    "approve_pause": _pause_refused,
    "reject_pause": _pause_refused,
    "object_dispatch": _objection_refused,
    "rule_dispute": _ruling_refused,
    "confirm_informed": _confirmation_refused,
    "escalate_to_head_office": _head_office_refused,
}


def _check_fields(t: Transition, case: CaseFacts, values: Mapping[str, Any]) -> None:
    """Raise with every missing or wrong field of the step."""
    errors: dict[str, list[str]] = {}
    for f in t.fields:
        problem = _field_problem(t, f, values.get(f.name), case, values)
        if problem is not None:
            errors.setdefault(f.name, []).append(problem)
    if errors:
        raise TransitionError("fields", str(_l("Some fields are missing or wrong.")), errors)


def _field_problem(t: Transition, f: Field, value: Any, case: CaseFacts, values: Mapping[str, Any]) -> Optional[str]:
    """What is wrong with one field's value (None: nothing)."""
    if _empty(value):
        return str(_l("Please fill in “%(field)s”.", field=f.label)) if f.required else None
    if f.kind == "choice" and value not in f.choices:
        shown = "/".join(str(labels.STEP_CHOICE.get(c, c)) for c in f.choices)
        return str(_l("Please choose “%(field)s” (%(choices)s).", field=f.label, choices=shown))
    if f.kind == "stage" and value is not None and value not in case.extendable_stages:
        return str(_l("No running time limit “%(value)s” can be extended.", value=value))
    if f.kind == "int" and value is not None and not _positive_int(value):
        return str(_l("Please enter a whole number greater than 0."))
    if t.action == "request_extension" and f.name == "amount" and value is not None and _positive_int(value):
        limit = MAX_EXTENSION.get(values.get("unit") or "working_days")
        if limit is not None and int(str(value)) > limit:
            return str(_l("At most %(n)d can be added in one request.", n=limit))
    return None


def apply(complaint: Any, t: Transition, values: Mapping[str, Any], now: datetime) -> tuple[str, str]:
    """Record ``t`` on the case object: fields, stage time, status. Returns (from, to)."""
    before = value_of(complaint.status)
    for name, value in t.sets:
        setattr(complaint, name, value)
    for f in t.fields:
        if f.target and f.name in values and values[f.name] is not None:
            value = values[f.name]
            if f.kind == "choice" and _empty(value):
                continue  # an optional choice left empty keeps what the case has
            setattr(complaint, f.target, value.strip() if isinstance(value, str) else value)
    if t.stamp:
        setattr(complaint, t.stamp, now)
    after = t.target_for(values, before)
    if after == "investigating" and hasattr(complaint, "signed_at") and complaint.signed_at is None:
        complaint.signed_at = now  # taking the case up signs for it
    if after == "closed" and getattr(complaint, "closed_at", None) is None:
        # Every way into "closed" (also judge_invalid's polite reply) dates the closing.
        complaint.closed_at = now
    status_type = type(complaint.status)
    complaint.status = status_type(after) if isinstance(complaint.status, enum.Enum) else after
    return before, after


def _positive_int(value: Any) -> bool:
    try:
        return int(str(value)) > 0 and float(str(value)) == int(str(value))
    except (TypeError, ValueError):
        return False


def _status_label(status: str) -> str:
    return labels.status_label(status)


def actions_in_order() -> Iterable[str]:
    return TRANSITIONS.keys()
