"""Clustered complaints (集中性投诉 / 群体性投诉): detection once under time travel, the unified
reply (all or nothing), the 3-in-a-month level rise, the 群体性投诉 intake and the scope."""

import io
from datetime import date, timedelta

from pypdf import PdfReader
from sqlalchemy import func, select

from app import db, settings
from app.models import Category, Channel, Cluster, Complaint, ComplaintEvent, Delivery, Level, Notification
from app.quality import reports
from app.quality.analytics import Period
from tests.sla_support import at, travel


def _clusters() -> list[Cluster]:
    return list(db.session.scalars(select(Cluster).order_by(Cluster.id)))


def _actions(complaint_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(ComplaintEvent.action).where(ComplaintEvent.complaint_id == complaint_id).order_by(ComplaintEvent.id)
        )
    )


def _cluster_notifications() -> list[tuple[int, str]]:
    return list(
        db.session.execute(select(Notification.user_id, Notification.title).where(Notification.kind == "cluster"))
    )


def _take(client, cid, action, expect=200, **fields):
    r = client.post(f"/api/v1/complaint/{cid}/transition", json={"action": action, **fields})
    assert r.status_code == expect, (action, r.status_code, r.get_json())
    return r.get_json()


def _to_planned(api, cid, head="zhuguan_a", upto="planned"):
    hr, head_ = api("renshi"), api(head)
    _take(hr, cid, "judge_valid", validity_reason="属实")
    _take(hr, cid, "dispatch")
    _take(head_, cid, "start_investigation")
    if upto == "planned":
        _take(head_, cid, "propose_plan", findings="属实", resolution_plan="统一维修")


def test_a_cluster_is_detected_once_however_often_the_scan_runs(app, org, make_complaint):
    settings.put(db.session, "notify.wecom_webhook", "https://robot.example.com/wecom")
    db.session.commit()
    day = at(2026, 10, 12, 10)
    cases = [
        make_complaint(
            department="GC", category="equipment", received_at=day + timedelta(days=i), now=day + timedelta(days=i)
        )
        for i in range(4)
    ]
    # Another department and another category of the same department do not count.
    make_complaint(department="BA", category="equipment", received_at=day, now=day)
    make_complaint(department="GC", category="fees", received_at=day, now=day)

    travel(app, day + timedelta(days=3, hours=1), only=["cluster_scan"])
    assert _clusters() == [] and _cluster_notifications() == []

    fifth = make_complaint(
        department="GC", category="equipment", received_at=day + timedelta(days=4), now=day + timedelta(days=4)
    )
    cases.append(fifth)
    for hours in (1, 2, 30):  # the scan runs again and again: still one cluster
        travel(app, day + timedelta(days=4, hours=hours), only=["cluster_scan"])
    [cluster] = _clusters()
    assert cluster.created_by_id is None and cluster.status == "open"
    assert cluster.department_id == org.dept("GC").id and cluster.category.code == "equipment"
    assert sorted(c.id for c in cluster.complaints) == sorted(c.id for c in cases)
    assert cluster.first_seen == cases[0].received_at and cluster.last_seen == fifth.received_at
    # Reported at once to 总经理 and 人事行政经理, once each, and to the group robot.
    told = _cluster_notifications()
    assert sorted(uid for uid, _ in told) == sorted([org.user("renshi").id, org.user("zongjingli").id])
    assert all("集中性投诉" in title or "Clustered" in title for _, title in told)
    assert db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.channel == "wecom")) == 1
    assert all("cluster_linked" in _actions(c.id) for c in cases)

    # A new case of the same department and category joins the open cluster.
    sixth = make_complaint(
        department="GC", category="equipment", received_at=day + timedelta(days=8), now=day + timedelta(days=8)
    )
    for hours in (1, 5):
        travel(app, day + timedelta(days=8, hours=hours), only=["cluster_scan"])
    [cluster] = _clusters()
    assert sixth.id in {c.id for c in cluster.complaints} and len(cluster.complaints) == 6
    assert cluster.last_seen == sixth.received_at
    assert len(_cluster_notifications()) == 2
    assert _actions(sixth.id).count("cluster_linked") == 1

    # The weekly analysis lists it.
    week = Period("week", date(2026, 10, 12), date(2026, 10, 19))
    [row] = reports.report_data(db.session, week)["clusters"]
    assert row["id"] == cluster.id and row["cases"] == 6 and row["department"] == org.dept("GC").name
    pdf = PdfReader(io.BytesIO(reports.generate(db.session, week).document.content))
    text = "".join(page.extract_text().replace("\n", "") for page in pdf.pages)
    assert "集中性投诉" in text and f"#{cluster.id}" in text and "2026-10-20 10:00处理中" in text


