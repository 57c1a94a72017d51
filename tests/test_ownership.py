"""首问负责制, 不满工单 and 升级投诉: the first responder owns the case, tickets convert, re-complaints escalate."""

from datetime import datetime, timedelta

from sqlalchemy import select

from app import db
from app.models import CaseType, Category, Complaint, Grievance, Level, Notification
from app.timeutil import LOCAL_TZ, utcnow


def _take(client, cid, action, expect=200, **fields):
    r = client.post(f"/api/v1/complaint/{cid}/transition", json={"action": action, **fields})
    assert r.status_code == expect, (action, r.status_code, r.get_json())
    return r.get_json()


def _walk_to_followed_up(api, cid, head="zhuguan_a"):
    hr, head_ = api("renshi"), api(head)
    _take(hr, cid, "judge_valid", validity_reason="属实")
    _take(hr, cid, "dispatch")
    _take(head_, cid, "start_investigation")
    _take(head_, cid, "propose_plan", findings="属实", resolution_plan="维修")
    _take(head_, cid, "reply", reply_text="已安排维修，感谢您的耐心")
    _take(head_, cid, "feed_back", feedback_note="客户认可")
    _take(hr, cid, "follow_up", satisfaction="satisfied", follow_up_note="满意")


# --- 首问负责制 -------------------------------------------------------------------------------------


def test_first_responder_sees_their_case_in_another_department_and_nothing_else_of_it(api, web, make_complaint, org):
    # zhuguan_a heads 工程部 (GC) and took a complaint about 保安部 (BA) at its counter.
    mine = make_complaint(department="BA", by="zhuguan_a", content="门岗保安态度恶劣")
    other = make_complaint(department="BA", by="kefu", content="巡逻保安夜间喧哗")
    own_department = make_complaint(department="GC", by="kefu")
    head = api("zhuguan_a")

    numbers = {row["number"] for row in head.get("/api/v1/complaint/?q=(page_size:100)").json["result"]}
    assert mine.number in numbers and own_department.number in numbers
    assert other.number not in numbers
    assert head.get(f"/api/v1/complaint/{mine.id}").status_code == 200
    assert head.get(f"/api/v1/complaint/{other.id}").status_code == 404
    assert head.get(f"/api/v1/complaint/{mine.id}/timeline").status_code == 200
    assert head.get(f"/api/v1/complaint/{other.id}/timeline").status_code in (403, 404)
    pdf = head.get(f"/api/v1/complaint/{mine.id}/record_form.pdf")
    assert pdf.status_code == 200 and pdf.data[:4] == b"%PDF"
    assert head.get(f"/api/v1/complaint/{other.id}/record_form.pdf").status_code in (403, 404)

    browser = web("zhuguan_a")
    listing = browser.get("/complaintview/list/?psize_ComplaintView=100").get_data(as_text=True)
    assert mine.number in listing and other.number not in listing
    assert browser.get(f"/complaintview/show/{mine.id}").status_code == 200
    assert browser.get(f"/complaintview/show/{other.id}").status_code in (302, 404)
    registered = browser.get("/myregisteredcomplaintview/list/").get_data(as_text=True)
    assert mine.number in registered
    assert other.number not in registered and own_department.number not in registered

    # The other department's head reads it as its own; the owner only reads: no department step.
    hr = api("renshi")
    _take(hr, mine.id, "judge_valid", validity_reason="属实")
    _take(hr, mine.id, "dispatch")
    actions = [t["action"] for t in head.get(f"/api/v1/complaint/{mine.id}/transitions").json["result"]]
    assert actions == []
    _take(head, mine.id, "start_investigation", expect=403)
    _take(head, mine.id, "report_to_gm", expect=409, note="x")  # not offered either
    _take(api("zhuguan_b"), mine.id, "start_investigation")


