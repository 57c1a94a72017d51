"""Search pickers in a real browser: opening one lists the first page without typing, the search
box has the focus, the picker speaks Chinese, and typing then picking selects a row.

被投诉人 on 登记投诉 (as 客服), 员工 and 投诉 on 处罚立案 (as 部门主管).
"""

from __future__ import annotations

import re

import pytest
from browser_support import BROWSER_MARKS, Visit

pytestmark = BROWSER_MARKS

ENGLISH_PICKER_TEXT = re.compile(r"could not be loaded|No results|Searching|Please enter|Loading more", re.I)


def _pick(page, field: str) -> str:
    """Open the picker of ``field``, check it, type into its focused box and pick the first match."""
    page.locator(f"#{field} + .select2 .select2-selection").click()
    options = page.locator(".select2-container--open .select2-results__option")
    options.first.wait_for(state="visible")
    page.wait_for_function(
        "() => !document.querySelector('.select2-container--open .select2-results__option.loading-results')"
    )
    texts = options.all_inner_texts()
    assert texts and not any(ENGLISH_PICKER_TEXT.search(t) for t in texts), texts
    assert "select2-results__message" not in (options.first.get_attribute("class") or ""), texts
    focused = page.evaluate("document.activeElement && document.activeElement.className")
    assert "select2-search__field" in (focused or ""), f"the search box of {field} has no focus: {focused}"
    wanted = texts[0].strip()[:2]
    page.keyboard.type(wanted)
    match = page.locator(".select2-container--open .select2-results__option", has_text=wanted).first
    match.wait_for(state="visible")
    page.wait_for_function(
        "() => !document.querySelector('.select2-container--open .select2-results__option.loading-results')"
    )
    match.click()
    value = page.eval_on_selector(f"#{field}", "el => Array.from(el.selectedOptions).map(o => o.value).join(',')")
    assert value, f"nothing was picked in {field}"
    return value


def test_pickers_list_without_typing_take_focus_and_pick(server, browser):
    visit = Visit(browser)
    page = visit.page
    try:
        visit.login(server, "kefu")
        page.goto(server + "/complaintview/add")
        _pick(page, "staff")
        visit.close()

        visit = Visit(browser)
        page = visit.page
        visit.login(server, "zhuguan_a")
        page.goto(server + "/penaltyview/add")
        _pick(page, "staff")
        _pick(page, "complaint")
    finally:
        visit.close()
    assert not visit.errors, visit.errors


@pytest.mark.parametrize("field", ["staff"])
def test_picker_texts_are_chinese_when_nothing_matches(server, browser, field):
    visit = Visit(browser)
    page = visit.page
    try:
        visit.login(server, "zhuguan_a")
        page.goto(server + "/penaltyview/add")
        page.locator(f"#{field} + .select2 .select2-selection").click()
        page.keyboard.type("zzzz-no-such-person")
        message = page.locator(".select2-container--open .select2-results__message")
        message.wait_for(state="visible")
        page.wait_for_function(
            "() => { const m = document.querySelector('.select2-container--open .select2-results__message');"
            " return m && !/搜索/.test(m.textContent); }"
        )
        assert message.inner_text().strip() == "没有匹配的记录"
    finally:
        visit.close()
