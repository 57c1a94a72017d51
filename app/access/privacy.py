"""Personal data of complainants (个人信息保护法): masking, reveal, protection, retention.

Every path that shows a customer (lists, case pages, REST, documents) asks this module
how: ``masked`` by default, ``full`` after an audited reveal, ``hidden`` for a staff
member the customer complained about (保密: the complainant is protected from the
complained person whatever its role). The retention rule anonymises customers whose
cases have all been archived for longer than the retention period. Plain Python over
the session: no Flask views or request state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import and_, bindparam, exists, not_, or_, select
from sqlalchemy.orm import Session

from app.access import scope
from app.access.roles import CUSTOMER_SERVICE, DEPARTMENT_HEAD, GENERAL_MANAGER, HR_MANAGER
from app.models import AccessLog, Complaint, ComplaintEvent, ComplaintStatus, Customer, complaint_staff
from app.timeutil import utcnow

ANONYMISED_NAME = "已匿名客户"
# What a protected (complained) staff member sees instead of the complainant's details.
HIDDEN = "（保密）"
# Phone numbers and e-mail addresses found in a complaint's free text at anonymisation.
REMOVED = "［已删除］"
MASK = "****"

FULL, MASKED, HIDE = "full", "masked", "hidden"

DEFAULT_REVEAL_ROLES = [CUSTOMER_SERVICE, DEPARTMENT_HEAD, HR_MANAGER, GENERAL_MANAGER]
DEFAULT_RETENTION_DAYS = 1095

_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?!\d)")
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


# --- Masking ---------------------------------------------------------------------------------


def mask_phone(phone: Optional[str]) -> Optional[str]:
    """13812348000 -> 138****8000; 0371-12345678 -> 0371-****5678; short numbers keep 1 digit."""
    if not phone:
        return phone
    digits = sum(c.isdigit() for c in phone)
    if digits >= 7:
        # Keep the first three characters (or the area code) and the last four digits.
        head = phone.split("-")[0] + "-" if "-" in phone[:5] else phone[:3]
        return head + MASK + phone[-4:]
    return phone[:1] + MASK


def mask_email(email: Optional[str]) -> Optional[str]:
    """zhang.san@example.com -> z***@example.com."""
    if not email:
        return email
    local, at, domain = email.partition("@")
    if not at:
        return local[:1] + "***"
    return f"{local[:1]}***@{domain}"


def mask_address(address: Optional[str], keep: int = 6) -> Optional[str]:
    """Keep the first ``keep`` characters (city, district), hide the rest: 郑州市金水区**** ."""
    if not address:
        return address
    keep = min(keep, max(1, len(address) // 2))
    return address[:keep] + MASK


def strip_contacts(text: Optional[str]) -> Optional[str]:
    """Remove phone numbers and e-mail addresses from free text (anonymisation)."""
    if not text:
        return text
    return _PHONE_IN_TEXT.sub(REMOVED, _EMAIL_IN_TEXT.sub(REMOVED, text))


def customer_fields(customer: Optional[Customer], mode: str = MASKED) -> dict[str, Optional[str]]:
    """The customer's name and contact details as shown in ``mode`` (full, masked or hidden)."""
    if customer is None:
        return {"name": None, "phone": None, "email": None, "address": None}
    if mode == HIDE:
        return {"name": HIDDEN, "phone": HIDDEN if customer.phone else None, "email": None, "address": None}
    if mode == FULL:
        return {"name": customer.name, "phone": customer.phone, "email": customer.email, "address": customer.address}
    return {
        "name": customer.name,
        "phone": mask_phone(customer.phone),
        "email": mask_email(customer.email),
        "address": mask_address(customer.address),
    }


def mask_customer_json(data: Any, mode: str = MASKED) -> None:
    """Mask (or hide) the personal fields of a serialised customer dict in place."""
    if not isinstance(data, dict):
        return
    if mode == HIDE:
        for key in ("name", "phone", "email", "address", "note"):
            if key in data and data[key] is not None:
                data[key] = HIDDEN
        return
    for key, fn in (("phone", mask_phone), ("email", mask_email), ("address", mask_address)):
        if key in data:
            data[key] = fn(data[key])


# Masked columns: shown masked everywhere, so searched only by their full value (an exact
# match); a prefix or substring search would rebuild them a character at a time.
MASKED_COLUMNS: dict[type, tuple[str, ...]] = {Customer: ("phone", "email", "address")}
MASKERS = {"phone": mask_phone, "email": mask_email, "address": mask_address}