def test_the_first_responder_is_told_of_every_stage(api, make_complaint, org):
    c = make_complaint(department="GC", by="kefu")
    _walk_to_followed_up(api, c.id)
    kefu_id = org.user("kefu").id
    kinds = db.session.scalars(
        select(Notification.kind).where(Notification.user_id == kefu_id, Notification.complaint_id == c.id)
    ).all()
    for step in ("judge_valid", "dispatch", "start_investigation", "propose_plan", "reply", "feed_back", "follow_up"):
        assert step in kinds, (step, kinds)
    titles = db.session.scalars(select(Notification.title).where(Notification.user_id == kefu_id)).all()
    assert any(c.number in t for t in titles)


def test_close_is_refused_until_the_owner_confirms_the_customer_was_told(api, make_complaint, org):
    c = make_complaint(department="GC", by="kefu")
    _walk_to_followed_up(api, c.id)
    hr, kefu = api("renshi"), api("kefu")
    refused = _take(hr, c.id, "close", expect=409, close_note="结案")
    assert "首问" in refused["message"] or "告知" in refused["message"] or "told" in refused["message"]
    assert db.session.get(Complaint, c.id).status.value == "followed_up"

    assert "confirm_informed" in [t["action"] for t in kefu.get(f"/api/v1/complaint/{c.id}/transitions").json["result"]]
    _take(api("zongjingli"), c.id, "confirm_informed", expect=403, method="phone")  # not the owner
    _take(kefu, c.id, "confirm_informed", expect=422)  # how the customer was told is required
    body = _take(kefu, c.id, "confirm_informed", method="电话", note="已电话告知处理结果")
    assert body["result"]["customer_informed_method"] == "phone"
    assert body["result"]["customer_informed_at"]
    _take(kefu, c.id, "confirm_informed", expect=409, method="phone")  # once
    closed = _take(hr, c.id, "close", close_note="结案")
    assert closed["result"]["status"] == "closed"
    case = db.session.get(Complaint, c.id)
    assert case.customer_informed_by_id == org.user("kefu").id


def test_hr_may_confirm_the_customer_was_told_while_closing(api, make_complaint):
    c = make_complaint(department="GC", by="kefu")
    _walk_to_followed_up(api, c.id)
    hr = api("renshi")
    _take(hr, c.id, "close", expect=422, close_note="结案", customer_informed="carrier pigeon")
    body = _take(hr, c.id, "close", close_note="结案", customer_informed="visit")
    assert body["result"]["status"] == "closed" and body["result"]["customer_informed_method"] == "visit"
    assert db.session.get(Complaint, c.id).customer_informed_at is not None


# --- 不满工单 ----------------------------------------------------------------------------------------


def _ticket(client, org, **over):
    body = {
        "customer_name": "赵先生",
        "customer_phone": "13911112222",
        "channel": _channel_id(),
        "department": org.dept("BA").id,
        "content": "门岗不让外卖进小区",
        "explanation": "按小区管理规定外卖放在门岗取件柜，已说明原因",
        "accepted": True,
        **over,
    }
    return client.post("/api/v1/grievance/", json=body)


def _channel_id():
    from app.models import Channel

    return db.session.scalars(select(Channel.id).where(Channel.code == "phone")).one()


