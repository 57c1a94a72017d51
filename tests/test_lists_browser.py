"""Lists in Chromium at 1366 × 768, the laptop most offices have.

Case numbers open the case; identifiers and names stay on one line ("TS20261206-00001", "刘德明",
not "TS20261206-/00001", "刘德/明"); the table fits the window without a horizontal scroll bar, and
the top menu fits one row. Screenshots: docs/screenshots/list-1366-<user>-<list>.png.
"""

from __future__ import annotations

import re

import pytest
from browser_support import BROWSER_MARKS, SCREENSHOTS, Visit

pytestmark = BROWSER_MARKS

# (user, list, the show endpoint its case number opens)
LISTS = [
    ("renshi", "/complaintview/list/", "/complaintview/show/"),
    ("zongjingli", "/complaintview/list/", "/complaintview/show/"),
    ("kefu", "/myregisteredcomplaintview/list/", "/show/"),
    ("renshi", "/penaltyview/list/", "/penaltyview/show/"),
    ("renshi", "/documentview/list/", "/documentview/show/"),
]

# For each cell that must not wrap: how many lines its text takes (one Range rect per line).
_LINES_OF_NOWRAP_CELLS = """
() => [...document.querySelectorAll('table td.nowrap')].filter(td => td.innerText.trim()).map(td => {
  const range = document.createRange();
  range.selectNodeContents(td);
  const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
  return [td.innerText.trim(), tops.size];
})
"""


def _open(visit, server, path):
    response = visit.page.goto(server + path)
    assert response is not None and response.status == 200, path
    visit.page.wait_for_load_state("networkidle")


@pytest.mark.parametrize(("username", "path", "show"), LISTS)
def test_case_numbers_open_the_case_stay_on_one_line_and_the_list_fits_1366(server, browser, username, path, show):
    visit = Visit(browser)
    page = visit.page
    page.set_viewport_size({"width": 1366, "height": 768})
    try:
        visit.login(server, username)
        _open(visit, server, path)
        links = page.locator("table td.nowrap a.case-number")
        assert links.count() > 0, f"{path}: no case number is a link"
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than 1366"
        scroll = page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('.table-responsive')].map(d => d.scrollWidth - d.clientWidth))"
        )
        assert scroll <= 0, f"{path}: the table scrolls sideways by {scroll}px"
        wrapped = [(text, lines) for text, lines in page.evaluate(_LINES_OF_NOWRAP_CELLS) if lines > 1]
        assert not wrapped, f"{path}: identifiers or names wrap: {wrapped}"
        name = re.sub(r"[^a-z]+", "-", path.split("view/")[0].strip("/"))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"list-1366-{username}-{name}.png"))
        number = links.first.inner_text().strip()
        with page.expect_navigation():
            links.first.click()
        assert show in page.url, page.url
        assert number in page.locator("body").inner_text()
    finally:
        visit.close()
    assert not visit.errors, visit.errors


@pytest.mark.parametrize("username", ["renshi", "zongjingli"])
def test_the_top_menu_fits_one_row_at_1366(server, browser, username):
    visit = Visit(browser)
    page = visit.page
    page.set_viewport_size({"width": 1366, "height": 768})
    try:
        visit.login(server, username)
        _open(visit, server, "/complaintview/list/")
        tops = page.evaluate(
            "() => [...document.querySelectorAll('.navbar-nav > li')].filter(li => li.offsetParent)"
            ".map(li => Math.round(li.getBoundingClientRect().top))"
        )
        assert tops and len(set(tops)) == 1, f"the menu of {username} takes {len(set(tops))} rows: {tops}"
        height = page.evaluate("() => document.querySelector('.navbar').getBoundingClientRect().height")
        assert height < 70, f"the navigation bar of {username} is {height}px high"
        page.screenshot(
            path=str(SCREENSHOTS / f"menu-1366-{username}.png"), clip={"x": 0, "y": 0, "width": 1366, "height": 120}
        )
    finally:
        visit.close()


def test_dashboard_counts_are_whole_numbers_and_hours_read_in_chinese(server, browser):
    visit = Visit(browser)
    page = visit.page
    try:
        visit.login(server, "zongjingli")
        _open(visit, server, "/dashboard/?period=month")
        page.wait_for_selector('#dashboard[data-ready="1"]', timeout=30_000)
        axes = page.evaluate(
            """() => [...document.querySelectorAll('#charts .chart')].map(el => {
                 const option = echarts.getInstanceByDom(el).getOption();
                 const series = option.series || [];
                 const counts = series.every(s => (s.data || []).every(v => v === null || v === undefined
                   || Number.isInteger(typeof v === 'object' ? v.value : v)));
                 const axis = [].concat(option.yAxis || []).concat(option.xAxis || []).find(a => a.type === 'value'
                   && !String((a.axisLabel || {}).formatter || '').includes('%'));  // rates are in %
                 return [el.dataset.chart, counts, axis ? axis.minInterval || 0 : null, ((option.legend || [])[0] || {}).show,
                         series.length];
               })"""
        )
        for name, counts, min_interval, legend, series in axes:
            if counts and min_interval is not None:
                assert min_interval == 1, f"{name}: an axis of counts shows fractions"
            assert legend is not False or series == 1, name
        cards = page.locator("#kpi-cards").inner_text()
        assert " h " not in cards and "— (" not in cards, cards
    finally:
        visit.close()
    assert not visit.errors, visit.errors
