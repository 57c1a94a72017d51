"""Clock pause (暂停计时): while a case waits for a test, a sample, a third party or the
customer's documents, the responsible head stops its clock; no warning or overdue fires
meanwhile, and on resume every open deadline moves by the paused working time.

The lifecycle steps run through the service at chosen instants and the jobs run under
time travel (``jobs.run_due``); what users see is read back through the REST API.
Default rules: investigate 1 working day, reply 2 working days, warnings at 90 %.
Office hours 09:00–12:00 and 13:30–18:00 (450 working minutes a day).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from sla_support import act, at, get_case, get_timeline, iso_local, sla_events, take, travel
from sqlalchemy import select
from statement_support import recorded

from app import db, lifecycle, settings
from app.complaints import steps as services
from app.models import ClockPause, ComplaintEvent
from app.quality import stats
from app.timeutil import to_local, utcnow


def _dispatched(app, org, make_complaint, received):
    c = make_complaint(received_at=received, now=received)
    act(app, org, c, "judge_valid", "renshi", received + timedelta(minutes=2), validity_reason="属实")
    act(app, org, c, "dispatch", "renshi", received + timedelta(minutes=3))
    return c


def _pause(app, org, c, when, until, by="zhuguan_a"):
    return act(
        app,
        org,
        c,
        "pause",
        by,
        when,
        reason="等待第三方检测报告",
        expected_resume=until,
        customer_informed="电话告知客户需等待检测结果，客户同意",
    )


def _dues(api, c):
    case = get_case(api("renshi"), c.id)
    return iso_local(case["investigate_due"]), iso_local(case["reply_due"])


def _actions(app, org, c, login):
    db.session.refresh(c)
    return [t.action for t in services.available_transitions(db.session, c, org.principal(login))]


def test_pause_friday_resume_tuesday_moves_deadlines_by_working_time(app, api, org, make_complaint):
    # Received Thu 5 Nov 10:00: investigate due Fri 6 Nov 10:00, reply due Mon 9 Nov 10:00.
    c = _dispatched(app, org, make_complaint, at(2026, 11, 5, 10, 0))
    assert _dues(api, c) == (at(2026, 11, 6, 10, 0), at(2026, 11, 9, 10, 0))
    _pause(app, org, c, at(2026, 11, 6, 9, 10), "2026-11-10")
    hr = api("renshi")
    # The scan runs past both original deadlines while paused: nothing fires.
    for when in (at(2026, 11, 6, 10, 1), at(2026, 11, 9, 12, 0), at(2026, 11, 10, 10, 59)):
        travel(app, when)
        assert sla_events(get_timeline(hr, c.id)["result"]) == Counter(), when
        case = get_case(hr, c.id)
        assert case["overdue"] is False and case["warned"] is False
    assert _dues(api, c) == (at(2026, 11, 6, 10, 0), at(2026, 11, 9, 10, 0)), "deadlines move only on resume"
    act(app, org, c, "resume", "zhuguan_a", at(2026, 11, 10, 11, 0), note="检测报告已到")
    # Paused Fri 09:10 → Tue 11:00: Fri 440 + Mon 450 + Tue 120 = 1010 working minutes.
    # Investigate had 50 minutes left → Tue 11:50; reply had 500 left → Wed 11 Nov 11:50.
    assert _dues(api, c) == (at(2026, 11, 10, 11, 50), at(2026, 11, 11, 11, 50))
    timeline = get_timeline(hr, c.id)
    assert timeline["paused"] is False and timeline["paused_working_minutes"] == 1010
    [pause] = timeline["pauses"]
    assert pause["state"] == "ended" and pause["working_minutes"] == 1010
    assert pause["natural_minutes"] == (4 * 24 * 60) + 110
    assert pause["reason"] == "等待第三方检测报告" and pause["expected_resume"] == "2026-11-10"
    assert pause["customer_informed"].startswith("电话告知") and pause["requested_by"] == "zhuguan_a"
    actions = [e["action"] for e in timeline["result"]]
    assert actions.index("pause") < actions.index("resume") < actions.index("deadline_recomputed")
    assert {e["kind"] for e in timeline["result"] if e["action"] in ("pause", "resume")} == {"pause"}
    # After the resume the clocks run again from where they stood.
    travel(app, at(2026, 11, 10, 11, 49))
    assert ("investigate", "overdue") not in sla_events(get_timeline(hr, c.id)["result"])
    travel(app, at(2026, 11, 10, 11, 51))
    got = sla_events(get_timeline(hr, c.id)["result"])
    assert got[("investigate", "overdue")] == 1 and ("reply", "overdue") not in got
    assert get_case(hr, c.id)["overdue"] is True


def test_pause_over_national_day_skips_the_holiday(app, api, org, make_complaint):
    # Received Mon 28 Sep 10:00: investigate due Tue 29 Sep 10:00, reply due Wed 30 Sep 10:00.
    c = _dispatched(app, org, make_complaint, at(2026, 9, 28, 10, 0))
    _pause(app, org, c, at(2026, 9, 29, 9, 10), "2026-10-09")
    assert not _actions(app, org, c, "zongjingli").count("approve_pause"), "within the cap: no approval"
    hr = api("renshi")
    travel(app, at(2026, 10, 8, 12, 0))
    assert sla_events(get_timeline(hr, c.id)["result"]) == Counter()
    # On-time statistics do not count the paused clocks as due (let alone late).
    gc = org.dept("GC").id
    rows = stats.compute(db.session, date(2026, 9, 29), date(2026, 9, 30), {gc}, now=at(2026, 10, 8, 12, 0))
    assert all(not row["stages"] for (_, dep), row in rows.items() if dep == gc)
    act(app, org, c, "resume", "zhuguan_a", at(2026, 10, 9, 10, 0))
    # Paused Tue 440 + Wed 450 + (1–7 Oct holiday) + Thu 8 Oct 450 + Fri 60 = 1400 minutes.
    # Investigate: 50 minutes left → Fri 10:50. Reply: 500 left → Fri 390 + Sat 10 Oct (调休 workday) 110.
    assert _dues(api, c) == (at(2026, 10, 9, 10, 50), at(2026, 10, 10, 10, 50))
    assert get_timeline(hr, c.id)["paused_working_minutes"] == 1400
    travel(app, at(2026, 10, 9, 10, 4))
    assert sla_events(get_timeline(hr, c.id)["result"]) == Counter()
    travel(app, at(2026, 10, 9, 10, 6))  # the 90 % warning point moved too (5 minutes left)
    assert sla_events(get_timeline(hr, c.id)["result"]) == Counter({("investigate", "warning"): 1})
    act(app, org, c, "start_investigation", "zhuguan_a", at(2026, 10, 9, 10, 30))
    rows = stats.compute(db.session, date(2026, 9, 28), date(2026, 10, 9), {gc}, now=at(2026, 10, 9, 10, 31))
    investigate = [row["stages"]["investigate"] for (_, dep), row in rows.items() if "investigate" in row["stages"]]
    assert investigate == [[1, 1, 0, 0.0]], "started within the moved limit: on time"


def test_natural_hour_clocks_move_by_natural_time(app, api, org, make_complaint):
    received = at(2026, 11, 5, 10, 0)
    c = make_complaint(level="major", received_at=received, now=received)
    written = next(d for d in c.deadlines if d.stage == "written_report")
    assert written.due_at == received + timedelta(hours=24)
    _pause(app, org, c, received + timedelta(hours=1), "2026-11-06", by="renshi")
    hr = api("renshi")
    before = sla_events(get_timeline(hr, c.id)["result"])
    travel(app, received + timedelta(hours=30))
    assert sla_events(get_timeline(hr, c.id)["result"]) == before, "nothing fires while paused"
    act(app, org, c, "resume", "renshi", received + timedelta(hours=3, minutes=30))
    deadlines = {d["stage"]: d for d in get_timeline(hr, c.id)["deadlines"]}
    assert iso_local(deadlines["written_report"]["due_at"]) == received + timedelta(hours=26, minutes=30)


def test_pause_beyond_cap_awaits_gm_and_rejection_resumes_at_once(app, api, org, make_complaint):
    c = _dispatched(app, org, make_complaint, at(2026, 11, 5, 10, 0))
    _pause(app, org, c, at(2026, 11, 6, 9, 10), "2026-11-20")  # two weeks > 5 working days
    pause = db.session.scalars(select(ClockPause).where(ClockPause.complaint_id == c.id)).one()
    assert pause.state == "awaiting_approval"
    assert {"approve_pause", "reject_pause"} <= set(_actions(app, org, c, "zongjingli"))
    assert "approve_pause" not in _actions(app, org, c, "renshi")
    assert _actions(app, org, c, "zhuguan_a") == ["resume"]
    with pytest.raises(lifecycle.TransitionError) as refused:
        act(app, org, c, "approve_pause", "zhuguan_a", at(2026, 11, 6, 10, 0))
    assert refused.value.kind == "role"
    db.session.rollback()
    # Still paused while the approval is pending: the scan records nothing.
    hr = api("renshi")
    travel(app, at(2026, 11, 9, 12, 0))
    assert sla_events(get_timeline(hr, c.id)["result"]) == Counter()
    gm_inbox = [n for n in api("zongjingli").get("/api/v1/notification/?q=(page_size:100)").json["result"]]
    assert any(n["complaint_id"] == c.id and n["kind"] == "pause" for n in gm_inbox)
    act(app, org, c, "reject_pause", "zongjingli", at(2026, 11, 9, 14, 0), note="时间过长，请先行处理")
    db.session.refresh(pause)
    assert pause.state == "rejected" and pause.ended_at == at(2026, 11, 9, 14, 0)
    assert pause.approved_by_id == org.user("zongjingli").id
    # Paused Fri 440 + Mon 09:00–14:00 210 = 650: investigate (50 left) due Mon 14:50.
    assert _dues(api, c)[0] == at(2026, 11, 9, 14, 50)
    assert "pause" in _actions(app, org, c, "zhuguan_a") and "resume" not in _actions(app, org, c, "zhuguan_a")
    travel(app, at(2026, 11, 9, 14, 51))
    assert sla_events(get_timeline(hr, c.id)["result"])[("investigate", "overdue")] == 1


def test_running_pause_reaching_the_cap_goes_to_gm_once(app, api, org, make_complaint):
    settings.put(db.session, "pause.cap_working_days", 1)
    db.session.commit()
    c = _dispatched(app, org, make_complaint, at(2026, 11, 5, 10, 0))
    _pause(app, org, c, at(2026, 11, 6, 9, 10), "2026-11-06")
    pause = db.session.scalars(select(ClockPause).where(ClockPause.complaint_id == c.id)).one()
    assert pause.state == "running"
    travel(app, at(2026, 11, 9, 9, 0))  # 440 working minutes paused: below the cap of 450
    db.session.refresh(pause)
    assert pause.state == "running"
    for _ in range(2):
        travel(app, at(2026, 11, 9, 9, 20))
    db.session.refresh(pause)
    assert pause.state == "awaiting_approval"
    capped = db.session.scalars(
        select(ComplaintEvent).where(ComplaintEvent.complaint_id == c.id, ComplaintEvent.action == "pause_cap_reached")
    ).all()
    assert len(capped) == 1
    assert {"approve_pause", "reject_pause"} <= set(_actions(app, org, c, "zongjingli"))
    act(app, org, c, "approve_pause", "zongjingli", at(2026, 11, 9, 10, 0))
    db.session.refresh(pause)
    assert pause.state == "running" and pause.approved_by_id == org.user("zongjingli").id
    hr = api("renshi")
    travel(app, at(2026, 11, 12, 10, 0))  # approved: no second trip to the general manager
    db.session.refresh(pause)
    assert pause.state == "running"
    assert sla_events(get_timeline(hr, c.id)["result"]) == Counter()
    act(app, org, c, "resume", "zhuguan_a", at(2026, 11, 12, 10, 0))
    # Paused Fri 440 + Mon–Wed 3 × 450 + Thu 60 = 1850: investigate (50 left) due Thu 10:50.
    assert _dues(api, c)[0] == at(2026, 11, 12, 10, 50)
    assert get_timeline(hr, c.id)["paused_working_minutes"] == 1850


# --- REST: roles, scope, states (at the real current time) --------------------------------------


def _transitions(client, cid):
    r = client.get(f"/api/v1/complaint/{cid}/transitions")
    assert r.status_code == 200
    return [t["action"] for t in r.json["result"]]


PAUSE = {"reason": "等待客户补交购买凭证", "customer_informed": "短信告知客户，客户已回复知悉"}


def _today_plus(days):
    return (to_local(utcnow()).date() + timedelta(days=days)).isoformat()


def test_rest_pause_refusals_by_role_scope_and_state(app, api, make_complaint):
    c = make_complaint()
    hr, head, other, kefu, gm = api("renshi"), api("zhuguan_a"), api("zhuguan_b"), api("kefu"), api("zongjingli")
    take(hr, c.id, "judge_valid", validity_reason="属实")
    take(hr, c.id, "dispatch")
    form = next(t for t in head.get(f"/api/v1/complaint/{c.id}/transitions").json["result"] if t["action"] == "pause")
    assert [(f["name"], f["kind"], f["required"]) for f in form["fields"]] == [
        ("reason", "text", True),
        ("expected_resume", "date", True),
        ("customer_informed", "text", True),
    ]
    until = _today_plus(2)
    take(kefu, c.id, "pause", expect=403, expected_resume=until, **PAUSE)
    take(other, c.id, "pause", expect=403, expected_resume=until, **PAUSE)  # another department's case
    missing = take(head, c.id, "pause", expect=422, expected_resume=until, reason="等待检测")
    assert "customer_informed" in missing["message"]
    past = take(head, c.id, "pause", expect=422, expected_resume=_today_plus(-1), **PAUSE)
    assert "expected_resume" in past["message"]
    bad = take(head, c.id, "pause", expect=422, expected_resume="下周", **PAUSE)
    assert "expected_resume" in bad["message"]
    take(gm, c.id, "resume", expect=409)  # not paused
    body = take(head, c.id, "pause", expected_resume=until, **PAUSE)
    assert body["event"]["action"] == "pause" and body["event"]["kind"] == "pause"
    assert body["result"]["status"] == "dispatched", "the status stays where it was"
    assert body["result"]["paused_since"] is not None
    # While paused: the head can only resume; lifecycle steps wait.
    assert _transitions(head, c.id) == ["resume"]
    assert "start_investigation" not in _transitions(hr, c.id) and "resume" in _transitions(hr, c.id)
    assert "escalate" in _transitions(hr, c.id)
    refused = take(head, c.id, "start_investigation", expect=409)
    assert refused["message"]
    take(head, c.id, "pause", expect=409, expected_resume=until, **PAUSE)
    take(head, c.id, "request_extension", expect=409, amount=1, reason="再等等")
    take(gm, c.id, "approve_pause", expect=409)  # nothing awaits approval
    take(kefu, c.id, "resume", expect=403)
    take(other, c.id, "resume", expect=403)
    take(hr, c.id, "escalate", note="请尽快联系检测机构")
    assert take(head, c.id, "resume", note="凭证已收到")["result"]["paused_since"] is None
    take(head, c.id, "resume", expect=409)
    take(head, c.id, "start_investigation")
    timeline = get_timeline(hr, c.id)
    assert [p["state"] for p in timeline["pauses"]] == ["ended"]


def test_rest_long_pause_needs_the_general_manager(app, api, make_complaint):
    c = make_complaint()
    hr, head, gm = api("renshi"), api("zhuguan_a"), api("zongjingli")
    take(hr, c.id, "judge_valid", validity_reason="属实")
    take(hr, c.id, "dispatch")
    take(head, c.id, "pause", expected_resume=_today_plus(30), **PAUSE)
    assert get_timeline(hr, c.id)["pauses"][0]["state"] == "awaiting_approval"
    take(head, c.id, "approve_pause", expect=403)
    take(hr, c.id, "approve_pause", expect=403)
    assert {"approve_pause", "reject_pause"} <= set(_transitions(gm, c.id))
    take(gm, c.id, "approve_pause", note="同意")
    take(gm, c.id, "approve_pause", expect=409)
    pause = get_timeline(hr, c.id)["pauses"][0]
    assert pause["state"] == "running" and pause["approved_by"] == "zongjingli"


def test_closed_case_cannot_be_paused(app, api, make_complaint):
    c = make_complaint()
    hr = api("renshi")
    take(hr, c.id, "judge_invalid", validity_reason="不属实", polite_reply="感谢您的反馈")
    take(hr, c.id, "pause", expect=409, expected_resume=_today_plus(1), **PAUSE)


def test_case_page_shows_the_pause_and_offers_the_resume_form(app, api, web, make_complaint):
    c = make_complaint()
    hr, head = api("renshi"), api("zhuguan_a")
    take(hr, c.id, "judge_valid", validity_reason="属实")
    take(hr, c.id, "dispatch")
    page = web("zhuguan_a").get(f"/complaintview/show/{c.id}").get_data(as_text=True)
    assert 'id="act-pause"' in page and 'type="date"' in page and 'name="customer_informed"' in page
    take(head, c.id, "pause", expected_resume=_today_plus(3), **PAUSE)
    page = web("zhuguan_a").get(f"/complaintview/show/{c.id}").get_data(as_text=True)
    assert 'id="act-resume"' in page and 'id="act-pause"' not in page
    assert 'class="table table-condensed pauses"' in page and PAUSE["customer_informed"] in page
    assert 'id="act-start_investigation"' not in page


def test_the_dashboard_refresh_finds_paused_cases_by_their_own_index(app, make_complaint):
    """Each dashboard read refreshes the days touched since the last one; its stage counts leave out
    the paused clocks. PostgreSQL found the paused cases by reading the whole complaint table (21 ms
    at 100,000 cases, on every refresh); the few paused cases have an index of their own."""
    from sqlalchemy import inspect, text

    make_complaint()
    if db.engine.dialect.name != "postgresql":
        names = {ix["name"] for ix in inspect(db.engine).get_indexes("complaint")}
        assert "ix_complaint_paused" in names
        return
    with recorded() as seen:
        stats.compute(db.session, utcnow().date() - timedelta(days=1), utcnow().date() + timedelta(days=1))
    statement, parameters = next((s, p) for s, p in seen if "FROM deadline" in s and "paused_since" in s)
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    cursor = db.session.connection().connection.cursor()
    cursor.execute("EXPLAIN " + statement, parameters)
    plan = "\n".join(row[0] for row in cursor.fetchall())
    db.session.rollback()
    assert "ix_complaint_paused" in plan, plan
