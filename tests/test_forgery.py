"""Forgery through the generic screens and resources (issue 13, items 1–4).

Issued documents, notifications and a dispatched case's department are written by the
application's own steps only; the add/edit forms, REST schemas and ``_info`` choices of
every screen and resource offer nothing outside the caller's scope.
"""

from __future__ import annotations

import re

from http_clients import add_login, body_text, is_chinese
from sla_support import take
from sqlalchemy import func, select

from app import db
from app.documents import render as documents
from app.models import Complaint, Document, Notification

ZEROS = "0" * 64


def _documents() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Document))


def _next_number(number: str) -> str:
    """``人行罚字〔2026〕1号`` → ``人行罚字〔2026〕2号`` (GB/T 9704; the old ``第001号`` form too)."""
    match = re.search(r"(第?)(\d+)号$", number)
    seq, width = int(match.group(2)), len(match.group(2)) if match.group(1) else 0
    return number[: match.start(2)] + f"{seq + 1:0{width}d}" + "号"


# --- 1. Issued documents cannot be forged ---------------------------------------------------


def test_forged_notice_creates_nothing_and_the_next_notice_is_issued(app, web, api, org, discipline_kit):
    first = discipline_kit.issued(staff="刘强")
    issued = documents.current_document(db.session, "penalty_notice", penalty_id=first.id)
    second = discipline_kit.open(staff="孙海")
    discipline_kit.step(second, "propose", "zhuguan_a")
    discipline_kit.step(second, "review", "renshi")
    discipline_kit.step(second, "approve", "zongjingli")
    forged_number = _next_number(issued.number)
    before = _documents()
    # The exact forgery of the review, as 人事行政经理: the next number, issued by 总经理, a fake hash.
    forgery = {
        "kind": "penalty_notice",
        "number": forged_number,
        "penalty": str(second.id),
        "issued_by": str(org.user("zongjingli").id),
        "version": "2",
        "sha256": ZEROS,
        "issued_at": "2026-01-01 00:00:00",
        "title": "处罚通知书",
        "filename": "forged.pdf",
        "size": "3",
        "content_type": "application/pdf",
        "content": "not a pdf",
    }
    browser = web("renshi")
    for url in ("/documentview/add", f"/documentview/edit/{issued.id}", f"/documentview/delete/{issued.id}"):
        r = browser.post(url, data=forgery)
        assert r.status_code in (403, 404, 405), (url, r.status_code)
    hr = api("renshi")
    body = {k: v for k, v in forgery.items() if k not in ("penalty", "issued_by")}
    assert hr.post("/api/v1/document/", json=body).status_code in (403, 404, 405)
    assert hr.put(f"/api/v1/document/{issued.id}", json={"sha256": ZEROS}).status_code in (403, 404, 405)
    assert hr.delete(f"/api/v1/document/{issued.id}").status_code in (403, 404, 405)
    assert _documents() == before, "no document row was created, changed or deleted"
    db.session.refresh(issued)
    assert issued.sha256 != ZEROS and issued.superseded_at is None
    # _info offers no add or edit form of a document to anybody.
    info = hr.get("/api/v1/document/_info").json
    assert "add_columns" not in info and "edit_columns" not in info
    # The real issue of the next notice takes the next number.
    discipline_kit.step(second, "issue_notice", "renshi")
    notice = documents.current_document(db.session, "penalty_notice", penalty_id=second.id)
    assert notice.number == forged_number and notice.sha256 != ZEROS
    assert notice.issued_by_id == org.user("renshi").id


# --- 2. Notifications cannot be forged into another inbox -----------------------------------


def test_notification_cannot_be_readdressed_or_rewritten(app, web, api, org, make_complaint):
    c = make_complaint(department="GC")
    hr = api("renshi")
    take(hr, c.id, "judge_valid", validity_reason="属实")
    take(hr, c.id, "dispatch")
    mine = db.session.scalars(
        select(Notification).where(Notification.user_id == org.user("zhuguan_a").id, Notification.kind == "dispatch")
    ).one()
    before = (mine.user_id, mine.title, mine.body, mine.link, mine.complaint_id, mine.dedup_key, mine.created_at)
    gm = org.user("zongjingli")
    forgery = {
        "user": str(gm.id),
        "kind": "major",
        "title": "紧急：请立即登录核对账号",
        "body": "点击链接",
        "link": "http://evil.example/login",
        "complaint": str(c.id),
        "dedup_key": "forged",
        "created_at": "2026-01-01 00:00:00",
    }
    browser = web("zhuguan_a")
    for url in ("/inboxview/add", f"/inboxview/edit/{mine.id}", f"/inboxview/delete/{mine.id}"):
        assert browser.get(url).status_code in (403, 404, 405), url
        assert browser.post(url, data=forgery).status_code in (403, 404, 405), url
    head = api("zhuguan_a")
    assert head.put(f"/api/v1/notification/{mine.id}", json={"user": gm.id, "title": "x"}).status_code in (
        403,
        404,
        405,
    )
    assert head.post("/api/v1/notification/", json={"user": gm.id, "title": "x", "kind": "x"}).status_code in (
        403,
        404,
        405,
    )
    db.session.expire_all()
    mine = db.session.get(Notification, mine.id)
    after = (mine.user_id, mine.title, mine.body, mine.link, mine.complaint_id, mine.dedup_key, mine.created_at)
    assert after == before
    assert (
        db.session.scalar(
            select(func.count()).where(Notification.user_id == gm.id, Notification.title == forgery["title"])
        )
        == 0
    )
    # _info lists no form, hence no complaint numbers or accounts.
    info = body_text(head.get("/api/v1/notification/_info"))
    assert "add_columns" not in info and "edit_columns" not in info
    # What remains: marking one's own message read (the time is the server's), not another's.
    assert api("zhuguan_b").post(f"/api/v1/notification/{mine.id}/read").status_code == 404
    r = head.post(f"/api/v1/notification/{mine.id}/read")
    assert r.status_code == 200 and r.json["result"]["read_at"]
    assert head.post("/api/v1/notification/read_all").status_code == 200


