"""Clustered complaints (集中性投诉): detection, linking by hand, the level rule and the unified reply.

A cluster is at least N complaints (setting ``cluster.min_complaints``) received within
T days (``cluster.window_days``) about the same department and category. The scan is
safe to run any number of times: an open cluster of a department and category absorbs
the new cases instead of a second one being created, and a detected cluster's ``key``
(department, category, first day) is unique.

Seed 004: the same problem 3 or more times in a calendar month is serious — the open
cases of such a month rise one level (once per case and cluster, recorded on the timeline).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import lifecycle, settings
from app.access.roles import GENERAL_MANAGER as GM
from app.access.roles import HR_MANAGER as HR
from app.complaints import intake
from app.complaints import steps as services
from app.i18n import _l
from app.messages import notify
from app.models import (
    OPEN_STATUSES,
    Category,
    Cluster,
    Complaint,
    ComplaintEvent,
    Department,
    cluster_complaint,
)
from app.time_limits import sla
from app.timeutil import format_local, to_local, utcnow

KINDS = ("concentrated", "group")
# Statuses in which a case is still waiting for its reply to the customer.
UNANSWERED = ("registered", "judged", "dispatched", "investigating", "planned")


class ClusterRefused(Exception):
    """A cluster step that cannot be taken: ``reasons`` lists why (per case where it applies)."""

    def __init__(self, message: str, reasons: Optional[list[dict[str, Any]]] = None):
        super().__init__(message)
        self.message = message
        self.reasons = reasons or []


def _int_setting(session: Session, key: str, default: int) -> int:
    try:
        return int(settings.get(session, key) or default)
    except (TypeError, ValueError):
        return default


def _status(complaint: Complaint) -> str:
    return getattr(complaint.status, "value", complaint.status)


# --- Detection ------------------------------------------------------------------------------------


def scan(session: Session, now: datetime) -> dict[str, Any]:
    """Find clusters at ``now``: new ones are created and reported, open ones absorb new cases."""
    minimum = _int_setting(session, "cluster.min_complaints", 5)
    days = _int_setting(session, "cluster.window_days", 7)
    touched: list[Cluster] = []
    created, joined = _link_busy_groups(session, now - timedelta(days=days), now, minimum, touched)
    joined += _absorb_fresh_cases(session, now, days, touched)
    raised = sum(apply_level_rule(session, cluster, None, now) for cluster in touched)
    return {"clusters_created": created, "cases_linked": joined, "levels_raised": raised}


def _link_busy_groups(
    session: Session, since: datetime, now: datetime, minimum: int, touched: list[Cluster]
) -> tuple[int, int]:
    """Department and category pairs with ``minimum`` cases in the window: their cluster, found or
    created, takes those cases. Returns (clusters created, cases linked); appends to ``touched``."""
    groups = session.execute(
        select(Complaint.department_id, Complaint.category_id, func.count(Complaint.id))
        .where(Complaint.received_at >= since, Complaint.received_at <= now)
        .group_by(Complaint.department_id, Complaint.category_id)
        .having(func.count(Complaint.id) >= minimum)
    ).all()
    created, joined = 0, 0
    for department_id, category_id, _count in groups:
        cases = _window_cases(session, department_id, category_id, since, now)
        cluster = _open_cluster(session, department_id, category_id)
        if cluster is None:
            cluster = _create_detected(session, department_id, category_id, cases, now)
            if cluster is None:
                continue  # another process created it meanwhile; the next run absorbs
            created += 1
        joined += link(session, cluster, cases, None, now)
        touched.append(cluster)
    return created, joined


def _window_cases(
    session: Session, department_id: int, category_id: Optional[int], since: datetime, now: datetime
) -> list[Complaint]:
    """The department's cases of the category received in [since, now], oldest first."""
    return list(
        session.scalars(
            select(Complaint)
            .where(
                Complaint.department_id == department_id,
                Complaint.category_id == category_id,
                Complaint.received_at >= since,
                Complaint.received_at <= now,
            )
            .order_by(Complaint.received_at, Complaint.id)
        )
    )


