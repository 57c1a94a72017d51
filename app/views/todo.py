"""待我处理: what waits for the signed-in user's action, derived from the lifecycle tables.

Which step each role takes in which status comes from the complaint lifecycle
(``workflow.TRANSITIONS``) and the penalty chain (``penalties.STEPS``), not from a list
kept here: a *main* step is a forward step (``primary``/``success`` style) that moves the
case on (a target status) or records a stage (a stamp), taken without a special clock
stage. Decisions guarded by a pending request (an extension, a long pause, a dispute)
follow their guards' rules. Rows are scoped with :func:`app.access.scope.criterion`
exactly as the lists are; each section is two queries (the counts, the
oldest rows) over a UNION ALL of one SELECT per kind.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.elements import False_

from app import labels
from app.access import scope
from app.access.roles import DEPARTMENT_HEAD, GENERAL_MANAGER, HR_MANAGER
from app.complaints import workflow
from app.discipline import notices, penalties
from app.extensions import db
from app.i18n import _
from app.models import (
    ClockPause,
    Complaint,
    ComplaintStatus,
    Deadline,
    Department,
    Dispute,
    Document,
    DocumentKind,
    Extension,
    Level,
    Penalty,
    PenaltyStatus,
    complaint_staff,
)
from app.time_limits.deadlines import HEAD_TOKEN, STAGES
from app.timeutil import LOCAL_TZ, utcnow
from app.views import datamodel
from app.views.datamodel import capped_counts_statement, summed

LIMIT = 30
# The time of the request, bound when a cached statement runs (see ``statements``).
NOW = bindparam("todo_now", type_=Deadline.due_at.type)
_DAY_START = bindparam("todo_day_start", type_=Complaint.next_due_at.type)
_DAY_END = bindparam("todo_day_end", type_=Complaint.next_due_at.type)
# A waiting case as the home page lists it, and its order (next deadline first, then the oldest),
# which the open cases' due index (ix_complaint_open_due) serves.
_CASE_COLUMNS = (Complaint.id, Complaint.number, Complaint.subject, Complaint.next_due_at, Complaint.received_at)
_DUE_ORDER = (Complaint.next_due_at.asc().nulls_last(), Complaint.received_at)


def _due_order(rows: Any) -> tuple:
    """The due order with the key last (one order for every row), of the case or of a subquery's columns."""
    return (rows.next_due_at.asc().nulls_last(), rows.received_at, rows.id)


FORWARD_STYLES = ("primary", "success")
OPEN_STATUSES = tuple(ComplaintStatus(s) for s in workflow.OPEN)


@dataclass(frozen=True)
class Item:
    """One row of the to-do list: what to do, on which case, by when."""

    kind: str
    label: str
    number: str
    url: str
    subject: str
    due: Optional[datetime]
    since: Optional[datetime]
    late: bool = False


@dataclass(frozen=True)
class Kind:
    """One kind of waiting item with its count and the list it opens."""

    kind: str
    label: str
    count: int
    url: str


# Extra conditions of a step that its guard (or the status alone) does not say in SQL.
# 签收 comes before 开始调查 in the same status; the customer is told once.
_STEP_CONDITIONS: dict[str, ColumnElement[bool]] = {
    "sign_for": Complaint.signed_at.is_(None),
    "start_investigation": Complaint.signed_at.is_not(None),
    "confirm_informed": Complaint.customer_informed_at.is_(None),
}


def main_transitions() -> list[workflow.Transition]:
    """The complaint steps that move a case on, in lifecycle order."""
    return [
        t
        for t in workflow.TRANSITIONS.values()
        if t.style in FORWARD_STYLES
        and (t.target is not None or t.stamp is not None)
        and t.requires_stage is None
        and t.while_paused is False
    ]


def main_steps() -> list[penalties.Step]:
    """The penalty steps that move a case on (proposing is the proposer's, handled apart)."""
    return [s for s in penalties.STEPS.values() if s.style in FORWARD_STYLES and not s.proposer_step]


