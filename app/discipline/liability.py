"""Chained liability (连带扣分) and points per person per period.

Seed 004's incident standard deducts points not only from the person responsible
but, chained, from the department head, the direct superior (直接上级) and the
superior's superior (上上级). A :class:`~app.models.PenaltyRule` carries the chained
points (and optionally a fine) per link; this module resolves the chain of a penalty
case and freezes it as :class:`~app.models.PenaltyLink` rows.

Decisions (documented in README):

- **When the chain is resolved.** On 总经理's approval, from the posts (岗位, see
  :mod:`app.discipline.posts`) as they were held on the incident date (the approval day
  when the case has none); the rows are then frozen with the case: a later move does not
  rewrite them. A person who held no post that day falls back to the staff record's
  direct superior (``Staff.superior``). The department head is ``Department.head``.
- **Vacant links.** A post with nobody in it that day (or whose holder has left) keeps
  its row with ``vacant`` set and is not deducted; the chain passes upward (the post
  above is still deducted), and the vacancy is noted on the case timeline.
- **The same person twice.** A person is deducted once, at the higher value: the
  person sanctioned is never also deducted as a chained link (their own deduction is
  the case's terms), and a person in two chained posts (e.g. head and direct
  superior) keeps the link with the most points; the other row is kept, not counted,
  with a note.
- **Appeals.** A revoked case drops out of the ledger with all its links; a reduction
  changes the responsible person's terms only (the chained links stay as approved).

Plain service functions inside the caller's transaction; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app import settings
from app.discipline import penalties, posts
from app.discipline.posts import Seat
from app.i18n import _l
from app.messages import notify
from app.models import Department, Penalty, PenaltyLink, PenaltyRule, Staff
from app.timeutil import LOCAL_TZ, UTC, local_date

RESPONSIBLE = "responsible"
HEAD_LINK = "department_head"
SUPERIOR = "superior"
SUPERIOR2 = "superior_of_superior"
ROLES = (RESPONSIBLE, HEAD_LINK, SUPERIOR, SUPERIOR2)

ROLE_LABELS = {
    RESPONSIBLE: _l("Person responsible"),
    HEAD_LINK: _l("Department head"),
    SUPERIOR: _l("Direct superior"),
    SUPERIOR2: _l("Superior's superior"),
}
# As printed on formal documents (always Chinese).
ROLE_NAMES_ZH = {RESPONSIBLE: "责任人", HEAD_LINK: "部门负责人", SUPERIOR: "直接上级", SUPERIOR2: "上上级"}

# Rule columns of each chained link: (points, fine).
RULE_COLUMNS = {
    HEAD_LINK: ("chain_head_points", "chain_head_fine"),
    SUPERIOR: ("chain_superior_points", "chain_superior_fine"),
    SUPERIOR2: ("chain_superior2_points", "chain_superior2_fine"),
}

# Setting "penalty.chain_documents": how chained persons learn of their deduction.
DOCUMENT_MODES = ("circular", "notice")


def rule_chain(rule: Any) -> dict[str, tuple[int, int]]:
    """The chained links a rule deducts from: role -> (points, fine), only non-zero links."""
    chain = {}
    for role, (points_col, fine_col) in RULE_COLUMNS.items():
        points, fine = int(getattr(rule, points_col, 0) or 0), int(getattr(rule, fine_col, 0) or 0)
        if points or fine:
            chain[role] = (points, fine)
    return chain


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


def _holder(person: Staff | None) -> Staff | None:
    return person if person is not None and person.active else None


def resolve(session: Session, penalty: Penalty, now: datetime) -> list[PenaltyLink]:
    """Freeze the case's chain as link rows (once; a second call returns the stored rows)."""
    if penalty.links:
        return list(penalty.links)
    chain = rule_chain(penalty.rule)
    if not chain:
        return []
    responsible = penalty.staff
    department = session.get(Department, penalty.department_id)
    day = penalty.incident_date or local_date(now)
    holders = _post_holders(session, responsible, department, day)
    links = [
        PenaltyLink(
            role=RESPONSIBLE,
            position=0,
            staff=responsible,
            department=department,
            points=int(penalty.score_deduction or 0),
            fine=int(penalty.fine_amount or 0),
            counted=True,
            created_at=now,
        )
    ]
    for position, role in enumerate(ROLES[1:], start=1):
        if role in chain:
            links.append(_chained_link(role, position, chain[role], holders[role], responsible, now))
    _deduct_each_person_once(links[1:])
    for link in links:
        penalty.links.append(link)
    return links