def _absorb_fresh_cases(session: Session, now: datetime, days: int, touched: list[Cluster]) -> int:
    """Open detected clusters not touched yet take the new cases of their department and category.

    An open cluster keeps absorbing them while they come within the window of its last case,
    even when the window alone holds fewer than N. Returns the cases linked; appends to ``touched``.
    """
    joined = 0
    for cluster in session.scalars(select(Cluster).where(Cluster.status == "open", Cluster.created_by_id.is_(None))):
        if cluster in touched or cluster.category_id is None:
            continue
        fresh = list(
            session.scalars(
                select(Complaint)
                .where(
                    Complaint.department_id == cluster.department_id,
                    Complaint.category_id == cluster.category_id,
                    Complaint.received_at > cluster.last_seen,
                    Complaint.received_at <= min(now, cluster.last_seen + timedelta(days=days)),
                )
                .order_by(Complaint.received_at, Complaint.id)
            )
        )
        if fresh:
            joined += link(session, cluster, fresh, None, now)
            touched.append(cluster)
    return joined


def _open_cluster(session: Session, department_id: int, category_id: Optional[int]) -> Optional[Cluster]:
    return session.scalars(
        select(Cluster)
        .where(
            Cluster.department_id == department_id,
            Cluster.category_id == category_id,
            Cluster.status == "open",
            Cluster.kind == "concentrated",
        )
        .order_by(Cluster.id)
        .limit(1)
    ).first()


def _create_detected(
    session: Session, department_id: int, category_id: int, cases: list[Complaint], now: datetime
) -> Optional[Cluster]:
    first = cases[0].received_at
    key = f"auto:{department_id}:{category_id}:{to_local(first).date().isoformat()}"
    if session.scalars(select(Cluster.id).where(Cluster.key == key)).first() is not None:
        return None  # detected before and closed since: not again for the same first day
    cluster = Cluster(
        kind="concentrated",
        department_id=department_id,
        category_id=category_id,
        key=key,
        first_seen=first,
        last_seen=cases[-1].received_at,
        status="open",
        created_at=now,
        created_by_id=None,
    )
    try:
        with session.begin_nested():
            session.add(cluster)
    except IntegrityError:
        return None
    report_new(session, cluster, len(cases), now)
    return cluster


def report_new(session: Session, cluster: Cluster, count: int, now: datetime) -> int:
    """Tell 总经理 and 人事行政经理 (and the group robots) of a new cluster at once."""
    session.flush()
    department = cluster.department or session.get(Department, cluster.department_id)
    category = cluster.category.name if cluster.category is not None else "—"
    title = str(
        _l(
            "Clustered complaints (集中性投诉): %(n)d cases about %(department)s, %(category)s",
            n=count,
            department=department.name if department else "",
            category=category,
        )
    )
    body = str(
        _l(
            "From %(first)s to %(last)s. Give them one unified reply on the cluster's page.",
            first=format_local(cluster.first_seen),
            last=format_local(cluster.last_seen),
        )
    )
    outbox = notify.Outbox(session, now)
    count = outbox.add(
        outbox.recipients([GM, HR]),
        "cluster",
        title,
        body,
        dedup_key=f"cluster:{cluster.id}",
        webhook=True,
        link=f"/clusterview/show/{cluster.id}",
    )
    outbox.flush()
    return count


# --- Linking by hand -------------------------------------------------------------------------------


def link(session: Session, cluster: Cluster, cases: Iterable[Complaint], actor_id: Optional[int], now: datetime) -> int:
    """Add the cases not yet in the cluster; each case's timeline records it. Returns how many joined."""
    present = set(
        session.scalars(select(cluster_complaint.c.complaint_id).where(cluster_complaint.c.cluster_id == cluster.id))
        if cluster.id is not None
        else []
    )
    added = 0
    for case in cases:
        if case.id in present:
            continue
        present.add(case.id)
        cluster.complaints.append(case)
        added += 1
        case.events.append(
            ComplaintEvent(
                action="cluster_linked",
                actor_id=actor_id,
                note=str(_l("Linked into cluster #%(id)s (集中性投诉).", id=cluster.id)),
                data={"cluster": cluster.id},
                at=now,
            )
        )
        if cluster.first_seen is None or case.received_at < cluster.first_seen:
            cluster.first_seen = case.received_at
        if cluster.last_seen is None or case.received_at > cluster.last_seen:
            cluster.last_seen = case.received_at
    session.flush()
    return added


