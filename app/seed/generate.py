"""Bulk generator of realistic history for load tests: ``flask --app app demo generate``.

Writes complaints with their customers, events and deadlines in bulk (PostgreSQL
COPY, SQLite executemany), consistent with the lifecycle: closed cases carry
every stage time, open ones stop at a random stage with running clocks. The
organisation (departments, staff, users, reference data, rules) must exist or is
created as in the demo.
"""

from __future__ import annotations

import io
import logging
import random
import time
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.documents import numbering
from app.models import (
    Category,
    Channel,
    Complaint,
    ComplaintEvent,
    Counter,
    Customer,
    Deadline,
    Department,
    Level,
    Staff,
)
from app.time_limits import sla
from app.time_limits.calendar import WorkCalendar
from app.time_limits.deadlines import next_check, resolve_rule, schedule
from app.timeutil import LOCAL_TZ, UTC, utcnow

log = logging.getLogger(__name__)

STEPS = [
    ("judge_valid", "registered", "judged", "judged_at"),
    ("dispatch", "judged", "dispatched", "dispatched_at"),
    ("start_investigation", "dispatched", "investigating", "investigation_started_at"),
    ("propose_plan", "investigating", "planned", "planned_at"),
    ("reply", "planned", "replied", "replied_at"),
    ("feed_back", "replied", "fed_back", "fed_back_at"),
    ("follow_up", "fed_back", "followed_up", "followed_up_at"),
    ("close", "followed_up", "closed", "closed_at"),
    ("archive", "closed", "archived", "archived_at"),
]
OPEN_STOPS = ["registered", "judged", "dispatched", "investigating", "planned", "replied", "fed_back", "followed_up"]
CONTENTS = [
    "电梯停运多日无人维修",
    "楼道垃圾未及时清运",
    "保安态度恶劣",
    "物业费账单错误",
    "报修后迟迟无人上门",
    "客服电话无人接听",
    "地下车库积水",
    "绿化带杂草丛生",
    "门禁系统故障",
    "夜间噪音无人处理",
]
COMPLAINT_COLUMNS = [
    "is_repeat",
    "repeat_of_id",
    "id",
    "number",
    "received_at",
    "registered_at",
    "channel_id",
    "customer_id",
    "subject",
    "content",
    "customer_demand",
    "category_id",
    "level_id",
    "department_id",
    "first_responder_id",
    "status",
    "validity",
    "satisfaction",
    "judged_at",
    "dispatched_at",
    "investigation_started_at",
    "planned_at",
    "replied_at",
    "fed_back_at",
    "followed_up_at",
    "closed_at",
    "archived_at",
    "customer_informed_at",
    "investigate_due",
    "reply_due",
    "follow_up_due",
    "next_due_at",
    "overdue",
    "warned",
    "supervised",
    "reopen_count",
    "updated_at",
    "version",
]
EVENT_COLUMNS = ["id", "complaint_id", "at", "actor_id", "action", "from_status", "to_status"]
FOLLOW_UP_COLUMNS = ["complaint_id", "called_by_id", "called_at", "method", "satisfaction", "department_id"]
DEADLINE_COLUMNS = [
    "id",
    "complaint_id",
    "department_id",
    "stage",
    "cycle",
    "rule_id",
    "started_at",
    "due_at",
    "warn_at",
    "escalate_at",
    "extension_minutes",
    "state",
    "met_at",
    "next_check_at",
]


class Sink:
    """Rows buffered per table, written with COPY on PostgreSQL or executemany on SQLite."""

    def __init__(self, session: Session):
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.rows: dict[str, list[tuple[Any, ...]]] = {}
        self.columns: dict[str, list[str]] = {}

    def add(self, table: str, columns: list[str], row: tuple[Any, ...]) -> None:
        self.columns[table] = columns
        self.rows.setdefault(table, []).append(row)

    def flush(self) -> None:
        for table in ("customer", "complaint", "complaint_staff", "complaint_event", "deadline", "follow_up"):
            rows = self.rows.pop(table, None)
            if not rows:
                continue
            columns = self.columns[table]
            if self.postgres:
                buffer = io.StringIO()
                buffer.writelines("\t".join(map(_copy_text, row)) + "\n" for row in rows)
                buffer.seek(0)
                raw = self.session.connection().connection
                with raw.cursor() as cur:
                    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
            else:
                marks = ", ".join("?" for _ in columns)
                raw = self.session.connection().connection
                raw.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    [tuple(_sqlite(v) for v in row) for row in rows],
                )


def _copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime):
        return value.isoformat()
    text_value = str(value)
    if "\\" in text_value or "\t" in text_value or "\n" in text_value or "\r" in text_value:
        text_value = text_value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text_value


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value


def _next_id(session: Session, model: type) -> int:
    return int(session.scalar(select(func.coalesce(func.max(model.id), 0))) or 0) + 1


def _office_time(rng: random.Random, day: datetime) -> datetime:
    local = day.astimezone(LOCAL_TZ).replace(
        hour=rng.choice([8, 9, 9, 10, 10, 11, 13, 14, 14, 15, 15, 16, 17, 19]),
        minute=rng.randrange(60),
        second=0,
        microsecond=0,
    )
    return local.astimezone(UTC)


