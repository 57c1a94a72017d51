"""The discipline REST resources and screens: same conventions as complaints (403 / 409 / 422), scope."""

import io
from datetime import datetime

from openpyxl import load_workbook
from pypdf import PdfReader

from app import db
from app.timeutil import LOCAL_TZ


def _take(client, pid, action, expect=200, **fields):
    r = client.post(f"/api/v1/penalty/{pid}/transition", json={"action": action, **fields})
    assert r.status_code == expect, (action, r.status_code, r.get_json())
    return r.get_json()


def _open(client, org, staff="刘强", clause_id=None, expect=201, **fields):
    from app.models import PenaltyRule

    rule_id = clause_id or db.session.query(PenaltyRule).filter_by(clause="第六条第2款A").one().id
    r = client.post(
        "/api/v1/penalty/", json={"staff": org.staff(staff).id, "rule": rule_id, "facts": "与业主发生争执", **fields}
    )
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def test_chain_over_the_api_with_codes_for_each_refusal(api, org):
    head, hr, gm, kefu, other = api("zhuguan_a"), api("renshi"), api("zongjingli"), api("kefu"), api("zhuguan_b")
    pid = _open(head, org)["id"]
    assert [t["action"] for t in head.get(f"/api/v1/penalty/{pid}/transitions").json["result"]] == [
        "propose",
        "withdraw",
    ]
    assert hr.get(f"/api/v1/penalty/{pid}/transitions").json["result"] == []
    assert other.get(f"/api/v1/penalty/{pid}/transitions").status_code == 403  # outside its department
    assert kefu.get(f"/api/v1/penalty/{pid}").status_code in (403, 404)  # no penalty rights at all
    assert head.get(f"/api/v1/penalty/{pid}/notice.pdf").status_code == 409  # nothing issued yet
    _take(hr, pid, "review", expect=409)
    _take(head, pid, "propose")
    _take(head, pid, "review", expect=403)
    _take(hr, pid, "review")
    _take(gm, pid, "reject", expect=422)  # a rejection needs its reason
    _take(gm, pid, "approve", version=1, expect=409)  # stale version
    _take(gm, pid, "approve")
    _take(hr, pid, "issue_notice")
    _take(hr, pid, "serve", expect=422, served_on="2099-01-01")
    body = _take(hr, pid, "serve", served_on=datetime.now(LOCAL_TZ).date().isoformat())
    assert body["result"]["status"] == "served" and body["result"]["appeal_deadline"]
    timeline = hr.get(f"/api/v1/penalty/{pid}/timeline").json["result"]
    assert [e["action"] for e in timeline] == [
        "open",
        "propose",
        "review",
        "approve",
        "issue_notice",
        "circular_drafted",
        "serve",
    ]
    assert timeline[1]["actor"]["username"] == "zhuguan_a"


def test_opening_is_refused_outside_the_department_and_amounts_are_checked(api, org):
    from app.models import PenaltyRule

    head = api("zhuguan_a")
    _open(head, org, staff="吴刚", expect=422)  # 保安部 staff are not in its scope: the id is unknown to it
    tier1 = db.session.query(PenaltyRule).filter_by(clause="第六条第1款A").one().id
    r = head.post(
        "/api/v1/penalty/", json={"staff": org.staff("刘强").id, "rule": tier1, "facts": "x", "fine_amount": 500}
    )
    assert r.status_code == 422 and "fine_amount" in r.json["message"]
    assert api("kefu").post("/api/v1/penalty/", json={}).status_code == 403
    hr = api("renshi")
    r = hr.post("/api/v1/penalty/", json={"staff": org.staff("刘强").id, "rule": tier1, "facts": "x"})
    assert r.status_code == 403  # HR proposes for ordinary staff only when the head failed to act
    assert hr.delete(f"/api/v1/penalty/{_open(head, org)['id']}").status_code in (403, 405)  # never deleted


