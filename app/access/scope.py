"""Who sees which rows: the one scoping function of the portal.

Every path that returns rows (FAB list/show/edit/delete, REST, related-field
choices, search, charts, exports, downloads) filters with :func:`criterion`.
The base is deny-all: a user without a staff record, or with no business role,
matches nothing, and a model without a rule here is invisible to everybody.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, false, or_, select, true
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BooleanClauseList, ColumnElement, False_

from app.access.roles import (
    ADMIN,
    BUSINESS_ROLES,
    COMPANY_WIDE,
    CUSTOMER_SERVICE,
    DEPARTMENT_HEAD,
)
from app.models import (
    AccessLog,
    Appeal,
    Attachment,
    CalendarOverride,
    Category,
    Channel,
    Cluster,
    Commendation,
    Complaint,
    ComplaintEvent,
    CorrectiveAction,
    Customer,
    CustomerCount,
    Deadline,
    Department,
    DepartmentGrade,
    DepartmentMeasure,
    Document,
    DocumentKind,
    Extension,
    FollowUp,
    GradingRun,
    Grievance,
    Level,
    Notification,
    Penalty,
    PenaltyEvent,
    PenaltyLink,
    PenaltyRule,
    Post,
    PostHolding,
    ReplyScript,
    Report,
    ServicePhrase,
    SlaRule,
    Staff,
    Unit,
    User,
)


@dataclass(frozen=True)
class Principal:
    """What the scoping rules need to know about the caller."""

    user_id: int | None = None
    roles: frozenset[str] = frozenset()
    staff_id: int | None = None
    # Every department the caller reads as its head: those it heads (or works in), plus,
    # for a unit head, all departments of its units and their sub-units.
    department_ids: frozenset[int] = field(default_factory=frozenset)
    # The units headed (with their sub-units), and the departments read only through them.
    unit_ids: frozenset[int] = field(default_factory=frozenset)
    unit_department_ids: frozenset[int] = field(default_factory=frozenset)
    # A head of a head-office department (the company unit's own): reads cases escalated to it.
    head_office: bool = False
    # The departments whose head (``department.head_id``) the caller is: in their cases
    # ``complaint.head_named`` says whether the caller is one of the complained staff.
    headed_department_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def is_company_wide(self) -> bool:
        return self.staff_id is not None and bool(self.roles & COMPANY_WIDE)

    @property
    def is_department_head(self) -> bool:
        return self.staff_id is not None and DEPARTMENT_HEAD in self.roles and bool(self.department_ids)

    @property
    def is_customer_service(self) -> bool:
        return self.staff_id is not None and CUSTOMER_SERVICE in self.roles

    @property
    def acting_department_ids(self) -> frozenset[int]:
        """The departments whose steps the caller takes; a unit head only reads the others."""
        return self.department_ids - self.unit_department_ids

    def has_role(self, *names: str) -> bool:
        return self.staff_id is not None and bool(self.roles & set(names))


NOBODY = Principal()


def reads_own_registrations(p: Principal) -> bool:
    """首问负责制: whoever registered a case (客服 or any other business role) keeps reading it to
    the end, whichever department handles it; nothing else of that department."""
    return p.staff_id is not None and p.user_id is not None and bool(p.roles & set(BUSINESS_ROLES))


def _complaint(p: Principal) -> ColumnElement[bool]:
    if p.is_company_wide:
        return true()
    clauses: list[ColumnElement[bool]] = []
    if p.is_department_head:
        clauses.append(Complaint.department_id.in_(sorted(p.department_ids)))
    if p.is_department_head and p.head_office:
        clauses.append(Complaint.escalated_to_head_office_at.is_not(None))
    if reads_own_registrations(p):
        clauses.append(Complaint.first_responder_id == p.user_id)
    return or_(*clauses) if clauses else false()


def acts_by_role(p: Principal, complaint: Any) -> bool:
    """Whether the role scope (not mere first-contact ownership) covers the case.

    A first responder outside the handling department reads the case and confirms the
    customer was told; the department's steps stay with the department.
    """
    if p.is_company_wide:
        return True
    if p.is_department_head and complaint.department_id in p.department_ids:
        return True
    return p.is_customer_service and p.user_id is not None and complaint.first_responder_id == p.user_id


def _grievance(p: Principal) -> ColumnElement[bool]:
    """不满工单: 客服 its own tickets, heads their departments', HR and GM all."""
    if p.is_company_wide:
        return true()
    clauses: list[ColumnElement[bool]] = []
    if p.is_department_head:
        clauses.append(Grievance.department_id.in_(sorted(p.department_ids)))
    if p.is_customer_service and p.user_id is not None:
        clauses.append(Grievance.recorded_by_id == p.user_id)
    return or_(*clauses) if clauses else false()


