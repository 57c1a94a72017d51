"""Statements per request on the busiest screens and resources, counted with an SQLAlchemy event
hook on the real database: a list costs the same few statements whatever its page size (an N+1
coming back fails here), and a case costs a bounded number whoever looks at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from app import db

ROLES = ["kefu", "zhuguan_a", "renshi", "zongjingli"]
LIST_BOUND = 6  # the signed-in user, the caller's scope, count, page, unread messages (+1 spare)
SHOW_BOUND = 10
CASE_PAGE_BOUND = 25  # the case page with its timeline, clocks, extensions, penalties, documents


@contextmanager
def counting() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _statements(client, url: str) -> tuple[int, list[str]]:
    client.get(url)  # caches warm: the menu, the reference choices, the compiled phrase list
    with counting() as statements:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(statements), statements


@pytest.fixture
def many_cases(make_complaint):
    """More cases than two pages, in every department the users head or work in."""
    return [make_complaint(department=code) for code in ("GC", "KF", "GC", "BA") * 30]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page_size", [25, 100])
def test_the_complaint_list_screen_costs_the_same_statements_whatever_the_page_size(
    app, web, many_cases, role, page_size
):
    count, statements = _statements(web(role), f"/complaintview/list/?psize_ComplaintView={page_size}")
    assert count <= LIST_BOUND, "\n".join(s[:160] for s in statements)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page_size", [25, 100])
def test_the_rest_list_costs_the_same_statements_whatever_the_page_size(app, api, many_cases, role, page_size):
    url = f"/api/v1/complaint/?q=(order_column:reply_due,order_direction:asc,page:0,page_size:{page_size})"
    count, statements = _statements(api(role), url)
    assert count <= LIST_BOUND, "\n".join(s[:160] for s in statements)


@pytest.mark.parametrize("role", ["zhuguan_a", "renshi", "zongjingli"])
def test_a_case_costs_a_bounded_number_of_statements(app, api, web, many_cases, role):
    case = many_cases[0]  # 工程部: the head of 工程部 sees it, as do 人事行政经理 and 总经理
    count, statements = _statements(api(role), f"/api/v1/complaint/{case.id}")
    assert count <= SHOW_BOUND, "\n".join(s[:160] for s in statements)
    count, statements = _statements(web(role), f"/complaintview/show/{case.id}")
    assert count <= CASE_PAGE_BOUND, "\n".join(s[:160] for s in statements)


def test_the_penalty_list_costs_the_same_statements_whatever_the_page_size(app, web, discipline_kit):
    for _ in range(30):
        discipline_kit.open()
    client = web("renshi")
    small, _ = _statements(client, "/penaltyview/list/?psize_PenaltyView=10")
    large, statements = _statements(client, "/penaltyview/list/?psize_PenaltyView=100")
    assert large <= small and large <= LIST_BOUND + 2, "\n".join(s[:160] for s in statements)
