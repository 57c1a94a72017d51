"""Chained liability (连带扣分): the chain frozen on approval, the ledger, points per period,
the threshold warning, the points API's scope and the ledger's 服务忌语 column."""

import io
from datetime import date, datetime

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select

from app import db, settings
from app.discipline import ledger, liability
from app.discipline import notices as notice_docs
from app.models import Document, Notification, PenaltyEvent, PenaltyLink, PhraseHit
from app.timeutil import UTC

NOV = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)  # Monday 16 November, 10:00 in Shanghai
MONTH = date(2026, 11, 1)


def _approved(kit, staff="刘强", clause="事故标准一级", now=NOV, by="zhuguan_a"):
    penalty = kit.open(staff=staff, clause=clause, by=by, now=now, incident_date="2026-11-10")
    kit.step(penalty, "propose", by, now=now)
    kit.step(penalty, "review", "renshi", now=now)
    kit.step(penalty, "approve", "zongjingli", now=now)
    return penalty


def _links(penalty):
    rows = db.session.scalars(
        select(PenaltyLink).where(PenaltyLink.penalty_id == penalty.id).order_by(PenaltyLink.position)
    ).all()
    return {k.role: k for k in rows}


@pytest.fixture
def four_levels(org):
    """刘强 -> 周斌 -> 孙海 -> 张建国, and the 工程部 head's post vacant."""
    liu, zhou, sun, zhang = (org.staff(n) for n in ("刘强", "周斌", "孙海", "张建国"))
    liu.superior, zhou.superior, sun.superior = zhou, sun, zhang
    org.dept("GC").head = None
    db.session.commit()
    return liu, zhou, sun, zhang


def test_chain_across_four_levels_with_a_vacant_link(discipline_kit, org, api, four_levels):
    liu, zhou, sun, zhang = four_levels
    kit = discipline_kit
    penalty = kit.open(clause="事故标准一级", now=NOV)
    kit.step(penalty, "propose", "zhuguan_a", now=NOV)
    kit.step(penalty, "review", "renshi", now=NOV)
    # Before the decision the chain is only what the rule would deduct.
    shown = api("renshi").get(f"/api/v1/penalty/{penalty.id}").json
    assert shown["chain"]["resolved"] is False
    assert [(k["role"], k["points"]) for k in shown["chain"]["links"]] == [
        ("department_head", 10),
        ("superior", 8),
        ("superior_of_superior", 5),
    ]
    assert _links(penalty) == {}

    kit.step(penalty, "approve", "zongjingli", now=NOV)
    links = _links(penalty)
    assert set(links) == {"responsible", "department_head", "superior", "superior_of_superior"}
    assert (links["responsible"].staff_id, links["responsible"].points, links["responsible"].counted) == (
        liu.id,
        15,
        True,
    )
    head = links["department_head"]
    assert head.vacant and not head.counted and head.staff_id is None and head.points == 10 and head.note
    assert (links["superior"].staff_id, links["superior"].points, links["superior"].counted) == (zhou.id, 8, True)
    assert (links["superior_of_superior"].staff_id, links["superior_of_superior"].points) == (sun.id, 5)
    # Created with the approval, in its transaction: one instant, one timeline line noting the vacancy.
    assert {k.created_at for k in links.values()} == {penalty.decided_at}
    events = db.session.scalars(select(PenaltyEvent).where(PenaltyEvent.penalty_id == penalty.id)).all()
    chain = [e for e in events if e.action == "chain"]
    assert len(chain) == 1 and chain[0].at == penalty.decided_at
    assert [k["role"] for k in chain[0].data["links"] if k["vacant"]] == ["department_head"]
    assert chain[0].note and "周斌" in chain[0].note and "孙海" in chain[0].note

    # Every person on the ledger, and the chained links listed.
    data = ledger.ledger(db.session, MONTH, org.principal("renshi"))
    staff = {r["name"]: r for r in data["staff"]}
    assert (staff["刘强"]["count"], staff["刘强"]["chained"], staff["刘强"]["points"]) == (1, 0, 15)
    assert (staff["周斌"]["count"], staff["周斌"]["chained"], staff["周斌"]["points"]) == (0, 1, 8)
    assert (staff["孙海"]["count"], staff["孙海"]["chained"], staff["孙海"]["points"]) == (0, 1, 5)
    assert "张建国" not in staff
    assert {r["department"]: r["points"] for r in data["departments"]}["工程部"] == 28
    assert data["totals"]["points"] == 28 and data["chained_totals"] == {"count": 2, "fines": 0, "points": 13}
    assert [(r["role"], r["counted"], r["vacant"]) for r in data["chained"]] == [
        ("department_head", False, True),
        ("superior", True, False),
        ("superior_of_superior", True, False),
    ]
    r = api("renshi").get("/api/v1/penalty/ledger.xlsx?month=2026-11")
    book = load_workbook(io.BytesIO(r.data))
    assert len(book.sheetnames) == 4
    chained_sheet = list(book.worksheets[3].iter_rows(min_row=3, values_only=True))
    assert {row[5] for row in chained_sheet} >= {"周斌", "孙海"} and len(chained_sheet) == 3
    per_staff = {row[1]: row for row in book.worksheets[0].iter_rows(min_row=3, values_only=True)}
    assert per_staff["周斌"][8] == 1 and per_staff["周斌"][6] == 8

    # The points API answers with the sources.
    for period in ("2026-11", "2026"):
        body = api("renshi").get(f"/api/v1/staff/{zhou.id}/points?period={period}").json
        assert body["period"] == period and body["total_points"] == 8 and body["count"] == 1
        (row,) = body["result"]
        assert row["penalty_number"] == penalty.number and row["rule"] == "事故标准一级"
        assert (row["role"], row["points"], row["fine"], row["date"]) == ("superior", 8, 0, "2026-11-16")
        assert row["responsible"] == "刘强"
    own = api("zongjingli").get(f"/api/v1/staff/{liu.id}/points?period=2026").json
    assert [(r["role"], r["points"]) for r in own["result"]] == [("responsible", 15)]
    assert api("renshi").get(f"/api/v1/staff/{zhou.id}/points?period=2026-10").json["total_points"] == 0

    # A later change of posts does not rewrite the stored chain.
    r = api("renshi").put(f"/api/v1/staff/{liu.id}", json={"superior": zhang.id})
    assert r.status_code == 200, r.json
    db.session.expire_all()
    assert org.staff("刘强").superior_id == zhang.id
    again = _links(penalty)
    assert again["superior"].staff_id == zhou.id and again["superior_of_superior"].staff_id == sun.id
    shown = api("renshi").get(f"/api/v1/penalty/{penalty.id}").json["chain"]
    assert shown["resolved"] is True
    assert [(k["role"], k["staff_name"], k["counted"]) for k in shown["links"]] == [
        ("responsible", "刘强", True),
        ("department_head", None, False),
        ("superior", "周斌", True),
        ("superior_of_superior", "孙海", True),
    ]