def generate(
    session: Session,
    complaints: int,
    days: int = 730,
    open_cases: Optional[int] = None,
    seed: int = 7,
    now: Optional[datetime] = None,
    chunk: int = 20000,
    open_days: float = 4.0,
) -> dict[str, Any]:
    """Add ``complaints`` cases over the last ``days`` days; ``open_cases`` of them still open.

    Open cases were received in the last ``open_days`` days (as in a portal whose cases
    close within days), so their clocks are still running.
    """
    started = time.monotonic()
    now = now or utcnow()
    rng = random.Random(seed)
    if not session.scalar(select(func.count()).select_from(Department)):
        from flask import current_app

        from app.seed import demo

        demo.create_organisation(session, current_app.config["DEMO_PASSWORD"])
        session.commit()
    cal: WorkCalendar = sla.load_calendar(session)
    rules = sla.load_rules(session)
    channels = list(session.scalars(select(Channel.id)))
    categories = list(session.scalars(select(Category.id)))
    levels = list(session.execute(select(Level.id, Level.rank)).all())
    level_weights = [{1: 60, 2: 28, 3: 9, 4: 3}.get(rank, 10) for _id, rank in levels]
    departments = [d for d in session.scalars(select(Department)) if d.code not in ("RX", "ZJ")] or list(
        session.scalars(select(Department))
    )
    staff_by_department: dict[int, list[int]] = {}
    for person in session.scalars(select(Staff)):
        staff_by_department.setdefault(person.department_id, []).append(person.id)
    head_user = {d.id: (d.head.user_id if d.head is not None else None) for d in departments}
    from flask_appbuilder.security.sqla.models import User

    users = {u.username: u.id for u in session.scalars(select(User))}
    registrar = users.get("kefu") or next(iter(users.values()), None)
    hr = users.get("renshi") or registrar
    open_cases = complaints // 10 if open_cases is None else min(open_cases, complaints)
    open_after = complaints - open_cases  # the newest cases are the open ones

    ids = {
        "complaint": _next_id(session, Complaint),
        "customer": _next_id(session, Customer),
        "event": _next_id(session, ComplaintEvent),
        "deadline": _next_id(session, Deadline),
    }
    day_counters: dict[str, int] = {
        c.period: c.value for c in session.scalars(select(Counter).where(Counter.kind == "complaint"))
    }
    # Received times, oldest first, so numbering follows registration order; the
    # newest ``open_cases`` stay open.
    span = timedelta(days=days)
    recent = timedelta(days=open_days)
    closed_instants = [now - recent - (span - recent) * (rng.random() ** 0.8) for _ in range(open_after)]
    open_instants = [now - recent * rng.random() for _ in range(open_cases)]
    instants = sorted(closed_instants) + sorted(open_instants)
    sink = Sink(session)
    plans: dict[tuple[datetime, int], Any] = {}  # investigate and reply share their start
    customers: list[int] = []
    last_complaint: dict[int, int] = {}
    counts = {"complaints": 0, "events": 0, "deadlines": 0, "customers": 0}
    for index, day in enumerate(instants):
        received = _office_time(rng, day) if index < open_after else day.replace(microsecond=0)
        if received > now - timedelta(minutes=5):
            received = now - timedelta(minutes=5 + rng.randrange(600))
        registered = received + timedelta(minutes=rng.randint(1, 40))
        department = rng.choice(departments)
        level_id = rng.choices([lv[0] for lv in levels], weights=level_weights)[0]
        channel_id = rng.choice(channels)
        repeat_of = None
        if customers and rng.random() < 0.15:
            customer_id = rng.choice(customers[-5000:])
            repeat_of = last_complaint.get(customer_id)
        else:
            customer_id = ids["customer"]
            ids["customer"] += 1
            customers.append(customer_id)
            phone = "1" + rng.choice("3578") + f"{rng.randrange(10**9):09d}"
            sink.add(
                "customer",
                ["id", "name", "phone", "created_at"],
                (customer_id, "客户" + str(customer_id), phone, registered),
            )
            counts["customers"] += 1
        key = registered.astimezone(LOCAL_TZ).strftime("%Y%m%d")
        day_counters[key] = day_counters.get(key, 0) + 1
        complaint_id = ids["complaint"]
        ids["complaint"] += 1
        stop = rng.choice(OPEN_STOPS) if index >= open_after else ("closed" if rng.random() < 0.3 else "archived")
        invalid = stop in ("closed", "archived") and rng.random() < 0.1
        row = dict.fromkeys(COMPLAINT_COLUMNS)
        content = rng.choice(CONTENTS)
        row.update(
            id=complaint_id,
            number=numbering.complaint_number(registered.astimezone(LOCAL_TZ).date(), day_counters[key]),
            received_at=received,
            registered_at=registered,
            channel_id=channel_id,
            customer_id=customer_id,
            subject=content,
            content=f"{content}，请尽快处理。",
            customer_demand="尽快处理并答复",
            category_id=rng.choice(categories),
            level_id=level_id,
            department_id=department.id,
            first_responder_id=registrar,
            status="registered",
            overdue=False,
            warned=False,
            supervised=False,
            reopen_count=0,
            version=1,
            is_repeat=repeat_of is not None,
            repeat_of_id=repeat_of,
        )
        last_complaint[customer_id] = complaint_id
        at = registered
        events = [(registered, registrar, "register", None, "registered")]
        if invalid:
            at += timedelta(minutes=rng.randint(20, 300))
            row.update(status="closed", validity="invalid", judged_at=at, closed_at=at)
            events.append((at, hr, "judge_invalid", "registered", "closed"))
            if stop == "archived":
                at += timedelta(days=rng.randint(1, 10))
                row.update(status="archived", archived_at=at)
                events.append((at, hr, "archive", "closed", "archived"))
        else:
            for action, before, after, stamp in STEPS:
                if row["status"] == stop:
                    break
                step_at = at + timedelta(minutes=rng.choice([10, 20, 30, 45, 60, 90, 120, 180, 300, 600]))
                if step_at >= now:
                    break
                at = step_at
                actor = (
                    head_user.get(department.id)
                    if action in ("start_investigation", "propose_plan", "reply", "feed_back")
                    else hr
                )
                row[stamp] = at
                row["status"] = after
                if action == "judge_valid":
                    row["validity"] = "valid"
                if action == "follow_up":
                    row["satisfaction"] = rng.choices(
                        ["satisfied", "basically_satisfied", "unsatisfied"], weights=[70, 24, 6]
                    )[0]
                    sink.add(
                        "follow_up",
                        FOLLOW_UP_COLUMNS,
                        (complaint_id, hr, at, "phone", row["satisfaction"], department.id),
                    )
                events.append((at, actor, action, before, after))
        row["updated_at"] = at
        if row["closed_at"] is not None and row["validity"] != "invalid":
            row["customer_informed_at"] = row["closed_at"]  # 首问负责制: told before closing
        # Clocks of the three main stages.
        running = []
        for stage, start, met in (
            ("investigate", received, row["investigation_started_at"]),
            ("reply", received, row["replied_at"]),
            ("follow_up", row["replied_at"], row["followed_up_at"]),
        ):
            if start is None:
                continue
            rule = resolve_rule(rules, stage, level_id, channel_id)
            if rule is None:
                continue
            plan = plans.get((start, rule.id))
            if plan is None:
                plan = plans[(start, rule.id)] = schedule(cal, rule, start)
            finished = row["status"] in ("closed", "archived")
            state = "met" if met else ("cancelled" if finished else "open")
            if invalid:
                state = "cancelled"
            check = (
                next_check(plan.warn_at, False, plan.due_at, False, plan.escalate_at, False)
                if state == "open"
                else None
            )
            sink.add(
                "deadline",
                DEADLINE_COLUMNS,
                (
                    ids["deadline"],
                    complaint_id,
                    department.id,
                    stage,
                    1,
                    rule.id,
                    start,
                    plan.due_at,
                    plan.warn_at,
                    plan.escalate_at,
                    0,
                    state,
                    met,
                    check,
                ),
            )
            ids["deadline"] += 1
            counts["deadlines"] += 1
            row[{"investigate": "investigate_due", "reply": "reply_due", "follow_up": "follow_up_due"}[stage]] = (
                plan.due_at
            )
            if state == "open":
                running.append(plan.due_at)
        if running:
            row["next_due_at"] = min(running)
        sink.add("complaint", COMPLAINT_COLUMNS, tuple(row[c] for c in COMPLAINT_COLUMNS))
        subjects = staff_by_department.get(department.id) or []
        if subjects and rng.random() < 0.15:
            sink.add("complaint_staff", ["complaint_id", "staff_id"], (complaint_id, rng.choice(subjects)))
        for ev_at, actor, action, before, after in events:
            sink.add(
                "complaint_event", EVENT_COLUMNS, (ids["event"], complaint_id, ev_at, actor, action, before, after)
            )
            ids["event"] += 1
            counts["events"] += 1
        counts["complaints"] += 1
        if counts["complaints"] % chunk == 0:
            plans.clear()
            sink.flush()
            session.commit()
            log.info("generated %d complaints (%.0f s)", counts["complaints"], time.monotonic() - started)
    sink.flush()
    _store_counters(session, day_counters)
    if sink.postgres:
        for table, column in (("complaint", "id"), ("customer", "id"), ("complaint_event", "id"), ("deadline", "id")):
            session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                    f"(SELECT COALESCE(MAX({column}), 1) FROM {table}))"
                )
            )
    session.commit()
    if sink.postgres:
        session.execute(text("ANALYZE"))
        session.commit()
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts


def _store_counters(session: Session, day_counters: dict[str, int]) -> None:
    existing = {c.period: c for c in session.scalars(select(Counter).where(Counter.kind == "complaint"))}
    for period, value in day_counters.items():
        if period in existing:
            existing[period].value = max(existing[period].value, value)
        else:
            session.add(Counter(kind="complaint", period=period, value=value))
    session.flush()
