"""Rules the seed policies state about cases, which the portal applies by itself.

- 物业 SOP (seed 000 第5篇 4.(4)2)①c): a valid complaint not resolved within a month is a
  重大 complaint. The ``raise_level`` clock (a rule of the preset) runs from the judgement;
  when the deadline scan finds it run out, the case rises to the next major level.
- 四级响应 (seed 001 篇4 第六条, 对应次数 2次): the contacts with the customer are counted;
  after a level's last allowed contact the case escalates to 总经理 (supervised; 第三条's
  chain ends with 总经理).
- 质量事故 (seed 004 事故等级 二(一)⑵): the same batch complained of by two different end
  users is a quality incident: every case of the batch is flagged and HR and 总经理 are told.
- 物流 (seed 001 篇7 第九条(6)): an attitude complaint raised more than a month after the
  incident is not valid; judging such a case invalid is offered that reason.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import lifecycle, signals
from app.access.roles import GENERAL_MANAGER, HR_MANAGER
from app.i18n import _l
from app.messages import notify
from app.models import OPEN_STATUSES, Category, Complaint, ComplaintEvent, Deadline, Level
from app.time_limits import sla
from app.timeutil import local_date

RAISE_STAGE = "raise_level"
CONTACT_ACTIONS = ("first_contact", "second_contact")
ATTITUDE = "attitude"  # the category code of 服务态度
BATCH_CUSTOMERS = 2  # 同一批次的产品在两家终端用户产生类似同问题投诉


# --- 有效投诉一个月内未解决 → 重大投诉 -----------------------------------------------------------


def major_level_above(session: Session, level: Optional[Level]) -> Optional[Level]:
    """The lowest active major level ranked above ``level`` (None when there is none)."""
    if level is None or level.is_major:
        return None
    return session.scalars(
        select(Level)
        .where(Level.active.is_(True), Level.is_major.is_(True), Level.rank > level.rank)
        .order_by(Level.rank, Level.id)
        .limit(1)
    ).first()


def raise_unresolved(session: Session, complaint: Complaint, deadline: Deadline, now: datetime) -> bool:
    """The ``raise_level`` clock ran out: raise a still-open valid case to the major level."""
    deadline.state, deadline.met_at, deadline.next_check_at = "met", now, None
    if complaint.status not in OPEN_STATUSES or getattr(complaint.validity, "value", complaint.validity) != "valid":
        return False
    higher = major_level_above(session, complaint.level)
    if higher is None:
        return False
    old = complaint.level
    complaint.level = higher
    lifecycle.record_event(
        complaint,
        "unresolved_level_raised",
        None,
        note=str(
            _l(
                "A valid complaint not resolved within the time limit (since %(since)s) is a major "
                "complaint: level %(old)s → %(new)s.",
                since=local_date(deadline.started_at).isoformat(),
                old=old.name,
                new=higher.name,
            )
        ),
        at=now,
        data={"from_level": old.name, "to_level": higher.name, "deadline": deadline.id},
        dedup_key=f"unresolved-raise:{complaint.id}:{deadline.id}",
    )
    sla.reschedule_case(session, complaint, now, None, str(_l("Complaint level changed")))
    notify.notify(
        session,
        notify.users_for(session, GENERAL_MANAGER) + notify.users_for(session, HR_MANAGER),
        "major",
        f"[{complaint.number}] " + str(_l("Unresolved for a month: raised to %(level)s", level=higher.name)),
        complaint.subject or "",
        complaint=complaint,
        dedup_key=f"unresolved-raise:{complaint.id}:{deadline.id}",
        now=now,
    )
    return True


@signals.clock_event.connect
def on_clock_event(
    complaint: Complaint, *, session: Session, deadline: Deadline, kind: str, now: datetime, **_: Any
) -> None:
    if kind == "overdue" and deadline.stage == RAISE_STAGE:
        raise_unresolved(session, complaint, deadline, now)


# --- 对应次数: contacts with the customer ------------------------------------------------------


def contact_count(session: Session, complaint: Complaint) -> int:
    """How many contacts with the customer (首次/二次对应) the case's timeline records."""
    if complaint.id is None:
        return 0
    return int(
        session.scalar(
            select(func.count())
            .select_from(ComplaintEvent)
            .where(ComplaintEvent.complaint_id == complaint.id, ComplaintEvent.action.in_(CONTACT_ACTIONS))
        )
        or 0
    )