def test_notice_pdf_returns_the_stored_bytes_under_scope(api, org, discipline_kit):
    from app.models import Document

    penalty = discipline_kit.issued(staff="刘强")
    stored = db.session.query(Document).filter_by(penalty_id=penalty.id).one()
    for login in ("renshi", "zongjingli", "zhuguan_a"):
        r = api(login).get(f"/api/v1/penalty/{penalty.id}/notice.pdf")
        assert r.status_code == 200 and r.data == stored.content and r.headers["X-Content-SHA256"] == stored.sha256
        assert r.mimetype == "application/pdf" and "attachment" in r.headers["Content-Disposition"]
    assert (
        api("zhuguan_a")
        .get(f"/api/v1/penalty/{penalty.id}/notice.pdf?inline=1")
        .headers["Content-Disposition"]
        .startswith("inline")
    )
    assert api("zhuguan_b").get(f"/api/v1/penalty/{penalty.id}/notice.pdf").status_code == 403
    assert api("kefu").get(f"/api/v1/penalty/{penalty.id}/notice.pdf").status_code == 403
    assert api("zhuguan_b").get(f"/api/v1/document/{stored.id}/download").status_code == 404
    assert api("renshi").get(f"/api/v1/document/{stored.id}/download").data == stored.content


def test_batch_print_merges_the_selected_notices_into_one_pdf(api, org, discipline_kit):
    issued = [discipline_kit.issued(staff=name) for name in ("刘强", "孙海")]
    draft = discipline_kit.open(staff="周斌")
    foreign = discipline_kit.issued(staff="吴刚", by="zhuguan_b")
    ids = [p.id for p in issued] + [draft.id, foreign.id]
    r = api("zhuguan_a").post("/api/v1/penalty/notices.pdf", json={"ids": ids})
    assert r.status_code == 200
    assert len(PdfReader(io.BytesIO(r.data)).pages) == 2  # the draft has no notice; 吴刚 is out of scope
    assert r.headers["X-Skipped"] == draft.number
    assert api("zhuguan_a").post("/api/v1/penalty/notices.pdf", json={"ids": [draft.id]}).status_code == 409
    web_hr = api("renshi").post("/api/v1/penalty/notices.pdf", json={"ids": ids})
    assert len(PdfReader(io.BytesIO(web_hr.data)).pages) == 3


def test_batch_print_action_on_the_list_page(web, org, discipline_kit):
    issued = [discipline_kit.issued(staff=name) for name in ("刘强", "孙海")]
    foreign = discipline_kit.issued(staff="吴刚", by="zhuguan_b")
    r = web("zhuguan_a").post(
        "/penaltyview/action_post",
        data={"action": "batch_print", "rowid": [str(p.id) for p in issued] + [str(foreign.id)]},
    )
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert len(PdfReader(io.BytesIO(r.data)).pages) == 2


def test_ledger_json_and_xlsx_for_hr_and_gm_only(api, org, discipline_kit):
    discipline_kit.issued(staff="刘强")
    discipline_kit.issued(staff="吴刚", by="zhuguan_b", clause="第六条第4款A")
    month = datetime.now(LOCAL_TZ).strftime("%Y-%m")
    data = api("zongjingli").get(f"/api/v1/penalty/ledger?month={month}").json
    assert data["totals"] == {"count": 2, "fines": 1200, "points": 5}
    r = api("renshi").get(f"/api/v1/penalty/ledger.xlsx?month={month}")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(r.data))
    staff_sheet = book.worksheets[0]
    rows = [[c.value for c in row] for row in staff_sheet.iter_rows(min_row=3)]
    assert {row[1] for row in rows} == {"刘强", "吴刚"} and sum(row[5] for row in rows) == 1200
    assert len(book.worksheets) == 4  # per staff, per department, penalties, chained deductions
    for login in ("zhuguan_a", "kefu"):
        assert api(login).get(f"/api/v1/penalty/ledger.xlsx?month={month}").status_code == 403
    assert api("renshi").get("/api/v1/penalty/ledger?month=2026-13").status_code == 400


