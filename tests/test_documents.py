"""Formal documents: PDFs read back, escaping, the restricted URL fetcher, numbering, storage.

PDFs are read back with pypdf: their text (the 文号, the employee's name, hostile text
shown literally) and their fonts (Noto CJK subsets embedded).
"""

import hashlib
import io
import logging
import threading
import time
from datetime import date, datetime

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import db
from app.complaints import steps as services
from app.discipline import notices
from app.documents import record_form
from app.documents import render as documents
from app.lifecycle import TransitionError, record_event
from app.models import Commendation, Document, DocumentKind
from app.timeutil import LOCAL_TZ

HOSTILE = (
    '<script>alert(1)</script><img src="file:///etc/passwd">'
    '<link rel="stylesheet" href="http://example.com/x.css">'
    "<style>body{background:url(http://example.com/y.png)}</style>"
)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def pdf_fonts(data: bytes) -> set[str]:
    names = set()
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


def circular_context(**extra):
    return {
        "heading": "测试通报",
        "penalty": None,
        "period_cn": "二〇二六年十一月",
        "penalties": [],
        "commendations": [],
        "fine_total": 0,
        "score_total": 0,
        **extra,
    }


def test_notice_carries_number_name_rule_and_embedded_noto_subsets(discipline_kit):
    penalty = discipline_kit.issued(staff="刘强")
    notice = notices.current_notice(db.session, penalty)
    text = pdf_text(notice.content)
    assert notice.number in text and "刘强" in text and "第六条第2款A" in text
    assert "警告" in text and "贰佰元整" in text and "3个工作" in text
    issued_on = notice.issued_at.astimezone(LOCAL_TZ).date()
    # 成文日期 in Arabic numerals without leading zeros (GB/T 9704-2012), not 二〇二六年….
    assert f"{issued_on.year}年{issued_on.month}月{issued_on.day}日" in text and "二〇" not in text
    fonts = pdf_fonts(notice.content)
    # The portal's cut fonts of the common characters (app/documents/fonts.py), Noto CJK after.
    assert fonts and all(("Noto" in f and "CJK" in f) or "Portal-S" in f for f in fonts)
    # Subsets carry a six-letter tag: AAAAAA+Name.
    assert all(len(f.split("+")[0].lstrip("/")) == 6 for f in fonts)
    assert len(notice.content) == notice.size and notice.sha256 == hashlib.sha256(notice.content).hexdigest()


def test_hostile_complaint_text_prints_literally_and_fetches_nothing(discipline_kit, make_complaint):
    complaint = make_complaint(content="电梯坏了" + HOSTILE, staff=("刘强",))
    penalty = discipline_kit.open(facts="辱骂客户" + HOSTILE, complaint=complaint)
    fetcher = documents.PortalURLFetcher()
    pdf = documents.render_pdf(
        "documents/penalty_notice.html",
        {
            **documents.common_context(db.session),
            "heading": "处罚通知书",
            "variant": "original",
            "penalty": notices.penalty_facts(penalty),
            "appeal_days": 3,
            "change_reason": None,
            "document": {
                "title": "t",
                "number": "人行罚字〔2026〕999号",
                "issued_date_cn": "2026年11月23日",
                "issued_on": date(2026, 11, 23),
                "supersedes_number": None,
                "supersedes_issued_on": None,
            },
        },
        fetcher,
    )
    text = pdf_text(pdf).replace("\n", "")  # a line may break inside the hostile text
    assert "<script>alert(1)</script>" in text and 'src="file:///etc/passwd"' in text
    assert "root:" not in text
    assert fetcher.refused == []  # escaped markup never reaches the fetcher
    # The stylesheet is parsed once per process (render._print_stylesheet), not fetched per print.
    assert fetcher.served == []
    form, _stored = record_form.record_form_pdf(db.session, complaint, None)
    assert "<script>alert(1)</script>" in pdf_text(form)


