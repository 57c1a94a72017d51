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
from tests.sla_support import at, cli_run, travel


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


LIFT = (
    "8号楼2单元电梯又坏了，已经停运三天没人修",
    "8号楼的电梯停了好几天，老人上下楼很困难，请尽快维修",
    "8号楼2单元电梯故障停运，物业一直不来修理",
    "8号楼电梯又出故障了，还是没人来修",
)
# Six 服务态度 complaints against 工程部 about six different things (issue 14, part 1).
ATTITUDE = (
    "维修师傅上门时态度恶劣，说话难听，还摔门离开",
    "打电话到工程部报修，接电话的人很不耐烦直接挂断",
    "保安在北门对业主大吼大叫，态度很差",
    "工程部的人来修水管，对老人不理不睬，服务态度差",
    "前台工作人员办理装修手续时推诿刁难，让我跑了三趟",
    "电工师傅在5号楼换灯泡时抽烟，劝阻后还骂人",
)


def _levels(cases) -> list[str]:
    db.session.expire_all()
    return [db.session.get(Complaint, c.id).level.code for c in cases]


def test_a_cluster_is_detected_once_however_often_the_scan_runs(app, org, make_complaint):
    settings.put(db.session, "notify.wecom_webhook", "https://robot.example.com/wecom")
    db.session.commit()
    day = at(2026, 10, 12, 10)

    def lift(i, hours=0, **kw):
        when = day + timedelta(days=i, hours=hours)
        return make_complaint(content=LIFT[i], received_at=when, now=when, **kw)

    cases = [lift(0), lift(1)]
    # The same words against another department, and another problem of the same department, do not count.
    make_complaint(department="BA", content=LIFT[2], received_at=day, now=day)
    make_complaint(department="GC", category="fees", content="物业费账单多收了两个月", received_at=day, now=day)

    travel(app, day + timedelta(days=1, hours=1), only=["cluster_scan"])
    assert _clusters() == [] and _cluster_notifications() == []

    cases.append(lift(2))
    for hours in (1, 2, 30):  # the scan runs again and again: still one cluster
        travel(app, day + timedelta(days=2, hours=hours), only=["cluster_scan"])
    [cluster] = _clusters()
    assert cluster.created_by_id is None and cluster.status == "open"
    assert cluster.department_id == org.dept("GC").id and cluster.category.code == "equipment"
    assert sorted(c.id for c in cluster.complaints) == sorted(c.id for c in cases)
    assert cluster.first_seen == cases[0].received_at and cluster.last_seen == cases[2].received_at
    # Reported at once to 总经理 and 人事行政经理, once each, and to the group robot.
    told = _cluster_notifications()
    assert sorted(uid for uid, _ in told) == sorted([org.user("renshi").id, org.user("zongjingli").id])
    assert all("集中性投诉" in title or "Clustered" in title for _, title in told)
    assert db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.channel == "wecom")) == 1
    assert all("cluster_linked" in _actions(c.id) for c in cases)

    # A new case about the same problem joins the open cluster.
    fourth = lift(3, hours=5)
    for hours in (6, 9):
        travel(app, day + timedelta(days=3, hours=hours), only=["cluster_scan"])
    [cluster] = _clusters()
    assert fourth.id in {c.id for c in cluster.complaints} and len(cluster.complaints) == 4
    assert cluster.last_seen == fourth.received_at
    assert len(_cluster_notifications()) == 2
    assert _actions(fourth.id).count("cluster_linked") == 1

    # The weekly analysis lists it.
    week = Period("week", date(2026, 10, 12), date(2026, 10, 19))
    [row] = reports.report_data(db.session, week)["clusters"]
    assert row["id"] == cluster.id and row["cases"] == 4 and row["department"] == org.dept("GC").name
    pdf = PdfReader(io.BytesIO(reports.generate(db.session, week).document.content))
    text = "".join(page.extract_text().replace("\n", "") for page in pdf.pages)
    assert "集中性投诉" in text and f"#{cluster.id}" in text and "2026-10-15 15:00处理中" in text