def test_circulars_over_the_api(api, org, discipline_kit):
    penalty = discipline_kit.issued(staff="刘强")
    draft = discipline_kit.open(staff="孙海")
    hr = api("renshi")
    assert hr.post(f"/api/v1/penalty/{draft.id}/circular").status_code == 409
    r = hr.post(f"/api/v1/penalty/{penalty.id}/circular")
    assert r.status_code == 201 and "人行通字" in r.json["result"]["number"]
    assert api("zongjingli").post(f"/api/v1/penalty/{penalty.id}/circular").status_code == 403
    month = datetime.now(LOCAL_TZ).strftime("%Y-%m")
    monthly = hr.post("/api/v1/document/circular", json={"month": month})
    assert monthly.status_code == 201 and monthly.json["result"]["period"] == month
    assert hr.post("/api/v1/document/circular", json={"month": "soon"}).status_code == 422
    # Heads read company-wide circulars, not other departments' penalty files.
    listed = {d["kind"] for d in api("zhuguan_b").get("/api/v1/document/").json["result"]}
    assert listed == {"circular"}
    assert len(api("zhuguan_b").get("/api/v1/document/").json["result"]) == 1


def test_record_form_pdf_follows_complaint_scope(api, make_complaint):
    complaint = make_complaint(department="GC")
    r = api("zhuguan_a").get(f"/api/v1/complaint/{complaint.id}/record_form.pdf")
    assert r.status_code == 200 and r.data.startswith(b"%PDF")
    assert complaint.number in PdfReader(io.BytesIO(r.data)).pages[0].extract_text()
    assert api("kefu").get(f"/api/v1/complaint/{complaint.id}/record_form.pdf").status_code == 200  # its own intake
    assert api("zhuguan_b").get(f"/api/v1/complaint/{complaint.id}/record_form.pdf").status_code == 403


def test_rules_and_commendations_resources(api, org):
    hr, head = api("renshi"), api("zhuguan_a")
    rules = head.get("/api/v1/penaltyrule/?q=(page_size:100)").json["result"]
    assert len(rules) == 22
    bad = hr.post(
        "/api/v1/penaltyrule/",
        json={
            "tier": 2,
            "clause": "第六条第2款D",
            "description": "x",
            "sanction": "warning",
            "fine_min": 300,
            "fine_max": 200,
        },
    )
    assert bad.status_code == 422 and "fine_max" in bad.json["message"]
    assert head.post("/api/v1/penaltyrule/", json={"tier": 2}).status_code == 403
    ok = hr.post(
        "/api/v1/commendation/",
        json={
            "staff": org.staff("刘强").id,
            "commended_on": "2026-11-20",
            "source": "letter",
            "content": "主动帮助老人搬运物品",
        },
    )
    assert ok.status_code == 201, ok.json
    assert api("zhuguan_a").get("/api/v1/commendation/").json["count"] == 1
    assert api("zhuguan_b").get("/api/v1/commendation/").json["count"] == 0


def test_penalty_pages_render_for_each_role(web, org, discipline_kit):
    penalty = discipline_kit.issued(staff="刘强")
    draft = discipline_kit.open(staff="孙海")
    hr = web("renshi")
    page = hr.get(f"/penaltyview/show/{penalty.id}").get_data(as_text=True)
    assert penalty.number in page and "/notice/" in page and "repeat-offences" in page
    head_page = web("zhuguan_a").get(f"/penaltyview/show/{draft.id}").get_data(as_text=True)
    assert 'name="action" value="propose"' in head_page
    assert web("zhuguan_b").get(f"/penaltyview/show/{draft.id}").status_code == 404
    r = web("zhuguan_a").post(f"/penaltyview/act/{draft.id}", data={"action": "propose", "version": draft.version})
    assert r.status_code == 302
    db.session.refresh(draft)
    assert draft.status.value == "proposed"
    for url in (
        "/penaltyview/list/",
        "/penaltyruleview/list/",
        "/documentview/list/",
        "/commendationview/list/",
        "/ledger/",
        "/penaltyview/add",
    ):
        assert hr.get(url).status_code == 200, url
    month = datetime.now(LOCAL_TZ).strftime("%Y-%m")
    issued = hr.post("/documentview/monthly_circular", data={"month": month})
    assert issued.status_code == 302 and "/documentview/show/" in issued.headers["Location"]
    assert web("zongjingli").post("/documentview/monthly_circular", data={"month": month}).status_code == 403
    assert web("kefu").get("/penaltyview/list/").status_code in (302, 403)
    assert web("zhuguan_a").get("/ledger/").status_code in (302, 403)
    complaint_page = hr.get(f"/complaintview/show/{penalty.complaint_id}") if penalty.complaint_id else None
    assert complaint_page is None or complaint_page.status_code == 200


