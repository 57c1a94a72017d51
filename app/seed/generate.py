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
import multiprocessing
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

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
from app.seed import demo
from app.seed.worktime import TabledCalendar
from app.time_limits import sla
from app.time_limits.calendar import WorkCalendar
from app.time_limits.deadlines import next_check, resolve_rule
from app.timeutil import LOCAL_TZ, UTC, utcnow

log = logging.getLogger(__name__)
_TAB = "\t"

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
    "head_named",
    "supervised",
    "reopen_count",
    "updated_at",
    "version",
]
EVENT_COLUMNS = ["id", "complaint_id", "at", "actor_id", "action", "from_status", "to_status"]
FOLLOW_UP_COLUMNS = ["complaint_id", "called_by_id", "called_at", "method", "satisfaction", "department_id"]
DUE_COLUMNS = {"investigate": "investigate_due", "reply": "reply_due", "follow_up": "follow_up_due"}
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
        self.superuser: Optional[bool] = None
        self.rows: dict[str, list[tuple[Any, ...]]] = {}
        self.columns: dict[str, list[str]] = {}

    def add(self, table: str, columns: list[str], row: tuple[Any, ...]) -> None:
        self.columns[table] = columns
        self.rows.setdefault(table, []).append(row)

    def _skip_foreign_key_checks(self) -> None:
        """Bulk load without PostgreSQL's per-row foreign-key triggers (superuser only), for the
        current transaction only (SET LOCAL: no pooled connection keeps it).

        Every id the generator writes is one it created before or read from the
        organisation, so the checks cost time (a third of the load) and find nothing.
        """
        if self.superuser is None:
            self.superuser = bool(
                self.session.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
            )
        if self.superuser:
            self.session.execute(text("SET LOCAL session_replication_role = replica"))

    def _copy(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        """COPY in text format with ``str()`` of each value: every text the generator writes is
        free of tabs, newlines and backslashes, None is the NULL marker, True/False and
        ``str(datetime)`` are valid PostgreSQL input."""
        buffer = io.StringIO()
        buffer.writelines([_TAB.join(map(str, row)) + "\n" for row in rows])
        buffer.seek(0)
        raw = self.session.connection().connection
        with raw.cursor() as cur:
            cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (NULL 'None')", buffer)

    def flush(self) -> None:
        if self.postgres and self.rows:
            self._skip_foreign_key_checks()
        for table in ("customer", "complaint", "complaint_staff", "complaint_event", "deadline", "follow_up"):
            rows = self.rows.pop(table, None)
            if not rows:
                continue
            columns = self.columns[table]
            if self.postgres:
                self._copy(table, columns, rows)
            else:
                marks = ", ".join("?" for _ in columns)
                raw = self.session.connection().connection
                raw.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    [tuple(_sqlite(v) for v in row) for row in rows],
                )


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


@dataclass
class _Organisation:
    """The reference data every generated case draws from."""

    cal: WorkCalendar
    rules: Any
    channels: list[int]
    categories: list[int]
    levels: list[Any]
    level_weights: list[int]
    departments: list[Department]
    staff_by_department: dict[int, list[int]]
    head_user: dict[int, Optional[int]]
    registrar: Optional[int]
    hr: Optional[int]
    head_staff: dict[int, Optional[int]] = field(default_factory=dict)  # department -> its head
    clock: Any = None  # the calendar the clocks are scheduled on (a TabledCalendar over the period)
    rules_by_key: dict[tuple[str, Any, Any], tuple[Any, Any]] = field(default_factory=dict)

    def rule(self, stage: str, level_id: Any, channel_id: Any) -> tuple[Any, Any]:
        """The rule of a stage for a level and channel, and its id (resolved once per combination)."""
        key = (stage, level_id, channel_id)
        found = self.rules_by_key.get(key)
        if found is None:
            rule = resolve_rule(self.rules, stage, level_id, channel_id)
            found = self.rules_by_key[key] = (rule, rule.id if rule is not None else None)
        return found


