"""Documents in the national format (GB/T 9704-2012《党政机关公文格式》), read back from the PDFs.

发文字号 ``人行罚字〔2026〕4号`` (no 第, no leading zeros) from the next number on, while numbers
already issued keep their text; 成文日期 ``2026年12月6日``; 版记 (抄送, 印发机关, 印发日期) at
the foot of the last page; page numbers "— 1 —"; 红头 for 通报; template wording that reads
as one sentence; the 记录表's wording, signature cells and file name; the 回复报告's title.
"""

import io
from datetime import date

from pypdf import PdfReader
from sqlalchemy import select
from test_regulator_cases import _intake, _take

from app import db
from app.complaints import steps as services
from app.discipline import notices
from app.documents import numbering, record_form
from app.documents import render as documents
from app.models import Complaint, Counter, Document, DocumentKind
from app.timeutil import LOCAL_TZ, utcnow


def pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def test_document_numbers_follow_gbt_9704():
    assert numbering.document_number("人行罚字", 2026, 4) == "人行罚字〔2026〕4号"
    assert numbering.document_number("人行通字", 2026, 18) == "人行通字〔2026〕18号"


def test_numbers_already_issued_keep_their_text_and_the_next_one_is_new(discipline_kit, org):
    """A notice issued before the change (〔2026〕人行罚字第004号) stays as it is; the correction is 5号."""
    year = utcnow().astimezone(LOCAL_TZ).year
    penalty = discipline_kit.issued(staff="刘强")
    old = notices.current_notice(db.session, penalty)
    # As the portal numbered it before GB/T 9704: the stored row and the counter at 4.
    old.number, old.seq = f"〔{year}〕人行罚字第004号", 4
    counter = db.session.scalars(select(Counter).where(Counter.kind == "document:penalty_notice")).one()
    counter.value = 4
    db.session.commit()
    stored_bytes = old.content

    discipline_kit.step(penalty, "reissue_notice", "renshi", reason="更正事实")

    new = notices.current_notice(db.session, penalty)
    assert new.number == f"人行罚字〔{year}〕5号" and new.supersedes_id == old.id
    db.session.expire_all()
    again = db.session.get(Document, old.id)
    assert again.number == f"〔{year}〕人行罚字第004号" and again.content == stored_bytes
    # The correction quotes the old number as it was issued.
    assert f"〔{year}〕人行罚字第004号" in "".join(pages(new.content))


def test_written_date_version_record_and_page_numbers(discipline_kit):
    penalty = discipline_kit.issued(staff="刘强")
    notice = notices.current_notice(db.session, penalty)
    issued_on = notice.issued_at.astimezone(LOCAL_TZ).date()
    text = pages(notice.content)
    written = f"{issued_on.year}年{issued_on.month}月{issued_on.day}日"
    assert written in text[0] and "二〇" not in "".join(text)
    # 版记 on the last page: 抄送, then the issuing office and 印发日期; the page number "— n —".
    last = text[-1]
    assert "抄送：工程部，财务部（工资核算）。" in last and f"人事行政部 {written}印发" in last
    assert last.index("抄送") < last.index("印发")
    assert f"— {len(text)} —" in last
    assert len(text) == 1  # the notice, its receipt and its 版记 fit one sheet


def test_penalty_circular_reads_as_one_sentence_with_red_header(discipline_kit, org):
    penalty = discipline_kit.issued(
        staff="孙海", clause="第六条第2款C", facts="12月2日业主报修8号楼漏水，孙海上门后与业主发生争执。"
    )
    doc = notices.issue_penalty_circular(db.session, penalty, org.principal("renshi"))
    db.session.commit()
    text = "".join(pages(doc.content)).replace("\n", "")
    assert doc.number in text and "文件" in text  # 红头: "<company><office>文件" over the 文号
    assert "孙海12月2日" not in text and "水电工孙海在服务工作中存在违规行为。经调查核实，事实如下：12月2日" in text
    assert "给予孙海警告处分，并处经济处罚200元" in text
    assert "抄送：总经理，公司各部门。" in text and "印发" in text