def test_a_dissatisfaction_ticket_converts_keeping_its_number_and_time_of_receipt(api, org, make_complaint):
    kefu = api("kefu")
    received = (utcnow() - timedelta(days=3)).astimezone(LOCAL_TZ).replace(microsecond=0)
    refused = _ticket(kefu, org, accepted=False)
    assert refused.status_code == 422 and "accepted" in refused.json["message"]
    r = _ticket(kefu, org, received_at=received.isoformat())
    assert r.status_code == 201, r.get_json()
    ticket_id, number = r.json["id"], r.json["result"]["number"]
    assert number.startswith("TS")
    assert db.session.scalar(select(Complaint).where(Complaint.number == number)) is None  # no complaint yet

    # Scope: 客服 its own, the concerned department's head, HR and GM all; another head nothing.
    for user, seen in (
        ("kefu", True),
        ("zhuguan_b", True),
        ("renshi", True),
        ("zongjingli", True),
        ("zhuguan_a", False),
    ):
        ids = [row["id"] for row in api(user).get("/api/v1/grievance/").json["result"]]
        assert (ticket_id in ids) is seen, user
    assert api("zhuguan_b").post(f"/api/v1/grievance/{ticket_id}/convert", json={}).status_code == 403

    # Not counted as a complaint; counted apart in the dashboard data and the monthly report.
    dashboard = api("renshi").get("/api/v1/dashboard/data?period=month").json
    assert dashboard["grievances"]["total"] >= 0
    year = received.year
    monthly = api("renshi").get(f"/api/v1/grievance/monthly?year={year}").json["result"]
    assert sum(m["total"] for m in monthly) == 1

    # The customer comes back: the complaint keeps the ticket's number and time of receipt.
    payload = {
        "category": db.session.scalars(select(Category.id).where(Category.code == "equipment")).one(),
        "level": db.session.scalars(select(Level.id).where(Level.code == "normal")).one(),
        "content": "客户再次来电，仍不满意",
    }
    missing = kefu.post(f"/api/v1/grievance/{ticket_id}/convert", json={"content": "x"})
    assert missing.status_code == 422 and "category" in missing.json["message"]
    converted = kefu.post(f"/api/v1/grievance/{ticket_id}/convert", json=payload)
    assert converted.status_code == 201, converted.get_json()
    assert converted.json["number"] == number
    complaint = db.session.get(Complaint, converted.json["id"])
    assert complaint.number == number
    assert complaint.received_at == received
    assert complaint.department.code == "BA"  # the ticket's department
    assert "门岗不让外卖进小区" in complaint.content
    # Its clock runs from the ticket's receipt: same deadlines as a case received then.
    twin = make_complaint(department="BA", received_at=received)
    assert complaint.investigate_due == twin.investigate_due and complaint.reply_due == twin.reply_due
    assert complaint.overdue == twin.overdue
    assert [e.action for e in complaint.events][:2] == ["register", "grievance_converted"]
    assert db.session.get(Grievance, ticket_id).complaint_id == complaint.id
    again = kefu.post(f"/api/v1/grievance/{ticket_id}/convert", json=payload)
    assert again.status_code == 409
    monthly = api("renshi").get(f"/api/v1/grievance/monthly?year={year}").json["result"]
    assert sum(m["converted"] for m in monthly) == 1


def test_grievance_screens_list_and_record_tickets(web, org):
    browser = web("kefu")
    page = browser.get("/grievanceview/add")
    assert page.status_code == 200
    r = browser.post(
        "/grievanceview/add",
        data={
            "channel": str(_channel_id()),
            "customer_name": "钱女士",
            "customer_phone": "13933334444",
            "department": str(org.dept("GC").id),
            "content": "电梯广告声音太大",
            "explanation": "已调低音量并说明",
            "accepted": "y",
        },
        follow_redirects=True,
    )
    assert r.status_code == 200
    ticket = db.session.scalars(select(Grievance).where(Grievance.content == "电梯广告声音太大")).one()
    assert ticket.recorded_by_id == org.user("kefu").id
    assert ticket.number in browser.get("/grievanceview/list/").get_data(as_text=True)
    assert ticket.number not in web("zhuguan_b").get("/grievanceview/list/").get_data(as_text=True)
    show = browser.get(f"/grievanceview/show/{ticket.id}")
    assert show.status_code == 200 and f"/grievanceview/convert/{ticket.id}" in show.get_data(as_text=True)
    assert web("zhuguan_b").get(f"/grievanceview/show/{ticket.id}").status_code == 404
    token = _csrf(show.get_data(as_text=True))
    r = browser.post(
        f"/grievanceview/convert/{ticket.id}",
        data={
            "csrf_token": token,
            "category": str(db.session.scalars(select(Category.id).where(Category.code == "equipment")).one()),
            "level": str(db.session.scalars(select(Level.id).where(Level.code == "normal")).one()),
            "department": str(org.dept("GC").id),
        },
    )
    assert r.status_code == 302
    db.session.expire_all()
    complaint = db.session.get(Grievance, ticket.id).complaint
    assert complaint.number == ticket.number and r.headers["Location"].endswith(f"/complaintview/show/{complaint.id}")
    page = browser.get(f"/complaintview/show/{complaint.id}")
    assert page.status_code == 200 and ticket.number in page.get_data(as_text=True)


