"""Penalty cases as data: sanctions, the approval chain, appeals and tier escalation.

``STEPS`` says, for each action on a penalty case, from which statuses it may be
taken, where it leads, which roles take it and which fields it needs. The rules of
服务投诉管理制度 第六条 that are not a table live here as small functions: who may
propose for whom, whether an amount fits the rule, whether an appeal is in time,
what the next tier is. The service layer (``app/discipline.py``) applies them to
the database; views and the API only ask.

This module is plain Python: no Flask, no database session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Protocol

from app.access.roles import DEPARTMENT_HEAD as HEAD
from app.access.roles import GENERAL_MANAGER as GM
from app.access.roles import HR_MANAGER as HR
from app.complaints.step_types import Actor
from app.i18n import _l
from app.lifecycle import TransitionError, value_of

# Sanction grades, lightest first (the order decides what a "reduction" is).
SANCTIONS = ("fine", "warning", "reprimand", "demerit", "major_demerit", "dismissal", "expulsion")
TERMINATIONS = frozenset({"dismissal", "expulsion"})

SANCTION_LABELS = {
    "fine": _l("Fine only"),
    "warning": _l("Warning"),
    "reprimand": _l("Reprimand"),
    "demerit": _l("Demerit"),
    "major_demerit": _l("Major demerit"),
    "dismissal": _l("Dismissal"),
    "expulsion": _l("Expulsion"),
}

# The names printed on formal documents, which are always in Chinese.
SANCTION_NAMES_ZH = {
    "fine": "经济处罚",
    "warning": "警告",
    "reprimand": "申诫",
    "demerit": "记过",
    "major_demerit": "记大过",
    "dismissal": "辞退",
    "expulsion": "开除",
}

STATUS_LABELS = {
    "draft": _l("Draft"),
    "proposed": _l("Proposed"),
    "reviewed": _l("Reviewed, awaiting decision"),
    "returned": _l("Returned"),
    "approved": _l("Approved"),
    "issued": _l("Notice issued"),
    "served": _l("Served"),
    "appealed": _l("Under appeal"),
    "revoked": _l("Revoked"),
    "cancelled": _l("Withdrawn"),
}

# Decided and in force: counted in the ledger and as earlier offences.
EFFECTIVE = ("approved", "issued", "served", "appealed")
# Still being decided: shown among earlier offences, marked as pending.
PENDING = ("proposed", "reviewed")
EDITABLE = ("draft", "returned")

APPEAL_DECISIONS = ("uphold", "reduce", "revoke")
APPEAL_DECISION_LABELS = {"uphold": _l("Uphold"), "reduce": _l("Reduce"), "revoke": _l("Revoke")}
# Appeal decision -> status of the case afterwards (a reduced penalty is served anew).
APPEAL_OUTCOME = {"uphold": "served", "reduce": "issued", "revoke": "revoked"}

COMMENDATION_SOURCES = ("letter", "call", "visit", "other")
COMMENDATION_SOURCE_LABELS = {
    "letter": _l("Letter"),
    "call": _l("Phone call"),
    "visit": _l("Visit"),
    "other": _l("Other"),
}
COMMENDATION_SOURCE_NAMES_ZH = {"letter": "表扬信", "call": "来电表扬", "visit": "来访表扬", "other": "其他"}

REPEAT_WINDOW_DAYS = 365


def severity(sanction: Any) -> int:
    """Rank of a sanction grade; higher is heavier."""
    return SANCTIONS.index(value_of(sanction))


# --- Terms: sanction, fine and deductions -------------------------------------------------


class RuleLike(Protocol):
    tier: int
    clause: str
    sanction: Any
    fine_min: int
    fine_max: int
    score_deduction: int
    withhold_performance_pay: bool


@dataclass(frozen=True)
class Terms:
    """What a penalty takes from the employee."""

    sanction: str
    fine_amount: int
    score_deduction: int
    withhold_performance_pay: bool

    @classmethod
    def of(cls, obj: Any) -> Terms:
        return cls(
            sanction=value_of(obj.sanction),
            fine_amount=int(obj.fine_amount or 0),
            score_deduction=int(obj.score_deduction or 0),
            withhold_performance_pay=bool(obj.withhold_performance_pay),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "sanction": self.sanction,
            "fine_amount": self.fine_amount,
            "score_deduction": self.score_deduction,
            "withhold_performance_pay": self.withhold_performance_pay,
        }


def allowed_sanctions(rule: RuleLike) -> tuple[str, ...]:
    """The grades a case under ``rule`` may carry: the rule's own, or either termination."""
    grade = value_of(rule.sanction)
    if grade in TERMINATIONS:
        return ("dismissal", "expulsion")
    return (grade,)