def _cases_by_ids(session: Session, cluster_department_id: int, ids: Any, criterion: Any) -> list[Complaint]:
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ClusterRefused(str(_l("Please give the cases as a list of complaint ids.")))
    found = {c.id: c for c in session.scalars(select(Complaint).where(Complaint.id.in_(ids), criterion))}
    reasons = [
        {"id": i, "reason": str(_l("There is no such complaint (id %(id)s).", id=i))} for i in ids if i not in found
    ]
    reasons += [
        {
            "id": c.id,
            "number": c.number,
            "reason": str(_l("%(number)s is about another department.", number=c.number)),
        }
        for c in found.values()
        if c.department_id != cluster_department_id
    ]
    if reasons:
        raise ClusterRefused(str(_l("Some cases cannot join this cluster.")), reasons)
    return [found[i] for i in dict.fromkeys(ids)]


def link_by_hand(
    session: Session, cluster: Cluster, ids: Any, actor_id: Optional[int], criterion: Any, now: datetime
) -> int:
    if cluster.status != "open":
        raise ClusterRefused(str(_l("The cluster is closed.")))
    cases = _cases_by_ids(session, cluster.department_id, ids, criterion)
    added = link(session, cluster, cases, actor_id, now)
    apply_level_rule(session, cluster, actor_id, now)
    return added


def create_by_hand(
    session: Session, data: dict[str, Any], actor_id: Optional[int], criterion: Any, now: datetime
) -> Cluster:
    """A cluster created by staff: department, optional category, kind, note and its cases."""
    department = session.get(Department, data.get("department")) if isinstance(data.get("department"), int) else None
    if department is None:
        raise ClusterRefused(str(_l("Please choose the complained department.")))
    category = None
    if data.get("category") not in (None, ""):
        category = session.get(Category, data["category"]) if isinstance(data["category"], int) else None
        if category is None:
            raise ClusterRefused(str(_l("There is no such complaint category.")))
    kind = data.get("kind") or "concentrated"
    if kind not in KINDS:
        raise ClusterRefused(str(_l("The kind of cluster is concentrated or group.")))
    cases = _cases_by_ids(session, department.id, data.get("complaints"), criterion)
    note = data.get("note")
    cluster = Cluster(
        kind=kind,
        department=department,
        category=category,
        key=None,
        first_seen=cases[0].received_at,
        last_seen=cases[0].received_at,
        status="open",
        created_at=now,
        created_by_id=actor_id,
        note=note.strip() if isinstance(note, str) and note.strip() else None,
    )
    session.add(cluster)
    session.flush()
    link(session, cluster, cases, actor_id, now)
    report_new(session, cluster, len(cases), now)
    apply_level_rule(session, cluster, actor_id, now)
    return cluster


# --- Seed 004: the same problem 3 times in a month is serious ----------------------------------------


def apply_level_rule(session: Session, cluster: Cluster, actor_id: Optional[int], now: datetime) -> int:
    """Months in which the cluster holds ``cluster.serious_per_month`` cases: their open cases rise a level."""
    threshold = _int_setting(session, "cluster.serious_per_month", 3)
    by_month: dict[str, list[Complaint]] = defaultdict(list)
    for case in cluster.complaints:
        by_month[to_local(case.received_at).strftime("%Y-%m")].append(case)
    raised = 0
    for month, cases in sorted(by_month.items()):
        if len(cases) < threshold:
            continue
        for case in cases:
            if case.status not in OPEN_STATUSES or case.level is None:
                continue
            key = f"cluster-level:{cluster.id}:{case.id}"
            if session.scalars(select(ComplaintEvent.id).where(ComplaintEvent.dedup_key == key)).first():
                continue
            higher = intake.next_level(session, case.level)
            if higher is None or higher.id == case.level_id:
                continue
            sla.lock_complaint(session, case)
            old = case.level
            case.level = higher
            lifecycle.record_event(
                case,
                "cluster_level_raised",
                actor_id,
                note=str(
                    _l(
                        "The same problem %(n)d times in %(month)s (cluster #%(id)s) is serious: "
                        "level %(old)s → %(new)s.",
                        n=len(cases),
                        month=month,
                        id=cluster.id,
                        old=old.name,
                        new=higher.name,
                    )
                ),
                at=now,
                data={"cluster": cluster.id, "from_level": old.name, "to_level": higher.name, "month": month},
                dedup_key=key,
            )
            sla.reschedule_case(session, case, now, actor_id, str(_l("Complaint level changed")))
            raised += 1
    session.flush()
    return raised