def _post_holders(
    session: Session, responsible: Staff, department: Department | None, day: date
) -> dict[str, Staff | Seat | None]:
    """Who held each chained post on ``day`` (a vacant post as its :class:`Seat` with no holder)."""
    head = _holder(department.head if department is not None else None)
    seats = posts.chain_above(session, responsible, day)
    if seats is None:  # no post recorded for the person: the staff record's superiors, as today
        superior = responsible.superior
        superior2 = superior.superior if superior is not None else None
        return {HEAD_LINK: head, SUPERIOR: _holder(superior), SUPERIOR2: _holder(superior2)}
    above: list[Staff | Seat | None] = [_holder(seat.holder) or Seat(seat.post, None) for seat in seats]
    above += [None] * (2 - len(above))
    return {HEAD_LINK: head, SUPERIOR: above[0], SUPERIOR2: above[1]}


def _chained_link(
    role: str, position: int, terms: tuple[int, int], person: Staff | Seat | None, responsible: Staff, now: datetime
) -> PenaltyLink:
    """One chained post's row: vacant, the person responsible again (not counted), or deducted."""
    points, fine = terms
    link = PenaltyLink(role=role, position=position, points=points, fine=fine, created_at=now)
    if isinstance(person, Seat):
        link.vacant, link.counted = True, False
        link.note = str(
            _l(
                "Post %(post)s vacant on the incident date: not deducted; the chain passes upward.",
                post=person.post.name,
            )
        )
    elif person is None:
        link.vacant, link.counted = True, False
        link.note = str(_l("Post vacant: not deducted."))
    else:
        link.staff, link.department = person, person.department
        link.counted = True
        if person.id == responsible.id:
            link.counted = False
            link.note = str(_l("Same person as the one responsible: deducted once, as the person responsible."))
    return link


def _deduct_each_person_once(chained: list[PenaltyLink]) -> None:
    """The same person in two chained posts: deducted once, at the higher value."""
    by_person: dict[int, list[PenaltyLink]] = {}
    for link in chained:
        if link.counted and link.staff is not None:
            by_person.setdefault(link.staff.id, []).append(link)
    for same in by_person.values():
        if len(same) < 2:
            continue
        keep = max(same, key=lambda k: (k.points, k.fine, -k.position))
        for link in same:
            if link is not keep:
                link.counted = False
                link.note = str(
                    _l(
                        "Same person also liable as %(role)s: deducted once, at the higher value.",
                        role=role_label(keep.role),
                    )
                )


def timeline_note(links: list[PenaltyLink]) -> str | None:
    """What the timeline says about the chain: who was deducted, which posts were vacant."""
    if not links:
        return None
    parts = []
    for link in links[1:]:
        name = link.staff.name if link.staff is not None else None
        if link.vacant:
            parts.append(str(_l("%(role)s: post vacant, skipped", role=role_label(link.role))))
        elif link.counted:
            parts.append(
                str(
                    _l(
                        "%(role)s %(name)s: %(points)d points",
                        role=role_label(link.role),
                        name=name,
                        points=link.points,
                    )
                )
                + (str(_l(", fine %(fine)d yuan", fine=link.fine)) if link.fine else "")
            )
        else:
            parts.append(str(_l("%(role)s %(name)s: not deducted again", role=role_label(link.role), name=name or "—")))
    return "；".join(parts)


