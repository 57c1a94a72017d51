"""A complaint walked through its whole lifecycle over the REST API, by the roles the policy names."""

from datetime import datetime

import pytest

from app.timeutil import LOCAL_TZ


def _take(client, cid, action, expect=200, **fields):
    r = client.post(f"/api/v1/complaint/{cid}/transition", json={"action": action, **fields})
    assert r.status_code == expect, (action, r.status_code, r.get_json())
    return r.get_json()


def test_full_lifecycle_with_reopen_and_archive(api, make_complaint):
    c = make_complaint(department="GC")
    hr, head, kefu, gm = api("renshi"), api("zhuguan_a"), api("kefu"), api("zongjingli")
    actions = [t["action"] for t in hr.get(f"/api/v1/complaint/{c.id}/transitions").json["result"]]
    assert "judge_valid" in actions and "judge_invalid" in actions
    # Customer service only links repeats; it takes no step of the lifecycle.
    assert [t["action"] for t in kefu.get(f"/api/v1/complaint/{c.id}/transitions").json["result"]] == ["mark_repeat"]
    _take(hr, c.id, "judge_valid", validity_reason="情况属实")
    _take(head, c.id, "start_investigation", expect=409)  # not dispatched yet
    _take(hr, c.id, "dispatch")
    _take(head, c.id, "start_investigation")
    _take(head, c.id, "reply", expect=409, reply_text="too early")
    _take(head, c.id, "propose_plan", findings="属实", resolution_plan="维修")
    _take(head, c.id, "reply", expect=422)  # the reply text is required
    _take(head, c.id, "reply", reply_text="已修复")
    _take(head, c.id, "feed_back", feedback_note="客户认可")
    body = _take(hr, c.id, "follow_up", satisfaction="不满意", note="客户仍不满意")
    assert body["result"]["status"] == "investigating"
    _take(head, c.id, "propose_plan", findings="复查", resolution_plan="更换设备")
    _take(head, c.id, "reply", reply_text="已更换")
    _take(head, c.id, "feed_back", feedback_note="完成")
    _take(hr, c.id, "follow_up", satisfaction="satisfied", follow_up_note="满意")
    _take(gm, c.id, "close", expect=403, close_note="x")
    _take(hr, c.id, "close", expect=409, close_note="结案")  # the customer is not confirmed told yet
    _take(kefu, c.id, "confirm_informed", method="phone", note="已电话告知客户处理结果")
    _take(hr, c.id, "close", close_note="结案")
    _take(hr, c.id, "archive")
    _take(hr, c.id, "remind", expect=409)
    assert hr.put(f"/api/v1/complaint/{c.id}", json={"content": "改"}).status_code == 409
    timeline = hr.get(f"/api/v1/complaint/{c.id}/timeline").json["result"]
    assert [e["action"] for e in timeline][0] == "register"
    assert timeline[-1]["action"] == "archive"
    times = [datetime.fromisoformat(e["at"]) for e in timeline]
    assert times == sorted(times)


def test_invalid_complaint_closes_with_polite_reply(api, make_complaint):
    c = make_complaint()
    hr = api("renshi")
    r = hr.post(f"/api/v1/complaint/{c.id}/transition", json={"action": "judge_invalid", "validity_reason": "不属实"})
    assert r.status_code == 422 and "polite_reply" in r.json["message"]
    body = _take(hr, c.id, "judge_invalid", validity_reason="不属实", polite_reply="感谢反馈")
    assert body["result"]["status"] == "closed" and body["result"]["validity"] == "invalid"
    assert body["result"]["closed_at"], "an invalid complaint closed by the polite reply is dated"


def test_other_department_head_gets_403_on_transition(api, make_complaint):
    c = make_complaint(department="GC")
    r = api("zhuguan_b").post(f"/api/v1/complaint/{c.id}/transition", json={"action": "remind"})
    assert r.status_code == 403


def test_stale_version_is_a_conflict(api, make_complaint):
    c = make_complaint()
    hr = api("renshi")
    r = hr.post(f"/api/v1/complaint/{c.id}/transition", json={"action": "judge_valid", "version": c.version + 5})
    assert r.status_code == 409


def test_deadlines_follow_the_working_calendar(api, make_complaint):
    received = datetime(2026, 9, 29, 10, 0, tzinfo=LOCAL_TZ)
    c = make_complaint(received_at=received, now=received)
    got = api("renshi").get(f"/api/v1/complaint/{c.id}").json["result"]
    assert datetime.fromisoformat(got["investigate_due"]) == datetime(2026, 9, 30, 10, 0, tzinfo=LOCAL_TZ)
    assert datetime.fromisoformat(got["reply_due"]) == datetime(2026, 10, 8, 10, 0, tzinfo=LOCAL_TZ)


@pytest.mark.parametrize("level", ["major"])
def test_major_case_chain_clocks_start(api, make_complaint, level):
    c = make_complaint(level=level)
    stages = {d["stage"] for d in api("renshi").get(f"/api/v1/complaint/{c.id}/timeline").json["deadlines"]}
    assert {"notify_department", "report_leader", "report_gm", "written_report"} <= stages
