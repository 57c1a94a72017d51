"""Personal data of complainants (个人信息保护法): masking, reveal, 保密 and retention.

Phone, e-mail and address are masked on every path by default; a role of the
``privacy.reveal_roles`` setting reveals them on a case it sees, and every reveal is
logged; a staff member named in a complaint never sees who complained; customers
whose cases have all been archived longer than the retention period are anonymised
without changing any statistic.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from http_clients import Client
from quality_support import archive
from sqlalchemy import func, select

from app import db, settings
from app.access import privacy
from app.documents import record_form
from app.models import AccessLog, Complaint, ComplaintEvent, Customer
from app.quality import analytics, stats
from app.timeutil import LOCAL_TZ

PHONE = "13812348000"
EMAIL = "zhangsan@example.com"
ADDRESS = "郑州市金水区阳光花园3号楼2单元501"
OCT = datetime(2026, 10, 12, 10, 0, tzinfo=LOCAL_TZ)


# --- The masking rules themselves ---------------------------------------------------------------


def test_mask_phone_keeps_first_three_and_last_four_digits():
    assert privacy.mask_phone("13812348000") == "138****8000"
    assert privacy.mask_phone("0371-12345678") == "0371-****5678"
    assert privacy.mask_phone("110") == "1****"
    assert privacy.mask_phone(None) is None and privacy.mask_phone("") == ""


def test_mask_email_keeps_first_letter_and_domain():
    assert privacy.mask_email("zhangsan@example.com") == "z***@example.com"
    assert privacy.mask_email("noatsign") == "n***"
    assert privacy.mask_email(None) is None


def test_mask_address_keeps_about_six_characters():
    assert privacy.mask_address(ADDRESS) == "郑州市金水区****"
    assert privacy.mask_address("金水区") == "金****"
    assert privacy.mask_address(None) is None


def test_strip_contacts_removes_phone_numbers_and_emails_from_text():
    text = "请回电13812348000或0371-12345678，邮件a.b@example.com；工单号2026001234"
    assert privacy.strip_contacts(text) == "请回电［已删除］或［已删除］，邮件［已删除］；工单号2026001234"


def test_customer_fields_per_mode():
    c = Customer(id=1, name="张三", phone=PHONE, email=EMAIL, address=ADDRESS)
    assert privacy.customer_fields(c, privacy.FULL)["phone"] == PHONE
    masked = privacy.customer_fields(c)
    assert masked == {
        "name": "张三",
        "phone": "138****8000",
        "email": "z***@example.com",
        "address": "郑州市金水区****",
    }
    hidden = privacy.customer_fields(c, privacy.HIDE)
    assert "张三" not in str(hidden) and "8000" not in str(hidden)


# --- Fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def case(app, make_complaint):
    """A 工程部 case about 刘强 (no login), registered by kefu, with full contact details."""
    c = make_complaint(department="GC", staff=("刘强",), phone=PHONE)
    c.customer.name, c.customer.email, c.customer.address = "张三", EMAIL, ADDRESS
    db.session.commit()
    return c.id


@pytest.fixture
def against_head(app, make_complaint):
    """A 工程部 case naming its head 张建国 (zhuguan_a) as the complained staff member."""
    c = make_complaint(department="GC", staff=("张建国",), phone="13912345678")
    c.customer.name, c.customer.email, c.customer.address = "李四", "lisi@example.com", ADDRESS
    db.session.commit()
    return c.id


def _body(response) -> str:
    """The response as text, JSON without \\u escapes (so Chinese values can be searched)."""
    if response.is_json:
        return json.dumps(response.json, ensure_ascii=False)
    return response.get_data(as_text=True)


# Times are left out before searching: "5678", the last digits of a phone number, was found in a
# timestamp's microseconds ("15:31:46.556788"), one run in a few thousand.
_TIMES = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2})?")


def _full_values_absent(text: str, *values: str) -> None:
    text = _TIMES.sub("", text)
    for value in values:
        assert value not in text, value


# --- Masked by default ------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["kefu", "zhuguan_a", "renshi", "zongjingli"])
def test_complaint_api_masks_contact_details_for_every_role(app, case, login):
    who = Client(app, login, api=True)
    one = who.get(f"/api/v1/complaint/{case}")
    assert one.status_code == 200
    assert one.json["result"]["customer"]["phone"] == "138****8000"
    listed = who.get("/api/v1/complaint/")
    assert listed.status_code == 200
    _full_values_absent(_body(one) + _body(listed), PHONE, EMAIL, ADDRESS)


def test_customer_api_and_screens_mask_contact_details(app, case):
    hr = Client(app, "renshi", api=True)
    listed = hr.get("/api/v1/customer/")
    assert listed.status_code == 200 and listed.json["count"] == 1
    row = listed.json["result"][0]
    assert (row["phone"], row["email"]) == ("138****8000", "z***@example.com")
    customer_id = listed.json["ids"][0]
    one = hr.get(f"/api/v1/customer/{customer_id}")
    assert one.json["result"]["address"] == "郑州市金水区****"
    looked_up = hr.get("/api/v1/customer/lookup?q=张")
    assert "138****8000" in _body(looked_up)
    web = Client(app, "renshi")
    pages = "".join(
        _body(web.get(url))
        for url in ("/customerview/list/", f"/customerview/show/{customer_id}", f"/complaintview/show/{case}")
    )
    assert "138****8000" in pages and "z***@example.com" in pages
    _full_values_absent(
        pages + _body(listed) + _body(one) + _body(looked_up),
        PHONE,
        EMAIL,
        ADDRESS,
    )


def _customer_filter(col: str, opr: str, value: str) -> str:
    return f"/api/v1/customer/?q=(filters:!((col:{col},opr:{opr},value:'{value}')))"


def _reveals() -> list[AccessLog]:
    db.session.expire_all()
    return db.session.scalars(select(AccessLog).where(AccessLog.action == "reveal").order_by(AccessLog.id)).all()


def test_a_masked_phone_cannot_be_rebuilt_by_prefix_searches(app, case):
    """Issue 13 (5): 72 requests with opr:sw rebuilt 0371-****6273; now every partial operator
    on a masked column is refused with a Chinese 400 and nothing is learnt."""
    kefu = Client(app, "kefu", api=True)
    known = ""
    for _position in range(len(PHONE)):
        for digit in "0123456789":
            r = kefu.get(_customer_filter("phone", "sw", known + digit))
            assert r.status_code == 400, _body(r)
            assert "精确" in r.json["message"]
            if r.json.get("count"):
                known += digit
                break
    assert known == ""
    for col, value in (("phone", "8000"), ("email", "zhang"), ("address", "郑州")):
        for opr in ("sw", "ew", "ct", "nct", "nsw", "new", "neq", "in"):
            r = kefu.get(_customer_filter(col, opr, value))
            assert r.status_code == 400, (col, opr, _body(r))
    assert _reveals() == []
    # The filter list offered for the masked columns holds "equal to" only.
    info = kefu.get("/api/v1/customer/_info?q=(keys:!(filters))").json["filters"]
    assert [f["operator"] for f in info["phone"]] == ["eq"] and [f["operator"] for f in info["email"]] == ["eq"]


def test_an_exact_search_of_a_masked_field_finds_the_customer_and_is_logged(app, case):
    kefu = Client(app, "kefu", api=True)
    customer_id = db.session.get(Complaint, case).customer_id
    r = kefu.get(_customer_filter("phone", "eq", PHONE))
    assert r.status_code == 200 and r.json["ids"] == [customer_id]
    assert r.json["result"][0]["phone"] == "138****8000"
    assert kefu.get(_customer_filter("email", "eq", EMAIL)).json["ids"] == [customer_id]
    logged = _reveals()
    assert [(row.username, row.target_type, row.target_id) for row in logged] == [("kefu", "customer", customer_id)] * 2
    assert PHONE not in logged[0].detail and "138****8000" in logged[0].detail
    # The intake's "this caller's history" (exact phone) keeps working and is logged the same way.
    history = kefu.get(f"/api/v1/complaint/lookup_caller?phone={PHONE}")
    assert history.status_code == 200 and [c["id"] for c in history.json["result"]] == [case]
    assert len(_reveals()) == 3 and _reveals()[-1].detail.startswith("caller history")
    # The relation picker matches a phone number only as a whole.
    assert kefu.get("/api/v1/customer/lookup?q=1381234").json["results"] == []
    whole = kefu.get(f"/api/v1/customer/lookup?q={PHONE}").json["results"]
    assert [row["id"] for row in whole] == [customer_id] and len(_reveals()) == 4


def test_the_customer_list_screen_searches_masked_fields_by_exact_match_only(app, case):
    web = Client(app, "renshi")
    customer_id = db.session.get(Complaint, case).customer_id
    # Filter 0 is the only one left on a masked column: "equal to".
    refused = web.get("/customerview/list/?_flt_2_phone=138")
    assert refused.status_code == 400 and "精确" in _body(refused)
    assert web.get("/customerview/list/?_flt_0_phone=138").status_code == 200
    found = web.get(f"/customerview/list/?_flt_0_phone={PHONE}")
    assert found.status_code == 200 and "138****8000" in _body(found)
    assert [(row.username, row.target_id) for row in _reveals()] == [("renshi", None), ("renshi", customer_id)]


def test_customer_api_answers_to_writes_are_masked_and_the_edit_form_is_logged(app, case):
    hr = Client(app, "renshi", api=True)
    customer_id = db.session.get(Complaint, case).customer_id
    r = hr.put(f"/api/v1/customer/{customer_id}", json={"note": "常客"})
    assert r.status_code == 200, _body(r)
    assert r.json["result"]["phone"] == "138****8000"
    created = hr.post("/api/v1/customer/", json={"name": "王五", "phone": "13711112222", "address": ADDRESS})
    assert created.status_code == 201, _body(created)
    _full_values_absent(_body(r) + _body(created), PHONE, "13711112222", ADDRESS)
    form = Client(app, "renshi").get(f"/customerview/edit/{customer_id}")
    assert form.status_code == 200 and PHONE in _body(form)
    logged = db.session.scalars(select(AccessLog).where(AccessLog.action == "reveal")).all()
    assert [(row.username, row.target_type, row.target_id) for row in logged] == [("renshi", "customer", customer_id)]


def test_record_form_prints_masked_contact_details(app, case):
    from app.models import Complaint as C

    context = record_form.record_form_context(db.session.get(C, case))["complaint"]
    assert context["customer_phone"] == "138****8000"
    assert context["customer_address"] == "郑州市金水区****"
    assert context["customer_name"] == "张三"
    pdf = Client(app, "renshi", api=True).get(f"/api/v1/complaint/{case}/record_form.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


# --- Reveal -------------------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["kefu", "zhuguan_a", "renshi", "zongjingli"])
def test_reveal_roles_see_full_details_and_each_reveal_is_logged(app, case, login):
    r = Client(app, login, api=True).post(f"/api/v1/complaint/{case}/reveal")
    assert r.status_code == 200, _body(r)
    assert r.json["result"] == {"name": "张三", "phone": PHONE, "email": EMAIL, "address": ADDRESS}
    logged = db.session.scalars(select(AccessLog).where(AccessLog.action == "reveal")).all()
    assert [(row.username, row.target_type, row.target_id) for row in logged] == [(login, "complaint", case)]
    assert logged[0].at is not None and logged[0].user_id is not None


def test_reveal_outside_scope_or_without_role_is_refused(app, case):
    # Another department's head does not see the case at all; Admin has no complaint access.
    assert Client(app, "zhuguan_b", api=True).post(f"/api/v1/complaint/{case}/reveal").status_code == 404
    assert Client(app, "admin", api=True).post(f"/api/v1/complaint/{case}/reveal").status_code in (401, 403)
    assert Client(app, None).post(f"/api/v1/complaint/{case}/reveal").status_code in (401, 403)
    # A role taken out of the setting may no longer reveal.
    settings.put(db.session, "privacy.reveal_roles", ["人事行政经理"])
    db.session.commit()
    r = Client(app, "kefu", api=True).post(f"/api/v1/complaint/{case}/reveal")
    assert r.status_code == 403 and r.json["message"]
    assert Client(app, "renshi", api=True).post(f"/api/v1/complaint/{case}/reveal").status_code == 200
    assert db.session.scalar(select(func.count()).select_from(AccessLog).where(AccessLog.action == "reveal")) == 1


def test_case_page_reveal_button_shows_details_and_who_revealed(app, case):
    web = Client(app, "zongjingli")
    page = _body(web.get(f"/complaintview/show/{case}"))
    assert f"/complaintview/reveal/{case}" in page
    _full_values_absent(page, PHONE, EMAIL, ADDRESS)
    shown = web.post(f"/complaintview/reveal/{case}")
    assert shown.status_code == 200
    text = _body(shown)
    assert PHONE in text and EMAIL in text and ADDRESS in text
    # Every later visitor sees who revealed it, and the details are masked again.
    again = _body(Client(app, "renshi").get(f"/complaintview/show/{case}"))
    assert "zongjingli" in again
    _full_values_absent(again, PHONE, EMAIL, ADDRESS)


def test_access_log_is_listed_read_only_for_hr_gm_and_admin(app, case):
    Client(app, "renshi", api=True).post(f"/api/v1/complaint/{case}/reveal")
    row_id = db.session.scalar(select(AccessLog.id))
    for login in ("renshi", "zongjingli", "admin"):
        web = Client(app, login)
        listed = web.get("/accesslogview/list/?_flt_0_action=reveal")
        assert listed.status_code == 200 and "renshi" in _body(listed), login
        for url in (f"/accesslogview/edit/{row_id}", "/accesslogview/add", f"/accesslogview/delete/{row_id}"):
            r = web.get(url)
            assert r.status_code in (302, 403, 404, 405), (login, url, r.status_code)
    for login in ("kefu", "zhuguan_a"):
        r = Client(app, login).get("/accesslogview/list/")
        assert r.status_code in (302, 403), login
    assert db.session.scalar(select(func.count()).select_from(AccessLog)) == 1


# --- Complainant protection (保密) ---------------------------------------------------------------


def test_complained_staff_never_sees_the_complainant(app, case, against_head):
    head = Client(app, "zhuguan_a", api=True)
    secret = ("李四", "13912345678", "5678", "lisi@example.com", ADDRESS, "郑州市金水区")
    # REST: list and show (the case is in the head's department, so it is in scope).
    listed = head.get("/api/v1/complaint/")
    assert listed.status_code == 200 and set(listed.json["ids"]) == {case, against_head}
    one = head.get(f"/api/v1/complaint/{against_head}")
    assert one.status_code == 200 and one.json["result"]["customer"]["name"] == privacy.HIDDEN
    _full_values_absent(_body(listed) + _body(one), *secret)
    # The other case (not about the head) still shows its customer's name.
    assert "张三" in _body(listed)
    # Reveal is refused whatever the role, even though 部门主管 may reveal its own cases.
    assert head.post(f"/api/v1/complaint/{against_head}/reveal").status_code == 403
    assert head.post(f"/api/v1/complaint/{case}/reveal").status_code == 200
    # Customer list and API leave the complainant out.
    customers = head.get("/api/v1/customer/")
    looked_up = head.get("/api/v1/customer/lookup?q=李")
    assert customers.status_code == 200 and looked_up.status_code == 200
    assert "张三" in _body(Client(app, "zhuguan_a", api=True).get("/api/v1/customer/lookup"))
    _full_values_absent(_body(customers) + _body(looked_up), *secret)
    # Screens: complaint list, case page (no reveal button), customer list.
    web = Client(app, "zhuguan_a")
    pages = {
        url: web.get(url)
        for url in ("/complaintview/list/", f"/complaintview/show/{against_head}", "/customerview/list/")
    }
    assert all(r.status_code == 200 for r in pages.values())
    assert f"/complaintview/reveal/{against_head}" not in _body(pages[f"/complaintview/show/{against_head}"])
    _full_values_absent("".join(_body(r) for r in pages.values()), *secret)
    assert web.post(f"/complaintview/reveal/{against_head}").status_code == 403
    # The printed record form leaves the customer out too.
    context = record_form.record_form_context(db.session.get(Complaint, against_head), "hidden")["complaint"]
    _full_values_absent(str(context), *secret)
    pdf = head.get(f"/api/v1/complaint/{against_head}/record_form.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_complained_staff_gets_a_record_form_without_the_customer_even_when_archived(app, org, against_head):
    from app.documents.render import current_document

    complaint = db.session.get(Complaint, against_head)
    archive(org, complaint, OCT, head="renshi")  # the complained head steps aside
    # HR prints (and so stores) the archived form; the head then downloads it.
    assert Client(app, "renshi", api=True).get(f"/api/v1/complaint/{against_head}/record_form.pdf").status_code == 200
    stored = current_document(db.session, "record_form", complaint_id=against_head)
    assert stored is not None
    hidden = Client(app, "zhuguan_a", api=True).get(f"/api/v1/document/{stored.id}/download")
    assert hidden.status_code == 200 and hidden.data.startswith(b"%PDF")
    assert hidden.data != stored.content  # a fresh copy without the customer, not the stored one


# --- Retention -----------------------------------------------------------------------------------


def _figures(org, now):
    from app.access import scope
    from app.views.dashboards import dashboard_scope

    stats.refresh(db.session, limit=20000, now=now)
    db.session.commit()
    principal = org.principal("zongjingli")
    departments, charts = dashboard_scope(principal)
    period = analytics.parse_period("month", "2026-10")
    return analytics.dashboard(db.session, charts, period, departments, scope.criterion(Complaint, principal), now=now)


def _run_anonymise(app, now):
    from app import jobs

    return jobs.run_due(app, now, only=["anonymise"])["jobs"]["anonymise"]


def test_retention_anonymises_customers_whose_cases_are_all_archived_long_enough(app, org, make_complaint):
    old = make_complaint(
        department="GC", received_at=OCT, now=OCT, phone=PHONE, content=f"请回电{PHONE}，电梯停运", staff=("刘强",)
    )
    old.customer.email, old.customer.address = EMAIL, ADDRESS
    # Same customer, second case archived too; another customer with one case still open.
    second = make_complaint(department="GC", received_at=OCT, now=OCT, phone=PHONE)
    still_open = make_complaint(department="BA", received_at=OCT, now=OCT, phone="13700000000")
    recent = make_complaint(department="GC", received_at=OCT, now=OCT, phone="13600000000")
    for c in (old, second, recent):
        archive(org, c, OCT + timedelta(hours=1))
    customer_id, kept_id, recent_id = old.customer_id, still_open.customer_id, recent.customer_id
    later = OCT + timedelta(days=1200)
    before = _figures(org, later)

    # Not yet: 1095 days after archiving have not passed.
    assert _run_anonymise(app, OCT + timedelta(days=1000))["customers"] == 0
    # The retention period is a setting: shorten it for "recent" only by running at a later time.
    result = _run_anonymise(app, later)
    assert result["customers"] == 2 and result["complaints"] == 3, result
    db.session.expire_all()
    customer = db.session.get(Customer, customer_id)
    assert (customer.name, customer.phone, customer.email, customer.address) == (
        privacy.ANONYMISED_NAME,
        None,
        None,
        None,
    )
    assert customer.anonymised_at is not None
    complaint = db.session.get(Complaint, old.id)
    assert complaint.anonymised_at is not None and PHONE not in complaint.content and "电梯停运" in complaint.content
    assert db.session.get(Customer, recent_id).anonymised_at is not None
    kept = db.session.get(Customer, kept_id)
    assert kept.anonymised_at is None and kept.phone == "13700000000"
    events = db.session.scalars(
        select(ComplaintEvent.complaint_id).where(ComplaintEvent.action == "anonymised").order_by(ComplaintEvent.id)
    ).all()
    assert sorted(events) == sorted([old.id, second.id, recent.id])
    # Statistics are unchanged.
    assert _figures(org, later) == before
    # Idempotent: a second run changes nothing.
    assert _run_anonymise(app, later + timedelta(days=1))["customers"] == 0
    assert db.session.scalar(select(func.count()).where(ComplaintEvent.action == "anonymised")) == 3
    # A reveal of an anonymised case returns what is left.
    r = Client(app, "renshi", api=True).post(f"/api/v1/complaint/{old.id}/reveal")
    assert r.status_code == 200
    assert r.json["result"] == {"name": privacy.ANONYMISED_NAME, "phone": None, "email": None, "address": None}


def test_anonymise_job_runs_from_the_command_line(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "--job", "anonymise", "--now", "2030-01-01T03:00:00+08:00"])
    assert result.exit_code == 0, result.output
    assert '"anonymise": {"customers": 0' in result.output