def test_the_same_person_twice_is_deducted_once_at_the_higher_value(discipline_kit, org):
    org.staff("刘强").superior = org.staff("张建国")  # the head is also the direct superior
    db.session.commit()
    penalty = _approved(discipline_kit, clause="事故标准二级")
    links = _links(penalty)
    assert links["department_head"].staff.name == "张建国" and links["department_head"].counted
    assert links["superior"].staff.name == "张建国" and not links["superior"].counted and links["superior"].note
    assert links["superior_of_superior"].vacant  # 张建国 reports to nobody
    staff = {r["name"]: r for r in ledger.ledger(db.session, MONTH, org.principal("renshi"))["staff"]}
    assert staff["张建国"]["points"] == 8 and staff["张建国"]["chained"] == 1


def test_rules_without_a_chain_create_no_links(discipline_kit):
    penalty = _approved(discipline_kit, clause="第六条第2款A")
    assert _links(penalty) == {}


def test_the_threshold_warns_hr_once_per_person_and_period(discipline_kit, org, four_levels):
    settings.put(db.session, "points.threshold", 12)
    db.session.commit()
    renshi = org.user("renshi")

    def warnings():
        return db.session.scalars(
            select(Notification).where(Notification.user_id == renshi.id, Notification.kind == "points")
        ).all()

    _approved(discipline_kit, clause="事故标准二级")  # 刘强 10, 周斌 5, 孙海 3
    assert warnings() == []
    _approved(discipline_kit, clause="事故标准二级", now=datetime(2026, 11, 17, 2, 0, tzinfo=UTC))  # 刘强 20
    assert [w.title for w in warnings()] == [w.title for w in warnings() if "刘强" in w.title]
    assert len(warnings()) == 1 and "20" in warnings()[0].title
    _approved(discipline_kit, clause="事故标准二级", now=datetime(2026, 11, 18, 2, 0, tzinfo=UTC))  # 周斌 15
    titles = [w.title for w in warnings()]
    assert len(titles) == 2 and sum("刘强" in t for t in titles) == 1 and sum("周斌" in t for t in titles) == 1


def test_points_api_scope(discipline_kit, org, api):
    _approved(discipline_kit, clause="事故标准三级")
    liu = org.staff("刘强")
    assert api("kefu").get(f"/api/v1/staff/{liu.id}/points?period=2026").status_code == 403
    assert api("zhuguan_b").get(f"/api/v1/staff/{liu.id}/points?period=2026").status_code == 403
    assert api("zhuguan_a").get(f"/api/v1/staff/{liu.id}/points?period=2026").json["total_points"] == 5
    assert api("zongjingli").get(f"/api/v1/staff/{liu.id}/points?period=2026-11").json["total_points"] == 5
    assert api("renshi").get(f"/api/v1/staff/{liu.id}/points?period=11-2026").status_code == 400
    assert api("renshi").get("/api/v1/staff/999999/points?period=2026").status_code == 404