# --- The unified reply ---------------------------------------------------------------------------------


def unified_reply(
    session: Session,
    cluster: Cluster,
    principal: Any,
    reply_text: Any,
    now: Optional[datetime] = None,
    confirm_phrases: Any = None,
) -> list[Complaint]:
    """Reply to every case of the cluster still waiting for its reply, all or none.

    Each case takes the lifecycle's ``reply`` step as ``principal`` and records a
    ``cluster_reply`` note; if any case refuses, ClusterRefused lists why and the caller
    rolls back. Cases already answered are left as they are.
    """
    now = now or utcnow()
    if cluster.status != "open":
        raise ClusterRefused(str(_l("The cluster is closed.")))
    if not isinstance(reply_text, str) or not reply_text.strip():
        raise ClusterRefused(str(_l("Please write the reply to the customers.")))
    cases = [c for c in cluster.complaints if _status(c) in UNANSWERED]
    if not cases:
        raise ClusterRefused(str(_l("No case of this cluster waits for a reply.")))
    reasons: list[dict[str, Any]] = []
    values = {"reply_text": reply_text.strip()}
    if confirm_phrases is not None:
        values[services.CONFIRM_PHRASES] = confirm_phrases
    for case in cases:
        try:
            services.take_transition(session, case, "reply", principal, dict(values), now=now, cluster_reply=True)
        except lifecycle.ValidationFailed as exc:
            reasons.append(
                {"id": case.id, "number": case.number, "reason": " ".join(m for v in exc.errors.values() for m in v)}
            )
            continue
        except lifecycle.TransitionError as exc:
            reasons.append({"id": case.id, "number": case.number, "reason": str(exc.message)})
            continue
        lifecycle.record_event(
            case,
            "cluster_reply",
            principal.user_id,
            note=str(_l("Unified reply of cluster #%(id)s (%(n)d cases).", id=cluster.id, n=len(cases))),
            at=now,
            data={"cluster": cluster.id},
        )
    if reasons:
        raise ClusterRefused(str(_l("The unified reply was not applied: some cases refuse it.")), reasons)
    cluster.replied_at = now
    session.flush()
    return cases


def close(session: Session, cluster: Cluster) -> None:
    cluster.status = "closed"


def for_period(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Clusters first seen or created in [start, end), for the periodic analysis."""
    rows = session.scalars(
        select(Cluster)
        .where(
            or_(
                (Cluster.first_seen >= start) & (Cluster.first_seen < end),
                (Cluster.created_at >= start) & (Cluster.created_at < end),
            )
        )
        .order_by(Cluster.first_seen, Cluster.id)
    ).all()
    return [
        {
            "id": c.id,
            "kind": c.kind,
            "kind_zh": "群体性投诉" if c.kind == "group" else "集中性投诉",
            "department": c.department.name if c.department else "",
            "category": c.category.name if c.category else "",
            "cases": len(c.complaints),
            "first_seen": format_local(c.first_seen),
            "last_seen": format_local(c.last_seen),
            "status": c.status,
            "status_zh": "处理中" if c.status == "open" else "已关闭",
            "replied": c.replied_at is not None,
            "by_hand": c.created_by_id is not None,
        }
        for c in rows
    ]