@dataclass
class _Run:
    """What the generator carries from one case to the next: next ids, counters, buffered rows."""

    sink: Sink
    ids: dict[str, int]
    day_counters: dict[str, int]
    plans: dict[tuple[datetime, int], Any] = field(default_factory=dict)  # investigate and reply share their start
    customers: list[int] = field(default_factory=list)
    last_complaint: dict[int, int] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {"complaints": 0, "events": 0, "deadlines": 0, "customers": 0}
    )

    def take_id(self, kind: str) -> int:
        value = self.ids[kind]
        self.ids[kind] += 1
        return value


def generate(
    session: Session,
    complaints: int,
    days: int = 730,
    open_cases: Optional[int] = None,
    seed: int = 7,
    now: Optional[datetime] = None,
    chunk: int = 20000,
    open_days: Optional[float] = None,
    workers: Optional[int] = None,
) -> dict[str, Any]:
    """Add ``complaints`` cases over the last ``days`` days; ``open_cases`` of them still open.

    The open cases are the newest arrivals (or, with ``open_days``, received in the last
    ``open_days`` days), so their clocks are still running. On PostgreSQL a large run is
    split in two halves of the period written by two processes (``workers``), each
    with its own ranges of ids and its own days, so that no number or id can collide.
    """
    started = time.monotonic()
    now = now or utcnow()
    rng = random.Random(seed)
    _ensure_organisation(session)
    org = _load_organisation(session)
    open_cases = complaints // 10 if open_cases is None else min(open_cases, complaints)
    open_after = complaints - open_cases  # the newest cases are the open ones
    run = _start_run(session)
    instants = _received_instants(rng, now, days, open_days, open_after, open_cases)
    if instants:
        first = instants[0].astimezone(LOCAL_TZ).date() - timedelta(days=1)
        org.clock = TabledCalendar(org.cal, first, now.astimezone(LOCAL_TZ).date() + timedelta(days=400))
    if workers is None:
        workers = 2 if run.sink.postgres and complaints >= 100_000 and (os.cpu_count() or 1) > 1 else 1
    parts = _parts(instants, open_after, run.ids, workers)
    job = _Job(org, now, instants, open_after, chunk, started, seed)
    if len(parts) == 1:
        results = [_generate_part(job, parts[0], run, rng)]
    else:
        results = _generate_in_processes(session, job, parts, run.day_counters)
    for counters, counts in results:
        for period, value in counters.items():
            run.day_counters[period] = max(run.day_counters.get(period, 0), value)
        for key, value in counts.items():
            run.counts[key] += value
    _finish(session, run)
    counts = run.counts
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts


@dataclass
class _Job:
    """What every part of a run shares."""

    org: _Organisation
    now: datetime
    instants: list[datetime]
    open_after: int
    chunk: int
    started: float
    seed: int


def _parts(
    instants: list[datetime], open_after: int, ids: dict[str, int], workers: int
) -> list[tuple[int, int, dict[str, int]]]:
    """(first index, end index, first ids) of each part: split at a local day boundary among
    the closed cases (received in office hours, registered the same day), ids in disjoint
    ranges sized by what a case can write at most (one customer, ten events, three clocks)."""
    split = len(instants) // 2
    while 0 < split < open_after and _local_day(instants[split - 1]) == _local_day(instants[split]):
        split += 1
    if workers < 2 or not 0 < split < open_after:
        return [(0, len(instants), dict(ids))]
    second = {
        "complaint": ids["complaint"] + split,
        "customer": ids["customer"] + split,
        "event": ids["event"] + 10 * split,
        "deadline": ids["deadline"] + 3 * split,
    }
    return [(0, split, dict(ids)), (split, len(instants), second)]


def _local_day(instant: datetime) -> Any:
    return instant.astimezone(LOCAL_TZ).date()


def _generate_part(
    job: _Job, part: tuple[int, int, dict[str, int]], run: _Run, rng: random.Random
) -> tuple[dict[str, int], dict[str, int]]:
    """Write the cases of one part in committed chunks; its day counters and counts."""
    begin, end, ids = part
    run.ids = dict(ids)
    session = run.sink.session
    for index in range(begin, end):
        _add_case(run, job.org, rng, job.now, job.instants[index], still_open=index >= job.open_after)
        if run.counts["complaints"] % job.chunk == 0:
            run.plans.clear()
            run.sink.flush()
            session.commit()
            log.info("generated %d complaints (%.0f s)", run.counts["complaints"], time.monotonic() - job.started)
    run.sink.flush()
    session.commit()
    counts = dict(run.counts)
    run.counts = dict.fromkeys(counts, 0)
    return dict(run.day_counters), counts