def test_opening_a_case_from_the_form(web, org):
    from app.models import Penalty, PenaltyRule

    rule = db.session.query(PenaltyRule).filter_by(clause="第六条第1款A").one()
    r = web("zhuguan_a").post(
        "/penaltyview/add",
        data={
            "staff": str(org.staff("周斌").id),
            "rule": str(rule.id),
            "facts": "上门维修迟到两小时",
            "fine_amount": "50",
            "sanction": "",
            "score_deduction": "",
        },
    )
    assert r.status_code == 302, r.get_data(as_text=True)[-2000:]
    penalty = db.session.query(Penalty).filter_by(staff_id=org.staff("周斌").id).one()
    assert penalty.fine_amount == 50 and penalty.status.value == "draft"
    refused = web("zhuguan_a").post(
        "/penaltyview/add",
        data={"staff": str(org.staff("周斌").id), "rule": str(rule.id), "facts": "x", "fine_amount": "500"},
    )
    assert refused.status_code == 200 and "100" in refused.get_data(as_text=True)


def test_editing_a_draft_from_the_form_and_not_after_proposal(web, org, discipline_kit):
    penalty = discipline_kit.open(staff="刘强", clause="第六条第1款A", fine_amount=30)
    client = web("zhuguan_a")
    form = {
        "staff": str(org.staff("刘强").id),
        "rule": str(penalty.rule_id),
        "facts": "补充事实",
        "fine_amount": "90",
        "sanction": "",
        "score_deduction": "",
    }
    assert client.post(f"/penaltyview/edit/{penalty.id}", data=form).status_code == 302
    db.session.refresh(penalty)
    assert penalty.fine_amount == 90 and penalty.facts == "补充事实" and penalty.events[-1].action == "edit"
    discipline_kit.step(penalty, "propose", "zhuguan_a")
    client.post(f"/penaltyview/edit/{penalty.id}", data={**form, "fine_amount": "40"})
    db.session.expire_all()
    assert penalty.fine_amount == 90


def test_put_changes_a_draft_and_refuses_after_proposal(api, org):
    head = api("zhuguan_a")
    created = _open(head, org)
    pid, version = created["id"], created["result"]["version"]
    r = head.put(f"/api/v1/penalty/{pid}", json={"facts": "补充：有录音为证", "version": version})
    assert r.status_code == 200 and r.json["result"]["facts"] == "补充：有录音为证"
    assert head.put(f"/api/v1/penalty/{pid}", json={"facts": "x", "version": version}).status_code == 409
    assert head.put(f"/api/v1/penalty/{pid}", json={"fine_amount": 999}).status_code == 422
    _take(head, pid, "propose")
    assert head.put(f"/api/v1/penalty/{pid}", json={"facts": "y"}).status_code == 409
    assert api("zhuguan_b").put(f"/api/v1/penalty/{pid}", json={"facts": "y"}).status_code == 403


def test_ledger_workbook_writes_names_starting_with_formula_signs_as_text(api, org, discipline_kit):
    liu = org.staff("刘强")
    liu.name, liu.employee_no = '=HYPERLINK("http://evil.example/","x")', "@SUM(1)"
    db.session.commit()
    discipline_kit.issued(staff=liu.name)
    month = datetime.now(LOCAL_TZ).strftime("%Y-%m")
    book = load_workbook(io.BytesIO(api("renshi").get(f"/api/v1/penalty/ledger.xlsx?month={month}").data))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    staff_rows = list(book.worksheets[0].iter_rows(min_row=3, values_only=True))
    assert ("'@SUM(1)", '\'=HYPERLINK("http://evil.example/","x")') in [(r[0], r[1]) for r in staff_rows]
