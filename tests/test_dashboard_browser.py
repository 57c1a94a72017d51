"""End to end: the dashboards in Chromium, as 总经理 (company) and as a department head.

For each period the page must finish loading its data (``#dashboard[data-ready="1"]``),
draw every declared chart (a canvas in each chart container), log no console error and
request nothing from any host but the portal. Screenshots: docs/screenshots/dashboard-<user>.png.
"""

from __future__ import annotations

import pytest
from browser_support import BROWSER_MARKS, SCREENSHOTS, Visit

from app.views.dashboards import COMPANY_CHARTS, DEPARTMENT_CHARTS

pytestmark = BROWSER_MARKS

CHARTS = {"zongjingli": COMPANY_CHARTS, "zhuguan_a": DEPARTMENT_CHARTS}


@pytest.mark.parametrize("username", sorted(CHARTS))
def test_dashboard_draws_every_chart_from_the_portal_alone(server, browser, username):
    visit = Visit(browser)
    page = visit.page
    expected = [c.name for c in CHARTS[username]]
    try:
        visit.login(server, username)
        for period in ("year", "month"):
            response = page.goto(f"{server}/dashboard/?period={period}")
            assert response is not None and response.status == 200
            page.wait_for_selector('#dashboard[data-ready="1"]', timeout=30_000)
            containers = page.locator("#charts .chart")
            names = [containers.nth(i).get_attribute("data-chart") for i in range(containers.count())]
            assert names == expected, (period, names)
            for i, name in enumerate(names):
                assert containers.nth(i).locator("canvas").count() >= 1, f"{period}: chart {name} has no canvas"
            assert page.locator("#kpi-cards .kpi-card").count() >= 4
            page.wait_for_load_state("networkidle")
        # The month's dashboard, the default view, is the one kept for review.
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"dashboard-{username}.png"), full_page=True)
    finally:
        visit.close()

    assert not visit.foreign, f"requests to other hosts: {visit.foreign}"
    assert not visit.errors, visit.errors
