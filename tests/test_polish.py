"""Small things a new user trips over on the case page and the dashboard (issue 15, item 10)."""

from __future__ import annotations

import re

from sla_support import take

from app import db
from app.models import Complaint


def _case_page(web, login, complaint_id):
    r = web(login).get(f"/complaintview/show/{complaint_id}")
    assert r.status_code == 200
    return r.get_data(as_text=True)


def test_the_dispatch_dialog_starts_with_the_current_department(app, api, web, make_complaint, org):
    c = make_complaint(department="BA", by="kefu")
    take(api("renshi"), c.id, "judge_valid", validity_reason="属实")
    page = _case_page(web, "renshi", c.id)
    select = re.search(r'<select[^>]*id="f-dispatch-department".*?</select>', page, re.DOTALL)
    assert select, "the case page offers no 转派 dialog"
    selected = re.findall(r'<option value="(\d+)" selected>', select.group(0))
    assert selected == [str(org.dept("BA").id)], selected
    # Submitting the dialog as it opens keeps the department.
    take(api("renshi"), c.id, "dispatch", department=int(selected[0]))
    db.session.expire_all()
    assert db.session.get(Complaint, c.id).department_id == org.dept("BA").id


def test_the_first_timeline_entry_reads_registration(app, web, make_complaint):
    c = make_complaint(department="GC", by="kefu")
    page = _case_page(web, "kefu", c.id)
    first = re.search(r'<ul class="timeline">\s*<li[^>]*>(.*?)</li>', page, re.DOTALL).group(1)
    text = " ".join(re.sub(r"<[^>]+>", " ", first).split())
    assert "登记" in text and "→" not in text and "已登记" not in text, text


def test_the_dashboard_has_no_previous_period_series_without_a_previous_period(app, api, make_complaint):
    make_complaint(department="GC", by="kefu")
    data = api("zongjingli").get("/api/v1/dashboard/data?period=month").json
    trend = data["charts"]["trend"]
    assert [s["name"] for s in trend["series"]] == ["本期"], trend["series"]