def _who_complaint(t: workflow.Transition, p: scope.Principal) -> ColumnElement[bool]:
    """Which in-scope cases the principal takes ``t`` on, by the lifecycle's role rules."""
    if t.owner_step:
        # The first responder tells the customer (首问负责制); the others read.
        return Complaint.first_responder_id == p.user_id if p.user_id is not None else false()
    if t.department_step:
        if p.roles & t.any_department_roles:
            return true()
        clauses = []
        if DEPARTMENT_HEAD in t.roles and p.is_department_head and p.acting_department_ids:
            clauses.append(Complaint.department_id.in_(sorted(p.acting_department_ids)))
        if p.has_role(*t.recusal_roles):
            # The head is a complained person of the case: the recusal role acts instead
            # (complaint.head_named, kept by the ORM, read from ix_complaint_open_head_named).
            clauses.append(Complaint.head_named.is_(True))
        return or_(*clauses) if clauses else false()
    return true() if p.has_role(*t.roles) else false()


def _only_acting_departments(t: workflow.Transition, p: scope.Principal) -> bool:
    """Whether the principal takes the department step ``t`` exactly in his acting departments
    (``_who_complaint`` is their ``department_id IN``): neither for every department nor as the
    recusal role."""
    return bool(
        t.department_step
        and DEPARTMENT_HEAD in t.roles
        and p.is_department_head
        and p.acting_department_ids
        and not (p.roles & t.any_department_roles)
        and not p.has_role(*t.recusal_roles)
    )


def within_scope(p: scope.Principal) -> frozenset[str]:
    """The kinds whose waiting cases are all inside the principal's scope by their own condition:
    a head's department steps and 延期 requests (his acting departments are among the departments
    he reads), and the first responder's own steps (首问: he reads the cases he registered). They
    are counted and listed without the scope's OR, whose every branch PostgreSQL plans apart."""
    kinds = {
        t.action
        for t in main_transitions()
        if _only_acting_departments(t, p) or (t.owner_step and (p.is_company_wide or scope.reads_own_registrations(p)))
    }
    if p.is_department_head and p.acting_department_ids:
        if DEPARTMENT_HEAD in workflow.TRANSITIONS["request_extension"].roles:
            kinds.add("request_extension")
    return frozenset(kinds)


def _not_named(t: workflow.Transition, p: scope.Principal, named_me: Any) -> ColumnElement[bool]:
    """The cases of ``t`` that do not name the principal among their complained staff.

    A department step of a head taken only in departments he heads needs no look-up: there a
    case names him exactly when ``complaint.head_named`` (kept by the ORM); read per case, the
    list of the cases naming him cost a hash table per kind (~3 ms each at 1M). Anything
    else (an acting head, the recusal role, a step of several departments) asks the list."""
    if _only_acting_departments(t, p) and p.acting_department_ids <= p.headed_department_ids:
        return Complaint.head_named.is_not(True)
    if named_me is None:  # named in many cases: each candidate case is looked up in the links
        return ~exists().where(complaint_staff.c.complaint_id == Complaint.id, complaint_staff.c.staff_id == p.staff_id)
    return Complaint.id.not_in(select(named_me.c.complaint_id))


# Past this many cases naming the principal, "not named" is asked case by case of the links
# (NOT EXISTS: an index probe per candidate, or the planner's hash when it is cheaper) rather than
# of a hash of all of them built for every kind: at a million cases a 客服 named in 6,300 cases
# spent 6 ms of his home page hashing them; for the few cases most people are named in, the hash
# is cheaper to plan and to run.
NAMED_MANY = 1000


def _named_in_many(p: scope.Principal) -> bool:
    if p.staff_id is None:
        return False
    named = (
        select(complaint_staff.c.complaint_id)
        .where(complaint_staff.c.staff_id == p.staff_id)
        .limit(NAMED_MANY + 1)
        .subquery()
    )
    return db.session.scalar(select(func.count()).select_from(named)) > NAMED_MANY