def _via_complaint(column: Any) -> Callable[[Principal], ColumnElement[bool]]:
    def rule(p: Principal) -> ColumnElement[bool]:
        if p.is_company_wide:
            return true()
        inner = _complaint(p)
        if isinstance(inner, False_):
            return false()
        return complaint_in_scope(column, inner)

    return rule


def complaint_in_scope(column: Any, inner: ColumnElement[bool]) -> ColumnElement[bool]:
    """``column`` names a complaint in scope: a probe of that complaint by its key per row, not a
    hash of every complaint in scope (a case page's documents took 250 ms at 1M with IN)."""
    return exists().where(Complaint.id == column, inner).correlate_except(Complaint)


def _customer(p: Principal) -> ColumnElement[bool]:
    if p.is_company_wide or p.is_customer_service:
        return true()
    if p.is_department_head:
        return exists().where(and_(Complaint.customer_id == Customer.id, _complaint(p)))
    return false()


def _staff(p: Principal) -> ColumnElement[bool]:
    # Customer service names the complained staff at intake, so it reads the roster;
    # Admin links login accounts to staff records.
    if p.is_company_wide or p.is_customer_service or ADMIN in p.roles:
        return true()
    if p.is_department_head:
        return Staff.department_id.in_(sorted(p.department_ids))
    return false()


def _post(p: Principal) -> ColumnElement[bool]:
    """Posts (岗位) are read like the roster: company-wide roles and Admin all, a head its departments."""
    if p.is_company_wide or ADMIN in p.roles:
        return true()
    if p.is_department_head:
        return Post.department_id.in_(sorted(p.department_ids))
    return false()


def _staff_department(column: Any, p: Principal) -> ColumnElement[bool]:
    """Rows about a department: all for company-wide roles, a head's own departments."""
    if p.is_company_wide:
        return true()
    if p.is_department_head:
        return column.in_(sorted(p.department_ids))
    return false()


def _account(p: Principal) -> ColumnElement[bool]:
    """Login accounts (a choice in forms, e.g. a department's supervising leader): Admin and the
    company-wide roles, who keep the organisation, choose any account; everybody else chooses
    among the accounts of the staff it may see."""
    if ADMIN in p.roles or p.is_company_wide:
        return true()
    staff = _staff(p)
    if isinstance(staff, False_):
        return false()
    return User.id.in_(select(Staff.user_id).where(Staff.user_id.is_not(None), staff))


def _reference(p: Principal) -> ColumnElement[bool]:
    return true() if (p.staff_id is not None and p.roles & set(BUSINESS_ROLES)) or ADMIN in p.roles else false()


def _own(column: Any) -> Callable[[Principal], ColumnElement[bool]]:
    def rule(p: Principal) -> ColumnElement[bool]:
        return column == p.user_id if p.user_id is not None else false()

    return rule


def _penalty(p: Principal) -> ColumnElement[bool]:
    # A head sees its departments' cases but not one against itself: those are
    # proposed by 人事行政经理 and decided by 总经理; the head is served on paper.
    if p.is_company_wide:
        return true()
    if p.is_department_head:
        return and_(Penalty.department_id.in_(sorted(p.department_ids)), Penalty.staff_id != p.staff_id)
    return false()


def _via_penalty(column: Any) -> Callable[[Principal], ColumnElement[bool]]:
    def rule(p: Principal) -> ColumnElement[bool]:
        if p.is_company_wide:
            return true()
        inner = _penalty(p)
        if isinstance(inner, False_):
            return false()
        return column.in_(select(Penalty.id).where(inner))

    return rule