def test_superior_must_not_loop(org, api):
    liu, zhou = org.staff("刘强"), org.staff("周斌")
    hr = api("renshi")
    assert hr.put(f"/api/v1/staff/{liu.id}", json={"superior": liu.id}).status_code == 422
    assert hr.put(f"/api/v1/staff/{liu.id}", json={"superior": zhou.id}).status_code == 200
    r = hr.put(f"/api/v1/staff/{zhou.id}", json={"superior": liu.id})
    assert r.status_code == 422 and "superior" in r.json["message"]
    assert hr.get(f"/api/v1/staff/{liu.id}").json["result"]["superior"]["name"] == "周斌"


def test_chained_persons_in_the_circular_or_their_own_notice(discipline_kit, org, four_levels):
    kit = discipline_kit
    penalty = _approved(kit)
    kit.step(penalty, "issue_notice", "renshi", now=NOV)
    doc = notice_docs.issue_penalty_circular(
        db.session, penalty, org.principal("renshi"), now=NOV, reason="事故标准一级的事故通报全公司以示警示"
    )
    db.session.commit()
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(doc.content)).pages)
    assert "连带" in text and "周斌" in text and "孙海" in text
    # Own notices instead (setting), and the case's own notice stays its current one.
    settings.put(db.session, "penalty.chain_documents", "notice")
    db.session.commit()
    other = _approved(kit, clause="事故标准三级", now=datetime(2026, 11, 17, 2, 0, tzinfo=UTC))
    kit.step(other, "issue_notice", "renshi", now=datetime(2026, 11, 17, 3, 0, tzinfo=UTC))
    notices = db.session.scalars(
        select(Document).where(Document.penalty_id == other.id, Document.period.is_not(None))
    ).all()
    # 三级: the superior's superior is not liable (0 points), so only the direct superior.
    assert [d.title for d in notices] == ["连带责任扣分通知书：周斌"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(notices[0].content)).pages)
    assert "刘强" in text and "直接上级" in text and "2分" in text
    assert notice_docs.current_notice(db.session, other).period is None
    assert liability.parse_period("2026").label == "2026"


def test_ledger_counts_forbidden_phrases_per_staff(discipline_kit, org, api, web):
    wu, wang = org.staff("吴刚"), org.staff("王小红")
    for at in (datetime(2026, 11, 3, 2, tzinfo=UTC), datetime(2026, 11, 20, 2, tzinfo=UTC)):
        db.session.add(
            PhraseHit(at=at, staff_id=wu.id, department_id=wu.department_id, source="reply_text", phrase="不知道")
        )
    db.session.add(
        PhraseHit(at=datetime(2026, 10, 30, 2, tzinfo=UTC), staff_id=wang.id, source="reply_text", phrase="不知道")
    )
    db.session.commit()
    _approved(discipline_kit, staff="吴刚", by="zhuguan_b", clause="第六条第2款A")
    data = ledger.ledger(db.session, MONTH, org.principal("renshi"))
    staff = {r["name"]: r for r in data["staff"]}
    assert staff["吴刚"]["phrase_hits"] == 2 and staff["吴刚"]["count"] == 1
    assert "王小红" not in staff  # her hit was in October
    assert data["phrase_hits"] == 2
    october = {r["name"]: r for r in ledger.ledger(db.session, date(2026, 10, 1), org.principal("renshi"))["staff"]}
    assert october["王小红"]["phrase_hits"] == 1 and october["王小红"]["count"] == 0
    book = load_workbook(io.BytesIO(api("zongjingli").get("/api/v1/penalty/ledger.xlsx?month=2026-11").data))
    header = [c.value for c in book.worksheets[0][2]]
    row = {r[1]: r for r in book.worksheets[0].iter_rows(min_row=3, values_only=True)}["吴刚"]
    assert row[len(header) - 1] == 2
    page = web("renshi").get("/ledger/?month=2026-11").get_data(as_text=True)
    assert "吴刚" in page and (("服务忌语" in page) or ("Forbidden service phrases" in page))


def test_screens_show_the_chain_and_edit_superiors_and_rule_chains(discipline_kit, org, web, four_levels):
    penalty = _approved(discipline_kit)
    hr = web("renshi")
    page = hr.get(f"/penaltyview/show/{penalty.id}").get_data(as_text=True)
    assert "liability-chain" in page and "周斌" in page and "孙海" in page
    liu = org.staff("刘强")
    form = hr.get(f"/staffview/edit/{liu.id}").get_data(as_text=True)
    assert 'name="superior"' in form
    rule = discipline_kit.rule("事故标准一级")
    form = hr.get(f"/penaltyruleview/edit/{rule.id}").get_data(as_text=True)
    assert 'name="chain_head_points"' in form and 'name="chain_superior2_points"' in form
