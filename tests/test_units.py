"""Branch hierarchy: units (company → branch / 管理处 / 网点), unit heads, escalation to head office.

The demo organisation's departments belong to the company unit (the head office). On top
of it each test builds:

    阳光物业服务有限公司 (company, HQ)      工程部 GC, 保安部 BA, … (head office)
    ├── 城东分公司 (branch, head fengongsi)  城东工程组 DG1
    │   └── 滨江网点 (outlet, head wangdian) 滨江服务中心 WD1 (head wangdian)
    └── 城西网点 (outlet, head chengxi)      城西服务中心 WD2 (head chengxi)
"""

from __future__ import annotations

from datetime import datetime

import pytest
from http_clients import add_login, field_errors
from sla_support import get_case, get_timeline, take
from sqlalchemy import select

from app import db
from app.access import roles
from app.models import Complaint, Department, Notification, Staff, Unit, UnitKind
from app.timeutil import LOCAL_TZ

NOV = datetime(2026, 11, 9, 10, 0, tzinfo=LOCAL_TZ)  # a Monday, office hours


def _head(app, login: str, name: str, department: Department, number: str) -> Staff:
    user = add_login(app, login, [roles.DEPARTMENT_HEAD], name)
    staff = Staff(employee_no=number, name=name, department=department, position="负责人", user_id=user.id)
    db.session.add(staff)
    db.session.flush()
    return staff


@pytest.fixture
def branches(app, org):
    company = db.session.scalars(select(Unit).where(Unit.kind == UnitKind.company)).one()
    branch = Unit(name="城东分公司", code="CD", kind=UnitKind.branch, parent=company, sort=1)
    outlet = Unit(name="滨江网点", code="BJWD", kind=UnitKind.outlet, parent=branch, sort=2)
    west = Unit(name="城西网点", code="CXWD", kind=UnitKind.outlet, parent=company, sort=3)
    dg1 = Department(name="城东工程组", code="DG1", unit=branch, sort=20)
    wd1 = Department(name="滨江服务中心", code="WD1", unit=outlet, sort=21)
    wd2 = Department(name="城西服务中心", code="WD2", unit=west, sort=22)
    db.session.add_all([branch, outlet, west, dg1, wd1, wd2])
    db.session.flush()
    branch.head = _head(app, "fengongsi", "方经理", dg1, "E8001")
    outlet.head = wd1.head = _head(app, "wangdian", "邓丽华", wd1, "E8002")
    west.head = wd2.head = _head(app, "chengxi", "程主任", wd2, "E8003")
    db.session.add(Staff(employee_no="E8004", name="蒋涛", department=wd1, position="客服专员"))
    db.session.commit()
    return {"company": company, "branch": branch, "outlet": outlet, "west": west}


def _ids(client, url="/api/v1/complaint/?q=(page_size:100)"):
    r = client.get(url)
    assert r.status_code == 200, r.get_json()
    return {item["id"] for item in r.json["result"]}


def _notified(org, complaint_id: int, kind: str) -> set[str]:
    rows = db.session.execute(
        select(Notification.user_id).where(Notification.complaint_id == complaint_id, Notification.kind == kind)
    ).all()
    names = {}
    for login in ("renshi", "zongjingli", "zhuguan_a", "wangdian", "fengongsi", "chengxi", "kefu"):
        names[org.user(login).id] = login
    return {names.get(r.user_id, str(r.user_id)) for r in rows}