_FORKED: dict[str, Any] = {}  # what a forked worker inherits: the job and its parts


def _generate_in_processes(
    session: Session, job: _Job, parts: list[tuple[int, int, dict[str, int]]], day_counters: dict[str, int]
) -> list[tuple[dict[str, int], dict[str, int]]]:
    """Each part in a forked process with its own connection (the job is inherited, not pickled)."""
    _FORKED.update(job=job, parts=parts, url=session.get_bind().url, counters=dict(day_counters))
    try:
        with ProcessPoolExecutor(max_workers=len(parts), mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_forked_part, range(len(parts))))
    finally:
        _FORKED.clear()


def _forked_part(index: int) -> tuple[dict[str, int], dict[str, int]]:
    job: _Job = _FORKED["job"]
    rng = random.Random(job.seed * 1000 + index)
    engine = create_engine(_FORKED["url"], poolclass=NullPool)
    try:
        with Session(engine) as session:
            run = _Run(Sink(session), {}, dict(_FORKED["counters"]))
            return _generate_part(job, _FORKED["parts"][index], run, rng)
    finally:
        engine.dispose()


def _ensure_organisation(session: Session) -> None:
    """Create the demo organisation when the database has no department yet."""
    if not session.scalar(select(func.count()).select_from(Department)):
        demo.create_organisation(session, current_app.config["DEMO_PASSWORD"])
        session.commit()


def _load_organisation(session: Session) -> _Organisation:
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
    users = {u.username: u.id for u in session.scalars(select(User))}
    registrar = users.get("kefu") or next(iter(users.values()), None)
    hr = users.get("renshi") or registrar
    return _Organisation(
        cal,
        rules,
        channels,
        categories,
        levels,
        level_weights,
        departments,
        staff_by_department,
        head_user,
        registrar,
        hr,
        head_staff={d.id: d.head_id for d in departments},
    )


def _start_run(session: Session) -> _Run:
    ids = {
        "complaint": _next_id(session, Complaint),
        "customer": _next_id(session, Customer),
        "event": _next_id(session, ComplaintEvent),
        "deadline": _next_id(session, Deadline),
    }
    day_counters: dict[str, int] = {
        c.period: c.value for c in session.scalars(select(Counter).where(Counter.kind == "complaint"))
    }
    return _Run(Sink(session), ids, day_counters)


def _received_instants(
    rng: random.Random, now: datetime, days: int, open_days: Optional[float], closed: int, still_open: int
) -> list[datetime]:
    """Received times, oldest first, so numbering follows registration order; the newest stay open.

    One arrival stream over the whole period, slowly growing towards today (the density
    of an age ``a`` goes as ``a ** -0.2``), so the open cases are simply the newest
    arrivals: with 10% open over two years they span the last ~6 weeks, most of them
    recent. ``open_days`` instead packs the open cases into the last ``open_days`` days.
    """
    span = timedelta(days=days)
    if open_days is None:
        return sorted(now - span * (rng.random() ** 1.25) for _ in range(closed + still_open))
    recent = timedelta(days=open_days)
    closed_instants = [now - recent - (span - recent) * (rng.random() ** 0.8) for _ in range(closed)]
    open_instants = [now - recent * rng.random() for _ in range(still_open)]
    return sorted(closed_instants) + sorted(open_instants)


