"""Issued documents are easy to find again: the document page has 下载 and 打印, every icon on the
penalty page says what it does, and complaints, penalty cases and documents link both ways."""

import re

from app import db
from app.discipline import notices


def _issued_from_complaint(discipline_kit, make_complaint):
    complaint = make_complaint(staff=("刘强",))
    penalty = discipline_kit.issued(staff="刘强", complaint=complaint)
    return complaint, penalty, notices.current_notice(db.session, penalty)


def test_document_page_has_download_and_print_buttons_and_its_case(discipline_kit, make_complaint, web):
    complaint, penalty, notice = _issued_from_complaint(discipline_kit, make_complaint)
    page = web("renshi").get(f"/documentview/show/{notice.id}").get_data(as_text=True)
    assert f'href="/documentview/download/{notice.id}"' in page and "下载" in page
    assert f'href="/documentview/download/{notice.id}?inline=1"' in page and "打印" in page
    assert f'href="/penaltyview/show/{penalty.id}"' in page and f'href="/complaintview/show/{complaint.id}"' in page
    r = web("renshi").get(f"/documentview/download/{notice.id}?inline=1")
    assert r.status_code == 200 and r.data == notice.content


def test_penalty_page_links_its_complaint_and_labels_every_document_icon(discipline_kit, make_complaint, web):
    complaint, penalty, notice = _issued_from_complaint(discipline_kit, make_complaint)
    page = web("renshi").get(f"/penaltyview/show/{penalty.id}").get_data(as_text=True)
    assert f'<a class="complaint-link" href="/complaintview/show/{complaint.id}">{complaint.number}</a>' in page
    assert f'href="/documentview/show/{notice.id}"' in page
    # No bare icon: each <i class="fa …"></i> is followed by its text, or its link has a title.
    for link in re.findall(r"<a [^>]*>\s*<i class=\"fa [^\"]*\"[^>]*></i>\s*</a>", page):
        assert "title=" in link, link


def test_complaint_page_lists_its_penalty_cases_and_documents(discipline_kit, make_complaint, web):
    complaint, penalty, notice = _issued_from_complaint(discipline_kit, make_complaint)
    page = web("renshi").get(f"/complaintview/show/{complaint.id}").get_data(as_text=True)
    assert "由本投诉产生的处罚案件与文书" in page
    assert f'href="/penaltyview/show/{penalty.id}">{penalty.number}</a>' in page
    assert f'href="/documentview/show/{notice.id}">{notice.number}</a>' in page
    # 客服 sees the complaint it registered, not the penalty files.
    kefu = web("kefu").get(f"/complaintview/show/{complaint.id}").get_data(as_text=True)
    assert penalty.number not in kefu and notice.number not in kefu


def test_monthly_circular_asks_for_confirmation_with_the_number(discipline_kit, web):
    page = web("renshi").get("/documentview/list/").get_data(as_text=True)
    assert 'data-target="#issue-monthly-circular"' in page and "人行通字〔" in page and "确认签发" in page