def _pending_extension(late_or_major: bool) -> ColumnElement[bool]:
    # Driven from the few pending requests (IN over their cases), not an EXISTS per complaint.
    pending = Complaint.id.in_(select(Extension.complaint_id).where(Extension.status == "pending"))
    late = Complaint.id.in_(
        select(Extension.complaint_id).where(Extension.status == "pending", Extension.late_request.is_(True))
    )
    major = exists().where(Level.id == Complaint.level_id, Level.rank >= 2)
    return and_(pending, or_(late, major)) if late_or_major else and_(pending, not_(late), not_(major))


def _decisions(p: scope.Principal) -> list[tuple[str, ColumnElement[bool]]]:
    """Requests awaiting a decision (延期, long pause, 责任异议) by the guards' rules."""
    kinds: list[tuple[str, ColumnElement[bool]]] = []
    if p.has_role(GENERAL_MANAGER):
        kinds.append(("decide_extension", _pending_extension(True)))
    elif p.has_role(HR_MANAGER):
        kinds.append(("decide_extension", _pending_extension(False)))
    if p.has_role(*workflow.TRANSITIONS["approve_pause"].roles):
        kinds.append(
            (
                "approve_pause",
                Complaint.id.in_(select(ClockPause.complaint_id).where(ClockPause.state == "awaiting_approval")),
            )
        )
    open_dispute = Complaint.id.in_(select(Dispute.complaint_id).where(Dispute.state == "open"))
    if p.has_role(GENERAL_MANAGER):
        kinds.append(("rule_dispute", open_dispute))
    elif p.user_id is not None and p.has_role(*workflow.TRANSITIONS["rule_dispute"].roles):
        supervised = exists().where(Department.id == Complaint.department_id, Department.supervisor_id == p.user_id)
        kinds.append(("rule_dispute", and_(open_dispute, supervised)))
    return kinds


def _extension_to_request(p: scope.Principal) -> list[tuple[str, ColumnElement[bool]]]:
    """延期 worth asking: a warned, still running clock the head may extend (the guard's stages);
    "still running" compares with the time of the request, bound when the statement runs (NOW)."""
    t = workflow.TRANSITIONS["request_extension"]
    if not (DEPARTMENT_HEAD in t.roles and p.is_department_head and p.acting_department_ids):
        return []
    stages = sorted(k for k, s in STAGES.items() if s.extendable and s.responsible == HEAD_TOKEN)
    warned = exists().where(
        Deadline.complaint_id == Complaint.id,
        Deadline.state == "open",
        Deadline.stage.in_(stages),
        Deadline.warned_at.is_not(None),
        Deadline.due_at > NOW,
    )
    pending = exists().where(Extension.complaint_id == Complaint.id, Extension.status == "pending")
    mine = Complaint.department_id.in_(sorted(p.acting_department_ids))
    return [("request_extension", and_(Complaint.status.in_(OPEN_STATUSES), mine, warned, not_(pending)))]


