"""An archived case (已归档) is read-only for everybody, on every path that writes.

Each attempt is checked against the database: the case row, its history, files,
clocks and extension requests are exactly as before. The same requests on an open
case succeed, which shows that the refusals come from the archive rule and not
from a malformed request.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from sla_support import FreshContextClient, act, at
from sqlalchemy import select

from app import db
from app.models import Attachment, Complaint, ComplaintEvent, Deadline, Extension

RECEIVED = at(2026, 9, 29, 10, 0)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
USERS = ("kefu", "zhuguan_a", "zhuguan_b", "renshi", "zongjingli", "admin")


def _archive(app, org, c) -> None:
    steps = [
        ("judge_valid", "renshi", {}),
        ("dispatch", "renshi", {}),
        ("start_investigation", "zhuguan_a", {}),
        ("propose_plan", "zhuguan_a", {"findings": "属实", "resolution_plan": "维修"}),
        ("reply", "zhuguan_a", {"reply_text": "已修复"}),
        ("feed_back", "zhuguan_a", {"feedback_note": "客户认可"}),
        ("follow_up", "renshi", {"satisfaction": "satisfied", "follow_up_note": "满意"}),
        ("close", "renshi", {"close_note": "结案", "customer_informed": "phone"}),
        ("archive", "renshi", {}),
    ]
    for minute, (action, login, values) in enumerate(steps):
        act(app, org, c, action, login, at(2026, 9, 29, 11, minute), **values)


def snapshot(cid: int) -> dict[str, Any]:
    db.session.expire_all()
    row = db.session.execute(select(Complaint.__table__).where(Complaint.__table__.c.id == cid)).mappings().one()
    return {
        "case": dict(row),
        "events": db.session.execute(
            select(ComplaintEvent.id, ComplaintEvent.action).where(ComplaintEvent.complaint_id == cid)
        ).all(),
        "attachments": db.session.scalars(select(Attachment.id).where(Attachment.complaint_id == cid)).all(),
        "deadlines": db.session.execute(
            select(Deadline.id, Deadline.state, Deadline.due_at).where(Deadline.complaint_id == cid)
        ).all(),
        "extensions": db.session.scalars(select(Extension.id).where(Extension.complaint_id == cid)).all(),
        "staff": sorted(s.id for s in db.session.get(Complaint, cid).staff),
    }


@pytest.fixture
def api(app):
    """REST clients whose requests each run in their own context and database session."""
    return lambda login: FreshContextClient(app, login, api=True)


@pytest.fixture
def web(app):
    """Browsers whose requests each run in their own context and database session."""
    return lambda login: FreshContextClient(app, login)


@pytest.fixture
def cases(app, org, make_complaint):
    """An archived case and an open control case of the same department."""
    archived = make_complaint(received_at=RECEIVED, now=RECEIVED, department="GC", staff=())
    _archive(app, org, archived)
    control = make_complaint(department="GC")
    db.session.commit()
    return archived.id, control.id


def _edit_form(org, cid: int, content: str) -> dict[str, Any]:
    c = db.session.get(Complaint, cid)
    return {
        "received_at": c.received_at.astimezone(RECEIVED.tzinfo).strftime("%Y-%m-%dT%H:%M"),
        "channel": str(c.channel_id),
        "subject": c.subject or "主题",
        "content": content,
        "customer_demand": "赔偿",
        "category": str(c.category_id),
        "level": str(c.level_id),
        "department": str(c.department_id),
    }


def test_rest_put_is_refused_for_everyone(app, api, cases):
    archived, control = cases
    before = snapshot(archived)
    for login in USERS:
        r = api(login).put(f"/api/v1/complaint/{archived}", json={"content": "篡改内容", "subject": "篡改"})
        assert r.status_code in (403, 404, 409), (login, r.status_code)
        if login == "renshi":
            assert r.status_code == 409 and r.json["message"]
    assert snapshot(archived) == before
    r = api("renshi").put(f"/api/v1/complaint/{control}", json={"content": "更正内容"})
    assert r.status_code == 200, r.json
    assert snapshot(control)["case"]["content"] == "更正内容"


def test_rest_delete_is_refused(app, api, cases):
    archived, _ = cases
    before = snapshot(archived)
    for login in USERS:
        assert api(login).delete(f"/api/v1/complaint/{archived}").status_code in (403, 404, 405), login
    assert snapshot(archived) == before


@pytest.mark.parametrize(
    "action, fields",
    [
        ("remind", {"note": "催办"}),
        ("escalate", {"note": "督办"}),
        ("follow_up", {"satisfaction": "unsatisfied", "follow_up_note": "重开"}),
        ("close", {"close_note": "再结案"}),
        ("archive", {}),
        ("request_extension", {"stage": "follow_up", "amount": 1, "unit": "working_days", "reason": "x"}),
        ("report_to_gm", {"note": "报告"}),
    ],
)
def test_transitions_are_refused_for_everyone(app, api, cases, action, fields):
    archived, _ = cases
    before = snapshot(archived)
    for login in USERS:
        client = api(login)
        assert client.get(f"/api/v1/complaint/{archived}/transitions").json.get("result", []) == [] or login == "admin"
        r = client.post(f"/api/v1/complaint/{archived}/transition", json={"action": action, **fields})
        assert r.status_code in (403, 404, 409), (login, action, r.status_code)
        if login == "renshi":
            assert r.status_code == 409
    assert snapshot(archived) == before


def test_api_attachment_upload_is_refused(app, api, cases):
    archived, control = cases
    before = snapshot(archived)
    for login in USERS:
        r = api(login).post(
            f"/api/v1/complaint/{archived}/attachments",
            data={"file": (io.BytesIO(PNG), "photo.png"), "description": "现场照片"},
            content_type="multipart/form-data",
        )
        assert r.status_code in (403, 404, 409), (login, r.status_code)
        if login in ("renshi", "zhuguan_a"):
            assert r.status_code == 409
    assert snapshot(archived) == before
    r = api("zhuguan_a").post(
        f"/api/v1/complaint/{control}/attachments",
        data={"file": (io.BytesIO(PNG), "photo.png")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.json


def test_ui_attachment_upload_is_refused(app, web, cases):
    archived, control = cases
    before = snapshot(archived)
    for login in ("kefu", "zhuguan_a", "renshi", "zongjingli"):
        browser = web(login)
        r = browser.post(
            f"/complaintview/attach/{archived}",
            data={"file": (io.BytesIO(PNG), "photo.png"), "description": "现场照片"},
            content_type="multipart/form-data",
        )
        assert r.status_code in (302, 403, 404), (login, r.status_code)
    assert snapshot(archived) == before
    r = web("renshi").post(
        f"/complaintview/attach/{control}",
        data={"file": (io.BytesIO(PNG), "photo.png")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    assert len(snapshot(control)["attachments"]) == 1


def test_ui_edit_is_refused(app, web, org, cases):
    archived, control = cases
    before = snapshot(archived)
    browser = web("renshi")
    r = browser.post(f"/complaintview/edit/{archived}", data=_edit_form(org, archived, "篡改内容"))
    assert r.status_code in (200, 302, 403, 409)
    assert snapshot(archived) == before
    page = browser.get(f"/complaintview/show/{archived}").get_data(as_text=True)
    assert f"/complaintview/edit/{archived}" not in page, "no edit button on an archived case"
    assert f"/complaintview/attach/{archived}" not in page, "no upload form on an archived case"
    for login in ("kefu", "zhuguan_a", "zongjingli"):
        web(login).post(f"/complaintview/edit/{archived}", data=_edit_form(org, archived, "篡改"))
    assert snapshot(archived) == before
    # The same form on the open case is accepted and saved.
    r = browser.post(f"/complaintview/edit/{control}", data=_edit_form(org, control, "更正后的内容"))
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    assert snapshot(control)["case"]["content"] == "更正后的内容"


def test_ui_actions_and_delete_are_refused(app, web, cases):
    archived, _ = cases
    before = snapshot(archived)
    for login in ("kefu", "zhuguan_a", "renshi", "zongjingli"):
        browser = web(login)
        for action, extra in (
            ("remind", {"note": "x"}),
            ("follow_up", {"satisfaction": "unsatisfied", "follow_up_note": "x"}),
        ):
            r = browser.post(f"/complaintview/act/{archived}", data={"action": action, **extra})
            assert r.status_code in (302, 403, 404), (login, r.status_code)
        browser.post(f"/complaintview/delete/{archived}")
    assert snapshot(archived) == before


def test_jobs_leave_an_archived_case_alone(app, cases):
    from sla_support import travel

    archived, _ = cases
    before = snapshot(archived)
    travel(app, at(2026, 12, 31, 12, 0))
    assert snapshot(archived) == before
