"""What list pages keep between requests (the search form, like its choices) is never stale for
what the user changes, and never another search's or another user's."""

from __future__ import annotations

from jinja2.utils import htmlsafe_json_dumps

from app.extensions import db


def _page(web, username: str, query: str = "") -> str:
    response = web(username).get("/complaintview/list/" + query)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _in_form(text: str, page: str) -> bool:
    """Whether ``text`` is in the search form (its fields are JSON inside the page's script, with
    the characters HTML gives meaning to escaped)."""
    return str(htmlsafe_json_dumps(text))[1:-1] in page


def test_a_new_department_is_in_the_kept_search_form_at_once(web, org):
    from app.models import Department

    assert not _in_form("新设督查部", _page(web, "zongjingli"))
    db.session.add(Department(name="新设督查部", code="DC9"))
    db.session.commit()
    assert _in_form("新设督查部", _page(web, "zongjingli"))


def test_the_kept_search_form_is_the_active_searchs_own(web, org):
    plain = _page(web, "zongjingli")
    searched = _page(web, "zongjingli", "?_flt_0_status=registered")
    active = '[["status", '
    assert active in searched and active not in plain
    assert active not in _page(web, "zongjingli")  # the plain form again, not the searched one
    assert '[["status", "\\u7b49\\u4e8e", ["judged"]]]' in _page(web, "zongjingli", "?_flt_0_status=judged")


def test_the_kept_search_form_is_each_callers_own(web, org):
    """A head's staff choices (表扬记录: his department's staff) are not the general manager's kept form."""

    def page(username: str) -> str:
        response = web(username).get("/commendationview/list/")
        assert response.status_code == 200
        return response.get_data(as_text=True)

    everyone, head = page("zongjingli"), page("zhuguan_a")
    other = org.dept("BA").head.name  # the head of another department
    assert _in_form(other, everyone) and not _in_form(other, head)
    assert _in_form(other, page("zongjingli")) and not _in_form(other, page("zhuguan_a"))


def test_the_kept_search_forms_script_runs_under_each_responses_nonce(web, org):
    """The form's inline script is allowed by the response's own CSP nonce, kept or not."""
    import re

    client = web("zongjingli")
    for _ in range(2):
        response = client.get("/complaintview/list/")
        allowed = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
        page = response.get_data(as_text=True)
        script = page[: page.index("new AdminFilters(")].rsplit("<script", 1)[1]
        assert f'nonce="{allowed}"' in script


def test_the_search_forms_enum_choices_read_as_their_labels(web, org):
    """状态 and the other closed sets are offered by their labels (已登记), not their stored codes
    (registered), in the page's language."""
    client = web("zongjingli")
    page = client.get("/complaintview/list/").get_data(as_text=True)
    assert _in_form('value="judged">已判定</option>', page), "status shown by its code"
    assert not _in_form(">judged</option>", page) and not _in_form(">registered</option>", page)
    client.get("/lang/en", follow_redirects=True)
    english = client.get("/complaintview/list/").get_data(as_text=True)
    assert _in_form('value="judged">Judged</option>', english)


def test_a_rest_lists_kept_labels_are_in_each_requests_language(api, org):
    """A REST list's and show's column labels are translated once per language and kept: a caller
    who switches to English gets English labels at once, and Chinese ones are still Chinese."""
    chinese, english = api("zongjingli"), api("zongjingli")
    english.client.get("/lang/en", follow_redirects=True)
    for _ in range(2):
        zh = chinese.get("/api/v1/complaint/").get_json()["label_columns"]
        en = english.get("/api/v1/complaint/").get_json()["label_columns"]
        assert zh["number"] != en["number"], (zh["number"], en["number"])
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh["number"]), zh["number"]
        assert en["number"].isascii(), en["number"]


def test_the_openapi_document_is_built_once_and_is_the_same_document_fab_builds(api, app, monkeypatch):
    """``/api/v1/_openapi`` parsed every resource's docstrings on each call (2–3 s); it is built once
    per version, address and language, is the document FAB's own view builds, and still needs a
    signed-in caller with the permission."""
    import inspect

    from flask_appbuilder.api import BaseApi
    from flask_appbuilder.api.manager import OpenApi as FabOpenApi

    built: list[str] = []
    original = BaseApi.add_api_spec

    def counted(self, spec):
        built.append(type(self).__name__)
        return original(self, spec)

    monkeypatch.setattr(BaseApi, "add_api_spec", counted)
    for view in app.appbuilder.baseviews:  # an earlier test of this process may have asked for it
        if isinstance(view, FabOpenApi):
            view.__dict__.get("_documents", {}).clear()
    renshi, kefu = api("renshi"), api("kefu")
    first = renshi.get("/api/v1/_openapi")
    assert first.status_code == 200
    once = len(built)
    assert once > 30 and "ComplaintApi" in built
    assert kefu.get("/api/v1/_openapi").get_json() == first.get_json()
    assert len(built) == once  # the second caller got the kept document

    # FAB's own view body, without its decorators, builds the document afresh.
    view = next(v for v in app.appbuilder.baseviews if isinstance(v, FabOpenApi))
    with app.test_request_context("/api/v1/_openapi"):
        assert first.get_json() == inspect.unwrap(FabOpenApi.get)(view, "v1").get_json()

    assert api(None).get("/api/v1/_openapi").status_code == 401
    assert renshi.get("/api/v2/_openapi").status_code == 404
