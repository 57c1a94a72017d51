"""The portal's own error pages: 403, 404, 409, 500 and 503 in Chinese, with the menu and a way
home; the REST API keeps answering JSON."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, abort
from http_clients import Client, field_errors
from sqlalchemy.exc import OperationalError

MENU = 'class="navbar'


def _add_failing_routes(app: Flask) -> None:
    if "test_fail" in app.view_functions:
        return

    @app.route("/test-only/fail/<int:code>")
    def test_fail(code: int) -> Any:
        if code == 500:
            raise RuntimeError("boom")
        if code == 503:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        abort(code)


@pytest.fixture
def failing(app: Flask) -> Flask:
    # Routes may only be added before the first request of an app; the test app has served many.
    app._got_first_request = False
    _add_failing_routes(app)
    return app


def _assert_portal_page(r: Any, status: int) -> str:
    html = r.get_data(as_text=True)
    assert r.status_code == status, html[:300]
    assert MENU in html, html[:500]  # the portal's layout with its menu
    assert 'href="/"' in html or "返回首页" in html
    assert "Not Found" not in html and "Internal Server Error" not in html and "please check" not in html
    return html


def test_out_of_scope_complaint_is_the_portals_404(app: Flask, make_complaint: Any) -> None:
    complaint = make_complaint(department="GC")
    html = _assert_portal_page(Client(app, "zhuguan_b").get(f"/complaintview/show/{complaint.id}"), 404)
    assert "页面不存在" in html and "返回首页" in html


@pytest.mark.parametrize("pk", ["%C2%B2", "-%C2%B2", str(2**63)])
def test_an_id_no_database_integer_can_hold_is_the_portals_404(app: Flask, pk: str) -> None:
    """'²' is a digit to str.isdigit() but no number to int(): the check of impossible ids raised on it
    (500). On a screen it is "not found", like an id beyond any database integer; the REST routes take
    integers only and never reach the database with it either."""
    r = Client(app, "renshi").get(f"/complaintview/show/{pk}")
    text = r.get_data(as_text=True)
    assert r.status_code == 404 and ("未找到" in text or "页面不存在" in text), (r.status_code, text[:300])
    r = Client(app, "renshi", api=True).get(f"/api/v1/complaint/{pk}")
    assert 400 <= r.status_code < 500, r.get_data(as_text=True)[:300]


def test_ids_spelt_with_digits_no_number_has_are_refused_not_a_server_error(app: Flask, org: Any) -> None:
    """Each of these read an id with str.isdigit() and then int(), which cannot read '²': the staff
    picker's department and a penalty case's staff in the REST body answered 500, and the intake
    form showed Python's own message ("invalid literal for int()…"). Now the picker ignores the
    department, the penalty is refused field by field, and the form says in Chinese that the chosen
    staff member is not available."""
    api = Client(app, "renshi", api=True)
    assert api.get("/api/v1/staff/lookup?department=%C2%B2").status_code == 200
    r = api.post("/api/v1/penalty/", json={"staff": "²", "complaint": "²"})
    assert r.status_code == 422 and r.json["message"]["staff"], r.get_data(as_text=True)[:300]
    form = Client(app, "kefu").post(
        "/complaintview/add",
        data={"content": "电梯停运", "customer_name": "王先生", "customer_phone": "13800138000", "staff": "²"},
    )
    assert form.status_code == 200, form.status_code  # the form again, with its errors; nothing saved
    assert field_errors(form.get_data(as_text=True))["staff"] == ["所选项目不存在或您无权使用。"]


@pytest.mark.parametrize("status,text", [(403, "无权访问"), (409, "操作冲突"), (500, "系统出错了")])
def test_error_pages_are_chinese_with_the_menu(failing: Flask, status: int, text: str, monkeypatch: Any) -> None:
    monkeypatch.setitem(failing.config, "PROPAGATE_EXCEPTIONS", False)
    html = _assert_portal_page(Client(failing, "renshi").get(f"/test-only/fail/{status}"), status)
    assert text in html


def test_database_outage_is_a_chinese_503_page(failing: Flask) -> None:
    r = Client(failing, "renshi").get("/test-only/fail/503")
    assert r.status_code == 503
    assert "暂时" in r.get_data(as_text=True)


def test_api_keeps_json_errors_in_chinese(app: Flask) -> None:
    r = Client(app, "renshi", api=True).get("/api/v1/no-such-resource/")
    assert r.status_code == 404 and r.is_json
    assert "不存在" in r.json["message"]


def test_missing_csrf_token_on_a_screen_is_a_chinese_page(app: Flask, monkeypatch: Any) -> None:
    hr = Client(app, "renshi")
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    html = _assert_portal_page(hr.post("/complaintview/add", data={"content": "x"}), 400)
    assert "安全令牌" in html and "CSRF token" not in html