def test_the_same_problem_three_times_in_a_month_raises_the_level_once(app, api, org, make_complaint):
    day = at(2026, 10, 20, 10)
    a = make_complaint(received_at=day, now=day)
    b = make_complaint(received_at=day + timedelta(days=1), now=day + timedelta(days=1))
    c = make_complaint(received_at=day + timedelta(days=2), now=day + timedelta(days=2))
    hr = api("renshi")
    r = hr.post(
        "/api/v1/cluster/", json={"department": org.dept("GC").id, "complaints": [a.id, b.id], "note": "同一电梯"}
    )
    assert r.status_code == 201, r.get_json()
    cid = r.get_json()["id"]
    db.session.expire_all()
    assert {x.level.code for x in db.session.scalars(select(Complaint))} == {"normal"}

    r = hr.post(f"/api/v1/cluster/{cid}/cases", json={"complaints": [c.id]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["added"] == 1
    db.session.expire_all()
    for case in (a, b, c):
        case = db.session.get(Complaint, case.id)
        assert case.level.code == "important", case.number
        raised = [e for e in case.events if e.action == "cluster_level_raised"]
        assert len(raised) == 1 and "一般" in raised[0].note and "重要" in raised[0].note
    # Linking again (or a scan) does not raise a second time.
    assert hr.post(f"/api/v1/cluster/{cid}/cases", json={"complaints": [a.id]}).get_json()["added"] == 0
    travel(app, day + timedelta(days=2, hours=1), only=["cluster_scan"])
    db.session.expire_all()
    assert db.session.get(Complaint, a.id).level.code == "important"
    # Bad input: a case of another department, an unknown id.
    other = make_complaint(department="BA", received_at=day, now=day)
    r = hr.post(f"/api/v1/cluster/{cid}/cases", json={"complaints": [other.id, 999999]})
    assert r.status_code == 400 and len(r.get_json()["reasons"]) == 2


def test_a_unified_reply_reaches_every_case_or_none(app, api, org, make_complaint):
    cases = [make_complaint(content=f"3号楼电梯第{i}次停运") for i in range(3)]
    for case in cases[:2]:
        _to_planned(api, case.id)
    _to_planned(api, cases[2].id, upto="investigating")
    hr = api("renshi")
    r = hr.post("/api/v1/cluster/", json={"department": org.dept("GC").id, "complaints": [c.id for c in cases]})
    assert r.status_code == 201, r.get_json()
    cid = r.get_json()["id"]
    # Every new cluster is reported, also one made by hand.
    assert len(_cluster_notifications()) == 2

    reply = "已统一安排维修，感谢您的耐心"
    r = hr.post(f"/api/v1/cluster/{cid}/reply", json={"reply_text": reply})
    assert r.status_code == 409, r.get_json()
    assert [x["number"] for x in r.get_json()["reasons"]] == [cases[2].number]
    db.session.expire_all()
    for case in cases:
        case = db.session.get(Complaint, case.id)
        assert case.status.value in ("planned", "investigating") and case.reply_text is None
        assert "cluster_reply" not in _actions(case.id)
    assert hr.post(f"/api/v1/cluster/{cid}/reply", json={"reply_text": "  "}).status_code == 400
    # The department head reads the cluster but does not give the unified reply.
    assert api("zhuguan_a").post(f"/api/v1/cluster/{cid}/reply", json={"reply_text": reply}).status_code == 403

    _take(api("zhuguan_a"), cases[2].id, "propose_plan", findings="属实", resolution_plan="统一维修")
    r = hr.post(f"/api/v1/cluster/{cid}/reply", json={"reply_text": reply})
    assert r.status_code == 200, r.get_json()
    assert sorted(x["id"] for x in r.get_json()["replied"]) == sorted(c.id for c in cases)
    db.session.expire_all()
    for case in cases:
        case = db.session.get(Complaint, case.id)
        assert case.status.value == "replied" and case.reply_text == reply
        actions = _actions(case.id)
        assert "reply" in actions and "cluster_reply" in actions
        event = next(e for e in case.events if e.action == "reply")
        assert event.actor_id == org.user("renshi").id
    assert db.session.get(Cluster, cid).replied_at is not None
    # Nothing waits for a reply any more.
    assert hr.post(f"/api/v1/cluster/{cid}/reply", json={"reply_text": reply}).status_code == 409
    # Closed: no more cases join.
    assert hr.post(f"/api/v1/cluster/{cid}/close").status_code == 200
    late = make_complaint()
    assert hr.post(f"/api/v1/cluster/{cid}/cases", json={"complaints": [late.id]}).status_code == 400


def test_a_group_complaint_is_at_least_major(app, api, web, org):
    def ref(model, code):
        return db.session.scalars(select(model.id).where(model.code == code)).one()

    body = {
        "content": "小区30户业主联名投诉电梯长期故障",
        "customer_name": "业主代表",
        "customer_phone": "13800138111",
        "channel": ref(Channel, "phone"),
        "category": ref(Category, "equipment"),
        "level": ref(Level, "normal"),
        "department": org.dept("GC").id,
        "complainant_count": 30,
    }
    kefu = api("kefu")
    r = kefu.post("/api/v1/complaint/", json=body)
    assert r.status_code == 201, r.get_json()
    case = db.session.get(Complaint, r.get_json()["id"])
    assert case.complainant_count == 30 and case.level.code == "major"
    event = next(e for e in case.events if e.action == "group_complaint")
    assert "30" in event.note and "一般" in event.note
    # A few people stay at the chosen level; an urgent one is not lowered.
    few = kefu.post("/api/v1/complaint/", json={**body, "complainant_count": 2, "customer_phone": "13800138112"})
    assert db.session.get(Complaint, few.get_json()["id"]).level.code == "normal"
    urgent = kefu.post(
        "/api/v1/complaint/", json={**body, "level": ref(Level, "urgent"), "customer_phone": "13800138113"}
    )
    assert db.session.get(Complaint, urgent.get_json()["id"]).level.code == "urgent"
    bad = kefu.post("/api/v1/complaint/", json={**body, "complainant_count": 0})
    assert bad.status_code == 422 and "complainant_count" in bad.get_json()["message"]
    # The intake form takes the number of complainants too.
    form = {k: str(v) for k, v in body.items()}
    r = web("kefu").post("/complaintview/add", data={**form, "customer_phone": "13800138114", "complainant_count": "6"})
    assert r.status_code in (302, 303), r.get_data(as_text=True)[:300]
    case = db.session.scalars(select(Complaint).order_by(Complaint.id.desc()).limit(1)).one()
    assert case.complainant_count == 6 and case.level.code == "major"


def test_clusters_are_scoped_by_department(app, api, web, org, make_complaint):
    cases = [make_complaint(department="GC") for _ in range(2)]
    r = api("renshi").post(
        "/api/v1/cluster/", json={"department": org.dept("GC").id, "complaints": [c.id for c in cases]}
    )
    cid = r.get_json()["id"]
    own, other = api("zhuguan_a"), api("zhuguan_b")
    assert own.get(f"/api/v1/cluster/{cid}").status_code == 200
    assert [row["id"] for row in own.get("/api/v1/cluster/").get_json()["result"]] == [cid]
    assert other.get(f"/api/v1/cluster/{cid}").status_code == 404
    assert other.get("/api/v1/cluster/").get_json()["result"] == []
    assert other.post(f"/api/v1/cluster/{cid}/cases", json={"complaints": [cases[0].id]}).status_code in (403, 404)
    assert api("zongjingli").get(f"/api/v1/cluster/{cid}").status_code == 200
    assert api("kefu").get("/api/v1/cluster/").status_code == 403
    # A head cannot create clusters.
    assert (
        own.post("/api/v1/cluster/", json={"department": org.dept("GC").id, "complaints": [cases[0].id]}).status_code
        == 403
    )

    page = web("zhuguan_a").get(f"/clusterview/show/{cid}")
    assert page.status_code == 200 and cases[0].number in page.get_data(as_text=True)
    assert web("zhuguan_b").get(f"/clusterview/show/{cid}").status_code in (302, 404)
    assert f"/clusterview/show/{cid}" not in web("zhuguan_b").get("/clusterview/list/").get_data(as_text=True)
