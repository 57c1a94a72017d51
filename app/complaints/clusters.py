"""Clustered complaints (集中性投诉): reporting, linking by hand, the level rule and the unified reply.

The scan that finds clusters from the complaints' texts is app/complaints/cluster_scan.py.

Seed 004: the same problem 3 or more times in a calendar month is serious — the cases of such
a month still waiting for their reply rise to the serious level (``cluster.serious_level``,
重大 by default; once per case and cluster, recorded on the timeline). A case already replied
to, closed or at that level or above keeps its level. A raised case's new clocks (the 3/5/10
minute chain of a major case) run from the moment of raising.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app import lifecycle, settings
from app.access.roles import GENERAL_MANAGER as GM
from app.access.roles import HR_MANAGER as HR
from app.complaints import intake, similarity
from app.complaints import steps as services
from app.i18n import _l
from app.messages import notify
from app.models import (
    Category,
    Cluster,
    Complaint,
    ComplaintEvent,
    Department,
    Level,
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


# --- Reporting ------------------------------------------------------------------------------------


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
    note = str(_l("Linked into cluster #%(id)s (集中性投诉).", id=cluster.id))
    with session.no_autoflush:  # one flush at the end, and no case's timeline loaded to add a line to it
        for case in cases:
            if case.id in present:
                continue
            present.add(case.id)
            cluster.complaints.append(case)
            added += 1
            session.add(
                ComplaintEvent(
                    complaint=case,
                    action="cluster_linked",
                    actor_id=actor_id,
                    note=note,
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


def serious_level(session: Session) -> Optional[Level]:
    """The level of a serious problem (``cluster.serious_level``, a level code; 重大 by default)."""
    code = settings.get(session, "cluster.serious_level") or "major"
    level = session.scalars(select(Level).where(Level.code == code, Level.active.is_(True))).first()
    return level or intake.lowest_major_level(session)


def apply_level_rule(
    session: Session, cluster: Cluster, actor_id: Optional[int], now: datetime, stop_at: Optional[float] = None
) -> int:
    """Months in which the cluster holds ``cluster.serious_per_month`` cases: their cases still
    waiting for the reply rise to the serious level; the new clocks run from ``now``.

    With ``stop_at`` (a ``time.monotonic()`` instant) it stops after the raise that passes it;
    calling it again raises the rest (a raised case is not raised twice)."""
    threshold = _int_setting(session, "cluster.serious_per_month", 3)
    target = serious_level(session)
    if target is None:
        return 0
    by_month: dict[str, list[Complaint]] = defaultdict(list)
    for case in cluster.complaints:
        by_month[to_local(case.received_at).strftime("%Y-%m")].append(case)
    raised = 0
    for month, cases in sorted(by_month.items()):
        if len(cases) < threshold:
            continue
        for case in cases:
            if _raise(session, cluster, case, target, len(cases), month, actor_id, now):
                raised += 1
                if stop_at is not None and time.monotonic() > stop_at:
                    session.flush()
                    return raised
    session.flush()
    return raised


def _raise(
    session: Session,
    cluster: Cluster,
    case: Complaint,
    target: Level,
    count: int,
    month: str,
    actor_id: Optional[int],
    now: datetime,
) -> bool:
    """Raise one case to ``target`` if it still waits for its reply and is below it."""
    if _status(case) not in UNANSWERED or case.level is None or case.level.rank >= target.rank:
        return False
    key = f"cluster-level:{cluster.id}:{case.id}"
    if session.scalars(select(ComplaintEvent.id).where(ComplaintEvent.dedup_key == key)).first():
        return False
    sla.lock_complaint(session, case)
    if _status(case) not in UNANSWERED:
        return False  # replied meanwhile
    old = case.level
    case.level = target
    lifecycle.record_event(
        case,
        "cluster_level_raised",
        actor_id,
        note=str(
            _l(
                "The same problem %(n)d times in %(month)s (cluster #%(id)s) is serious: level %(old)s → %(new)s.",
                n=count,
                month=month,
                id=cluster.id,
                old=old.name,
                new=target.name,
            )
        ),
        at=now,
        data={"cluster": cluster.id, "from_level": old.name, "to_level": target.name, "month": month},
        dedup_key=key,
    )
    sla.reschedule_case(session, case, now, actor_id, str(_l("Complaint level changed")), new_clocks_from=now)
    return True


def why_grouped(cluster: Cluster, limit: int = similarity.SHARED_WORDS) -> list[str]:
    """The key words the cluster's cases have in common (shown as "why grouped")."""
    cases = list(cluster.complaints)
    if len(cases) < 2:
        return []
    matrix = similarity.Matrix([similarity.case_text(c.subject, c.content) for c in cases])
    return matrix.shared_words(list(range(len(cases))), limit)


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
