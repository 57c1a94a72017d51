"""Who is told: the in-app inbox, e-mail through a real SMTP server, the group-robot webhook.

Deliveries are queued in the transaction of the step that causes them and sent by
the ``deliver_notifications`` job; a failing channel is retried with back-off,
logged, and blocks neither the other channel nor the case.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sla_support import (
    SmtpSink,
    WebhookSink,
    at,
    config,
    free_port,
    get_case,
    take,
    travel,
)
from sqlalchemy import select

from app import db, settings
from app.models import Delivery, Notification
from app.timeutil import utcnow

RECEIVED = at(2026, 9, 29, 10, 0)


@pytest.fixture
def notify_log(caplog):
    """Captured app.notify log records.

    The test session runs the Alembic migrations in-process, and migrations/env.py's
    ``fileConfig`` disables every logger that existed before (``disable_existing_loggers``
    defaults to True); re-enable the one under test for the duration of the test.
    """
    logger = logging.getLogger("app.messages.notify")
    was_disabled = logger.disabled
    logger.disabled = False
    caplog.set_level(logging.WARNING, logger="app.messages.notify")
    try:
        yield caplog
    finally:
        logger.disabled = was_disabled


def _inbox(client, **filters):
    r = client.get("/api/v1/notification/?q=(page_size:100)")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    rows = r.json["result"]
    return [n for n in rows if all(n.get(k) == v for k, v in filters.items())]


def _deliveries(channel=None):
    stmt = select(Delivery).order_by(Delivery.id)
    if channel:
        stmt = stmt.where(Delivery.channel == channel)
    return db.session.scalars(stmt).all()


def _set_webhook(url: str) -> None:
    settings.put(db.session, "notify.wecom_webhook", url)
    db.session.commit()


def test_inbox_rows_for_the_recipients_only(app, api, web, make_complaint, org):
    c = make_complaint(department="GC")
    hr, head_a, head_b, kefu = api("renshi"), api("zhuguan_a"), api("zhuguan_b"), api("kefu")
    new = _inbox(hr, complaint_id=c.id)
    assert [n["kind"] for n in new] == ["new"]
    assert c.number in new[0]["title"] and new[0]["read_at"] is None
    assert new[0]["link"] == f"/complaintview/show/{c.id}"
    assert _inbox(head_a, complaint_id=c.id) == []  # not dispatched yet
    take(hr, c.id, "judge_valid", validity_reason="属实")
    take(hr, c.id, "dispatch")
    dispatched = _inbox(head_a, complaint_id=c.id)
    assert [n["kind"] for n in dispatched] == ["dispatch"] and dispatched[0]["read_at"] is None
    assert _inbox(head_b, complaint_id=c.id) == [], "the other department's head is not told"
    # 首问负责制: the first responder (kefu registered it) follows every stage.
    assert sorted(n["kind"] for n in _inbox(kefu, complaint_id=c.id)) == ["dispatch", "judge_valid"]
    # Nobody reads another user's message.
    assert head_b.get(f"/api/v1/notification/{dispatched[0]['id']}").status_code == 404
    assert head_a.get(f"/api/v1/notification/{dispatched[0]['id']}").status_code == 200
    # Opening the message in the inbox marks it read and leads to the case.
    browser = web("zhuguan_a")
    r = browser.get(f"/inboxview/show/{dispatched[0]['id']}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/complaintview/show/{c.id}")
    db.session.expire_all()
    assert _inbox(head_a, complaint_id=c.id)[0]["read_at"] is not None


def test_major_case_tells_head_hr_and_gm_at_once(app, api, make_complaint):
    c = make_complaint(level="major", department="BA")
    for login in ("zhuguan_b", "renshi", "zongjingli"):
        rows = _inbox(api(login), complaint_id=c.id)
        assert [n["kind"] for n in rows] == ["major"], login
    assert _inbox(api("zhuguan_a"), complaint_id=c.id) == []


def test_email_through_a_real_smtp_server(app, make_complaint, org):
    with SmtpSink() as smtp, config(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, PUBLIC_URL="http://portal.test"):
        c = make_complaint(department="GC")
        queued = _deliveries("email")
        assert [d.target for d in queued] == ["renshi@example.com"]
        assert smtp.messages == [], "nothing is sent inline"
        summary = travel(app, utcnow(), only=["deliver_notifications"])
        assert summary["jobs"]["deliver_notifications"] == {"sent": 1, "retrying": 0, "failed": 0}
        assert len(smtp.messages) == 1
        message = smtp.messages[0]
        assert message["to"] == ["renshi@example.com"]
        assert c.number in message["message"]["Subject"]
        assert message["message"]["To"] == "renshi@example.com"
        body = message["message"].get_content()
        assert f"http://portal.test/complaintview/show/{c.id}" in body
        # Sending again sends nothing twice.
        assert travel(app, utcnow(), only=["deliver_notifications"])["jobs"]["deliver_notifications"]["sent"] == 0
        assert len(smtp.messages) == 1
        sent = _deliveries("email")[0]
        assert sent.status == "sent" and sent.attempts == 1 and sent.sent_at is not None


def test_email_can_be_switched_off_in_settings(app, make_complaint):
    with SmtpSink() as smtp, config(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port):
        settings.put(db.session, "notify.email_enabled", False)
        db.session.commit()
        make_complaint()
        assert _deliveries("email") == []
        assert db.session.scalars(select(Notification)).all(), "the inbox still gets it"


def test_webhook_posts_the_robot_message_for_an_overdue_case(app, make_complaint):
    with WebhookSink() as hook:
        _set_webhook(hook.url)
        c = make_complaint(received_at=RECEIVED, now=RECEIVED)  # a 一般 case: no webhook at intake
        assert _deliveries("wecom") == []
        travel(app, at(2026, 9, 30, 10, 0))  # investigation overdue
        assert len(hook.requests) == 1
        request = hook.requests[0]
        assert request["path"] == "/cgi-bin/webhook/send?key=test"
        assert request["headers"]["Content-Type"] == "application/json"
        body = request["body"]
        assert body["msgtype"] == "markdown"
        assert c.number in body["markdown"]["content"]
        assert f"/complaintview/show/{c.id}" in body["markdown"]["content"]
        # The same overdue mark never goes out twice, however often the jobs run.
        for minute in (1, 2, 30):
            travel(app, at(2026, 9, 30, 10, minute))
        assert len(hook.requests) == 1
        travel(app, at(2026, 10, 8, 10, 0))  # investigation escalated, reply overdue
        assert len(hook.requests) == 3


def test_major_case_goes_to_the_webhook_at_intake(app, make_complaint):
    with WebhookSink() as hook:
        _set_webhook(hook.url)
        c = make_complaint(level="major")
        travel(app, utcnow(), only=["deliver_notifications"])
        assert len(hook.requests) == 1 and c.number in hook.requests[0]["body"]["markdown"]["content"]


def test_smtp_down_is_retried_with_backoff_and_does_not_block_the_webhook(app, api, make_complaint, notify_log):
    caplog = notify_log
    smtp = SmtpSink()  # built, not started: its port is closed
    with WebhookSink() as hook, config(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port):
        _set_webhook(hook.url)
        c = make_complaint(level="major", department="GC")
        # The step that causes mail still succeeds while SMTP is down.
        take(api("renshi"), c.id, "judge_valid", validity_reason="属实")
        body = take(api("renshi"), c.id, "dispatch")
        assert body["result"]["status"] == "dispatched"
        emails = {d.target for d in _deliveries("email")}
        assert {"renshi@example.com", "zongjingli@example.com", "zhuguan_a@example.com"} <= emails
        t0 = utcnow()
        result = travel(app, t0, only=["deliver_notifications"])["jobs"]["deliver_notifications"]
        assert result["sent"] == 1 and result["retrying"] == len(_deliveries("email"))
        assert len(hook.requests) == 1 and _deliveries("wecom")[0].status == "sent"
        mails = _deliveries("email")
        assert all(d.status == "pending" and d.attempts == 1 and d.last_error for d in mails)
        assert all(abs((d.next_attempt_at - (t0 + timedelta(minutes=1))).total_seconds()) < 1 for d in mails)
        assert any("failed (attempt 1)" in r.getMessage() for r in caplog.records)
        # Not yet due again: nothing is attempted.
        travel(app, t0 + timedelta(seconds=30), only=["deliver_notifications"])
        assert all(d.attempts == 1 for d in _deliveries("email"))
        # Second attempt after 1 min, third after 2 more: the wait grows.
        travel(app, t0 + timedelta(minutes=1), only=["deliver_notifications"])
        mails = _deliveries("email")
        assert all(d.attempts == 2 for d in mails)
        assert all(abs((d.next_attempt_at - (t0 + timedelta(minutes=3))).total_seconds()) < 1 for d in mails)
        # The server comes back: the next attempt delivers every message once.
        smtp.controller.start()
        try:
            travel(app, t0 + timedelta(minutes=3), only=["deliver_notifications"])
            mails = _deliveries("email")
            assert all(d.status == "sent" and d.attempts == 3 for d in mails)
            assert sorted(smtp.recipients()) == sorted(d.target for d in mails)
        finally:
            smtp.controller.stop()
        assert len(hook.requests) == 1


def test_webhook_500_is_retried_and_does_not_block_email(app, make_complaint, notify_log):
    caplog = notify_log
    with SmtpSink() as smtp, WebhookSink(status=500) as hook, config(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port):
        _set_webhook(hook.url)
        c = make_complaint(level="major")
        t0 = utcnow()
        result = travel(app, t0, only=["deliver_notifications"])["jobs"]["deliver_notifications"]
        assert result["retrying"] == 1 and result["sent"] == len(smtp.messages) >= 3
        hooked = _deliveries("wecom")[0]
        assert hooked.status == "pending" and hooked.attempts == 1 and "500" in hooked.last_error
        first_retry = hooked.next_attempt_at
        assert abs((first_retry - (t0 + timedelta(minutes=1))).total_seconds()) < 1
        assert any("via wecom failed (attempt 1)" in r.getMessage() for r in caplog.records)
        travel(app, first_retry, only=["deliver_notifications"])
        hooked = _deliveries("wecom")[0]
        assert hooked.attempts == 2 and hooked.next_attempt_at == first_retry + timedelta(minutes=2)
        # A robot that answers 200 but refuses the message (errcode != 0) is a failure too.
        hook.status, hook.answer = 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        travel(app, hooked.next_attempt_at, only=["deliver_notifications"])
        hooked = _deliveries("wecom")[0]
        assert hooked.status == "pending" and hooked.attempts == 3 and "93000" in hooked.last_error
        hook.answer = {"errcode": 0, "errmsg": "ok"}
        travel(app, hooked.next_attempt_at, only=["deliver_notifications"])
        hooked = _deliveries("wecom")[0]
        assert hooked.status == "sent" and hooked.attempts == 4 and hooked.last_error is None
        assert len(hook.requests) == 4
        assert all(c.number in r["body"]["markdown"]["content"] for r in hook.requests)


def test_a_channel_that_keeps_failing_gives_up_and_logs_an_error(app, make_complaint, notify_log):
    caplog = notify_log
    with WebhookSink(status=500) as hook, config(app, NOTIFY_MAX_ATTEMPTS=3):
        _set_webhook(hook.url)
        make_complaint(level="urgent")
        when = utcnow()
        for _ in range(3):
            travel(app, when, only=["deliver_notifications"])
            when = _deliveries("wecom")[0].next_attempt_at if _deliveries("wecom")[0].status == "pending" else when
        hooked = _deliveries("wecom")[0]
        assert hooked.status == "failed" and hooked.attempts == 3
        assert any(r.levelno == logging.ERROR and "failed for good" in r.getMessage() for r in caplog.records)
        travel(app, when + timedelta(hours=2), only=["deliver_notifications"])
        assert len(hook.requests) == 3, "a failed delivery is not retried any more"


def test_overdue_and_escalation_reach_inbox_and_mail_once(app, api, make_complaint, org):
    with SmtpSink() as smtp, config(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port):
        c = make_complaint(received_at=RECEIVED, now=RECEIVED)
        travel(app, at(2026, 9, 30, 9, 20))  # investigation warning
        travel(app, at(2026, 9, 30, 10, 0))  # investigation overdue
        travel(app, at(2026, 10, 8, 10, 0))  # escalation to the GM
        travel(app, at(2026, 10, 8, 10, 0))
        hr_rows = _inbox(api("renshi"), complaint_id=c.id)
        kinds = sorted(n["kind"] for n in hr_rows)
        # HR: the new case, the investigation warning, its overdue mark, the reply warning
        # (recorded at 8 Oct, after its deadline: tells nobody) and the reply overdue.
        assert kinds.count("warning") == 1 and kinds.count("overdue") == 2 and kinds.count("new") == 1
        gm_rows = _inbox(api("zongjingli"), complaint_id=c.id)
        assert [n["kind"] for n in gm_rows] == ["escalation"]
        assert all(n["read_at"] is None for n in hr_rows + gm_rows)
        gm_mail = [
            m for m in smtp.messages if "zongjingli@example.com" in m["to"] and c.number in m["message"]["Subject"]
        ]
        assert len(gm_mail) == 1, "the escalation mail, once (the other mails are daily digests)"
        assert len(smtp.messages) == len(_deliveries("email"))
        assert all(d.status == "sent" for d in _deliveries("email"))
        assert get_case(api("renshi"), c.id)["overdue"] is True


def test_notification_job_with_nothing_to_send(app):
    assert travel(app, utcnow(), only=["deliver_notifications"])["jobs"]["deliver_notifications"] == {
        "sent": 0,
        "retrying": 0,
        "failed": 0,
    }
    assert _deliveries() == []
    port = free_port()  # a closed port: no server was ever there
    with config(app, MAIL_SERVER="127.0.0.1", MAIL_PORT=port):
        assert travel(app, utcnow(), only=["deliver_notifications"])["jobs"]["deliver_notifications"]["sent"] == 0


# --- Who must act (待办), who is told (知会), stage and deadline, digest window, bulk read -----------


def _walk_to_feedback(api, cid):
    hr, head = api("renshi"), api("zhuguan_a")
    take(hr, cid, "judge_valid", validity_reason="属实")
    take(hr, cid, "dispatch")
    take(head, cid, "start_investigation")
    take(head, cid, "propose_plan", findings="属实", resolution_plan="维修")
    take(head, cid, "reply", reply_text="已安排维修，感谢您的耐心")
    take(head, cid, "feed_back", feedback_note="客户认可")


def test_customer_service_gets_progress_not_the_department_and_hr_tasks(app, api, make_complaint):
    c = make_complaint(department="GC", by="kefu")
    _walk_to_feedback(api, c.id)
    kefu = _inbox(api("kefu"), complaint_id=c.id)
    assert {"dispatch", "feed_back"} <= {n["kind"] for n in kefu}, "首问责任人 follows every stage"
    assert {n["category"] for n in kefu} == {"info"}, kefu
    titles = " ".join(n["title"] for n in kefu)
    assert "转派至贵部门" not in titles and "安排回访" not in titles, titles
    assert "您登记的投诉" in titles
    # The task goes to whoever must act on it.
    [dispatched] = _inbox(api("zhuguan_a"), complaint_id=c.id, kind="dispatch")
    assert dispatched["category"] == "todo" and "转派至贵部门" in dispatched["title"]
    [fed_back] = _inbox(api("renshi"), complaint_id=c.id, kind="feed_back")
    assert fed_back["category"] == "todo" and "回访" in fed_back["title"]


def test_every_message_names_the_stage_and_its_deadline(app, api, make_complaint):
    c = make_complaint(department="GC", by="kefu", received_at=RECEIVED, now=RECEIVED)
    [new] = _inbox(api("renshi"), complaint_id=c.id, kind="new")
    assert "环节：开始调查" in new["title"] and "时限：2026-09-30 10:00" in new["title"], new["title"]
    travel(app, at(2026, 9, 30, 10, 0))  # the investigation is overdue
    [overdue] = _inbox(api("renshi"), complaint_id=c.id, kind="overdue")
    assert overdue["title"] == f"[{c.number}] 开始调查已超时（时限：2026-09-30 10:00）"
    assert overdue["category"] == "todo"


def test_repeats_within_the_digest_window_are_merged(app, api, make_complaint, org):
    c = make_complaint(department="GC", by="kefu")
    hr = api("renshi")
    take(hr, c.id, "judge_valid", validity_reason="属实")
    take(hr, c.id, "dispatch")
    for _ in range(3):  # three 催办 in the same minute
        take(hr, c.id, "remind", note="请尽快处理")
    head_id = org.user("zhuguan_a").id
    reminders = db.session.scalars(
        select(Notification).where(
            Notification.user_id == head_id, Notification.complaint_id == c.id, Notification.kind == "remind"
        )
    ).all()
    assert len(reminders) == 1, [n.title for n in reminders]
    # After the window (a setting, 10 minutes by default) a repeat is news again.
    for n in reminders:
        n.created_at = utcnow() - timedelta(minutes=11)
    db.session.commit()
    take(hr, c.id, "remind", note="请尽快处理")
    assert len(_inbox(api("zhuguan_a"), complaint_id=c.id, kind="remind")) == 2
    settings.put(db.session, "notify.digest_minutes", 0)
    db.session.commit()
    take(hr, c.id, "remind", note="请尽快处理")
    assert len(_inbox(api("zhuguan_a"), complaint_id=c.id, kind="remind")) == 3


def test_inbox_filters_todo_and_info_and_marks_read_in_bulk(app, api, web, make_complaint):
    c = make_complaint(department="GC", by="renshi")  # HR owns the case and must act on it
    _walk_to_feedback(api, c.id)
    hr = api("renshi")
    rows = _inbox(hr, complaint_id=c.id)
    assert {n["category"] for n in rows} == {"todo", "info"}
    # Who must act and owns the case gets the task once, not the progress note as well.
    assert [n["category"] for n in rows if n["kind"] == "feed_back"] == ["todo"]
    todo = hr.get("/api/v1/notification/?q=(filters:!((col:category,opr:eq,value:todo)),page_size:100)").json
    assert todo["count"] == sum(1 for n in _inbox(hr) if n["category"] == "todo")
    # The screen: 待办 / 知会 tabs and 全部标为已读.
    browser = web("renshi")
    page = browser.get("/inboxview/list/").get_data(as_text=True)
    assert "待办" in page and "知会" in page and "全部标为已读" in page and "标为已读" in page
    r = browser.post("/inboxview/read_all", data={"category": "info"})
    assert r.status_code == 302
    db.session.expire_all()
    after = _inbox(hr, complaint_id=c.id)
    assert all(n["read_at"] for n in after if n["category"] == "info")
    assert not any(n["read_at"] for n in after if n["category"] == "todo")
    # The list action: the selected rows, and only the caller's own.
    todo_ids = [n["id"] for n in after if n["category"] == "todo"]
    someone_elses = _inbox(api("zhuguan_a"), complaint_id=c.id)[0]
    r = browser.post(
        "/inboxview/action_post",
        data={"action": "mark_read", "rowid": [todo_ids[0], someone_elses["id"]]},
    )
    assert r.status_code == 302
    db.session.expire_all()
    assert _inbox(hr, id=todo_ids[0])[0]["read_at"]
    assert _inbox(api("zhuguan_a"), id=someone_elses["id"])[0]["read_at"] is None
    # REST: by ids (another user's are ignored), or all.
    assert hr.post("/api/v1/notification/read", json={"ids": [someone_elses["id"]]}).json["marked"] == 0
    assert hr.post("/api/v1/notification/read", json={"ids": "all"}).status_code == 422
    assert hr.post("/api/v1/notification/read", json={"all": True, "category": "x"}).status_code == 422
    unread = [n for n in _inbox(hr) if n["read_at"] is None]
    assert len(unread) >= len(todo_ids) - 1
    assert hr.post("/api/v1/notification/read", json={"all": True}).json["marked"] == len(unread)
    assert not [n for n in _inbox(hr) if n["read_at"] is None]


def test_the_bell_counts_unread_messages_up_to_99(app, org, web):
    """The unread count on every page stops at 100 rows and shows "99+" (a 总经理 with tens of
    thousands unread cost 40 ms a page counting them all); up to 99 it is exact."""
    from app.models import User

    user = db.session.scalars(select(User).where(User.username == "zongjingli")).one()
    db.session.execute(Notification.__table__.delete().where(Notification.user_id == user.id))
    rows = [{"user_id": user.id, "kind": "digest", "title": f"消息{i}", "created_at": utcnow()} for i in range(3)]
    db.session.execute(Notification.__table__.insert(), rows)
    db.session.commit()
    client = web("zongjingli")
    assert '<span class="badge badge-unread">3</span>' in client.get("/").get_data(as_text=True)
    rows = [{"user_id": user.id, "kind": "digest", "title": f"消息{i}", "created_at": utcnow()} for i in range(3, 150)]
    db.session.execute(Notification.__table__.insert(), rows)
    db.session.commit()
    assert '<span class="badge badge-unread">99+</span>' in client.get("/").get_data(as_text=True)