def _document(p: Principal) -> ColumnElement[bool]:
    """A document follows its penalty, else its complaint; company-wide circulars reach heads too."""
    if p.is_company_wide:
        return true()
    clauses: list[ColumnElement[bool]] = []
    penalty = _penalty(p)
    if not isinstance(penalty, False_):
        clauses.append(Document.penalty_id.in_(select(Penalty.id).where(penalty)))
    complaint = _complaint(p)
    if not isinstance(complaint, False_):
        clauses.append(and_(Document.penalty_id.is_(None), complaint_in_scope(Document.complaint_id, complaint)))
    if p.is_department_head:
        clauses.append(
            and_(
                Document.penalty_id.is_(None),
                Document.complaint_id.is_(None),
                Document.kind == DocumentKind.circular,
            )
        )
    return or_(*clauses) if clauses else false()


def _commendation(p: Principal) -> ColumnElement[bool]:
    # Like the staff roster: customer service takes praise calls as it takes complaints.
    if p.is_company_wide or p.is_customer_service:
        return true()
    if p.is_department_head:
        return Commendation.department_id.in_(sorted(p.department_ids))
    return false()


def _company_only(p: Principal) -> ColumnElement[bool]:
    """Company-wide papers (analysis reports): 人事行政经理 and 总经理 only."""
    return true() if p.is_company_wide else false()


def _grading_run(p: Principal) -> ColumnElement[bool]:
    # A run is the period and its status; the grades in it are scoped by department.
    return true() if p.is_company_wide or p.is_department_head else false()


def _audit(p: Principal) -> ColumnElement[bool]:
    """The access log: 人事行政经理, 总经理 and Admin (read only for all)."""
    return true() if p.is_company_wide or ADMIN in p.roles else false()


RULES: dict[type, Callable[[Principal], ColumnElement[bool]]] = {
    AccessLog: _audit,
    Complaint: _complaint,
    ComplaintEvent: _via_complaint(ComplaintEvent.complaint_id),
    Attachment: _via_complaint(Attachment.complaint_id),
    Customer: _customer,
    Staff: _staff,
    Post: _post,
    PostHolding: lambda p: PostHolding.post_id.in_(select(Post.id).where(_post(p))),
    Department: _reference,
    Unit: _reference,
    Channel: _reference,
    Category: _reference,
    Level: _reference,
    ReplyScript: _reference,
    ServicePhrase: _reference,
    SlaRule: _reference,
    CalendarOverride: _reference,
    Extension: _via_complaint(Extension.complaint_id),
    Deadline: _via_complaint(Deadline.complaint_id),
    Notification: _own(Notification.user_id),
    PenaltyRule: _reference,
    Penalty: _penalty,
    PenaltyEvent: _via_penalty(PenaltyEvent.penalty_id),
    PenaltyLink: _via_penalty(PenaltyLink.penalty_id),
    Appeal: _via_penalty(Appeal.penalty_id),
    Document: _document,
    Commendation: _commendation,
    FollowUp: _via_complaint(FollowUp.complaint_id),
    CorrectiveAction: _via_complaint(CorrectiveAction.complaint_id),
    CustomerCount: lambda p: _staff_department(CustomerCount.department_id, p),
    Report: _company_only,
    DepartmentMeasure: lambda p: _staff_department(DepartmentMeasure.department_id, p),
    GradingRun: _grading_run,
    DepartmentGrade: lambda p: _staff_department(DepartmentGrade.department_id, p),
    Grievance: _grievance,
    Cluster: lambda p: _staff_department(Cluster.department_id, p),
    User: _account,
}


def register(model: type, rule: Callable[[Principal], ColumnElement[bool]]) -> None:
    """Add the scoping rule of a model defined by a later module."""
    RULES[model] = rule


def criterion(model: type, principal: Principal) -> ColumnElement[bool]:
    """The SQL condition selecting the rows of ``model`` that ``principal`` may see."""
    rule = RULES.get(model)
    if rule is None:
        return false()
    return rule(principal)


def branches(model: type, principal: Principal) -> list[ColumnElement[bool]]:
    """The scope of ``model`` as the conditions it ORs (one when it is not an OR): a head reads
    the department's cases, the escalated ones and those he registered. Counted branch by branch,
    each over its own index (what PostgreSQL cannot do with the OR itself)."""
    condition = criterion(model, principal)
    if isinstance(condition, BooleanClauseList) and condition.operator is operators.or_:
        return list(condition.clauses)
    return [condition]


def can_see(session: Any, model: type, pk: Any, principal: Principal) -> bool:
    """Whether the row ``pk`` of ``model`` is inside the principal's scope."""
    stmt = select(model.id).where(model.id == pk, criterion(model, principal))
    return session.execute(stmt).first() is not None