def test_unrelated_complaints_of_one_department_and_category_are_not_grouped(app, org, make_complaint):
    day = at(2026, 10, 12, 9)
    cases = [
        make_complaint(
            category="attitude", content=text, received_at=day + timedelta(hours=i), now=day + timedelta(hours=i)
        )
        for i, text in enumerate(ATTITUDE)
    ]
    summary = travel(app, day + timedelta(hours=8), only=["cluster_scan"])
    assert _clusters() == [] and _cluster_notifications() == []
    assert _levels(cases) == ["normal"] * 6
    assert summary["jobs"]["cluster_scan"]["cases_compared"] == 6


def test_the_same_problem_three_times_in_a_calendar_month_is_serious_by_itself(app, web, org, make_complaint):
    """Seed 004: 重复性问题在当月发生3次以上 — found by the scheduled scan (the CLI, a given time)."""
    other = make_complaint(content="3号楼电梯停运两天无人维修", received_at=at(2026, 10, 3, 9), now=at(2026, 10, 3, 9))
    late_september = make_complaint(content=LIFT[0], received_at=at(2026, 9, 29, 9), now=at(2026, 9, 29, 9))
    first = make_complaint(content=LIFT[1], received_at=at(2026, 10, 2, 9), now=at(2026, 10, 2, 9))
    second = make_complaint(content=LIFT[2], received_at=at(2026, 10, 15, 9), now=at(2026, 10, 15, 9))
    # Three in September and October together, but two within October: not yet.
    travel(app, at(2026, 10, 15, 10), only=["cluster_scan"])
    assert _clusters() == []
    third = make_complaint(content=LIFT[3], received_at=at(2026, 10, 28, 9), now=at(2026, 10, 28, 9))
    summary = cli_run(app, at(2026, 10, 28, 9, 30))
    assert summary["jobs"]["cluster_scan"]["clusters_created"] == 1, summary["jobs"]["cluster_scan"]
    [cluster] = _clusters()
    assert sorted(c.id for c in cluster.complaints) == sorted([first.id, second.id, third.id])
    assert _levels([first, second, third]) == ["major"] * 3
    assert _levels([other, late_september]) == ["normal", "normal"]
    raised = next(e for e in db.session.get(Complaint, first.id).events if e.action == "cluster_level_raised")
    assert "一般" in raised.note and "重大" in raised.note and "2026-10" in raised.note

    # Why grouped: the key words the three have in common, on the cluster's page and in the API.
    page = web("renshi").get(f"/clusterview/show/{cluster.id}").get_data(as_text=True)
    assert "why-grouped" in page and "8号楼" in page and "电梯" in page


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
        assert case.level.code == "major", case.number
        raised = [e for e in case.events if e.action == "cluster_level_raised"]
        assert len(raised) == 1 and "一般" in raised[0].note and "重大" in raised[0].note
    # Linking again (or a scan) does not raise a second time.
    assert hr.post(f"/api/v1/cluster/{cid}/cases", json={"complaints": [a.id]}).get_json()["added"] == 0
    travel(app, day + timedelta(days=2, hours=1), only=["cluster_scan"])
    db.session.expire_all()
    assert db.session.get(Complaint, a.id).level.code == "major"
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


def test_raising_a_cluster_leaves_replied_cases_alone(app, api, org, make_complaint):
    """Only cases still waiting for their reply rise; one already replied to keeps its level."""
    replied, waiting, new = (make_complaint(content=text) for text in LIFT[:3])
    _to_planned(api, replied.id)
    _take(api("zhuguan_a"), replied.id, "reply", reply_text="已安排维修")
    _to_planned(api, waiting.id, upto="investigating")
    r = api("renshi").post(
        "/api/v1/cluster/",
        json={"department": org.dept("GC").id, "complaints": [replied.id, waiting.id, new.id], "note": "8号楼电梯"},
    )
    assert r.status_code == 201, r.get_json()
    assert _levels([replied, waiting, new])[0] == "normal"
    assert "cluster_level_raised" not in _actions(replied.id)
    assert _levels([replied, waiting, new]) == ["normal", "major", "major"]
    assert {"8号楼", "电梯"} <= set(r.get_json()["result"]["why_grouped"])