def masked_columns(model: Any) -> tuple[str, ...]:
    """The masked personal columns of a model (none for most models)."""
    return MASKED_COLUMNS.get(model, ())


def log_exact_search(
    session: Session,
    column: str,
    value: Any,
    matches: list[int],
    *,
    user_id: Optional[int] = None,
    username: Optional[str] = None,
    ip: Optional[str] = None,
    source: str = "search",
) -> AccessLog:
    """Log an exact-match search of a masked customer field like a reveal: a match shows the
    caller the full value. The searched value is logged masked; the matched customers by id."""
    shown = MASKERS.get(column, mask_phone)(str(value))
    return log_access(
        session,
        "reveal",
        user_id=user_id,
        username=username,
        target=("customer", matches[0]) if len(matches) == 1 else None,
        ip=ip,
        detail=f"{source}: {column}={shown}; matches: {','.join(map(str, matches[:20])) or '-'}",
    )


# --- Complainant protection (保密) ----------------------------------------------------------


def protected_customer_ids(session: Session, staff_id: Optional[int]) -> set[int]:
    """Customers who complained about this staff member (in any case): hidden from it."""
    if staff_id is None:
        return set()
    stmt = (
        select(Complaint.customer_id)
        .join(complaint_staff, complaint_staff.c.complaint_id == Complaint.id)
        .where(complaint_staff.c.staff_id == staff_id)
        .distinct()
    )
    return set(session.scalars(stmt))


def protected_customer_criterion(staff_id: Optional[int]) -> Any:
    """SQL condition true for customers the staff member must not see (see above)."""
    if staff_id is None:
        return None
    return exists().where(
        and_(
            Complaint.customer_id == Customer.id,
            Complaint.id == complaint_staff.c.complaint_id,
            complaint_staff.c.staff_id == staff_id,
        )
    )


# Which of some customers complained about a staff member: asked for every page that shows a
# customer, so built once (an expanding IN keeps it one cached statement for any number of ids).
_COMPLAINED_ABOUT = (
    select(Complaint.customer_id)
    .join(complaint_staff, complaint_staff.c.complaint_id == Complaint.id)
    .where(
        complaint_staff.c.staff_id == bindparam("staff_id"),
        Complaint.customer_id.in_(bindparam("customer_ids", expanding=True)),
    )
    .distinct()
)


@dataclass
class Viewer:
    """How one caller sees customers. Whether a customer complained about the caller is
    asked only for the customers a request shows (one indexed query per batch), never by
    loading every customer who ever complained about the caller."""

    principal: scope.Principal
    session: Optional[Session] = None
    _hidden: dict[int, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, session: Session, principal: scope.Principal) -> Viewer:
        return cls(principal, session)

    def prefetch(self, customer_ids: Iterable[Optional[int]]) -> None:
        """Learn in one query which of these customers are hidden from the caller."""
        staff_id = self.principal.staff_id
        wanted = {c for c in customer_ids if c is not None and c not in self._hidden}
        if not wanted:
            return
        if staff_id is None or self.session is None:
            self._hidden.update(dict.fromkeys(wanted, False))
            return
        hidden = set(self.session.scalars(_COMPLAINED_ABOUT, {"staff_id": staff_id, "customer_ids": sorted(wanted)}))
        self._hidden.update({c: c in hidden for c in wanted})

    def mode(self, customer_id: Optional[int]) -> str:
        if customer_id is None:
            return MASKED
        if customer_id not in self._hidden:
            self.prefetch([customer_id])
        return HIDE if self._hidden.get(customer_id) else MASKED

    def fields(self, customer: Optional[Customer]) -> dict[str, Optional[str]]:
        return customer_fields(customer, self.mode(customer.id if customer is not None else None))


# --- Reveal ------------------------------------------------------------------------------------


class RevealRefused(Exception):
    """The caller may not see the full contact details of this case."""


def may_reveal(viewer: Viewer, complaint: Complaint, reveal_roles: Iterable[str]) -> bool:
    """Whether the caller (already known to see the case) may reveal its customer's details.

    A role of the ``privacy.reveal_roles`` setting is needed; a department head only for
    its own departments' cases; a complained staff member never.
    """
    p = viewer.principal
    if p.staff_id is None or viewer.mode(complaint.customer_id) == HIDE:
        return False
    roles = set(reveal_roles or []) & set(p.roles)
    if not roles:
        return False
    if roles == {DEPARTMENT_HEAD}:
        return complaint.department_id in p.department_ids
    return True