def default_terms(rule: RuleLike) -> Terms:
    return Terms(
        sanction=value_of(rule.sanction),
        fine_amount=int(rule.fine_min or 0),
        score_deduction=int(rule.score_deduction or 0),
        withhold_performance_pay=bool(rule.withhold_performance_pay),
    )


def check_terms(rule: RuleLike, terms: Terms) -> dict[str, list[str]]:
    """Per-field messages where ``terms`` do not fit ``rule`` (empty when they do)."""
    errors: dict[str, list[str]] = {}
    if terms.sanction not in allowed_sanctions(rule):
        errors.setdefault("sanction", []).append(
            str(
                _l(
                    "Rule %(clause)s carries: %(allowed)s.",
                    clause=rule.clause,
                    allowed=", ".join(str(SANCTION_LABELS[s]) for s in allowed_sanctions(rule)),
                )
            )
        )
    if not (rule.fine_min <= terms.fine_amount <= rule.fine_max):
        if rule.fine_min == rule.fine_max:
            message = _l("Rule %(clause)s sets the fine at %(amount)d yuan.", clause=rule.clause, amount=rule.fine_min)
        else:
            message = _l(
                "Rule %(clause)s allows a fine of %(min)d to %(max)d yuan.",
                clause=rule.clause,
                min=rule.fine_min,
                max=rule.fine_max,
            )
        errors.setdefault("fine_amount", []).append(str(message))
    if terms.score_deduction != int(rule.score_deduction or 0):
        errors.setdefault("score_deduction", []).append(
            str(
                _l(
                    "Rule %(clause)s deducts %(n)d points from the monthly performance score.",
                    clause=rule.clause,
                    n=rule.score_deduction,
                )
            )
        )
    if terms.withhold_performance_pay != bool(rule.withhold_performance_pay):
        message = (
            _l("Rule %(clause)s withholds the month's performance pay.", clause=rule.clause)
            if rule.withhold_performance_pay
            else _l("Rule %(clause)s does not withhold performance pay.", clause=rule.clause)
        )
        errors.setdefault("withhold_performance_pay", []).append(str(message))
    return errors


def check_reduction(current: Terms, new: Terms) -> dict[str, list[str]]:
    """An appeal may only lighten a penalty, and a reduction must lighten something."""
    errors: dict[str, list[str]] = {}
    if severity(new.sanction) > severity(current.sanction):
        errors.setdefault("sanction", []).append(str(_l("A reduction cannot make the sanction heavier.")))
    if new.fine_amount > current.fine_amount:
        errors.setdefault("fine_amount", []).append(
            str(_l("A reduction cannot raise the fine (now %(n)d yuan).", n=current.fine_amount))
        )
    if new.score_deduction > current.score_deduction:
        errors.setdefault("score_deduction", []).append(
            str(_l("A reduction cannot deduct more points (now %(n)d).", n=current.score_deduction))
        )
    if new.withhold_performance_pay and not current.withhold_performance_pay:
        errors.setdefault("withhold_performance_pay", []).append(
            str(_l("A reduction cannot add the withholding of performance pay."))
        )
    if not errors and new == current:
        errors.setdefault("decision", []).append(
            str(_l("A reduction must lighten at least one term; choose “Uphold” to keep the penalty."))
        )
    return errors


# --- Who proposes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFacts:
    """What the approval chain needs to know about a penalty case."""

    status: str
    staff_id: int | None
    department_id: int | None
    subject_is_head: bool = False
    head_failed_to_act: bool = False
    terms: Terms | None = None
    issued_on: date | None = None
    served_on: date | None = None
    appeal_deadline: date | None = None
    has_appeal: bool = False

    @property
    def proposed_by_hr(self) -> bool:
        """Cases against a head, or that a head failed to act on, are proposed by 人事行政经理."""
        return self.subject_is_head or self.head_failed_to_act