# --- 3. A dispatched case changes department only through the dispatch step -----------------


def _edit_form(c: Complaint, department_id: int) -> dict[str, str]:
    return {
        "received_at": c.received_at.astimezone().strftime("%Y-%m-%dT%H:%M"),
        "channel": str(c.channel_id),
        "subject": c.subject or "主题",
        "content": c.content,
        "customer_demand": c.customer_demand or "",
        "category": str(c.category_id),
        "level": str(c.level_id),
        "department": str(department_id),
    }


def test_department_of_a_dispatched_case_is_not_changed_by_edit(app, api, web, org, make_complaint):
    c = make_complaint(department="GC")
    hr = api("renshi")
    take(hr, c.id, "judge_valid", validity_reason="属实")
    take(hr, c.id, "dispatch")
    take(api("zhuguan_a"), c.id, "start_investigation")
    other = org.dept("BA").id
    r = hr.put(f"/api/v1/complaint/{c.id}", json={"department": other})
    assert r.status_code == 422, r.get_json()
    message = body_text(r)
    assert is_chinese(message) and "转派" in message, message
    r = web("renshi").post(f"/complaintview/edit/{c.id}", data=_edit_form(c, other), follow_redirects=True)
    assert "转派" in r.get_data(as_text=True)
    db.session.expire_all()
    case = db.session.get(Complaint, c.id)
    assert case.department_id == org.dept("GC").id and case.status.value == "investigating"
    assert [e.action for e in case.events if e.action == "edit"] == []
    # The rest of the intake stays editable, and the head keeps the case.
    assert hr.put(f"/api/v1/complaint/{c.id}", json={"subject": "更正主题"}).status_code == 200
    assert api("zhuguan_a").get(f"/api/v1/complaint/{c.id}").status_code == 200


def test_department_may_be_corrected_before_dispatch(app, api, org, make_complaint):
    c = make_complaint(department="GC")
    hr = api("renshi")
    r = hr.put(f"/api/v1/complaint/{c.id}", json={"department": org.dept("BA").id})
    assert r.status_code == 200, r.get_json()
    take(hr, c.id, "judge_valid", validity_reason="属实")
    assert hr.put(f"/api/v1/complaint/{c.id}", json={"department": org.dept("GC").id}).status_code == 200
    db.session.expire_all()
    assert db.session.get(Complaint, c.id).department_id == org.dept("GC").id


# --- 4. Relation choices come from the caller's scope ----------------------------------------


def test_penalty_info_offers_only_the_heads_staff_and_complaints(app, api, org, make_complaint):
    own = make_complaint(department="GC")
    foreign = make_complaint(department="BA")
    info = api("zhuguan_a").get(
        "/api/v1/penalty/_info?q=(add_columns:(staff:(page_size:100),complaint:(page_size:100)))"
    )
    assert info.status_code == 200
    fields = {f["name"]: f for f in info.json["add_columns"]}
    staff = {v["value"] for v in fields["staff"]["values"]}
    complaints = {v["value"] for v in fields["complaint"]["values"]}
    assert "刘强" in staff and "林晓雯" not in staff, staff
    assert all(s.department.code == "GC" for s in map(org.staff, staff))
    assert own.number in complaints and foreign.number not in complaints, complaints
    # 人事行政经理 is company-wide: it is offered both.
    hr = api("renshi").get("/api/v1/penalty/_info?q=(add_columns:(complaint:(page_size:100)))").json
    hr_complaints = {v["value"] for f in hr["add_columns"] if f["name"] == "complaint" for v in f["values"]}
    assert {own.number, foreign.number} <= hr_complaints


def test_form_drop_downs_offer_only_rows_in_scope(app, web, org):
    # A 人事行政经理 login without a staff record sees no rows (deny-all scope): the department
    # form's "head" drop-down must not list the staff roster either. The linked account does.
    add_login(app, "hr_nostaff", ["人事行政经理"])
    for url in ("/departmentview/add", "/unitview/add"):
        page = web("hr_nostaff").get(url).get_data(as_text=True)
        assert 'name="head"' in page, url
        assert "刘强" not in page and "林晓雯" not in page, url
    page = web("renshi").get("/departmentview/add").get_data(as_text=True)
    assert "刘强" in page and "林晓雯" in page