def log_access(
    session: Session,
    action: str,
    *,
    user_id: Optional[int] = None,
    username: Optional[str] = None,
    target: Optional[tuple[str, int]] = None,
    ip: Optional[str] = None,
    detail: Optional[str] = None,
    now: Optional[datetime] = None,
) -> AccessLog:
    """Append one line to the access log (never updated or deleted)."""
    row = AccessLog(
        at=now or utcnow(),
        user_id=user_id,
        username=(username or "")[:100] or None,
        action=action,
        target_type=target[0] if target else None,
        target_id=target[1] if target else None,
        ip=(ip or "")[:64] or None,
        detail=detail,
    )
    session.add(row)
    return row


def reveal(
    session: Session,
    viewer: Viewer,
    complaint: Complaint,
    reveal_roles: Iterable[str],
    *,
    username: Optional[str] = None,
    ip: Optional[str] = None,
    now: Optional[datetime] = None,
) -> dict[str, Optional[str]]:
    """The full name and contact details of the case's customer, logged as a reveal.

    An anonymised customer's details are what is left (the anonymised values).
    """
    if not may_reveal(viewer, complaint, reveal_roles):
        raise RevealRefused()
    log_access(
        session,
        "reveal",
        user_id=viewer.principal.user_id,
        username=username,
        target=("complaint", complaint.id),
        ip=ip,
        now=now,
    )
    return customer_fields(complaint.customer, FULL)


def reveals_of(session: Session, complaint_id: int, limit: int = 20) -> list[AccessLog]:
    """The latest reveals of a case's contact details, newest first."""
    return list(
        session.scalars(
            select(AccessLog)
            .where(
                AccessLog.target_type == "complaint",
                AccessLog.target_id == complaint_id,
                AccessLog.action == "reveal",
            )
            .order_by(AccessLog.at.desc(), AccessLog.id.desc())
            .limit(limit)
        )
    )


# --- Retention ---------------------------------------------------------------------------------


def anonymise_expired(
    session: Session, now: datetime, retention_days: int, after_id: int = 0, limit: int = 200
) -> tuple[dict[str, int], Optional[int]]:
    """Anonymise the next ``limit`` customers (by id after ``after_id``) whose complaints have
    all been archived for over ``retention_days``; the counts, and the id the next batch
    starts after (None: none is left). The caller commits.

    Name becomes 已匿名客户, phone/e-mail/address/note are cleared, phone numbers and
    e-mail addresses in the cases' content and demand are removed; the cases themselves
    (department, category, dates, status) stay, so statistics do not change. Each case
    gets an ``anonymised`` event. Running it again changes nothing.
    """
    cutoff = now - timedelta(days=int(retention_days))
    still_kept = exists().where(
        and_(
            Complaint.customer_id == Customer.id,
            or_(
                Complaint.status != ComplaintStatus.archived,
                Complaint.archived_at.is_(None),
                Complaint.archived_at > cutoff,
            ),
        )
    )
    has_cases = exists().where(Complaint.customer_id == Customer.id)
    customers = list(
        session.scalars(
            select(Customer)
            .where(Customer.id > after_id, Customer.anonymised_at.is_(None), has_cases, not_(still_kept))
            .order_by(Customer.id)
            .limit(limit)
        )
    )
    if not customers:
        return {"customers": 0, "complaints": 0}, None
    for customer in customers:
        customer.name = ANONYMISED_NAME
        customer.phone = customer.email = customer.address = customer.note = None
        customer.anonymised_at = now
    complaints = session.scalars(
        select(Complaint).where(Complaint.customer_id.in_([c.id for c in customers])).order_by(Complaint.id)
    ).all()
    for complaint in complaints:
        complaint.content = strip_contacts(complaint.content) or ""
        complaint.customer_demand = strip_contacts(complaint.customer_demand)
        complaint.anonymised_at = now
        session.add(
            ComplaintEvent(
                complaint_id=complaint.id,
                action="anonymised",
                at=now,
                from_status=complaint.status.value,
                to_status=complaint.status.value,
                note=f"retention {int(retention_days)} days",
                dedup_key=f"anonymised:{complaint.id}",
            )
        )
    counts = {"customers": len(customers), "complaints": len(complaints)}
    return counts, customers[-1].id if len(customers) == limit else None
