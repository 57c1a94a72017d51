"""End to end: a real server on a fresh database, driven by Chromium through Playwright.

The server (tests/browser_support.py) is set up the way `make run` does it (migrate,
init, demo data) and serves with ``python run.py``. Each business role logs in through
the login form and opens the complaint register: the page shows the table with Chinese
labels, logs no console error and loads nothing from any host but the portal
(intranets reach no CDN). Screenshots go to docs/screenshots/ for the README and for review.
"""

from __future__ import annotations

import pytest
from browser_support import BROWSER_MARKS, SCREENSHOTS, Visit

pytestmark = BROWSER_MARKS


@pytest.mark.parametrize("username", ["kefu", "zhuguan_a", "renshi", "zongjingli"])
def test_role_sees_the_complaint_register_in_chinese_from_the_portal_alone(server, browser, username):
    visit = Visit(browser)
    page = visit.page
    try:
        visit.login(server, username)

        response = page.goto(server + "/complaintview/list/")
        assert response is not None and response.status == 200
        table = page.locator("table").filter(has_text="投诉编号").first
        table.wait_for(state="visible")
        headers = table.locator("th").all_inner_texts()
        assert any("投诉编号" in h for h in headers), headers
        assert any("状态" in h for h in headers), headers
        rows = table.locator("tbody tr")
        assert rows.count() > 0, f"{username} sees an empty register"
        assert "TS" in rows.first.inner_text()
        if username == "zhuguan_a":  # a department head's register holds its department only
            column = headers.index(next(h for h in headers if "被投诉部门" in h))
            departments = {r.locator("td").nth(column).inner_text().strip() for r in rows.all()}
            assert departments == {"工程部"}, departments

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"complaints-{username}.png"), full_page=True)
        page.wait_for_load_state("networkidle")
    finally:
        visit.close()

    assert not visit.foreign, f"requests to other hosts: {visit.foreign}"
    assert not visit.errors, visit.errors


def test_policy_configuration_screens_for_the_adaptation_guide(server, browser):
    """The screens the README's "adapting the portal to your policy" guide shows: the policy
    presets, the time-limit rules (with overtime fines) and the service-phrase list."""
    visit = Visit(browser)
    page = visit.page
    try:
        visit.login(server, "renshi")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for path, expected, shot in (
            ("/policypresets/", "四级响应", "policy-presets.png"),
            ("/slaruleview/list/", "时限", "policy-sla-rules.png"),
            ("/servicephraseview/list/", "服务忌语", "policy-service-phrases.png"),
        ):
            response = page.goto(server + path)
            assert response is not None and response.status == 200, path
            assert expected in page.content(), (path, expected)
            page.screenshot(path=str(SCREENSHOTS / shot), full_page=True)
        page.wait_for_load_state("networkidle")
    finally:
        visit.close()
    assert not visit.foreign, f"requests to other hosts: {visit.foreign}"
    assert not visit.errors, visit.errors