def test_a_fine_is_not_said_twice_and_the_name_is_not_doubled(discipline_kit, org):
    fine = discipline_kit.issued(staff="孙海", clause="第六条第1款A", fine_amount=100)
    doc = notices.issue_penalty_circular(db.session, fine, org.principal("renshi"), reason="警示")
    dismissal = discipline_kit.issued(
        staff="马桂芳", by="zhuguan_d", clause="第六条第5款A", facts="保洁员马桂芳在清扫时辱骂业主。"
    )
    second = notices.issue_penalty_circular(db.session, dismissal, org.principal("renshi"), reason="警示")
    db.session.commit()
    text = "".join(pages(doc.content)).replace("\n", "")
    assert "给予孙海经济处罚100元" in text and "经济处罚，并处经济处罚" not in text
    assert "保洁员马桂芳保洁员马桂芳" not in "".join(pages(second.content)).replace("\n", "")


def _closed(make_complaint, org):
    complaint = make_complaint(staff=("刘强",))
    for action, who, values in (
        ("judge_valid", "renshi", {"validity_reason": "属实"}),
        ("dispatch", "renshi", {}),
        ("start_investigation", "zhuguan_a", {}),
        ("propose_plan", "zhuguan_a", {"findings": "未按时到场", "resolution_plan": "当日修复"}),
        ("reply", "zhuguan_a", {"reply_text": "已修复"}),
        ("feed_back", "zhuguan_a", {"feedback_note": "客户认可"}),
        ("follow_up", "renshi", {"satisfaction": "satisfied", "follow_up_note": "满意"}),
        ("close", "renshi", {"close_note": "结案", "customer_informed": "phone"}),
        ("archive", "renshi", {}),
    ):
        services.take_transition(db.session, complaint, action, org.principal(who), values)
        db.session.commit()
    return db.session.get(Complaint, complaint.id)


def test_record_form_wording_signature_cells_and_file_name(app, make_complaint, org):
    complaint = _closed(make_complaint, org)
    pdf, stored = record_form.record_form_pdf(db.session, complaint, None)
    text = "".join(pages(pdf))
    assert "开始调查" in text and "展开调查" not in text
    # Each signature cell keeps "日期：＿＿＿年＿＿月＿＿日" on one line.
    assert text.count("日期：＿＿＿年＿＿月＿＿日") == 4
    assert stored.filename == f"客户投诉记录表-{complaint.number}.pdf"


def test_reply_report_title_does_not_break_inside_a_word(api, org):
    kefu, hr, head = api("kefu"), api("renshi"), api("zhuguan_a")
    ref = "GD20261206-0042"  # printed "…号转办件的回复报/告" before
    cid = kefu.post("/api/v1/complaint/", json=_intake(org, regulator_ref=ref)).get_json()["id"]
    _take(hr, cid, "judge_valid", validity_reason="属实")
    _take(hr, cid, "dispatch")
    _take(head, cid, "start_investigation")
    _take(head, cid, "propose_plan", findings="电梯控制板老化", resolution_plan="更换控制板")
    _take(head, cid, "reply", reply_text="已更换控制板并恢复运行")
    assert hr.post(f"/api/v1/complaint/{cid}/regulator_reply").status_code == 201
    text = "".join(pages(hr.get(f"/api/v1/complaint/{cid}/regulator_reply.pdf").data))
    title = text[: text.index("回复报") + 5]
    assert "转办件的回复报告" in title  # a long reference wraps the title before these words, never inside


def test_unnumbered_kinds_keep_their_kind_once_in_the_file_name():
    assert documents._filename("record_form", None, "客户投诉记录表 TS20261206-00001", date(2026, 12, 6)) == (
        "客户投诉记录表-TS20261206-00001.pdf"
    )
    assert documents._filename("circular", "人行通字〔2026〕4号", "关于…的通报", date(2026, 12, 6)) == (
        "通报-人行通字〔2026〕4号.pdf"
    )
    assert DocumentKind.record_form.value == "record_form"