def test_url_fetcher_refuses_local_files_and_the_network():
    html = (
        "<html><head><link rel='stylesheet' href='portal-static:documents/print.css'>"
        "<link rel='stylesheet' href='file:///etc/passwd'>"
        "<style>p { background: url(http://example.com/track.png) } "
        "@import url('https://example.com/evil.css');</style></head><body>"
        "<img src='file:///etc/passwd'><img src='http://example.com/a.png'><img src='data:image/png;base64,AAAA'>"
        "<img src='portal-static:static/img/logo.svg'><img src='portal-static:documents/../../../config.py'>"
        "<p>正文</p></body></html>"
    )
    fetcher = documents.PortalURLFetcher()
    pdf = documents.html_to_pdf(html, fetcher)
    assert pdf.startswith(b"%PDF") and "正文" in pdf_text(pdf)
    refused = set(fetcher.refused)
    assert {
        "file:///etc/passwd",
        "http://example.com/a.png",
        "http://example.com/track.png",
        "portal-static:documents/../../../config.py",
    } <= refused
    assert any(url.startswith("data:") for url in refused)
    assert set(fetcher.served) == {"portal-static:documents/print.css", "portal-static:static/img/logo.svg"}
    for url in (
        "file:///etc/passwd",
        "portal-static:static/../../config.py",
        "portal-static:etc/passwd",
        "portal-static:documents/",
        "/etc/passwd",
        "http://127.0.0.1:8080/health",
    ):
        with pytest.raises(documents.URLRefused):
            documents.resolve(url)


def test_weasyprint_subsets_fonts_with_harfbuzz_not_fonttools(caplog):
    """Without libharfbuzz-subset0 WeasyPrint falls back to fontTools: ~8 s a page instead of ~0.1 s."""
    assert documents.harfbuzz_subsetting_available(), (
        "WeasyPrint cannot use HarfBuzz-Subset: install libharfbuzz-subset0 (scripts/ensure-system-packages.sh)"
    )
    caplog.set_level(logging.WARNING, logger="weasyprint")
    documents.html_to_pdf("<p style='font-family: \"Noto Serif CJK SC\"'>字体子集测试</p>")
    assert not [r for r in caplog.records if "fontTools" in r.getMessage()]


def test_capital_amounts():
    assert [documents.cn_capital(n) for n in (30, 200, 1000, 1050, 10001)] == [
        "叁拾元整",
        "贰佰元整",
        "壹仟元整",
        "壹仟零伍拾元整",
        "壹万零壹元整",
    ]


def test_monthly_circular_lists_penalties_and_commendations_and_a_reissue_supersedes(discipline_kit, org):
    kit = discipline_kit
    kit.issued(staff="刘强")
    kit.issued(staff="吴刚", by="zhuguan_b", clause="第六条第1款C", fine_amount=60)
    today = datetime.now(LOCAL_TZ).date()
    db.session.add(
        Commendation(
            staff=org.staff("孙海"),
            department_id=org.staff("孙海").department_id,
            commended_on=today,
            source="letter",
            content="雨夜抢修水管，业主送来表扬信。",
        )
    )
    db.session.commit()
    month = today.replace(day=1)
    first = notices.issue_monthly_circular(db.session, month, org.principal("renshi"))
    db.session.commit()
    text = pdf_text(first.content)
    assert first.number in text and "刘强" in text and "吴刚" in text and "孙海" in text and "表扬信" in text
    assert "260" in text  # fines of the month: 200 + 60
    second = notices.issue_monthly_circular(db.session, month, org.principal("renshi"))
    db.session.commit()
    assert second.version == 2 and second.supersedes_id == first.id and second.seq == first.seq + 1
    with pytest.raises(TransitionError):
        notices.issue_monthly_circular(db.session, month, org.principal("zhuguan_a"))


