"""The deadline scan: warnings, overdue marks and escalations, each exactly once.

Cases are registered with a receipt time in the past; the jobs then run at chosen
instants (``jobs.run_due`` in-process and the ``flask jobs run --now`` CLI), and
what users see is read back through the REST API: the case's deadline fields and
its timeline.

Default rules: investigate 1 working day, reply 2 working days from receipt,
warnings at 90 %, escalation one working day after the due time. A case received
Tue 2026-09-29 10:00 therefore has:

    investigate  warn Wed 30 Sep 09:15  due Wed 30 Sep 10:00  escalate Thu 8 Oct 10:00
    reply        warn Wed 30 Sep 17:30  due Thu 8 Oct 10:00   escalate Fri 9 Oct 10:00
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sla_support import (
    act,
    at,
    cli_run,
    get_case,
    get_timeline,
    iso_local,
    sla_events,
    take,
    travel,
)
from sqlalchemy import func, select
from statement_support import recorded

from app import db
from app.models import ComplaintEvent, JobRun, Notification

RECEIVED = at(2026, 9, 29, 10, 0)  # Tuesday, in office hours


def _sla_event_count() -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(ComplaintEvent)
        .where(ComplaintEvent.action.in_(("warning", "overdue", "escalation")))
    )


def test_successive_instants_record_each_event_exactly_once(app, api, make_complaint):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    hr = api("renshi")
    case = get_case(hr, c.id)
    assert iso_local(case["investigate_due"]) == at(2026, 9, 30, 10, 0)
    assert iso_local(case["reply_due"]) == at(2026, 10, 8, 10, 0)
    assert case["follow_up_due"] is None
    assert case["overdue"] is False and case["warned"] is False and case["supervised"] is False
    deadlines = {d["stage"]: d for d in get_timeline(hr, c.id)["deadlines"]}
    assert set(deadlines) == {"investigate", "reply"}, "a 一般 case has no major-case chain"
    assert iso_local(deadlines["investigate"]["warn_at"]) == at(2026, 9, 30, 9, 15)
    assert iso_local(deadlines["reply"]["warn_at"]) == at(2026, 9, 30, 17, 30)

    steps = [
        (at(2026, 9, 30, 9, 14), Counter(), dict(warned=False, overdue=False)),
        (at(2026, 9, 30, 9, 16), Counter({("investigate", "warning"): 1}), dict(warned=True, overdue=False)),
        (at(2026, 9, 30, 10, 0), Counter({("investigate", "overdue"): 1}), dict(overdue=True)),
        (at(2026, 9, 30, 17, 31), Counter({("reply", "warning"): 1}), dict(overdue=True)),
        (
            at(2026, 10, 8, 10, 1),
            Counter({("investigate", "escalation"): 1, ("reply", "overdue"): 1}),
            dict(overdue=True, supervised=True),
        ),
        (at(2026, 10, 9, 10, 1), Counter({("reply", "escalation"): 1}), dict(overdue=True, supervised=True)),
    ]
    seen: Counter = Counter()
    for when, new, flags in steps:
        for _ in range(2):  # the same instant twice adds nothing the second time
            travel(app, when)
            got = sla_events(get_timeline(hr, c.id)["result"])
            assert got == seen + new, (when, got)
        seen += new
        case = get_case(hr, c.id)
        for name, value in flags.items():
            assert case[name] is value, (when, name, case[name])
    assert all(n == 1 for n in seen.values()) and len(seen) == 6
    # Deadlines stay where they were; the escalation did not move anything.
    case = get_case(hr, c.id)
    assert iso_local(case["investigate_due"]) == at(2026, 9, 30, 10, 0)
    assert iso_local(case["reply_due"]) == at(2026, 10, 8, 10, 0)
    # Every SLA entry names its stage and the instant it was scheduled for.
    for e in get_timeline(hr, c.id)["result"]:
        if e["action"] in ("warning", "overdue", "escalation"):
            assert e["actor"] is None and e["note"]
            assert e["data"]["stage"] in ("investigate", "reply")
            assert e["data"]["scheduled_at"]
    # A week later nothing is left to do.
    travel(app, at(2026, 10, 20, 12, 0))
    assert sla_events(get_timeline(hr, c.id)["result"]) == seen


def test_long_downtime_catches_up_once(app, api, make_complaint, org):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    hr = api("renshi")
    travel(app, at(2026, 11, 2, 9, 0))  # a month of scheduler downtime
    got = sla_events(get_timeline(hr, c.id)["result"])
    assert got == Counter({(s, k): 1 for s in ("investigate", "reply") for k in ("warning", "overdue", "escalation")})
    case = get_case(hr, c.id)
    assert case["overdue"] is True and case["supervised"] is True
    for _ in range(2):
        travel(app, at(2026, 11, 2, 9, 0))
        travel(app, at(2026, 11, 3, 9, 0))
    assert sla_events(get_timeline(hr, c.id)["result"]) == got
    # The people told: overdue and escalation once per deadline and recipient; warnings that
    # are only discovered after the deadline passed tell nobody.
    rows = db.session.execute(
        select(Notification.user_id, Notification.kind, Notification.dedup_key).where(Notification.complaint_id == c.id)
    ).all()
    keys = [r.dedup_key for r in rows if r.kind in ("warning", "overdue", "escalation")]
    assert len(keys) == len(set(keys))
    kinds = Counter(r.kind for r in rows)
    assert kinds["warning"] == 0
    assert kinds["overdue"] >= 2 and kinds["escalation"] >= 2
    gm = org.user("zongjingli").id
    assert {r.kind for r in rows if r.user_id == gm} >= {"escalation"}


def test_meeting_a_stage_in_time_prevents_its_overdue_mark(app, api, make_complaint, org):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    act(app, org, c, "judge_valid", "renshi", at(2026, 9, 29, 14, 0))
    act(app, org, c, "dispatch", "renshi", at(2026, 9, 29, 15, 0))
    act(app, org, c, "start_investigation", "zhuguan_a", at(2026, 9, 30, 9, 50))  # 10 min before due
    hr = api("renshi")
    travel(app, at(2026, 10, 9, 12, 0))
    got = sla_events(get_timeline(hr, c.id)["result"])
    assert ("investigate", "overdue") not in got and ("investigate", "escalation") not in got
    # The investigation warning (09:15) was never seen because no scan ran before 09:50.
    assert ("investigate", "warning") not in got
    assert got == Counter({("reply", "warning"): 1, ("reply", "overdue"): 1, ("reply", "escalation"): 1})
    deadlines = {d["stage"]: d for d in get_timeline(hr, c.id)["deadlines"]}
    assert deadlines["investigate"]["state"] == "met" and deadlines["investigate"]["late"] is False
    assert iso_local(deadlines["investigate"]["met_at"]) == at(2026, 9, 30, 9, 50)


def test_meeting_a_stage_after_the_warning_keeps_the_warning_only(app, api, make_complaint, org):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    hr = api("renshi")
    travel(app, at(2026, 9, 30, 9, 20))
    act(app, org, c, "judge_valid", "renshi", at(2026, 9, 30, 9, 25))
    act(app, org, c, "dispatch", "renshi", at(2026, 9, 30, 9, 30))
    act(app, org, c, "start_investigation", "zhuguan_a", at(2026, 9, 30, 9, 40))
    travel(app, at(2026, 9, 30, 10, 30))
    got = sla_events(get_timeline(hr, c.id)["result"])
    assert got == Counter({("investigate", "warning"): 1})
    case = get_case(hr, c.id)
    assert case["overdue"] is False


def test_api_steps_before_the_due_time_prevent_overdue(app, api, make_complaint):
    """Received just now; HR and the head act through the REST API; the due time then passes."""
    c = make_complaint()
    hr, head = api("renshi"), api("zhuguan_a")
    take(hr, c.id, "judge_valid", validity_reason="属实")
    take(hr, c.id, "dispatch")
    take(head, c.id, "start_investigation")
    case = get_case(hr, c.id)
    due = iso_local(case["investigate_due"])
    travel(app, due + timedelta(minutes=1))
    got = sla_events(get_timeline(hr, c.id)["result"])
    assert ("investigate", "overdue") not in got
    assert get_case(hr, c.id)["overdue"] is False
    reply_due = iso_local(case["reply_due"])
    travel(app, reply_due)
    got = sla_events(get_timeline(hr, c.id)["result"])
    assert got[("reply", "overdue")] == 1 and ("investigate", "overdue") not in got
    assert get_case(hr, c.id)["overdue"] is True


def test_case_received_in_a_holiday_starts_after_it(app, api, make_complaint):
    received = at(2026, 10, 3, 10, 0)  # Saturday inside the National Day holiday
    c = make_complaint(received_at=received, now=received)
    hr = api("renshi")
    case = get_case(hr, c.id)
    assert iso_local(case["investigate_due"]) == at(2026, 10, 8, 18, 0)
    assert iso_local(case["reply_due"]) == at(2026, 10, 9, 18, 0)
    travel(app, at(2026, 10, 7, 23, 59))
    assert sla_events(get_timeline(hr, c.id)["result"]) == Counter()
    travel(app, at(2026, 10, 8, 17, 14))  # warning at 90 %: 09:00 + 405 working minutes = 17:15
    assert sla_events(get_timeline(hr, c.id)["result"]) == Counter()
    travel(app, at(2026, 10, 8, 17, 15))
    assert sla_events(get_timeline(hr, c.id)["result"]) == Counter({("investigate", "warning"): 1})
    travel(app, at(2026, 10, 8, 18, 0))  # due exactly at closing time
    assert sla_events(get_timeline(hr, c.id)["result"])[("investigate", "overdue")] == 1


def test_case_received_on_a_weekend_evening(app, api, make_complaint):
    received = at(2026, 11, 7, 21, 0)  # Saturday evening
    c = make_complaint(received_at=received, now=received)
    case = get_case(api("renshi"), c.id)
    assert iso_local(case["investigate_due"]) == at(2026, 11, 9, 18, 0)
    assert iso_local(case["reply_due"]) == at(2026, 11, 10, 18, 0)


def test_major_case_minute_chain(app, api, make_complaint, org):
    """重大: notify the department in 3 min, report to the leader in 5, to the GM in 10."""
    received = RECEIVED
    idle = make_complaint(level="major", received_at=received, now=received)
    handled = make_complaint(level="major", received_at=received, now=received)
    hr = api("renshi")
    chain = ("notify_department", "report_leader", "report_gm")

    def chain_events(cid):
        return Counter({k: v for k, v in sla_events(get_timeline(hr, cid)["result"]).items() if k[0] in chain})

    def minute(m: int) -> datetime:
        return received + timedelta(minutes=m)

    # The handled case: dispatched at 2 min, reported to the leader at 4 and the GM at 9.
    travel(app, minute(1))
    assert chain_events(idle.id) == Counter()
    act(app, org, handled, "judge_valid", "renshi", minute(1.5))
    act(app, org, handled, "dispatch", "renshi", minute(2))
    travel(app, minute(2.5))  # notify_department warns at 67 % of 3 min
    assert chain_events(idle.id) == Counter({("notify_department", "warning"): 1})
    assert chain_events(handled.id) == Counter()
    travel(app, minute(3))  # due exactly now; report_leader warns at 60 % of 5 min
    assert chain_events(idle.id) == Counter(
        {("notify_department", "warning"): 1, ("notify_department", "overdue"): 1, ("report_leader", "warning"): 1}
    )
    act(app, org, handled, "report_to_leader", "renshi", minute(4), note="电话报告王总")
    travel(app, minute(5))
    assert chain_events(idle.id)[("report_leader", "overdue")] == 1
    assert chain_events(idle.id)[("notify_department", "escalation")] == 1  # 2 min after its due time
    travel(app, minute(7.5))  # report_gm warns at 70 % of 10 min
    assert chain_events(idle.id)[("report_gm", "warning")] == 1
    act(app, org, handled, "report_to_gm", "renshi", minute(9), note="已报告总经理")
    travel(app, minute(10))
    travel(app, minute(10))
    assert chain_events(idle.id)[("report_gm", "overdue")] == 1
    assert chain_events(idle.id)[("report_leader", "escalation")] == 1
    travel(app, minute(15))
    expected = Counter({(s, k): 1 for s in chain for k in ("warning", "overdue", "escalation")})
    assert chain_events(idle.id) == expected
    travel(app, minute(60))
    assert chain_events(idle.id) == expected
    # The handled case met every step of the chain: only the early warnings it had already
    # triggered before acting (report_leader at 3 min, report_gm at 7 min) are on record.
    assert chain_events(handled.id) == Counter({("report_leader", "warning"): 1, ("report_gm", "warning"): 1})
    deadlines = {d["stage"]: d for d in get_timeline(hr, handled.id)["deadlines"]}
    assert all(deadlines[s]["state"] == "met" and not deadlines[s]["late"] for s in chain)
    # The written report is due 24 natural hours after receipt (through the night).
    assert iso_local(deadlines["written_report"]["due_at"]) == at(2026, 9, 30, 10, 0)
    travel(app, at(2026, 9, 30, 10, 0))
    assert sla_events(get_timeline(hr, idle.id)["result"])[("written_report", "overdue")] == 1


def test_major_case_alerts_the_general_manager_on_escalation(app, api, make_complaint, org):
    c = make_complaint(level="urgent", received_at=RECEIVED, now=RECEIVED)
    gm = api("zongjingli")
    travel(app, RECEIVED + timedelta(minutes=6))
    inbox = gm.get("/api/v1/notification/?q=(page_size:100)").json["result"]
    mine = [n for n in inbox if n["complaint_id"] == c.id]
    kinds = Counter(n["kind"] for n in mine)
    assert kinds["major"] == 1  # told when it was registered
    assert kinds["escalation"] == 1  # notify_department escalated at 5 min
    assert all(n["read_at"] is None for n in mine)


def test_digest_only_on_working_days_once_per_day(app, api, make_complaint, org):
    make_complaint(received_at=at(2026, 10, 9, 10, 0), now=at(2026, 10, 9, 10, 0))  # due Sat 10 Oct (调休)

    def digest(when):
        return travel(app, when, only=["daily_digest"])["jobs"]["daily_digest"]

    assert digest(at(2026, 10, 10, 8, 29)) == {"skipped": "not due"}  # 调休 Saturday, too early
    first = digest(at(2026, 10, 10, 8, 30))
    assert first["period"] == "2026-10-10" and first["due_or_late"] == 1 and first["notifications"] >= 2
    assert "already sent" in digest(at(2026, 10, 10, 8, 35))["skipped"]
    assert "already sent" in digest(at(2026, 10, 10, 17, 0))["skipped"]
    assert digest(at(2026, 10, 11, 8, 30)) == {"skipped": "not due"}  # ordinary Sunday
    assert digest(at(2026, 10, 11, 12, 0)) == {"skipped": "not due"}
    assert digest(at(2026, 10, 5, 9, 0)) == {"skipped": "not due"}  # National Day holiday
    second = digest(at(2026, 10, 12, 9, 0))  # Monday (the scheduler was late: still once)
    assert second["period"] == "2026-10-12"
    assert "already sent" in digest(at(2026, 10, 12, 9, 5))["skipped"]
    periods = db.session.scalars(
        select(JobRun.period).where(JobRun.job == "daily_digest").order_by(JobRun.period)
    ).all()
    assert periods == ["2026-10-10", "2026-10-12"]
    hr_inbox = api("renshi").get("/api/v1/notification/?q=(page_size:100)").json["result"]
    assert len([n for n in hr_inbox if n["kind"] == "digest"]) == 2
    head_inbox = api("zhuguan_a").get("/api/v1/notification/?q=(page_size:100)").json["result"]
    head_digests = [n for n in head_inbox if n["kind"] == "digest"]
    assert len(head_digests) == 2  # 工程部 has a case due
    assert any("（已超时）" in (n["body"] or "") for n in head_digests)  # on the Monday it is late
    other_head = api("zhuguan_b").get("/api/v1/notification/?q=(page_size:100)").json["result"]
    assert not [n for n in other_head if n["kind"] == "digest"], "保安部 has nothing due"


def test_cli_time_travel_prints_json_and_is_idempotent(app, api, make_complaint):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    hr = api("renshi")
    summary = cli_run(app, "2026-09-30T10:30:00+08:00")
    assert summary["now"].startswith("2026-09-30T02:30:00")
    scan = summary["jobs"]["deadline_scan"]
    assert scan["warning"] == 1 and scan["overdue"] == 1 and scan["escalation"] == 0
    assert set(summary["jobs"]) >= {"deadline_scan", "deliver_notifications", "daily_digest", "heartbeat"}
    again = cli_run(app, "2026-09-30T10:30:00+08:00")
    assert again["jobs"]["deadline_scan"]["warning"] == 0 and again["jobs"]["deadline_scan"]["overdue"] == 0
    assert "already sent" in again["jobs"]["daily_digest"]["skipped"]
    # Without an offset the time is Asia/Shanghai wall time.
    later = cli_run(app, "2026-10-08T10:00:00")
    assert later["jobs"]["deadline_scan"]["escalation"] == 1 and later["jobs"]["deadline_scan"]["overdue"] == 1
    got = sla_events(get_timeline(hr, c.id)["result"])
    assert got == Counter(
        {
            ("investigate", "warning"): 1,
            ("investigate", "overdue"): 1,
            ("reply", "warning"): 1,
            ("investigate", "escalation"): 1,
            ("reply", "overdue"): 1,
        }
    )
    # In-process and CLI time travel agree: nothing is recorded twice.
    travel(app, at(2026, 10, 8, 10, 0))
    assert sla_events(get_timeline(hr, c.id)["result"]) == got


def test_cli_rejects_a_bad_time(sqlite_app):
    import subprocess

    from sla_support import ROOT, flask_bin, flask_env

    proc = subprocess.run(
        [flask_bin(), "--app", "app", "jobs", "run", "--now", "yesterday"],
        cwd=ROOT,
        env=flask_env(sqlite_app),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "ISO" in proc.stderr


def test_scan_cost_follows_due_clocks_not_cases(app, make_complaint):
    """Clocks not due are not even looked at; a finished scan leaves nothing to re-check."""
    for _ in range(5):
        make_complaint(received_at=RECEIVED, now=RECEIVED)
    first = travel(app, at(2026, 9, 29, 12, 0), only=["deadline_scan"])["jobs"]["deadline_scan"]
    assert first["checked"] == 0
    second = travel(app, at(2026, 9, 30, 10, 0), only=["deadline_scan"])["jobs"]["deadline_scan"]
    assert second["checked"] == 5 and second["warning"] == 5 and second["overdue"] == 5
    third = travel(app, at(2026, 9, 30, 10, 0), only=["deadline_scan"])["jobs"]["deadline_scan"]
    assert third["checked"] == 0
    assert _sla_event_count() == 10


def test_reopened_case_gets_a_fresh_reply_clock(app, api, make_complaint, org):
    """An unsatisfied follow-up reopens the investigation: a second reply clock starts then."""
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    hr = api("renshi")
    act(app, org, c, "judge_valid", "renshi", at(2026, 9, 29, 11, 0))
    act(app, org, c, "dispatch", "renshi", at(2026, 9, 29, 11, 5))
    act(app, org, c, "start_investigation", "zhuguan_a", at(2026, 9, 29, 14, 0))
    act(app, org, c, "propose_plan", "zhuguan_a", at(2026, 9, 30, 9, 0), findings="属实", resolution_plan="维修")
    act(app, org, c, "reply", "zhuguan_a", at(2026, 9, 30, 11, 0), reply_text="已修复")
    case = get_case(hr, c.id)
    assert iso_local(case["follow_up_due"]) == at(2026, 10, 9, 11, 0)  # 2 working days after the reply
    act(app, org, c, "feed_back", "zhuguan_a", at(2026, 9, 30, 15, 0), feedback_note="客户认可")
    act(app, org, c, "follow_up", "renshi", at(2026, 10, 8, 10, 0), satisfaction="unsatisfied", follow_up_note="仍漏水")
    case = get_case(hr, c.id)
    assert case["status"] == "investigating"
    # Thu 8 Oct 10:00 + 2 working days = Sat 10 Oct 10:00 (a 调休 workday).
    assert iso_local(case["reply_due"]) == at(2026, 10, 10, 10, 0)
    replies = sorted(
        (d for d in get_timeline(hr, c.id)["deadlines"] if d["stage"] == "reply"), key=lambda d: d["cycle"]
    )
    assert [(d["cycle"], d["state"]) for d in replies] == [(1, "met"), (2, "open")]
    travel(app, at(2026, 10, 10, 10, 0))
    travel(app, at(2026, 10, 12, 10, 0))  # escalation one working day later
    got = sla_events(get_timeline(hr, c.id)["result"])
    assert got == Counter({("reply", "warning"): 1, ("reply", "overdue"): 1, ("reply", "escalation"): 1})
    cycles = {e["data"]["cycle"] for e in get_timeline(hr, c.id)["result"] if e["action"] in ("overdue", "escalation")}
    assert cycles == {2}
    act(app, org, c, "propose_plan", "zhuguan_a", at(2026, 10, 12, 11, 0), findings="复查", resolution_plan="更换")
    act(app, org, c, "reply", "zhuguan_a", at(2026, 10, 12, 15, 0), reply_text="已更换")
    case = get_case(hr, c.id)
    assert case["overdue"] is False
    assert iso_local(case["follow_up_due"]) == at(2026, 10, 14, 15, 0)
    follow_ups = sorted(
        (d for d in get_timeline(hr, c.id)["deadlines"] if d["stage"] == "follow_up"), key=lambda d: d["cycle"]
    )
    assert [(d["cycle"], d["state"]) for d in follow_ups] == [(1, "met"), (2, "open")]


def test_scan_round_trips_do_not_grow_with_the_clocks_due(app, make_complaint):
    """A pass writes its batch in a few statements, not one per clock or per message (each a round trip
    on PostgreSQL: psycopg2's executemany sends one statement per row)."""
    from sqlalchemy import event

    for _ in range(12):
        make_complaint(received_at=RECEIVED, now=RECEIVED)
    postgres = db.engine.dialect.name == "postgresql"
    trips: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        rows = executemany and postgres and isinstance(parameters, (list, tuple))  # not a multi-row VALUES
        trips.append(len(parameters) if rows else 1)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        result = travel(app, at(2026, 10, 9, 12, 0), only=["deadline_scan"])["jobs"]["deadline_scan"]
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert result["checked"] == 24 and result["escalation"] == 24
    # 16-20 today: a dozen queries and one statement per kind of write (the escalated cases'
    # 督办 flag goes with their other flags); one round trip per clock or message would pass 100.
    assert sum(trips) <= 30, f"{sum(trips)} round trips for 24 clocks"


def _scan_statements(app) -> tuple[dict, list[str]]:
    """The deadline scan of 2026-10-09 12:00 as the job runs it, and every statement it sent (spaces folded)."""
    with recorded() as sent:
        result = travel(app, at(2026, 10, 9, 12, 0), only=["deadline_scan"])["jobs"]["deadline_scan"]
    return result, [" ".join(statement.split()) for statement, _ in sent]


def test_a_scan_batch_reads_the_messages_already_sent_in_one_query(app, make_complaint):
    """Each clock event merges a repeat of a message sent within the digest window; the batch's
    cases' messages are read in one query, not one per case (half of a scan's time at 100k)."""
    for _ in range(12):
        make_complaint(received_at=RECEIVED, now=RECEIVED)
    result, sent = _scan_statements(app)
    reads = [s for s in sent if s.upper().startswith("SELECT") and "FROM notification" in s]
    assert result["checked"] == 24
    assert len(reads) <= 1, f"{len(reads)} reads of the messages sent for one batch of 12 cases"


def test_a_scan_batch_writes_its_cases_and_asks_for_their_heads_once(app, make_complaint):
    """The escalated cases of a batch are marked 督办 (supervised) in one bulk write, not one versioned
    UPDATE per case, and the heads of all the batch's departments are read in one query, not one per
    department."""
    from app.models import Complaint

    departments = ("GC", "KF", "BA", "GC", "KF", "BA", "GC", "KF", "BA")
    made = [make_complaint(department=code, received_at=RECEIVED, now=RECEIVED) for code in departments]
    result, sent = _scan_statements(app)
    updates = [s for s in sent if s.upper().startswith("UPDATE COMPLAINT ")]
    heads = [s for s in sent if s.upper().startswith("SELECT") and "JOIN staff" in s and "ab_role" in s]
    assert result["escalation"] == 2 * len(made)
    assert len(updates) <= 1, f"{len(updates)} UPDATEs of the cases of one batch: {updates[:3]}"
    assert len(heads) <= 1, f"{len(heads)} reads of department heads for one batch of 3 departments"
    supervised = db.session.scalars(select(Complaint.supervised).where(Complaint.id.in_([c.id for c in made])))
    assert set(supervised) == {True}


def test_a_scan_batch_translates_each_wording_once(app, make_complaint, monkeypatch):
    """Each event's note and message title are worded from a few lazy strings; they are translated
    once a batch, not once an event (a batch of 2,000 clocks made 20,000 translation look-ups)."""
    import flask_babel

    for _ in range(12):
        make_complaint(received_at=RECEIVED, now=RECEIVED)
    looked_up = [0]
    original = flask_babel.Domain.get_translations

    def counting(self):
        looked_up[0] += 1
        return original(self)

    monkeypatch.setattr(flask_babel.Domain, "get_translations", counting)
    result = travel(app, at(2026, 10, 9, 12, 0), only=["deadline_scan"])["jobs"]["deadline_scan"]
    events = result["warning"] + result["overdue"] + result["escalation"]
    assert events >= 48
    assert looked_up[0] <= 20, f"{looked_up[0]} translation look-ups for {events} events"
    notes = db.session.scalars(select(ComplaintEvent.note).where(ComplaintEvent.action == "overdue")).all()
    assert notes and all(n.endswith("已超时") for n in notes), notes[:2]