def after_contact(session: Session, complaint: Complaint, now: datetime) -> bool:
    """After the level's last allowed contact (the case is not replied yet) it escalates to 总经理."""
    level = complaint.level
    limit = level.max_contacts if level is not None else None
    if not limit:
        return False
    session.flush()
    count = contact_count(session, complaint)
    if count < limit:
        return False
    key = f"contacts-exhausted:{complaint.id}"
    if session.scalar(select(ComplaintEvent.id).where(ComplaintEvent.dedup_key == key)) is not None:
        return False
    complaint.supervised = True
    lifecycle.record_event(
        complaint,
        "contacts_exhausted",
        None,
        note=str(
            _l(
                "%(n)d contacts with the customer, the most the level %(level)s allows, did not settle the "
                "complaint: escalated to the general manager.",
                n=count,
                level=level.name,
            )
        ),
        at=now,
        data={"contacts": count, "max_contacts": limit},
        dedup_key=key,
    )
    notify.notify(
        session,
        notify.users_for(session, GENERAL_MANAGER),
        "escalation",
        f"[{complaint.number}] " + str(_l("Contacts exhausted: the complaint is escalated to you")),
        complaint.subject or "",
        complaint=complaint,
        dedup_key=key,
        now=now,
    )
    return True


@signals.step_taken.connect
def on_step(complaint: Complaint, *, session: Session, transition: Any, now: datetime, **_: Any) -> None:
    if transition.action in CONTACT_ACTIONS:
        after_contact(session, complaint, now)
    elif transition.action == "feed_back" and complaint.customer_informed_at is not None:
        # Told before the department fed back: the "result told" clock has nothing left to wait for.
        for d in complaint.deadlines:
            if d.stage == "inform" and d.state == "open":
                d.state, d.met_at, d.next_check_at = "met", now, None
        sla.refresh(complaint, now)


# --- 同一批次两家终端用户 ------------------------------------------------------------------------


def batch_key(value: Optional[str]) -> Optional[str]:
    """The batch number as compared: trimmed, upper case, inner spaces dropped."""
    text = "".join((value or "").split()).upper()
    return text or None


def same_batch_cases(session: Session, batch_no: str) -> list[Complaint]:
    key = batch_key(batch_no)
    if key is None:
        return []
    rows = session.scalars(
        select(Complaint)
        .where(Complaint.batch_no.is_not(None))
        .where(func.upper(func.replace(Complaint.batch_no, " ", "")) == key)
    ).all()
    return sorted(rows, key=lambda c: c.id)


def check_batch(session: Session, complaint: Complaint, now: datetime) -> int:
    """Flag every case of the batch once two different customers complained of it; the cases flagged."""
    if batch_key(complaint.batch_no) is None:
        return 0
    session.flush()
    cases = same_batch_cases(session, complaint.batch_no or "")
    customers = {c.customer_id for c in cases}
    if len(customers) < BATCH_CUSTOMERS:
        return 0
    key = batch_key(complaint.batch_no)
    flagged = 0
    for case in cases:
        dedup = f"batch:{key}:{case.id}"
        if session.scalar(select(ComplaintEvent.id).where(ComplaintEvent.dedup_key == dedup)) is not None:
            continue
        lifecycle.record_event(
            case,
            "same_batch",
            None,
            note=str(
                _l(
                    "Batch %(batch)s: %(n)d different customers complained of the same batch; a quality "
                    "incident of the month (质量事故).",
                    batch=complaint.batch_no,
                    n=len(customers),
                )
            ),
            at=now,
            data={"batch_no": key, "customers": len(customers), "cases": [c.number for c in cases]},
            dedup_key=dedup,
        )
        flagged += 1
    notify.notify(
        session,
        notify.users_for(session, HR_MANAGER) + notify.users_for(session, GENERAL_MANAGER),
        "major",
        str(_l("Batch %(batch)s complained of by %(n)d customers", batch=complaint.batch_no, n=len(customers))),
        "、".join(c.number for c in cases),
        complaint=complaint,
        dedup_key=f"batch:{key}:{len(customers)}",
        now=now,
    )
    return flagged


@signals.case_registered.connect
def on_register(complaint: Complaint, *, session: Session, now: datetime, **_: Any) -> None:
    check_batch(session, complaint, now)


# --- 服务态度投诉超过一个月提出 → 无效 ---------------------------------------------------------------


def raised_too_late(complaint: Complaint) -> Optional[date]:
    """The incident date when an attitude complaint came more than a month after it, else None."""
    incident = complaint.incident_date
    category: Optional[Category] = complaint.category
    if incident is None or category is None or category.code != ATTITUDE or complaint.received_at is None:
        return None
    return incident if local_date(complaint.received_at) > incident + relativedelta(months=1) else None


def suggested_values(complaint: Complaint, action: str) -> dict[str, str]:
    """Values a step's form is offered in advance (the user may change them)."""
    if action == "judge_invalid":
        incident = raised_too_late(complaint)
        if incident is not None:
            return {
                "validity_reason": str(
                    _l(
                        "Not valid: a complaint about service attitude raised more than a month after the "
                        "incident (%(date)s) (seed 001 篇7 第九条(6)).",
                        date=incident.isoformat(),
                    )
                )
            }
    return {}
