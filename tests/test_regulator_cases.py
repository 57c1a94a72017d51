"""Regulator-transferred cases (监管转办 12345 / 12315): the transferring body and its reference,
the body's own deadline (a rule on the channel), a formal reply report issued as a numbered
document, and the ETC policy's names of the steps on the timeline."""

from __future__ import annotations

import io
from datetime import timedelta

from pypdf import PdfReader
from sqlalchemy import select

from app import db
from app.models import Category, Channel, Complaint, Level, SlaRule
from app.timeutil import utcnow


def _ref(model, code):
    return db.session.scalars(select(model.id).where(model.code == code)).one()


def _intake(org, channel="regulator_12345", **extra):
    return {
        "content": "市民反映小区电梯多次停运，物业未及时维修",
        "customer_name": "赵女士",
        "customer_phone": "13912345678",
        "customer_demand": "尽快维修并书面答复",
        "channel": _ref(Channel, channel),
        "category": _ref(Category, "equipment"),
        "level": _ref(Level, "normal"),
        "department": org.dept("GC").id,
        **extra,
    }


def _take(client, cid, action, **fields):
    r = client.post(f"/api/v1/complaint/{cid}/transition", json={"action": action, **fields})
    assert r.status_code == 200, (action, r.get_json())


def test_intake_needs_the_reference_and_the_body_deadline_applies(api, org):
    kefu = api("kefu")
    r = kefu.post("/api/v1/complaint/", json=_intake(org))
    assert r.status_code == 422, r.get_json()
    assert "转办单号" in str(r.get_json()["message"]["regulator_ref"])
    # 12345 asks for a reply within 48 hours: a rule on the channel, editable like any other.
    channel = db.session.get(Channel, _ref(Channel, "regulator_12345"))
    db.session.add(SlaRule(stage="reply", channel_id=channel.id, amount=48, unit="natural_hours", warn_ratio=0.75))
    db.session.commit()
    r = kefu.post("/api/v1/complaint/", json=_intake(org, regulator_ref="GD20261123-0042"))
    assert r.status_code == 201, r.get_json()
    result = r.get_json()["result"]
    assert result["regulator_ref"] == "GD20261123-0042" and result["regulator_body"] == "监管转办 12345"
    complaint = db.session.get(Complaint, r.get_json()["id"])
    reply = next(d for d in complaint.deadlines if d.stage == "reply")
    assert reply.due_at - complaint.received_at == timedelta(hours=48)
    # An ordinary channel needs no reference and keeps none.
    r = kefu.post("/api/v1/complaint/", json=_intake(org, channel="phone", regulator_ref="x"))
    assert r.status_code == 201 and r.get_json()["result"]["regulator_ref"] is None


def test_reply_report_is_reviewed_issued_numbered_and_on_the_timeline(api, org):
    kefu, hr, head = api("kefu"), api("renshi"), api("zhuguan_a")
    cid = kefu.post(
        "/api/v1/complaint/", json=_intake(org, regulator_ref="12315-889", regulator_body="市场监管局12315")
    ).get_json()["id"]
    _take(hr, cid, "judge_valid", validity_reason="属实")
    _take(hr, cid, "dispatch")
    assert hr.post(f"/api/v1/complaint/{cid}/regulator_reply").status_code == 409  # not replied yet
    _take(head, cid, "start_investigation")
    _take(head, cid, "propose_plan", findings="电梯控制板老化", resolution_plan="更换控制板")
    _take(head, cid, "reply", reply_text="已更换控制板并恢复运行")
    assert head.post(f"/api/v1/complaint/{cid}/regulator_reply").status_code == 403
    assert api("zhuguan_b").post(f"/api/v1/complaint/{cid}/regulator_reply").status_code == 403
    assert hr.get(f"/api/v1/complaint/{cid}/regulator_reply.pdf").status_code == 404
    r = hr.post(f"/api/v1/complaint/{cid}/regulator_reply")
    assert r.status_code == 201, r.get_json()
    first = r.get_json()["result"]
    year = utcnow().year
    assert "人行复字" in first["number"] and str(year) in first["number"]
    pdf = hr.get(f"/api/v1/complaint/{cid}/regulator_reply.pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"].startswith("application/pdf")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    for expected in ("12315-889", "市场监管局12315", "已更换控制板并恢复运行", "139****5678"):
        assert expected in text.replace(" ", "").replace("\n", ""), expected
    assert "13912345678" not in text
    # A second report supersedes the first; the download gives the new one.
    second = hr.post(f"/api/v1/complaint/{cid}/regulator_reply").get_json()["result"]
    assert second["number"] != first["number"]
    text = "".join(
        p.extract_text()
        for p in PdfReader(io.BytesIO(hr.get(f"/api/v1/complaint/{cid}/regulator_reply.pdf").data)).pages
    )
    assert first["number"] in text.replace(" ", "").replace("\n", "")  # "本报告取代 …"
    labels = [e["label"] for e in hr.get(f"/api/v1/complaint/{cid}/timeline").get_json()["result"]]
    assert any(label.startswith("派单") for label in labels)
    assert any(label.startswith("回复") for label in labels)
    assert sum(label.startswith("审核") for label in labels) == 2


def test_an_ordinary_case_has_no_reply_report(api, make_complaint):
    c = make_complaint()
    r = api("renshi").post(f"/api/v1/complaint/{c.id}/regulator_reply")
    assert r.status_code == 409 and "监管" in r.get_json()["message"]