def test_outlet_head_escalates_a_case_to_the_head_office(app, api, web, branches, make_complaint, org):
    case = make_complaint(department="WD1")
    hr, outlet_head, gc_head = api("renshi"), api("wangdian"), api("zhuguan_a")
    take(hr, case.id, "judge_valid")
    take(hr, case.id, "dispatch")
    # Before the escalation the head office's department heads do not see the 网点's case (404 as
    # for any row outside the caller's scope).
    assert gc_head.get(f"/api/v1/complaint/{case.id}").status_code == 404
    offered = [t["action"] for t in outlet_head.get(f"/api/v1/complaint/{case.id}/transitions").json["result"]]
    assert "escalate_to_head_office" in offered

    # Another unit's head: outside its scope.
    take(api("chengxi"), case.id, "escalate_to_head_office", expect=403, reason="越权")
    # The reason is required; nothing is saved without it.
    r = outlet_head.post(f"/api/v1/complaint/{case.id}/transition", json={"action": "escalate_to_head_office"})
    assert r.status_code == 422 and "reason" in r.json["message"]
    assert get_case(hr, case.id)["escalated_to_head_office_at"] is None

    body = take(outlet_head, case.id, "escalate_to_head_office", reason="业主索赔金额超出网点权限")
    assert body["result"]["escalated_to_head_office_at"]
    assert body["result"]["status"] == "dispatched"  # the case stays where it was
    db.session.expire_all()
    stored = db.session.get(Complaint, case.id)
    assert stored.escalated_to_head_office_by_id == org.user("wangdian").id

    # On the timeline, as an escalation with its reason.
    events = [e for e in get_timeline(hr, case.id)["result"] if e["action"] == "escalate_to_head_office"]
    assert len(events) == 1
    assert events[0]["kind"] == "escalation" and events[0]["actor"]["username"] == "wangdian"
    assert events[0]["data"]["reason"] == "业主索赔金额超出网点权限"
    # 总经理 and 人事行政经理 are told.
    # 人事行政经理 and 总经理 are told, and the first responder (首问负责制) who registered it.
    assert _notified(org, case.id, "escalate_to_head_office") == {"renshi", "zongjingli", "kefu"}

    # The head office now sees it: its department heads read the case, and it is flagged.
    assert gc_head.get(f"/api/v1/complaint/{case.id}").status_code == 200
    assert case.id in _ids(gc_head)
    # ... but acts on it no more than before (the department's steps stay with the 网点).
    take(gc_head, case.id, "start_investigation", expect=403)
    listed = web("renshi").get("/headofficecomplaintview/list/").get_data(as_text=True)
    assert case.number in listed
    flagged = _ids(hr, "/api/v1/complaint/?q=(filters:!((col:escalated_to_head_office_at,opr:gt,value:'2000-01-01')))")
    assert flagged == {case.id}
    # Once only.
    take(outlet_head, case.id, "escalate_to_head_office", expect=409, reason="再次上报")
    # The other 网点 still does not see it.
    assert api("chengxi").get(f"/api/v1/complaint/{case.id}").status_code == 404


def test_branch_head_may_escalate_its_sub_units_case_but_only_reads_it(app, api, branches, make_complaint):
    case = make_complaint(department="WD1")
    hr, branch_head = api("renshi"), api("fengongsi")
    take(hr, case.id, "judge_valid")
    take(hr, case.id, "dispatch")
    # The branch head reads the 网点's case but the department's steps stay with the department head.
    take(branch_head, case.id, "start_investigation", expect=403)
    take(branch_head, case.id, "escalate_to_head_office", reason="需总部协调")
    assert get_case(hr, case.id)["escalated_to_head_office_at"]


def test_head_office_department_cannot_escalate_409(app, api, branches, make_complaint):
    case = make_complaint(department="GC")
    hr, gc_head = api("renshi"), api("zhuguan_a")
    take(hr, case.id, "judge_valid")
    take(hr, case.id, "dispatch")
    offered = [t["action"] for t in gc_head.get(f"/api/v1/complaint/{case.id}/transitions").json["result"]]
    assert "escalate_to_head_office" not in offered
    r = gc_head.post(
        f"/api/v1/complaint/{case.id}/transition", json={"action": "escalate_to_head_office", "reason": "总部部门"}
    )
    assert r.status_code == 409, r.get_json()
    # A department without any unit belongs to the company too.
    db.session.execute(Department.__table__.update().where(Department.code == "GC").values(unit_id=None))
    db.session.commit()
    take(gc_head, case.id, "escalate_to_head_office", expect=409, reason="总部部门")
    # 人事行政经理 is not a unit's head: its role may not take the step.
    take(hr, case.id, "escalate_to_head_office", expect=403, reason="x")


def test_unit_head_sees_its_units_departments_and_nothing_of_another_unit(app, api, web, branches, make_complaint):
    cases = {code: make_complaint(department=code) for code in ("GC", "DG1", "WD1", "WD2")}
    ids = {code: c.id for code, c in cases.items()}
    # The branch head: its own department and its 网点's, not the other 网点 or the head office.
    branch_head = api("fengongsi")
    assert _ids(branch_head) == {ids["DG1"], ids["WD1"]}
    assert branch_head.get(f"/api/v1/complaint/{ids['WD1']}").status_code == 200
    assert branch_head.get(f"/api/v1/complaint/{ids['WD2']}").status_code == 404
    assert branch_head.get(f"/api/v1/complaint/{ids['GC']}").status_code == 404
    page = web("fengongsi").get("/complaintview/list/").get_data(as_text=True)
    assert cases["DG1"].number in page and cases["WD1"].number in page
    assert cases["WD2"].number not in page and cases["GC"].number not in page
    # The 网点 heads: their own 网点 only.
    assert _ids(api("wangdian")) == {ids["WD1"]}
    assert _ids(api("chengxi")) == {ids["WD2"]}
    assert api("chengxi").get(f"/api/v1/complaint/{ids['WD1']}").status_code == 404
    # Department heads at the head office are not unit heads: their department only.
    assert _ids(api("zhuguan_a")) == {ids["GC"]}
    # The company-wide roles see all.
    assert _ids(api("zongjingli")) == set(ids.values())