def proposer_refusal(actor: Actor, case: CaseFacts) -> str | None:
    """Why ``actor`` may not open or propose this case (None when it may)."""
    if actor.staff_id is not None and actor.staff_id == case.staff_id:
        return str(_l("Nobody proposes a penalty against themselves."))
    if case.proposed_by_hr:
        if HR in actor.roles:
            return None
        if case.subject_is_head:
            return str(_l("A case against a department head is proposed by the HR & administration manager."))
        return str(
            _l(
                "This case is marked as one the department head failed to act on: the HR & administration manager proposes it."
            )
        )
    if HEAD in actor.roles:
        if case.department_id in actor.department_ids:
            return None
        return str(_l("You may propose penalties only for staff of your own department."))
    if HR in actor.roles:
        return str(
            _l(
                "The department head proposes penalties for its staff; the HR & administration manager "
                "proposes only when the head is the subject or failed to act (tick “Head failed to act”)."
            )
        )
    return str(_l("Your role may not propose penalties."))


# --- The approval chain ---------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """An input of a step."""

    name: str
    label: Any
    required: bool = True
    kind: str = "text"  # text | date | choice | sanction | int | bool
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    action: str
    label: Any
    sources: tuple[str, ...]
    target: str
    roles: frozenset[str]
    fields: tuple[Field, ...] = ()
    style: str = "primary"
    # Steps taken by whoever proposes the case (the head, or HR for the cases it proposes).
    proposer_step: bool = False
    # Where the step leads when that depends on the case or the input.
    branch: Callable[[CaseFacts, Mapping[str, Any]], str] | None = None
    kind: str = "transition"

    def target_for(self, case: CaseFacts, values: Mapping[str, Any]) -> str:
        return self.branch(case, values) if self.branch is not None else self.target


def _after_proposal(case: CaseFacts, values: Mapping[str, Any]) -> str:
    # 人事行政经理's own proposal needs no review by itself: it goes to 总经理.
    return "reviewed" if case.proposed_by_hr else "proposed"


def _after_appeal(case: CaseFacts, values: Mapping[str, Any]) -> str:
    return APPEAL_OUTCOME.get(str(values.get("decision")), "served")


NOTE = Field("note", _l("Note"), required=False)
REASON = Field("reason", _l("Reason"))

STEPS: dict[str, Step] = {
    s.action: s
    for s in (
        Step(
            "propose",
            _l("Propose"),
            ("draft", "returned"),
            "proposed",
            frozenset({HEAD, HR}),
            (NOTE,),
            proposer_step=True,
            branch=_after_proposal,
        ),
        Step(
            "review",
            _l("Review and forward to the general manager"),
            ("proposed",),
            "reviewed",
            frozenset({HR}),
            (NOTE,),
        ),
        Step(
            "return", _l("Return for revision"), ("proposed",), "returned", frozenset({HR}), (REASON,), style="warning"
        ),
        Step("approve", _l("Approve"), ("reviewed",), "approved", frozenset({GM}), (NOTE,), style="success"),
        Step("reject", _l("Reject"), ("reviewed",), "returned", frozenset({GM}), (REASON,), style="danger"),
        Step(
            "withdraw",
            _l("Withdraw"),
            ("draft", "returned"),
            "cancelled",
            frozenset({HEAD, HR}),
            (Field("reason", _l("Reason"), required=False),),
            style="default",
            proposer_step=True,
        ),
        Step("issue_notice", _l("Issue the penalty notice"), ("approved",), "issued", frozenset({HR}), (NOTE,)),
        Step(
            "serve",
            _l("Record service to the employee"),
            ("issued",),
            "served",
            frozenset({HR}),
            (Field("served_on", _l("Date the employee received the notice"), kind="date"), NOTE),
        ),
        Step(
            "record_appeal",
            _l("Record an appeal"),
            ("served",),
            "appealed",
            frozenset({HR}),
            (
                Field("filed_on", _l("Date the appeal was filed"), kind="date"),
                Field("grounds", _l("Grounds of the appeal")),
            ),
            style="warning",
        ),
        Step(
            "decide_appeal",
            _l("Decide the appeal"),
            ("appealed",),
            "served",
            frozenset({GM}),
            (
                Field("decision", _l("Decision"), kind="choice", choices=APPEAL_DECISIONS),
                REASON,
                Field("sanction", _l("Sanction (reduction)"), required=False, kind="sanction"),
                Field("fine_amount", _l("Fine in yuan (reduction)"), required=False, kind="int"),
                Field("score_deduction", _l("Points deducted (reduction)"), required=False, kind="int"),
                Field(
                    "withhold_performance_pay", _l("Withhold performance pay (reduction)"), required=False, kind="bool"
                ),
            ),
            branch=_after_appeal,
        ),
        Step(
            "reissue_notice",
            _l("Correct and reissue the notice"),
            ("issued", "served"),
            "issued",
            frozenset({HR}),
            (REASON, Field("facts", _l("Corrected facts"), required=False)),
            style="default",
        ),
    )
}

