"""Clients for tests that act as several users, each request in its own app context.

The ``app`` fixture keeps one application context pushed for the whole test, and
Flask reuses a pushed context for every test-client request. ``flask.g`` then
outlives the request: Flask-Login's user, the JWT and ``g._principal`` of the
first request stick, so a second user in the same test would act as the first.
A real server gives every request a fresh context; :class:`Client` does the same
(and so a fresh database session per request, as in production).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from flask import Flask

from app import db

PASSWORD = "demo123"


class Client:
    """One user's browser (session cookie) or API client (JWT); ``None`` is anonymous."""

    def __init__(self, app: Flask, username: str | None = None, *, api: bool = False, password: str = PASSWORD):
        self.app = app
        self.username = username
        self.http = app.test_client()
        self.headers: dict[str, str] = {}
        if username and api:
            r = self.open(
                "POST",
                "/api/v1/security/login",
                json={"username": username, "password": password, "provider": "db"},
            )
            assert r.status_code == 200, r.get_data(as_text=True)
            self.headers = {"Authorization": f"Bearer {r.json['access_token']}"}
        elif username:
            r = self.open("POST", "/login/", data={"username": username, "password": password})
            assert r.status_code in (302, 303), r.get_data(as_text=True)[:300]
            assert "/login" not in (r.headers.get("Location") or ""), f"login of {username} refused"

    def open(self, method: str, url: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        with self.app.app_context():
            r = self.http.open(url, method=method, headers=headers, **kw)
            r.get_data()  # read the body while the request's context is alive
            return r

    def get(self, url: str, **kw: Any) -> Any:
        return self.open("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.open("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> Any:
        return self.open("PUT", url, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.open("DELETE", url, **kw)


def add_login(app: Flask, username: str, roles: Iterable[str], first_name: str = "测试") -> Any:
    """A login user with the given roles (by name) and no staff record."""
    sm = app.appbuilder.sm
    role_rows = [sm.find_role(name) for name in roles]
    assert all(role_rows), f"unknown role among {list(roles)}"
    user = sm.add_user(username, first_name, username, f"{username}@example.com", role_rows, password=PASSWORD)
    assert user, f"could not create {username}"
    db.session.commit()
    return user


_ROW = re.compile(r"<tr>(.*?)</tr>", re.DOTALL)
_ALERT = re.compile(r'<div class="alert alert-danger">\s*(.*?)\s*</div>', re.DOTALL)
_NAME = re.compile(r'\bname="([^"]+)"')


def field_errors(html: str) -> dict[str, list[str]]:
    """The messages FAB renders under each form field, by field name."""
    errors: dict[str, list[str]] = {}
    for row in _ROW.findall(html):
        names = _NAME.findall(row)
        messages = [re.sub(r"\s+", " ", m).strip() for m in _ALERT.findall(row)]
        if names and messages:
            errors.setdefault(names[0], []).extend(messages)
    return errors


CJK = re.compile(r"[\u4e00-\u9fff]")


def is_chinese(text: str) -> bool:
    return bool(CJK.search(text or ""))


def body_text(response: Any) -> str:
    """The response body as text; JSON is re-serialised so that Chinese is not \\u-escaped."""
    if response.is_json and response.json is not None:
        return json.dumps(response.json, ensure_ascii=False)
    return response.get_data(as_text=True)