def _add_case(
    run: _Run, org: _Organisation, rng: random.Random, now: datetime, day: datetime, still_open: bool
) -> None:
    """Buffer one complaint with its customer, events, clocks and named staff."""
    arrival = _arrival(run, org, rng, now, day, still_open)
    stop = rng.choice(OPEN_STOPS) if still_open else ("closed" if rng.random() < 0.3 else "archived")
    invalid = stop in ("closed", "archived") and rng.random() < 0.1
    content = rng.choice(CONTENTS)
    row = dict.fromkeys(COMPLAINT_COLUMNS)
    row.update(
        arrival,
        subject=content,
        content=f"{content}，请尽快处理。",
        customer_demand="尽快处理并答复",
        category_id=rng.choice(org.categories),
        first_responder_id=org.registrar,
        status="registered",
        overdue=False,
        warned=False,
        supervised=False,
        reopen_count=0,
        version=1,
    )
    run.last_complaint[row["customer_id"]] = row["id"]
    if invalid:
        events = _judge_invalid(row, org, rng, stop)
    else:
        events = _walk_lifecycle(run, row, org, rng, now, row["department_id"], stop)
    row["updated_at"] = events[-1][0]
    if row["closed_at"] is not None and row["validity"] != "invalid":
        row["customer_informed_at"] = row["closed_at"]  # 首问负责制: told before closing
    _add_deadlines(run, row, org, invalid)
    subjects = org.staff_by_department.get(row["department_id"]) or []
    subject = rng.choice(subjects) if subjects and rng.random() < 0.15 else None
    row["head_named"] = subject is not None and subject == org.head_staff.get(row["department_id"])
    run.sink.add("complaint", COMPLAINT_COLUMNS, tuple(row[c] for c in COMPLAINT_COLUMNS))
    if subject is not None:
        run.sink.add("complaint_staff", ["complaint_id", "staff_id"], (row["id"], subject))
    _add_events(run, row["id"], events)
    run.counts["complaints"] += 1


def _arrival(
    run: _Run, org: _Organisation, rng: random.Random, now: datetime, day: datetime, still_open: bool
) -> dict[str, Any]:
    """When and how the case came in, from whom, and its number: the first columns of its row."""
    received = day.replace(microsecond=0) if still_open else _office_time(rng, day)
    if received > now - timedelta(minutes=5):
        received = now - timedelta(minutes=5 + rng.randrange(600))
    registered = received + timedelta(minutes=rng.randint(1, 40))
    department = rng.choice(org.departments)
    level_id = rng.choices([lv[0] for lv in org.levels], weights=org.level_weights)[0]
    channel_id = rng.choice(org.channels)
    customer_id, repeat_of = _pick_customer(run, rng, registered)
    key = registered.astimezone(LOCAL_TZ).strftime("%Y%m%d")
    run.day_counters[key] = run.day_counters.get(key, 0) + 1
    return {
        "id": run.take_id("complaint"),
        "number": numbering.complaint_number(registered.astimezone(LOCAL_TZ).date(), run.day_counters[key]),
        "received_at": received,
        "registered_at": registered,
        "channel_id": channel_id,
        "customer_id": customer_id,
        "level_id": level_id,
        "department_id": department.id,
        "is_repeat": repeat_of is not None,
        "repeat_of_id": repeat_of,
    }


def _pick_customer(run: _Run, rng: random.Random, registered: datetime) -> tuple[int, Optional[int]]:
    """A returning customer (15%: the case repeats their last one) or a new one; (customer, repeat of)."""
    if run.customers and rng.random() < 0.15:
        customer_id = rng.choice(run.customers[-5000:])
        return customer_id, run.last_complaint.get(customer_id)
    customer_id = run.take_id("customer")
    run.customers.append(customer_id)
    phone = "1" + rng.choice("3578") + f"{rng.randrange(10**9):09d}"
    run.sink.add(
        "customer",
        ["id", "name", "phone", "created_at"],
        (customer_id, "客户" + str(customer_id), phone, registered),
    )
    run.counts["customers"] += 1
    return customer_id, None


def _judge_invalid(row: dict[str, Any], org: _Organisation, rng: random.Random, stop: str) -> list[tuple[Any, ...]]:
    """Close the case as invalid (and archive it when that is where it stops); its events."""
    at = row["registered_at"]
    events = [(at, org.registrar, "register", None, "registered")]
    at += timedelta(minutes=rng.randint(20, 300))
    row.update(status="closed", validity="invalid", judged_at=at, closed_at=at)
    events.append((at, org.hr, "judge_invalid", "registered", "closed"))
    if stop == "archived":
        at += timedelta(days=rng.randint(1, 10))
        row.update(status="archived", archived_at=at)
        events.append((at, org.hr, "archive", "closed", "archived"))
    return events