def link_json(link: PenaltyLink) -> dict[str, Any]:
    return {
        "role": link.role,
        "role_label": role_label(link.role),
        "staff_id": link.staff_id,
        "staff_name": link.staff.name if link.staff is not None else None,
        "employee_no": link.staff.employee_no if link.staff is not None else None,
        "department_id": link.department_id,
        "points": link.points,
        "fine": link.fine,
        "vacant": bool(link.vacant),
        "counted": bool(link.counted),
        "note": link.note,
    }


def chain_json(penalty: Penalty) -> dict[str, Any]:
    """The penalty's chain: the frozen links once approved, else what the rule would deduct."""
    if penalty.links:
        return {"resolved": True, "links": [link_json(k) for k in penalty.links]}
    return {
        "resolved": False,
        "links": [
            {"role": role, "role_label": role_label(role), "points": points, "fine": fine}
            for role, (points, fine) in rule_chain(penalty.rule).items()
        ],
    }


def chained_facts(penalty: Penalty) -> list[dict[str, Any]]:
    """The counted chained deductions as documents print them (Chinese names)."""
    rows = []
    for link in penalty.links:
        if link.role == RESPONSIBLE or not link.counted or link.staff is None:
            continue
        rows.append(
            {
                "role": ROLE_NAMES_ZH[link.role],
                "staff_name": link.staff.name,
                "employee_no": link.staff.employee_no,
                "position": link.staff.position or "",
                "department": link.department.name if link.department is not None else "",
                "points": link.points,
                "fine": link.fine,
            }
        )
    return rows


# --- Periods and points ----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    label: str  # "2026" or "2026-11"
    start: date
    end: date  # exclusive

    def bounds(self) -> tuple[datetime, datetime]:
        """The UTC instants of the local (Asia/Shanghai) period: [start, end)."""
        start = datetime(self.start.year, self.start.month, self.start.day, tzinfo=LOCAL_TZ)
        end = datetime(self.end.year, self.end.month, self.end.day, tzinfo=LOCAL_TZ)
        return start.astimezone(UTC), end.astimezone(UTC)


def parse_period(text: Any) -> Period:
    """``2026`` (a year) or ``2026-11`` (a month); raises ValueError with a readable message."""
    value = str(text or "").strip()
    try:
        if len(value) == 4 and value.isdecimal():
            year = int(value)
            return Period(value, date(year, 1, 1), date(year + 1, 1, 1))
        year_text, month_text = value.split("-")
        if len(year_text) != 4:
            raise ValueError(value)
        year, month = int(year_text), int(month_text)
        start = date(year, month, 1)
        return Period(f"{start:%Y-%m}", start, date(year + (month == 12), month % 12 + 1, 1))
    except (ValueError, TypeError) as exc:
        raise ValueError(str(_l("Please give the period as a year (YYYY) or a month (YYYY-MM)."))) from exc


def period_of(day: date, kind: str) -> Period:
    return parse_period(f"{day:%Y}" if kind == "year" else f"{day:%Y-%m}")


def _decided_in(start: datetime, end: datetime) -> Any:
    return and_(Penalty.status.in_(penalties.EFFECTIVE), Penalty.decided_at >= start, Penalty.decided_at < end)


def deductions(session: Session, staff_id: int, period: Period) -> list[dict[str, Any]]:
    """The person's deductions in force decided in the period, with their sources, oldest first."""
    start, end = period.bounds()
    rows: list[dict[str, Any]] = []
    own = session.scalars(
        select(Penalty).where(Penalty.staff_id == staff_id, _decided_in(start, end)).order_by(Penalty.decided_at)
    ).all()
    for p in own:
        rows.append(_source(p, RESPONSIBLE, int(p.score_deduction or 0), int(p.fine_amount or 0)))
    chained = session.execute(
        select(PenaltyLink, Penalty)
        .join(Penalty, Penalty.id == PenaltyLink.penalty_id)
        .where(
            PenaltyLink.staff_id == staff_id,
            PenaltyLink.counted.is_(True),
            PenaltyLink.role != RESPONSIBLE,
            _decided_in(start, end),
        )
    ).all()
    for link, p in chained:
        rows.append(_source(p, link.role, link.points, link.fine))
    rows.sort(key=lambda r: (r["decided_at"] or "", r["penalty_number"], ROLES.index(r["role"])))
    return rows


