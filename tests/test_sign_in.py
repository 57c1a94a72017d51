"""Dispatch sign-in (签收): the receiving department signs for a dispatched case on the clock.

With a 10-minute sign-in rule, a case dispatched at 10:00 must be signed for by 10:10;
a late sign-in is a missed deadline like any other, and unsigned cases are listed on
the sender's screen.
"""

from __future__ import annotations

from sla_support import act, at, get_timeline, take, travel

from app import db
from app.models import SlaRule

RECEIVED = at(2026, 10, 13, 9, 30)  # Tuesday
DISPATCHED = at(2026, 10, 13, 10, 0)


def _sign_in_rule(minutes: int = 10) -> None:
    db.session.add(SlaRule(stage="sign_in", amount=minutes, unit="minutes", warn_ratio=0.8, escalate_after=30))
    db.session.commit()


def _dispatched(app, org, make_complaint):
    c = make_complaint(received_at=RECEIVED, now=RECEIVED)
    act(app, org, c, "judge_valid", "renshi", at(2026, 10, 13, 9, 45))
    act(app, org, c, "dispatch", "renshi", DISPATCHED)
    return c


def _sla(client, cid):
    return [(e["action"], (e.get("data") or {}).get("stage")) for e in get_timeline(client, cid)["result"]]


def test_late_sign_in_is_a_missed_deadline_and_shows_on_the_senders_screen(app, api, web, make_complaint, org):
    _sign_in_rule()
    c = _dispatched(app, org, make_complaint)
    hr, head = api("renshi"), api("zhuguan_a")
    deadlines = {d["stage"]: d for d in get_timeline(hr, c.id)["deadlines"]}
    assert deadlines["sign_in"]["state"] == "open"
    travel(app, at(2026, 10, 13, 10, 9))
    assert ("overdue", "sign_in") not in _sla(hr, c.id)
    travel(app, at(2026, 10, 13, 10, 11))
    assert _sla(hr, c.id).count(("overdue", "sign_in")) == 1
    # The sender sees the unsigned case.
    page = web("renshi").get("/unsignedcomplaintview/list/")
    assert page.status_code == 200 and c.number in page.get_data(as_text=True)
    # Another department's head does not see it there, the receiving one does.
    assert c.number not in web("zhuguan_b").get("/unsignedcomplaintview/list/").get_data(as_text=True)
    assert [t["action"] for t in head.get(f"/api/v1/complaint/{c.id}/transitions").get_json()["result"]][:2] == [
        "sign_for",
        "start_investigation",
    ]
    take(api("zhuguan_b"), c.id, "sign_for", expect=403)
    body = take(head, c.id, "sign_for")
    assert body["result"]["status"] == "dispatched" and body["result"]["signed_at"]
    take(head, c.id, "sign_for", expect=409)  # once only
    assert "sign_for" not in [t["action"] for t in head.get(f"/api/v1/complaint/{c.id}/transitions").json["result"]]
    assert c.number not in web("renshi").get("/unsignedcomplaintview/list/").get_data(as_text=True)
    timeline = get_timeline(hr, c.id)
    assert [e["action"] for e in timeline["result"]].count("sign_for") == 1
    sign = {d["stage"]: d for d in timeline["deadlines"]}["sign_in"]
    assert sign["state"] == "met" and sign["late"] is True


def test_signing_in_time_or_starting_the_investigation_meets_the_clock(app, api, make_complaint, org):
    _sign_in_rule()
    c = _dispatched(app, org, make_complaint)
    act(app, org, c, "sign_for", "zhuguan_a", at(2026, 10, 13, 10, 5))
    c2 = _dispatched(app, org, make_complaint)
    act(app, org, c2, "start_investigation", "zhuguan_a", at(2026, 10, 13, 10, 6))
    travel(app, at(2026, 10, 13, 11, 0))
    hr = api("renshi")
    for case in (c, c2):
        assert ("overdue", "sign_in") not in _sla(hr, case.id)
        sign = {d["stage"]: d for d in get_timeline(hr, case.id)["deadlines"]}["sign_in"]
        assert sign["state"] == "met" and sign["late"] is False
    db.session.refresh(c2)
    assert c2.signed_at is not None  # taking the case up signs for it


def test_without_a_sign_in_rule_there_is_no_clock_but_signing_works(app, api, make_complaint, org):
    c = _dispatched(app, org, make_complaint)
    hr, head = api("renshi"), api("zhuguan_a")
    assert "sign_in" not in {d["stage"] for d in get_timeline(hr, c.id)["deadlines"]}
    take(head, c.id, "sign_for")
    take(head, c.id, "start_investigation")