def _walk_lifecycle(
    run: _Run, row: dict[str, Any], org: _Organisation, rng: random.Random, now: datetime, department_id: int, stop: str
) -> list[tuple[Any, ...]]:
    """Take the valid case through its steps up to ``stop`` (never past ``now``); its events."""
    at = row["registered_at"]
    events = [(at, org.registrar, "register", None, "registered")]
    for action, before, after, stamp in STEPS:
        if row["status"] == stop:
            break
        step_at = at + timedelta(minutes=rng.choice([10, 20, 30, 45, 60, 90, 120, 180, 300, 600]))
        if step_at >= now:
            break
        at = step_at
        actor = (
            org.head_user.get(department_id)
            if action in ("start_investigation", "propose_plan", "reply", "feed_back")
            else org.hr
        )
        row[stamp] = at
        row["status"] = after
        if action == "judge_valid":
            row["validity"] = "valid"
        if action == "follow_up":
            row["satisfaction"] = rng.choices(["satisfied", "basically_satisfied", "unsatisfied"], weights=[70, 24, 6])[
                0
            ]
            run.sink.add(
                "follow_up", FOLLOW_UP_COLUMNS, (row["id"], org.hr, at, "phone", row["satisfaction"], department_id)
            )
        events.append((at, actor, action, before, after))
    return events


def _add_deadlines(run: _Run, row: dict[str, Any], org: _Organisation, invalid: bool) -> None:
    """The clocks of the three main stages, and the case's due times."""
    received = row["received_at"]
    running = []
    for stage, start, met in (
        ("investigate", received, row["investigation_started_at"]),
        ("reply", received, row["replied_at"]),
        ("follow_up", row["replied_at"], row["followed_up_at"]),
    ):
        if start is None:
            continue
        rule, rule_id = org.rule(stage, row["level_id"], row["channel_id"])
        if rule is None:
            continue
        plan = run.plans.get((start, rule_id))
        if plan is None:
            plan = run.plans[(start, rule_id)] = org.clock.plan(rule, start)
        finished = row["status"] in ("closed", "archived")
        state = "met" if met else ("cancelled" if finished else "open")
        if invalid:
            state = "cancelled"
        check = (
            next_check(plan.warn_at, False, plan.due_at, False, plan.escalate_at, False) if state == "open" else None
        )
        run.sink.add(
            "deadline",
            DEADLINE_COLUMNS,
            (
                run.take_id("deadline"),
                row["id"],
                row["department_id"],
                stage,
                1,
                rule_id,
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
        run.counts["deadlines"] += 1
        row[DUE_COLUMNS[stage]] = plan.due_at
        if state == "open":
            running.append(plan.due_at)
    if running:
        row["next_due_at"] = min(running)


def _add_events(run: _Run, complaint_id: int, events: list[tuple[Any, ...]]) -> None:
    for ev_at, actor, action, before, after in events:
        run.sink.add(
            "complaint_event",
            EVENT_COLUMNS,
            (run.take_id("event"), complaint_id, ev_at, actor, action, before, after),
        )
        run.counts["events"] += 1


def _finish(session: Session, run: _Run) -> None:
    """Write the day counters, move PostgreSQL's sequences past the new ids."""
    _store_counters(session, run.day_counters)
    if run.sink.postgres:
        for table, column in (("complaint", "id"), ("customer", "id"), ("complaint_event", "id"), ("deadline", "id")):
            session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                    f"(SELECT COALESCE(MAX({column}), 1) FROM {table}))"
                )
            )
    session.commit()
    if run.sink.postgres:
        session.execute(text("ANALYZE"))
        session.commit()


def _store_counters(session: Session, day_counters: dict[str, int]) -> None:
    existing = {c.period: c for c in session.scalars(select(Counter).where(Counter.kind == "complaint"))}
    for period, value in day_counters.items():
        if period in existing:
            existing[period].value = max(existing[period].value, value)
        else:
            session.add(Counter(kind="complaint", period=period, value=value))
    session.flush()