def complaint_kinds(p: scope.Principal) -> list[tuple[str, ColumnElement[bool]]]:
    """(action, condition) of every kind of complaint awaiting the principal, lifecycle order."""
    kinds: list[tuple[str, ColumnElement[bool]]] = []
    # The cases naming the principal, read once per statement (PostgreSQL hashed them per kind);
    # looked up case by case when they are many (see NAMED_MANY).
    named_me = (
        None
        if _named_in_many(p)
        else (
            select(complaint_staff.c.complaint_id)
            .where(complaint_staff.c.staff_id == p.staff_id)
            .cte("named_me")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
    )
    for t in main_transitions():
        who = _who_complaint(t, p)
        if isinstance(who, False_):
            continue
        condition = and_(
            Complaint.status.in_([ComplaintStatus(s) for s in t.sources]),
            Complaint.paused_since.is_(None),
            _STEP_CONDITIONS.get(t.action, true()),
            who,
        )
        if p.staff_id is not None:  # the person complained about steps aside
            condition = and_(condition, _not_named(t, p, named_me))
        kinds.append((t.action, condition))
    if p.has_role(GENERAL_MANAGER):
        # 督办 and 上报总部: the escalated open cases are the general manager's to watch.
        kinds.append(
            (
                "escalation",
                and_(
                    Complaint.status.in_(OPEN_STATUSES),
                    or_(Complaint.supervised.is_(True), Complaint.escalated_to_head_office_at.is_not(None)),
                ),
            )
        )
    return kinds + _decisions(p) + _extension_to_request(p)


def _who_penalty(s: penalties.Step, p: scope.Principal) -> bool:
    return p.has_role(*s.roles)


def penalty_kinds(p: scope.Principal) -> list[tuple[str, ColumnElement[bool]]]:
    """(action, condition) of every kind of penalty case awaiting the principal, chain order."""
    propose = penalties.STEPS["propose"]
    sources = [PenaltyStatus(s) for s in propose.sources]
    kinds: list[tuple[str, ColumnElement[bool]]] = []
    by_hr = or_(Penalty.subject_is_head.is_(True), Penalty.head_failed_to_act.is_(True))
    if p.has_role(HR_MANAGER):
        kinds.append(("propose", and_(Penalty.status.in_(sources), by_hr)))
    elif p.is_department_head and p.acting_department_ids:
        mine = Penalty.department_id.in_(sorted(p.acting_department_ids))
        kinds.append(("propose", and_(Penalty.status.in_(sources), not_(by_hr), mine)))
    for s in main_steps():
        if _who_penalty(s, p):
            kinds.append((s.action, Penalty.status.in_([PenaltyStatus(x) for x in s.sources])))
    if p.has_role(HR_MANAGER):
        issued = exists().where(Document.penalty_id == Penalty.id, Document.kind == DocumentKind.circular)
        statuses = [PenaltyStatus(x) for x in notices.CIRCULAR_STATUSES]
        kinds.append(
            ("circular", and_(Penalty.circular_required.is_(True), Penalty.status.in_(statuses), not_(issued)))
        )
    if p.staff_id is not None:
        kinds = [(k, and_(c, Penalty.staff_id != p.staff_id)) for k, c in kinds]
    return kinds


def _waiting(kinds: list[tuple[str, ColumnElement[bool]]], in_scope: ColumnElement[bool], columns: tuple) -> Any:
    """One row per (case, kind): a case waiting for two steps (签收 and 延期) is listed for each."""
    parts = [select(*columns, literal(name).label("kind")).where(in_scope, condition) for name, condition in kinds]
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("waiting")


def _complaint_label(kind: str) -> str:
    if kind == "escalation":
        return _("Supervised or escalated")
    return str(labels.ACTION.get(kind, kind))


def _penalty_label(kind: str) -> str:
    if kind == "circular":
        return str(penalties.ACTION_LABELS["circular"])
    return penalties.action_label(kind)


@dataclass(frozen=True)
class Statements:
    """The home page's statements of one principal; None where no kind waits for him on that side.
    ``cap`` is the home page's cap the counts were built with."""

    cap: int
    complaint_counts: Any
    complaint_rows: Any
    penalty_counts: Any
    penalty_rows: Any
    due_today: Any
    late: Any


def statements(p: scope.Principal) -> Statements:
    """The statements of 待我处理, 今日到期 and 已超时 for ``p`` (see ``_statements``)."""
    return _statements(p, datamodel.HOME_CAP, db.session.get_bind().url)


@functools.lru_cache(maxsize=512)
def _statements(p: scope.Principal, cap: int, database: Any) -> Statements:
    """The statements of 待我处理, 今日到期 and 已超时 for ``p``, built once per principal, database
    and process.

    They depend only on the principal (its roles, staff, departments and units: a change of any
    of them is another principal), on the lifecycle tables, which are code, and on how many cases
    of its database name him (``_named_in_many``: the database's URL is in the key, or a process
    that served another database first, as the benchmark does from 100k to 1M, kept that
    database's choice: 客服's hash of 6,300 cases, 3 ms a statement at 1M); the time of the
    request is bound when they run (``NOW``, ``_DAY_START``, ``_DAY_END``). Building the twenty-odd
    kinds of a head or of 人事行政经理, their subqueries and their SQLAlchemy cache keys took 10 to
    18 ms of CPU on every home page; running the built statements takes 3."""
    complaint_counts, complaint_rows = _complaint_statements(p, complaint_kinds(p), cap)
    penalty_counts, penalty_rows = _penalty_statements(p, penalty_kinds(p))
    due_today, late = _due_statements(p)
    return Statements(cap, complaint_counts, complaint_rows, penalty_counts, penalty_rows, due_today, late)


def _complaint_statements(
    p: scope.Principal, kinds: list[tuple[str, ColumnElement[bool]]], cap: int
) -> tuple[Any, Any]:
    if not kinds:
        return None, None
    in_scope = scope.criterion(Complaint, p)
    within = within_scope(p)
    # Waiting cases of each kind, counted up to the home page's cap (shown "999+" past it).
    counts = capped_counts_statement(Complaint, kinds, cap, scope.branches(Complaint, p), within)
    # Each kind's first LIMIT keys by the open cases' due index, then the first LIMIT of those:
    # the same rows as sorting every waiting case, without reading them all. Only the index's
    # columns are read per kind (its INCLUDEd ones answer the steps' conditions without the
    # table: a kind with no case scanned 2,000 rows of the table for nothing); the shown columns
    # are read for the LIMIT rows found.
    order = _due_order(Complaint)
    keys = (Complaint.id, Complaint.next_due_at, Complaint.received_at)
    firsts = [
        select(*keys, literal(name).label("kind"))
        .where(condition if name in within else and_(in_scope, condition))
        .order_by(*order)
        .limit(LIMIT)
        .subquery()
        for name, condition in kinds
    ]
    w = union_all(*(select(*f.c) for f in firsts)).subquery("waiting")
    first = select(w).order_by(*_due_order(w.c)).limit(LIMIT).subquery("first")
    rows = (
        select(*_CASE_COLUMNS, Complaint.overdue, first.c.kind)
        .join(first, first.c.id == Complaint.id)
        .order_by(*_due_order(first.c))
    )
    return counts, rows


def _complaint_rows(p: scope.Principal, now: datetime, url: Any) -> tuple:
    built = statements(p)
    if built.complaint_counts is None:
        return [], {}
    times = {NOW.key: now}
    counts = summed(db.session.execute(built.complaint_counts, times).all(), built.cap)
    rows = db.session.execute(built.complaint_rows, times).all()
    items = [
        Item(
            r.kind,
            _complaint_label(r.kind),
            r.number,
            url("ComplaintView.show", pk=r.id),
            r.subject or "",
            r.next_due_at,
            r.received_at,
            bool(r.overdue),
        )
        for r in rows
    ]
    return items, counts


def _penalty_statements(p: scope.Principal, kinds: list[tuple[str, ColumnElement[bool]]]) -> tuple[Any, Any]:
    if not kinds:
        return None, None
    columns = (Penalty.id, Penalty.number, Penalty.facts, Penalty.created_at)
    w = _waiting(kinds, scope.criterion(Penalty, p), columns)
    return select(w.c.kind, func.count()).group_by(w.c.kind), select(w).order_by(w.c.created_at, w.c.id).limit(LIMIT)


def _penalty_rows(p: scope.Principal, url: Any) -> tuple:
    built = statements(p)
    if built.penalty_counts is None:
        return [], {}
    counts = dict(db.session.execute(built.penalty_counts).all())
    rows = db.session.execute(built.penalty_rows).all()
    items = [
        Item(
            r.kind,
            _penalty_label(r.kind),
            r.number,
            url("PenaltyView.show", pk=r.id),
            (r.facts or "")[:40],
            None,
            r.created_at,
        )
        for r in rows
    ]
    return items, counts


_COMPLAINT_LIST_FILTER = {"escalation": "_flt_0_supervised=y"}
_PENALTY_LIST_FILTER = {"circular": "_flt_0_status=issued"}


def _complaint_list_url(kind: str, url: Any) -> str:
    if kind in _COMPLAINT_LIST_FILTER:
        return url("ComplaintView.list") + "?" + _COMPLAINT_LIST_FILTER[kind]
    t = workflow.TRANSITIONS.get(kind)
    if t is not None and len(t.sources) == 1:
        return url("ComplaintView.list") + "?_flt_0_status=" + t.sources[0]
    if kind == "decide_extension":
        return url("ExtensionView.list") + "?_flt_0_status=pending"
    return url("ComplaintView.list")


def _penalty_list_url(kind: str, url: Any) -> str:
    if kind in _PENALTY_LIST_FILTER:
        return url("PenaltyView.list") + "?" + _PENALTY_LIST_FILTER[kind]
    s = penalties.STEPS.get(kind)
    if s is not None and len(s.sources) == 1:
        return url("PenaltyView.list") + "?_flt_0_status=" + s.sources[0]
    return url("PenaltyView.list")


def _sort_key(item: Item) -> tuple:
    far = datetime.max.replace(tzinfo=LOCAL_TZ)
    return (item.due is None, item.due or far, item.since or far)


def awaiting(p: scope.Principal, url: Any) -> tuple[list[Item], list[Kind]]:
    """The principal's waiting items (oldest deadline first) and the count of each kind."""
    c_items, c_counts = _complaint_rows(p, utcnow(), url)
    p_items, p_counts = _penalty_rows(p, url)
    items = sorted(c_items + p_items, key=_sort_key)[:LIMIT]
    kinds = [Kind(k, _complaint_label(k), n, _complaint_list_url(k, url)) for k, n in _ordered(c_counts)]
    kinds += [Kind(k, _penalty_label(k), n, _penalty_list_url(k, url)) for k, n in _ordered(p_counts)]
    return items, kinds


def _ordered(counts: dict[Any, int]) -> Iterable[tuple[str, int]]:
    return [(k, n) for k, n in counts.items() if k is not None]


def _due_statements(p: scope.Principal) -> tuple[Any, Any]:
    base = and_(scope.criterion(Complaint, p), Complaint.status.in_(OPEN_STATUSES))
    columns = (*_CASE_COLUMNS, Complaint.status)
    today = (
        select(*columns)
        .where(
            base, Complaint.overdue.is_(False), Complaint.next_due_at >= _DAY_START, Complaint.next_due_at < _DAY_END
        )
        .order_by(Complaint.next_due_at)
        .limit(LIMIT)
    )
    late = (
        select(*columns)
        .where(base, or_(Complaint.overdue.is_(True), Complaint.next_due_at < NOW))
        .order_by(*_DUE_ORDER)
        .limit(LIMIT)
    )
    return today, late


def due_today_and_late(p: scope.Principal, url: Any, now: Optional[datetime] = None) -> tuple[list[Item], list[Item]]:
    """Open cases in scope whose next deadline falls today (local time), and the overdue ones."""
    now = now or utcnow()
    local = now.astimezone(LOCAL_TZ)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    built = statements(p)
    today = db.session.execute(built.due_today, {_DAY_START.key: start, _DAY_END.key: start + timedelta(days=1)}).all()
    late = db.session.execute(built.late, {NOW.key: now}).all()

    def item(r: Any, is_late: bool) -> Item:
        return Item(
            r.status.value,
            labels.status_label(r.status),
            r.number,
            url("ComplaintView.show", pk=r.id),
            r.subject or "",
            r.next_due_at,
            r.received_at,
            is_late,
        )

    return [item(r, False) for r in today], [item(r, True) for r in late]