def test_archived_record_form_is_stored_once_and_served_unchanged(app, make_complaint, org):
    from app.models import Complaint

    complaint = make_complaint(staff=("刘强",))
    steps = [
        ("judge_valid", "renshi", {"validity_reason": "属实"}),
        ("dispatch", "renshi", {}),
        ("start_investigation", "zhuguan_a", {}),
        ("propose_plan", "zhuguan_a", {"findings": "维修人员未按时到场", "resolution_plan": "当日修复"}),
        ("reply", "zhuguan_a", {"reply_text": "已修复"}),
        ("feed_back", "zhuguan_a", {"feedback_note": "客户认可"}),
        ("follow_up", "renshi", {"satisfaction": "satisfied", "follow_up_note": "满意"}),
        ("close", "renshi", {"close_note": "结案", "customer_informed": "phone"}),
    ]
    for action, who, values in steps:
        services.take_transition(db.session, complaint, action, org.principal(who), values)
        db.session.commit()
    open_form, stored = record_form.record_form_pdf(db.session, complaint, None)
    assert stored is None
    text = pdf_text(open_form)
    for expected in (
        complaint.number,
        "客户投诉记录表",
        "维修人员未按时到场",
        "满意",
        "判定成立",
        "登记回访",  # the portal's own label of the step (app/labels.py), as on the timeline
        "结案",
        "部门主管签字",
        "总经理批示",
        complaint.customer.name,
    ):
        assert expected in text, expected
    services.take_transition(db.session, complaint, "archive", org.principal("renshi"), {})
    db.session.commit()
    first, doc = record_form.record_form_pdf(db.session, db.session.get(Complaint, complaint.id), None)
    again, doc_again = record_form.record_form_pdf(db.session, db.session.get(Complaint, complaint.id), None)
    assert doc is not None and doc_again.id == doc.id and first == again
    assert db.session.scalar(select(db.func.count(Document.id)).where(Document.complaint_id == complaint.id)) == 1


def test_document_numbers_are_gap_free_under_concurrent_issuing(pg_app):
    """Threads, each with its own session, issue circulars at once; some roll back. No gaps, no duplicates."""
    threads, per_thread = 6, 3
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []
    kept: list[int] = []
    lock = threading.Lock()
    engine = db.engine

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            for round_ in range(per_thread):
                with Session(engine) as session:
                    doc = documents.issue_document(
                        session,
                        "circular",
                        f"并发通报 {index}-{round_}",
                        circular_context(),
                        period=f"t{index}-{round_}",
                    )
                    if (index + round_) % 4 == 0:
                        session.rollback()  # the number goes back to the counter
                        continue
                    session.commit()
                    with lock:
                        kept.append(doc.seq)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not failures, failures
    rows = db.session.execute(select(Document.seq, Document.number).where(Document.kind == DocumentKind.circular)).all()
    seqs = sorted(r.seq for r in rows)
    assert seqs == list(range(1, len(seqs) + 1)) == sorted(kept)
    assert len({r.number for r in rows}) == len(rows)


# --- Bounded printing (issue 13, item 7) --------------------------------------------------------


def test_record_form_of_a_case_with_maximum_length_fields_prints_within_seconds(app, make_complaint):
    from http_clients import Client

    complaint = make_complaint(content="空调不制冷，" * 833 + "请尽快")  # 5,000 characters
    complaint.subject, complaint.customer_demand = "题" * 200, "求" * 2000
    db.session.commit()
    hr = Client(app, "renshi", api=True)
    started = time.monotonic()
    r = hr.get(f"/api/v1/complaint/{complaint.id}/record_form.pdf")
    assert r.status_code == 200 and r.data[:4] == b"%PDF"
    assert time.monotonic() - started < 8


def test_text_stored_before_the_limits_is_clipped_when_printed_and_a_huge_form_is_refused(app, make_complaint):
    from http_clients import Client

    complaint = make_complaint()
    complaint.content = "长" * 1_048_576  # stored before the input limits existed
    db.session.commit()
    hr = Client(app, "renshi", api=True)
    started = time.monotonic()
    r = hr.get(f"/api/v1/complaint/{complaint.id}/record_form.pdf")
    assert r.status_code == 200 and time.monotonic() - started < 8
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(r.data)).pages).replace("\n", "")
    assert "以下内容过长，从略" in text
    # Text the clipping cannot bound (every field at its maximum, many times over) is refused in Chinese.
    complaint.customer_demand = complaint.findings = complaint.reply_text = "长" * 5000
    for _n in range(6):
        record_event(complaint, "remind", None, note="记" * 5000, at=datetime.now(LOCAL_TZ))
    db.session.commit()
    refused = hr.get(f"/api/v1/complaint/{complaint.id}/record_form.pdf")
    assert refused.status_code == 413 and refused.json["message"].startswith("文书内容过长")
