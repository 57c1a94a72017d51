"""A small fixed history for the report and grading tests, driven through the real lifecycle.

October 2026 (the weeks of 10-05 and 10-12; 10-05..07 are National Day holidays and
Saturday 10-10 a 调休 working day) and September 2026 for the change. With the
default limits (investigation 1, reply 2, follow-up 2 working days; 7.5-hour days),
a case received on a working day at 10:00 is due to be investigated the next
working day at 10:00 and replied to the working day after (at 09:00: the same day
at 18:00 and the next day at 18:00).

    case  dept  received         what happens
    A     GC    Mon 10-12 09:00  valid; investigated 10-12, replied 10-13 10:00, follow-up satisfied 10-14 (all in time)
    B     GC    Mon 10-12 10:00  valid; investigated 10-14 and replied 10-15 (both a day late), follow-up
                                 unsatisfied 10-16 10:00: reopened, second reply due Tue 10-20 10:00, never given
    C     GC    Tue 10-13 10:00  judged invalid 10-13 11:00 (closed; its clocks cancelled)
    D     BA    Wed 10-14 10:00  valid 10-14 11:00, then nothing (investigation due 10-15, reply due 10-16)
    E     GC    Thu 10-08 10:00  nothing (investigation due Fri 10-09, reply due Sat 10-10: a 调休 working day)
    F     GC    Mon 09-14 10:00  nothing
    G     BA    Tue 09-15 10:00  nothing
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from app import db
from app.complaints import steps as services
from app.models import Commendation, DepartmentMeasure
from app.timeutil import LOCAL_TZ

MEASURE_GC = "每周二巡检电梯，报修两小时内到场；超时答复由部门主管当日回访致歉。"


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ)


def step(org: Any, complaint: Any, action: str, who: str, when: datetime, **values: Any) -> None:
    services.take_transition(db.session, complaint, action, org.principal(who), values, now=when)
    db.session.commit()


def archive(org: Any, complaint: Any, when: datetime, head: str = "zhuguan_a") -> None:
    """Walk a case through its whole lifecycle to 已归档, a minute a step from ``when``; ``head``
    takes the department's steps (人事行政经理 when the head is the complained person)."""
    for minute, (action, who, values) in enumerate(
        (
            ("judge_valid", "renshi", {}),
            ("dispatch", "renshi", {}),
            ("start_investigation", head, {}),
            ("propose_plan", head, {"findings": "属实", "resolution_plan": "维修"}),
            ("reply", head, {"reply_text": "已修复"}),
            ("feed_back", head, {"feedback_note": "客户认可"}),
            ("follow_up", "renshi", {"satisfaction": "satisfied", "follow_up_note": "满意"}),
            ("close", "renshi", {"close_note": "结案", "customer_informed": "phone"}),
            ("archive", "renshi", {}),
        )
    ):
        step(org, complaint, action, who, when + timedelta(minutes=minute), **values)


def handle(org: Any, complaint: Any, investigated: datetime, replied: datetime) -> None:
    """Dispatch, investigate at ``investigated``, plan and reply at ``replied``, feed back an hour later."""
    step(org, complaint, "dispatch", "renshi", investigated)
    step(org, complaint, "start_investigation", "zhuguan_a", investigated)
    step(org, complaint, "propose_plan", "zhuguan_a", replied, resolution_plan="更换配件")
    step(org, complaint, "reply", "zhuguan_a", replied, reply_text="已修复并致歉")
    step(org, complaint, "feed_back", "zhuguan_a", replied.replace(hour=replied.hour + 1))


def build_history(make_complaint: Any, org: Any) -> dict[str, Any]:
    cases: dict[str, Any] = {}

    def register(name: str, department: str, received: datetime, **kw: Any) -> Any:
        cases[name] = make_complaint(department=department, received_at=received, now=received, **kw)
        return cases[name]

    a = register("A", "GC", at(10, 12, 9))
    b = register("B", "GC", at(10, 12, 10))
    c = register("C", "GC", at(10, 13, 10))
    d = register("D", "BA", at(10, 14, 10))
    register("E", "GC", at(10, 8, 10))
    register("F", "GC", at(9, 14, 10))
    register("G", "BA", at(9, 15, 10))

    step(org, a, "judge_valid", "renshi", at(10, 12, 10))
    handle(org, a, investigated=at(10, 12, 10), replied=at(10, 13, 10))
    step(org, a, "follow_up", "renshi", at(10, 14, 10), satisfaction="satisfied")

    step(org, b, "judge_valid", "renshi", at(10, 12, 11))
    handle(org, b, investigated=at(10, 14, 10), replied=at(10, 15, 10))
    step(org, b, "follow_up", "renshi", at(10, 16, 10), satisfaction="unsatisfied")

    step(org, c, "judge_invalid", "renshi", at(10, 13, 11), validity_reason="不属实", polite_reply="感谢您的反馈")
    step(org, d, "judge_valid", "renshi", at(10, 14, 11))
    return cases


def add_discipline(org: Any, kit: Any) -> Any:
    """October's penalty, praise and measures.

    刘强 (GC) gets a tier-2 penalty (警告, 200 yuan, 5 points) approved on 10-21; 孙海 (GC)
    a praise letter on 10-22 that offsets a complaint, 郑伟 (BA) a praise call on 10-23 that
    does not; GC's head writes the month's improvement measures, BA's does not.
    """
    penalty = kit.issued(staff="刘强", by="zhuguan_a", clause="第六条第2款A", now=at(10, 21))
    for name, day, source, offsets in (("孙海", 22, "letter", True), ("郑伟", 23, "call", False)):
        person = org.staff(name)
        db.session.add(
            Commendation(
                staff=person,
                department_id=person.department_id,
                commended_on=date(2026, 10, day),
                source=source,
                content=f"{name}服务热情周到",
                offsets_complaint=offsets,
            )
        )
    db.session.add(
        DepartmentMeasure(
            department=org.dept("GC"),
            period_kind="month",
            period_start=date(2026, 10, 1),
            text=MEASURE_GC,
            author_id=org.user("zhuguan_a").id,
        )
    )
    db.session.commit()
    return penalty