def _source(p: Penalty, role: str, points: int, fine: int) -> dict[str, Any]:
    return {
        "penalty_id": p.id,
        "penalty_number": p.number,
        "rule": p.rule.clause,
        "rule_description": p.rule.description,
        "role": role,
        "role_label": role_label(role),
        "responsible": p.staff.name,
        "points": points,
        "fine": fine,
        "date": local_date(p.decided_at).isoformat() if p.decided_at else None,
        "incident_date": p.incident_date.isoformat() if p.incident_date else None,
        "decided_at": p.decided_at.isoformat() if p.decided_at else None,
    }


def points_total(session: Session, staff_id: int, period: Period) -> int:
    """Points deducted from the person in the period (own penalties plus counted chained links)."""
    start, end = period.bounds()
    own = session.scalar(
        select(func.coalesce(func.sum(Penalty.score_deduction), 0)).where(
            Penalty.staff_id == staff_id, _decided_in(start, end)
        )
    )
    chained = session.scalar(
        select(func.coalesce(func.sum(PenaltyLink.points), 0))
        .join(Penalty, Penalty.id == PenaltyLink.penalty_id)
        .where(
            PenaltyLink.staff_id == staff_id,
            PenaltyLink.counted.is_(True),
            PenaltyLink.role != RESPONSIBLE,
            _decided_in(start, end),
        )
    )
    return int(own or 0) + int(chained or 0)


def threshold(session: Session) -> tuple[int, str]:
    """The configured warning threshold and its period kind ("year" or "month")."""
    limit = int(settings.get(session, "points.threshold") or 0)
    kind = str(settings.get(session, "points.threshold_period") or "year")
    return limit, "month" if kind == "month" else "year"


def warn_thresholds(session: Session, penalty: Penalty, now: datetime) -> list[int]:
    """Warn 人事行政经理 of each person of the case whose points reached the threshold in the
    period of the decision: once per person per period (the notification's dedup key)."""
    limit, kind = threshold(session)
    if limit <= 0 or penalty.decided_at is None:
        return []
    period = period_of(local_date(penalty.decided_at), kind)
    people = {penalty.staff_id: penalty.staff} | {
        k.staff_id: k.staff for k in penalty.links if k.counted and k.staff_id is not None
    }
    warned = []
    hr = None
    for staff_id, person in people.items():
        total = points_total(session, staff_id, period)
        if total < limit:
            continue
        hr = hr if hr is not None else notify.users_for(session, penalties.HR)
        title = _l(
            "%(name)s has lost %(points)d points in %(period)s (threshold %(limit)d)",
            name=person.name,
            points=total,
            period=period.label,
            limit=limit,
        )
        notify.notify(
            session,
            hr,
            "points",
            str(title),
            dedup_key=f"points:{staff_id}:{period.label}",
            link=f"/api/v1/staff/{staff_id}/points?period={period.label}",
            now=now,
        )
        warned.append(staff_id)
    return warned


def would_cycle(session: Session, staff: Staff, superior: Staff | None) -> bool:
    """Whether making ``superior`` the direct superior of ``staff`` closes a loop."""
    if superior is None:
        return False
    seen: set[int] = set()
    current: Staff | None = superior
    while current is not None and current.id not in seen:
        if current is staff or (staff.id is not None and current.id == staff.id):
            return True
        if current.id is not None:
            seen.add(current.id)
        current = current.superior
    return False


def rule_errors(rule: PenaltyRule) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for columns in RULE_COLUMNS.values():
        for name in columns:
            value = getattr(rule, name)
            if value is None:
                setattr(rule, name, 0)
            elif value < 0:
                errors.setdefault(name, []).append(str(_l("Please enter a whole number of 0 or more.")))
    return errors