def test_a_raised_re_complaint_is_not_overdue_the_moment_it_is_raised(app, org, make_complaint):
    """The major level's 3/5/10-minute chain runs from the raising, not from the case's receipt."""
    from sqlalchemy import true

    from app.complaints import clusters, intake

    original = make_complaint(content=LIFT[0], received_at=at(2026, 10, 20, 0, 20), now=at(2026, 10, 20, 0, 20))
    recomplaint = intake.open_escalated_complaint(
        db.session, original, {"content": LIFT[1]}, org.user("kefu").id, at(2026, 10, 20, 0, 41)
    )
    db.session.commit()
    third = make_complaint(content=LIFT[2], received_at=at(2026, 10, 20, 0, 45), now=at(2026, 10, 20, 0, 45))
    assert recomplaint.level.code == "important"
    raised_at = at(2026, 10, 20, 1, 0)
    clusters.create_by_hand(
        db.session,
        {"department": org.dept("GC").id, "complaints": [original.id, recomplaint.id, third.id]},
        org.user("renshi").id,
        true(),
        raised_at,
    )
    db.session.commit()
    db.session.expire_all()
    case = db.session.get(Complaint, recomplaint.id)
    assert case.level.code == "major"
    chain = {d.stage: d for d in case.deadlines if d.stage in ("notify_department", "report_leader", "report_gm")}
    assert sorted(chain) == ["notify_department", "report_gm", "report_leader"]
    assert {stage: d.started_at for stage, d in chain.items()} == dict.fromkeys(chain, raised_at)
    assert chain["notify_department"].due_at == at(2026, 10, 20, 1, 3)
    assert chain["report_gm"].due_at == at(2026, 10, 20, 1, 10)
    travel(app, at(2026, 10, 20, 1, 1), only=["deadline_scan"])
    case = db.session.get(Complaint, recomplaint.id)
    assert not case.overdue and all(d.overdue_at is None for d in case.deadlines)
    # The chain still runs: four minutes after the raising the department has not been told.
    travel(app, at(2026, 10, 20, 1, 4), only=["deadline_scan"])
    notify = next(d for d in db.session.get(Complaint, recomplaint.id).deadlines if d.stage == "notify_department")
    assert notify.overdue_at is not None


def test_the_scan_is_bounded_and_resumes_where_it_stopped(app, org, make_complaint):
    from app.complaints import cluster_scan

    day = at(2026, 10, 12, 9)
    for department in ("GC", "BA"):
        for i, text in enumerate(LIFT[:3]):
            make_complaint(
                department=department, content=text, received_at=day + timedelta(hours=i), now=day + timedelta(hours=i)
            )
    now = day + timedelta(hours=4)
    first = cluster_scan.scan(db.session, now, budget_seconds=0)  # one window, then out of time
    assert first["windows"] == 1 and first["windows_left"] == 1 and first["clusters_created"] == 1
    second = cluster_scan.scan(db.session, now, budget_seconds=0)
    assert second["windows"] == 1 and "windows_left" not in second and second["clusters_created"] == 1
    assert cluster_scan.scan(db.session, now)["windows"] == 0  # nothing new: nothing compared
    assert sorted(c.department_id for c in _clusters()) == sorted([org.dept("GC").id, org.dept("BA").id])


def test_the_manual_cluster_request_declares_every_field(app, api):
    spec = api("renshi").get("/api/v1/_openapi").get_json()
    paths = {path.removeprefix("/api/v1"): ops for path, ops in spec["paths"].items()}
    ref = paths["/cluster/"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {"department", "category", "kind", "note", "complaints"} <= set(schema["properties"])
    assert schema["properties"]["complaints"]["type"] == "array"
    assert schema["properties"]["complaints"]["items"]["type"] == "integer"
    assert "complaints" in schema["required"] and "department" in schema["required"]
    for path, field in (("/cluster/{pk}/cases", "complaints"), ("/cluster/{pk}/reply", "reply_text")):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert field in body["properties"] and field in body["required"], path
