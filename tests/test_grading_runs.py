"""Department grading runs: scores from the database against hand computation, caps, 公示 with
objections, 总经理's confirmation and 通报, the jobs in time travel, charts and scope.

The formula's arithmetic is tested in tests/test_grading.py; here the figures come from
the real tables (tests/quality_support.py's October 2026).
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import pytest
from pypdf import PdfReader
from quality_support import add_discipline, at, build_history, step
from sla_support import travel
from sqlalchemy import func, select

from app import db, settings
from app.lifecycle import TransitionError, ValidationFailed
from app.models import Commendation, CustomerCount, DepartmentGrade, GradingRun, Notification, Setting
from app.quality import analytics, assessment
from app.quality.grading import DEFAULT_FORMULA
from app.timeutil import LOCAL_TZ, utcnow

OCTOBER = analytics.period_containing("month", date(2026, 10, 1))
SEPTEMBER = OCTOBER.previous()
OPENED = at(11, 2, 8)  # Monday, the first working day of November


def grades_of(run) -> dict[str, tuple[float, str]]:
    return {g.department.name: (g.score, g.grade) for g in run.grades}


def components_of(grade) -> dict[str, float | None]:
    return {c["key"]: c["score"] for c in grade.components["components"]}


def pdf_text(data: bytes) -> str:
    return "".join(p.extract_text().replace("\n", "") for p in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def october(app, make_complaint, org, discipline_kit):
    cases = build_history(make_complaint, org)
    add_discipline(org, discipline_kit)
    db.session.add(CustomerCount(department=org.dept("GC"), month=date(2026, 10, 1), customers=800))
    db.session.commit()
    return cases


def test_the_monthly_job_grades_every_department_as_computed_by_hand(october, app, org):
    assert travel(app, at(11, 2, 7, 59), only=["monthly_grading"])["jobs"]["monthly_grading"] == {"skipped": "not due"}
    done = travel(app, OPENED, only=["monthly_grading"])["jobs"]["monthly_grading"]["done"]
    assert [d["period"] for d in done] == ["2026-10"]
    run = db.session.scalars(select(GradingRun)).one()
    assert (run.label, run.status) == ("2026年10月", "publicity")
    gc = next(g for g in run.grades if g.department.code == "GC")
    # 工程部: complaints 4 of 800 customers (0.5%: 50); replies 1 of 4 in time (25); stages 4 of 9 (44.4);
    # satisfied 1 of 2 (50); valid 2 less 1 praise letter (90); one tier-2 penalty (80).
    assert components_of(gc) == {
        "complaint_rate": 50.0,
        "on_time_reply": 25.0,
        "timeliness": pytest.approx(44.44, abs=0.01),
        "satisfaction": 50.0,
        "valid_complaints": 90.0,
        "penalties": 80.0,
    }
    # (10·50 + 20·25 + 10·44.44 + 25·50 + 20·90 + 15·80) / 100 = 56.94; the letter offset a complaint: no bonus.
    assert (gc.score, gc.grade, gc.components["bonus"], gc.components["offsets"]) == (56.9, "below", 0.0, 1)
    ba = next(g for g in run.grades if g.department.code == "BA")
    # 保安部: no customer count and no follow-up (left out); reply 0 of 1, stages 0 of 2, valid 1 (90),
    # no penalty (100): (20·90 + 15·100) / 65 = 50.77, plus 1 for the praise call.
    assert components_of(ba)["complaint_rate"] is None and components_of(ba)["satisfaction"] is None
    assert (ba.score, ba.grade, ba.components["bonus"]) == (51.8, "below", 1.0)
    others = {name: value for name, value in grades_of(run).items() if name not in ("工程部", "保安部")}
    assert set(others.values()) == {(100.0, "first")}
    # 公示: the five working days after Monday 11-02 are 11-03..11-06 and 11-09.
    assert run.publicity_until == datetime(2026, 11, 10, tzinfo=LOCAL_TZ)
    # Heads learn their grade; HR and GM that the grades are out.
    mine = db.session.scalars(
        select(Notification).where(Notification.user_id == org.user("zhuguan_a").id, Notification.kind == "grading")
    ).one()
    assert mine.link == f"/departmentgradeview/show/{gc.id}" and "56.9" in mine.title
    for who in ("renshi", "zongjingli"):
        assert db.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == org.user(who).id, Notification.kind == "grading")
        )
    assert travel(app, at(11, 2, 9), only=["monthly_grading"])["jobs"]["monthly_grading"] == {"skipped": "already done"}
    assert travel(app, at(11, 3, 9), only=["monthly_grading"])["jobs"]["monthly_grading"] == {"skipped": "not due"}


def test_disqualifiers_cap_the_grade_whatever_the_score(app, make_complaint, org, discipline_kit):
    settings.put(
        db.session,
        "grading.formula",
        {**DEFAULT_FORMULA, "components": {"valid_complaints": {"weight": 1, "points_each": 10}}},
    )
    # 保洁部: a valid 重大 complaint, cancelled out by a praise letter -> scores 100, capped at 二级.
    major = make_complaint(department="BJ", level="major", received_at=at(10, 20, 9), now=at(10, 20, 9))
    step(org, major, "judge_valid", "renshi", at(10, 20, 10))
    cleaner = org.staff("马桂芳")
    db.session.add(
        Commendation(
            staff=cleaner,
            department_id=cleaner.department_id,
            commended_on=date(2026, 10, 21),
            source="letter",
            content="业主致信表扬",
            offsets_complaint=True,
        )
    )
    db.session.commit()
    # 客服部: a tier-4 penalty (二级 at best); 财务部: a tier-5 one (三级 at best).
    discipline_kit.issued(staff="陈静", by="zhuguan_c", clause="第六条第4款A", now=at(10, 22))
    discipline_kit.issued(staff="梁晨", by="zhuguan_e", clause="第六条第5款A", now=at(10, 23))
    run = assessment.open_run(db.session, OCTOBER, now=OPENED)
    db.session.commit()
    by_code = {g.department.code: g for g in run.grades}
    assert (by_code["BJ"].score, by_code["BJ"].grade) == (100.0, "second")
    assert by_code["BJ"].capped_by == [{"condition": "valid_complaint_level", "cap": "second", "detail": {"major": 1}}]
    assert (by_code["KF"].score, by_code["KF"].grade) == (100.0, "second")
    assert by_code["KF"].capped_by == [
        {"condition": "penalty_tier", "cap": "second", "detail": {"min_tier": 4, "tiers": [4]}}
    ]
    assert (by_code["CW"].score, by_code["CW"].grade) == (100.0, "third")
    assert [c["cap"] for c in by_code["CW"].capped_by] == ["second", "third"]
    assert (by_code["GC"].grade, by_code["GC"].capped_by) == ("first", [])


def test_publicity_objection_final_grade_and_confirmation(app, make_complaint, org):
    complaint = make_complaint(department="GC", received_at=at(10, 12), now=at(10, 12))
    step(org, complaint, "judge_valid", "renshi", at(10, 12, 11))
    run = assessment.open_run(db.session, OCTOBER, now=OPENED)
    db.session.commit()
    gc = next(g for g in run.grades if g.department.code == "GC")
    # Replied to late, investigated late, valid: (20·0 + 10·0 + 20·90 + 15·100) / 65 = 50.8.
    assert (gc.score, gc.grade) == (50.8, "below")
    # Only the department's head objects, and only during the 公示, with a reason.
    with pytest.raises(TransitionError) as refused:
        assessment.object_to(db.session, gc, org.principal("zhuguan_b"), "不公平", now=at(11, 5))
    assert refused.value.kind == "role"
    with pytest.raises(ValidationFailed):
        assessment.object_to(db.session, gc, org.principal("zhuguan_a"), "  ", now=at(11, 5))
    assessment.object_to(db.session, gc, org.principal("zhuguan_a"), "该投诉已与客户和解", now=at(11, 9, 17))
    db.session.commit()
    with pytest.raises(TransitionError) as late:
        assessment.object_to(db.session, gc, org.principal("zhuguan_a"), "补充理由", now=at(11, 10, 0, 0))
    assert late.value.kind == "state"
    assert gc.objection == "该投诉已与客户和解"
    # 总经理 is asked to confirm once the 公示 is over, once.
    assert travel(app, at(11, 9, 23, 55), only=["grading_publicity"])["jobs"]["grading_publicity"] == {"asked": []}
    assert travel(app, at(11, 10, 0, 5), only=["grading_publicity"])["jobs"]["grading_publicity"] == {
        "asked": ["2026年10月"]
    }
    assert travel(app, at(11, 10, 0, 10), only=["grading_publicity"])["jobs"]["grading_publicity"] == {"asked": []}
    asked = db.session.scalars(
        select(Notification).where(
            Notification.user_id == org.user("zongjingli").id, Notification.dedup_key.like("grading:%:confirm:%")
        )
    ).all()
    assert len(asked) == 1 and asked[0].link == f"/gradingrunview/show/{run.id}"
    assert db.session.get(GradingRun, run.id).gm_notified_at is not None
    gm = org.principal("zongjingli")
    with pytest.raises(TransitionError):
        assessment.confirm(db.session, run, gm, now=at(11, 9, 23, 59))  # still in 公示
    with pytest.raises(TransitionError):
        assessment.decide(db.session, gc, org.principal("renshi"), "second", "x", now=at(11, 10, 9))
    with pytest.raises(ValidationFailed):
        assessment.decide(db.session, gc, gm, "second", "", now=at(11, 10, 9))  # a change needs a reason
    assessment.decide(db.session, gc, gm, "second", "客户和解不影响定级，但考虑整改到位", now=at(11, 10, 9))
    assessment.confirm(db.session, run, gm, now=at(11, 10, 10))
    db.session.commit()
    assert run.status == "confirmed" and run.confirmed_by_id == org.user("zongjingli").id
    assert {g.department.code: g.final_grade for g in run.grades}["GC"] == "second"
    assert all(g.final_grade == g.grade for g in run.grades if g.department.code != "GC")
    circular = run.circular
    assert circular.number == "人行通字〔2026〕1号" and circular.period == "grading-2026-10"
    text = pdf_text(circular.content)
    assert "关于2026年10月各部门服务质量考核定级结果的通报" in text
    assert "经总经理审定由不达标调整为二级" in text and "2026年11月2日至2026年11月9日公示" in text
    with pytest.raises(TransitionError):
        assessment.confirm(db.session, run, gm, now=at(11, 11))
    heads = db.session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == org.user("zhuguan_b").id, Notification.dedup_key.like("grading:%:confirmed:%"))
    )
    assert heads == 1


def test_grades_are_scoped_and_steps_go_through_the_api(app, api, web, org):
    # October in 公示 now; September's 公示 is over.
    current = assessment.open_run(db.session, OCTOBER, now=utcnow())
    over = assessment.open_run(db.session, SEPTEMBER, now=utcnow() - timedelta(days=30))
    db.session.commit()
    gc = next(g for g in current.grades if g.department.code == "GC")
    ba = next(g for g in current.grades if g.department.code == "BA")
    head = api("zhuguan_a")
    listing = head.get("/api/v1/departmentgrade/?q=(page_size:100)")
    assert listing.status_code == 200
    assert {g["department"]["name"] for g in listing.json["result"]} == {"工程部"} and listing.json["count"] == 2
    assert head.get(f"/api/v1/departmentgrade/{ba.id}").status_code == 404
    assert head.post(f"/api/v1/departmentgrade/{ba.id}/object", json={"reason": "x"}).status_code == 404
    r = head.post(f"/api/v1/departmentgrade/{gc.id}/object", json={"reason": "数据有误"})
    assert r.status_code == 200 and r.json["result"]["objection"] == "数据有误"
    assert head.post(f"/api/v1/departmentgrade/{gc.id}/object", json={}).status_code == 422
    old_gc = next(g for g in over.grades if g.department.code == "GC")
    assert head.post(f"/api/v1/departmentgrade/{old_gc.id}/object", json={"reason": "晚了"}).status_code == 409
    assert head.post(f"/api/v1/grading/{over.id}/confirm").status_code == 403

    hr = api("renshi")
    assert hr.get("/api/v1/departmentgrade/?q=(page_size:100)").json["count"] == 2 * len(current.grades)
    assert hr.post(f"/api/v1/departmentgrade/{gc.id}/object", json={"reason": "x"}).status_code == 403
    assert hr.post(f"/api/v1/grading/{over.id}/confirm").status_code == 403
    assert api("kefu").get("/api/v1/departmentgrade/").status_code == 403
    assert api("kefu").get("/api/v1/grading/").status_code == 403

    gm = api("zongjingli")
    assert gm.post(f"/api/v1/grading/{current.id}/confirm").status_code == 409  # still in 公示
    r = gm.post(f"/api/v1/departmentgrade/{old_gc.id}/decide", json={"grade": "third"})
    assert r.status_code == 422 and "note" in r.json["message"]
    # The screen asks for confirmation showing the circular it will issue (kind, expected number, recipients).
    confirm_page = web("zongjingli").get(f"/gradingrunview/show/{over.id}").get_data(as_text=True)
    assert (
        'data-target="#confirm-grades"' in confirm_page and "人行通字〔" in confirm_page and "确认签发" in confirm_page
    )
    r = gm.post(f"/api/v1/grading/{over.id}/confirm")
    assert r.status_code == 200 and r.json["result"]["status"] == "confirmed"
    assert head.get(f"/api/v1/document/{db.session.get(GradingRun, over.id).circular_id}/download").status_code == 200

    circular = web("zhuguan_a").get(f"/gradingrunview/circular/{over.id}?inline=1")
    assert circular.status_code == 200 and circular.mimetype == "application/pdf"
    assert web("zhuguan_a").get(f"/gradingrunview/circular/{current.id}").status_code == 404  # none yet
    page = web("zhuguan_a").get(f"/gradingrunview/show/{current.id}").get_data(as_text=True)
    assert "工程部" in page and "保安部" not in page
    grade_page = web("zhuguan_a").get(f"/departmentgradeview/show/{gc.id}").get_data(as_text=True)
    assert f'action="/departmentgradeview/object/{gc.id}"' in grade_page
    assert web("zhuguan_b").get(f"/departmentgradeview/show/{gc.id}").status_code == 404
    gm_page = web("zongjingli").get(f"/departmentgradeview/show/{gc.id}").get_data(as_text=True)
    assert f'action="/departmentgradeview/decide/{gc.id}"' in gm_page and "object/" not in gm_page


def test_confirmed_grades_and_penalties_appear_in_the_charts_within_scope(october, org):
    run = assessment.open_run(db.session, OCTOBER, now=OPENED)
    assessment.confirm(db.session, run, org.principal("zongjingli"), now=at(11, 10, 9))
    db.session.commit()
    from app.views.dashboards import dashboard_scope

    def board(who: str, kind: str, at_: str) -> dict:
        from app.access import scope
        from app.models import Complaint, Penalty

        principal = org.principal(who)
        departments, charts = dashboard_scope(principal)
        scopes = {
            "penalty": scope.criterion(Penalty, principal),
            "grade": scope.criterion(DepartmentGrade, principal),
        }
        period = analytics.parse_period(kind, at_)
        return analytics.dashboard(
            db.session,
            charts,
            period,
            departments,
            scope.criterion(Complaint, principal),
            now=at(11, 23, 9),
            scopes=scopes,
        )["charts"]

    company = board("zongjingli", "month", "2026-11")
    trend = company["grade_trend"]
    assert trend["labels"] == ["26/10"]
    scores = {s["name"]: s["data"] for s in trend["series"]}
    assert scores["工程部"] == [56.9] and scores["保安部"] == [51.8] and len(scores) == 7
    by_month = company["penalties_by_month"]
    assert by_month["labels"][0] == "25/12" and by_month["labels"][-1] == "26/11"
    counts, fines = (s["data"] for s in by_month["series"])
    assert counts[-2:] == [1, 0] and fines[-2:] == [200, 0] and sum(counts) == 1
    october_board = board("zongjingli", "month", "2026-10")
    assert october_board["penalties_by_department"]["labels"] == ["工程部"]
    assert [s["data"] for s in october_board["penalties_by_department"]["series"]] == [[1], [200]]

    head = board("zhuguan_a", "month", "2026-10")
    assert "penalties_by_department" not in head
    assert [s["name"] for s in head["grade_trend"]["series"]] == ["工程部"]
    assert sum(head["penalties_by_month"]["series"][1]["data"]) == 200
    other = board("zhuguan_b", "year", "2026")
    assert sum(other["penalties_by_month"]["series"][0]["data"]) == 0  # 刘强's penalty is 工程部's
    assert [s["name"] for s in other["grade_trend"]["series"]] == ["保安部"]


def test_grading_formula_is_checked_in_the_settings_screen(app, web):
    hr = web("renshi")
    r = hr.post("/settingview/add", data={"key": "grading.formula", "value": '{"components": {}}'})
    assert db.session.get(Setting, "grading.formula") is None
    assert r.status_code in (200, 302)
    valid = '{"components": {"satisfaction": {"weight": 1}}, "thresholds": {"first": 95, "second": 85, "third": 75}}'
    assert hr.post("/settingview/add", data={"key": "grading.formula", "value": valid}).status_code == 302
    assert settings.get(db.session, "grading.formula")["thresholds"]["first"] == 95


def test_commendations_show_on_the_staff_record(october, web, org):
    staff = org.staff("孙海")
    page = web("zhuguan_a").get(f"/staffview/show/{staff.id}").get_data(as_text=True)
    assert "孙海服务热情周到" in page and "郑伟服务热情周到" not in page
    assert "孙海服务热情周到" in web("renshi").get(f"/staffview/show/{staff.id}").get_data(as_text=True)


SCREENS = {
    # url: roles that may open it (the others get 403)
    "/reportview/list/": {"renshi", "zongjingli"},
    "/departmentmeasureview/list/": {"zhuguan_a", "renshi", "zongjingli"},
    "/departmentmeasureview/add": {"zhuguan_a"},
    "/gradingrunview/list/": {"zhuguan_a", "renshi", "zongjingli"},
    "/departmentgradeview/list/": {"zhuguan_a", "renshi", "zongjingli"},
}


@pytest.mark.parametrize("who", ["kefu", "zhuguan_a", "renshi", "zongjingli"])
def test_quality_screens_open_for_the_roles_that_use_them(app, web, who):
    assessment.open_run(db.session, OCTOBER, now=OPENED)
    db.session.commit()
    client = web(who)
    for url, roles in SCREENS.items():
        assert client.get(url).status_code == (200 if who in roles else 403), (who, url)