ACTION_LABELS = {
    **{a: s.label for a, s in STEPS.items()},
    "open": _l("Case opened"),
    "edit": _l("Case edited"),
    "circular": _l("Circular issued"),
    "reissue_circular": _l("Circular re-issued"),
    "circular_drafted": _l("Circular drafted"),
    "chain": _l("Chained liability"),
}


def role_refusal(step: Step, actor: Actor, case: CaseFacts) -> str | None:
    """Why the actor may not take ``step`` on the case (None when it may)."""
    if actor.staff_id is not None and actor.staff_id == case.staff_id:
        return str(_l("You are the subject of this case and must step aside."))
    if step.proposer_step:
        return proposer_refusal(actor, case)
    if not actor.roles & step.roles:
        return str(_l("Your role may not take “%(action)s” on this case.", action=step.label))
    return None


def available(actor: Actor, case: CaseFacts) -> list[Step]:
    """The steps ``actor`` may take on the case now, in chain order."""
    return [
        s
        for s in STEPS.values()
        if case.status in s.sources
        and role_refusal(s, actor, case) is None
        and not (s.action == "record_appeal" and case.has_appeal)
    ]


def check(
    action: str, actor: Actor, case: CaseFacts, raw: Mapping[str, Any], today: date
) -> tuple[Step, dict[str, Any]]:
    """Validate one step; return it with its cleaned values, or raise :class:`TransitionError`."""
    step = STEPS.get(action)
    if step is None:
        raise TransitionError("fields", str(_l("Unknown action “%(action)s”.", action=action)))
    if case.status not in step.sources:
        raise TransitionError(
            "state",
            str(
                _l(
                    "“%(action)s” cannot be taken while the penalty is %(status)s.",
                    action=step.label,
                    status=STATUS_LABELS.get(case.status, case.status),
                )
            ),
        )
    refusal = role_refusal(step, actor, case)
    if refusal:
        raise TransitionError("role", refusal)
    if step.action == "record_appeal" and case.has_appeal:
        raise TransitionError("state", str(_l("An appeal against this penalty has already been decided.")))
    values, errors = clean(step, raw)
    if not errors:
        errors = _step_errors(step, case, values, today)
    if errors:
        raise TransitionError("fields", str(_l("Some fields are missing or wrong.")), errors)
    return step, values