def test_unit_headship_of_an_inactive_unit_grants_nothing(app, api, branches, make_complaint):
    make_complaint(department="WD1")
    dg1 = make_complaint(department="DG1")
    branches["branch"].active = False
    db.session.commit()
    assert _ids(api("fengongsi")) == {dg1.id}  # its own department only


def test_dashboard_by_unit_rolls_sub_units_into_parents(app, api, branches, make_complaint):
    counts = {"GC": 2, "BA": 1, "DG1": 1, "WD1": 3, "WD2": 1}
    for code, n in counts.items():
        for i in range(n):
            moment = NOV.replace(hour=9 + i)
            make_complaint(department=code, received_at=moment, now=moment)
    url = "/api/v1/dashboard/data?period=month&at=2026-11"
    company = api("zongjingli").get(url).json
    by_unit = {i["label"]: (i["value"], i["own"]) for i in company["charts"]["by_unit"]["items"]}
    assert by_unit == {
        "阳光物业服务有限公司": (8, 3),  # everything; its own departments GC + BA
        "城东分公司": (4, 1),  # DG1 + the 滨江网点 below it
        "滨江网点": (3, 3),
        "城西网点": (1, 1),
    }
    order = [i["label"] for i in company["charts"]["by_unit"]["items"]]
    assert order.index("城东分公司") < order.index("滨江网点")  # parents first
    # The unit head: its units' figures only.
    mine = api("fengongsi").get(url).json
    assert mine["scope"] == "unit" and mine["kpis"]["received"] == 4
    assert {i["label"]: i["value"] for i in mine["charts"]["by_unit"]["items"]} == {"城东分公司": 4, "滨江网点": 3}
    assert "by_department" not in mine["charts"]
    # A department head who heads no unit gets no unit breakdown.
    assert "by_unit" not in api("zhuguan_a").get(url).json["charts"]


def test_units_are_edited_by_hr_and_keep_the_tree_sound(app, api, branches, org):
    hr = api("renshi")
    company, branch = branches["company"], branches["branch"]
    r = hr.post(
        "/api/v1/unit/", json={"name": "南区管理处", "code": "NQ", "kind": "management_office", "parent": company.id}
    )
    assert r.status_code == 201, r.get_json()
    new_id = r.json["id"]
    # A department is moved into it.
    department = org.dept("BJ")
    r = hr.put(f"/api/v1/department/{department.id}", json={"unit": new_id})
    assert r.status_code == 200, r.get_json()
    assert hr.get(f"/api/v1/department/{department.id}").json["result"]["unit"]["name"] == "南区管理处"
    # A unit below itself, a second company, a unit without a parent: refused, nothing saved.
    r = hr.put(f"/api/v1/unit/{branch.id}", json={"parent": branches["outlet"].id})
    assert r.status_code == 422 and "parent" in r.json["message"]
    r = hr.post("/api/v1/unit/", json={"name": "第二公司", "code": "C2", "kind": "company"})
    assert r.status_code == 422 and "kind" in r.json["message"]
    r = hr.post("/api/v1/unit/", json={"name": "孤立网点", "code": "GL", "kind": "outlet"})
    assert r.status_code == 422 and "parent" in r.json["message"]
    db.session.expire_all()
    assert db.session.get(Unit, branch.id).parent_id == company.id
    # A unit holding departments is not deleted.
    assert hr.delete(f"/api/v1/unit/{new_id}").status_code == 409
    # Everyone with a business role reads the tree; only HR and Admin edit it.
    head = api("zhuguan_a")
    assert head.get("/api/v1/unit/").status_code == 200
    assert head.post("/api/v1/unit/", json={"name": "x", "code": "x", "kind": "outlet"}).status_code == 403
    assert api("admin").get("/api/v1/unit/").status_code == 200


def test_unit_screen_lists_units_with_their_kind(app, web, branches):
    page = web("renshi").get("/unitview/list/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "城东分公司" in html and "滨江网点" in html


def test_unit_is_added_on_the_screen(app, web, branches):
    hr = web("renshi")
    r = hr.post(
        "/unitview/add",
        data={
            "name": "北区管理处",
            "code": "BQ",
            "kind": "management_office",
            "parent": branches["company"].id,
            "sort": 5,
        },
    )
    assert r.status_code in (302, 303), field_errors(r.get_data(as_text=True))
    created = db.session.scalars(select(Unit).where(Unit.code == "BQ")).one()
    assert created.kind == UnitKind.management_office and created.parent_id == branches["company"].id
    # A unit without a parent is refused on the screen too.
    hr.post("/unitview/add", data={"name": "孤立网点", "code": "GL", "kind": "outlet", "sort": 6})
    assert db.session.scalars(select(Unit).where(Unit.code == "GL")).first() is None
