"""Case pages show the stages that hold data, hide empty fields, and lead with the next step.

An early-stage complaint or penalty case lists no empty later-stage rows (审核人, 审批时间,
送达日期, 答复时间 …); the next step, who takes it and its deadline appear above the case file.
"""

from __future__ import annotations

import re

from quality_support import step

from app.timeutil import format_local, utcnow


def _page(web, username: str, url: str) -> str:
    r = web(username).get(url)
    assert r.status_code == 200, r.status_code
    return r.get_data(as_text=True)


def _field_labels(html: str) -> list[str]:
    return re.findall(r'<tr data-field="[^"]+"><th class="col-sm-3">([^<]+)</th>', html)


def _section_titles(html: str) -> list[str]:
    return re.findall(
        r'<div class="panel panel-default case-section">\s*<div class="panel-heading"><strong>([^<]+)<', html
    )


def test_a_new_complaint_shows_registration_only_and_the_next_step_with_its_deadline_on_top(web, make_complaint):
    complaint = make_complaint()
    html = _page(web, "renshi", f"/complaintview/show/{complaint.id}")

    labels = _field_labels(html)
    assert "投诉编号" in labels or any("编号" in label for label in labels), labels
    for later in ("答复时间", "结案时间", "满意度", "答复客户内容", "判定理由"):
        assert later not in labels, (later, labels)
    assert _section_titles(html) == ["登记"]

    top = html.index('id="next-steps"')
    assert top < html.index("case-section")
    next_steps = html[top : html.index("</div>", top)]
    assert "判定" in next_steps and "人事行政经理" in next_steps
    assert format_local(complaint.next_due_at) in next_steps


def test_a_dispatched_complaint_shows_its_stage_and_the_departments_next_step(web, make_complaint, org):
    complaint = make_complaint()
    now = utcnow()
    step(org, complaint, "judge_valid", "renshi", now, validity_reason="电梯确有停运")
    step(org, complaint, "dispatch", "renshi", now)
    html = _page(web, "zhuguan_a", f"/complaintview/show/{complaint.id}")

    assert _section_titles(html) == ["登记", "判定与转派"]
    assert "答复时间" not in _field_labels(html)
    top = html.index('id="next-steps"')
    next_steps = html[top : html.index("</div>", top)]
    assert "签收" in next_steps and "工程部部门主管" in next_steps


def test_a_draft_penalty_hides_review_approval_and_service_rows(web, discipline_kit):
    penalty = discipline_kit.open()
    html = _page(web, "renshi", f"/penaltyview/show/{penalty.id}")

    labels = _field_labels(html)
    for later in ("审核人", "审批时间", "送达日期"):
        assert later not in labels, (later, labels)
    assert _section_titles(html) == ["立案"]
    top = html.index('id="next-steps"')
    assert top < html.index("case-section")
    next_steps = html[top : html.index("</div>", top)]
    assert "部门主管" in next_steps


def test_an_approved_penalty_shows_its_review_and_approval_and_waits_for_the_notice(web, discipline_kit):
    penalty = discipline_kit.open()
    discipline_kit.step(penalty, "propose", "zhuguan_a")
    discipline_kit.step(penalty, "review", "renshi")
    discipline_kit.step(penalty, "approve", "zongjingli")
    html = _page(web, "renshi", f"/penaltyview/show/{penalty.id}")

    labels = _field_labels(html)
    assert "审核人" in labels and "审批时间" in labels
    assert "送达日期" not in labels
    assert _section_titles(html) == ["立案", "审核", "审批"]
    top = html.index('id="next-steps"')
    assert "人事行政经理" in html[top : html.index("</div>", top)]


def test_case_pages_draw_their_sections_without_building_fabs_show_widget(
    web, make_complaint, discipline_kit, monkeypatch
):
    """A complaint or penalty page replaces FAB's show form with its own stage sections; FAB's show
    widget (every show column formatted, its relations loaded) was built for nothing on each
    visit. The pages render their sections without it."""
    from flask_appbuilder.baseviews import BaseCRUDView

    def refused(*_args, **_kwargs):
        raise AssertionError("FAB's show widget was built")

    monkeypatch.setattr(BaseCRUDView, "_get_show_widget", refused)
    complaint = make_complaint()
    assert _section_titles(_page(web, "renshi", f"/complaintview/show/{complaint.id}")) == ["登记"]
    penalty = discipline_kit.open()
    assert _section_titles(_page(web, "renshi", f"/penaltyview/show/{penalty.id}")) == ["立案"]