def clean(step: Step, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Convert a step's raw inputs (form strings or JSON) to typed values, with per-field errors."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for f in step.fields:
        value = raw.get(f.name)
        if isinstance(value, str):
            value = value.strip() or None
        if value is None:
            if f.required:
                errors.setdefault(f.name, []).append(str(_l("Please fill in “%(field)s”.", field=f.label)))
            values[f.name] = None
            continue
        try:
            values[f.name] = _convert(f, value)
        except ValueError as exc:
            errors.setdefault(f.name, []).append(str(exc))
    return values, errors


def _convert(f: Field, value: Any) -> Any:
    if f.kind == "date":
        return parse_date(value)
    if f.kind == "int":
        return parse_amount(value)
    if f.kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on", "是"}
    if f.kind == "choice" and value not in f.choices:
        shown = "/".join(str(APPEAL_DECISION_LABELS.get(c, c)) for c in f.choices)
        raise ValueError(str(_l("Please choose “%(field)s” (%(choices)s).", field=f.label, choices=shown)))
    if f.kind == "sanction" and value not in SANCTIONS:
        shown = "/".join(sanction_label(c) for c in SANCTIONS)
        raise ValueError(str(_l("Please choose “%(field)s” (%(choices)s).", field=f.label, choices=shown)))
    return value


def parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise ValueError(str(_l("Please enter a date as YYYY-MM-DD."))) from exc


def parse_amount(value: Any) -> int:
    """A whole, non-negative number (yuan or points)."""
    try:
        number = float(str(value))
    except ValueError as exc:
        raise ValueError(str(_l("Please enter a whole number of 0 or more."))) from exc
    if number < 0 or number != int(number):
        raise ValueError(str(_l("Please enter a whole number of 0 or more.")))
    return int(number)


def _step_errors(step: Step, case: CaseFacts, values: dict[str, Any], today: date) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if step.action == "serve":
        served = values["served_on"]
        if served > today:
            errors["served_on"] = [str(_l("The date of service cannot be in the future."))]
        elif case.issued_on is not None and served < case.issued_on:
            errors["served_on"] = [
                str(
                    _l(
                        "The notice was issued on %(date)s; it cannot be served before.",
                        date=case.issued_on.isoformat(),
                    )
                )
            ]
    elif step.action == "record_appeal":
        filed = values["filed_on"]
        if filed > today:
            errors["filed_on"] = [str(_l("The appeal date cannot be in the future."))]
        elif case.served_on is not None and filed < case.served_on:
            errors["filed_on"] = [str(_l("An appeal cannot precede the service of the notice."))]
        elif case.appeal_deadline is not None and filed > case.appeal_deadline:
            errors["filed_on"] = [
                str(_l("The appeal period ended on %(date)s.", date=case.appeal_deadline.isoformat()))
            ]
    elif step.action == "decide_appeal" and values["decision"] == "reduce" and case.terms is not None:
        new = reduced_terms(case.terms, values)
        errors.update(check_reduction(case.terms, new))
    return errors


def reduced_terms(current: Terms, values: Mapping[str, Any]) -> Terms:
    """The current terms with the reduction's given fields replacing theirs."""
    changes = {
        name: values[name]
        for name in ("sanction", "fine_amount", "score_deduction", "withhold_performance_pay")
        if values.get(name) is not None
    }
    return replace(current, **changes)


# --- Appeal period and repeat offences -------------------------------------------------------


class WorkdayCalendar(Protocol):
    def next_workday(self, day: date) -> date: ...


def appeal_deadline(calendar: WorkdayCalendar, served_on: date, working_days: int) -> date:
    """The last day of the appeal period: ``working_days`` working days after service."""
    day = served_on
    for _ in range(max(0, int(working_days))):
        day = calendar.next_workday(day)
    return day


def next_tier(rules: Iterable[Any], rule: Any) -> list[Any]:
    """The active rules of the lowest tier above ``rule``'s (empty at the top tier)."""
    higher = [r for r in rules if r.tier > rule.tier and getattr(r, "active", True)]
    if not higher:
        return []
    tier = min(r.tier for r in higher)
    return sorted((r for r in higher if r.tier == tier), key=lambda r: (getattr(r, "sort", 0), r.clause))


def suggested_tier(earlier_tiers: Sequence[int], tier: int, top: int) -> int | None:
    """A repeat at the same tier or above within the window suggests the next tier up."""
    if any(t >= tier for t in earlier_tiers) and tier < top:
        return tier + 1
    return None


@dataclass
class Summary:
    """What the review screen shows about a case: earlier offences and the next tier."""

    earlier: list[Any] = field(default_factory=list)
    next_rules: list[Any] = field(default_factory=list)
    suggested_tier: int | None = None


def sanction_label(value: Any) -> str:
    return str(SANCTION_LABELS.get(value_of(value), value_of(value) or ""))


def status_label(value: Any) -> str:
    return str(STATUS_LABELS.get(value_of(value), value_of(value) or ""))


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))