def _csrf(html):
    import re

    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


# --- 升级投诉 / 二次投诉 -----------------------------------------------------------------------------


def test_an_escalated_re_complaint_is_linked_one_level_higher_and_counted(api, make_complaint, org):
    original = make_complaint(department="GC", by="kefu", level="important")
    kefu, hr = api("kefu"), api("renshi")
    r = kefu.post(f"/api/v1/complaint/{original.id}/recomplain", json={"content": "对答复不满意，再次投诉"})
    assert r.status_code == 409, r.get_json()  # no reply yet: nothing to re-complain about
    _walk_to_followed_up(api, original.id)
    _take(kefu, original.id, "confirm_informed", method="phone")
    _take(hr, original.id, "close", close_note="结案")

    assert (
        api("zhuguan_a").post(f"/api/v1/complaint/{original.id}/recomplain", json={"content": "x"}).status_code == 403
    )
    assert kefu.post(f"/api/v1/complaint/{original.id}/recomplain", json={}).status_code == 422
    r = kefu.post(
        f"/api/v1/complaint/{original.id}/recomplain", json={"content": "对答复不满意，再次投诉", "note": "客户来电"}
    )
    assert r.status_code == 201, r.get_json()
    escalated = db.session.get(Complaint, r.json["id"])
    assert escalated.case_type == CaseType.escalated and escalated.original_id == original.id
    assert escalated.level.code == "major"  # 重要 -> 重大
    assert escalated.department_id == original.department_id
    assert escalated.status.value == "registered" and escalated.investigate_due is not None  # the flow restarts
    assert r.json["result"]["case_type"] == "escalated" and r.json["result"]["original"]["id"] == original.id
    assert escalated.number != original.number
    timeline = [e["action"] for e in hr.get(f"/api/v1/complaint/{original.id}/timeline").json["result"]]
    assert timeline[-1] == "recomplain"

    # Reported at once to the leader (总经理: departments name no supervising leader yet).
    gm_id = org.user("zongjingli").id
    assert db.session.scalars(
        select(Notification).where(
            Notification.user_id == gm_id, Notification.complaint_id == escalated.id, Notification.kind == "recomplaint"
        )
    ).first()

    # Counted as a 二次投诉 of the department in the dashboard data.
    data = hr.get("/api/v1/dashboard/data?period=month").json
    counts = {row["department_id"]: row["count"] for row in data["re_complaints"]["by_department"]}
    assert counts == {org.dept("GC").id: 1}
    head_data = api("zhuguan_a").get("/api/v1/dashboard/data?period=month").json
    assert head_data["re_complaints"]["total"] == 1

    # A re-complaint of a re-complaint at the top level stays at the top.
    urgent = make_complaint(department="GC", by="kefu", level="urgent")
    _walk_to_followed_up(api, urgent.id)
    r = kefu.post(f"/api/v1/complaint/{urgent.id}/recomplain", json={"content": "仍不满意"})
    assert r.status_code == 201
    assert db.session.get(Complaint, r.json["id"]).level.code == "urgent"


def test_re_complaints_are_a_grading_deduction(app, api, make_complaint, org):
    from app.quality import assessment, grading
    from app.quality.analytics import parse_period

    original = make_complaint(department="GC", by="kefu")
    _walk_to_followed_up(api, original.id)
    assert (
        api("renshi").post(f"/api/v1/complaint/{original.id}/recomplain", json={"content": "不接受答复"}).status_code
        == 201
    )
    period = parse_period("month", datetime.now(LOCAL_TZ).strftime("%Y-%m"))
    figures = assessment.department_figures(db.session, period, [org.dept("GC").id, org.dept("BA").id])
    assert figures[org.dept("GC").id].re_complaints == 1
    assert figures[org.dept("BA").id].re_complaints == 0
    formula = {**grading.DEFAULT_FORMULA, "components": {"re_complaints": {"weight": 1, "points_each": 15}}}
    assert grading.check_formula(formula) == []
    result = grading.grade(figures[org.dept("GC").id], formula)
    assert result.components[0].score == 85.0
