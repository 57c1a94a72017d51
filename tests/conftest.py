"""Test fixtures: a real database per backend, the demo organisation, and clients.

Integration tests run on SQLite and, when ``TEST_DATABASE_URL`` is set (CI sets it
to the local PostgreSQL), on PostgreSQL as well. The schema is built by the Alembic
migrations, once per backend; every test starts from a clean database holding the
default reference data and the demo organisation (departments, staff, users).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Optional

import pytest
from browser_support import browser, server  # noqa: F401  (one server and browser for the session)
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import text

from app import create_app, db
from app.complaints import intake

TEST_PASSWORD = "demo123"
PG_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

_apps: dict[str, Flask] = {}
_tmpdir = tempfile.mkdtemp(prefix="complaints-test-")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "browser: end-to-end test driving Chromium")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "postgres_only: needs PostgreSQL")


def test_config(url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "WTF_CSRF_ENABLED": False,
        "SCHEDULER_ENABLED": False,
        "DEMO_MODE": True,
        "DEMO_PASSWORD": TEST_PASSWORD,
        "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "SECRET_KEY": "test-secret-key-for-the-test-suite-only-0123456789",
        "RATELIMIT_ENABLED": False,
        "SERVER_NAME": None,
        "MAIL_SERVER": "",
        "WEBHOOK_WECOM_URL": "",
        "WEBHOOK_DINGTALK_URL": "",
    }


def backend_url(backend: str) -> str:
    if backend == "postgresql":
        return PG_URL
    return "sqlite:///" + os.path.join(_tmpdir, "test.db")


class IsolatedClient(FlaskClient):
    """A test client whose every request starts with an empty ``g``.

    Tests keep an application context pushed (for database access); Flask then
    reuses it for requests, and ``g`` (where Flask-Login caches the user) would
    leak from one request to the next, which never happens in a real server.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            for key in list(vars(g)):
                delattr(g, key)
        return super().open(*args, **kwargs)


def build_app(backend: str) -> Flask:
    """One app per backend for the whole session, its schema built by the migrations."""
    if backend not in _apps:
        url = backend_url(backend)
        app = create_app(test_config(url))
        app.test_client_class = IsolatedClient
        with app.app_context():
            if backend == "postgresql":
                db.session.execute(text("DROP SCHEMA public CASCADE"))
                db.session.execute(text("CREATE SCHEMA public"))
                db.session.commit()
            from flask_migrate import upgrade

            upgrade()
            app.appbuilder.sm.sync_builtin_roles()
        _apps[backend] = app
    return _apps[backend]


def reset_database(app: Flask) -> None:
    """Empty every table but the migration marker, then load defaults and the organisation."""
    from app.seed import defaults as seed
    from app.seed import demo

    with app.app_context():
        db.session.remove()
        tables = [t for t in reversed(db.metadata.sorted_tables) if t.name != "alembic_version"]
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            db.session.execute(text("PRAGMA foreign_keys=OFF"))
            for table in tables:
                db.session.execute(table.delete())
            db.session.execute(text("DELETE FROM sqlite_sequence")) if _has_sqlite_sequence() else None
        db.session.commit()
        # Rows vanished under the per-process caches (TRUNCATE fires no ORM events).
        from app import settings
        from app.time_limits import sla

        settings.invalidate()
        sla.forget_calendar()
        app.appbuilder.sm.sync_builtin_roles()
        seed.seed_defaults(db.session)
        demo.create_organisation(db.session, TEST_PASSWORD)
        db.session.commit()
        db.session.remove()


def _has_sqlite_sequence() -> bool:
    return bool(db.session.execute(text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")).first())


@pytest.fixture(params=BACKENDS)
def app(request: Any) -> Iterator[Flask]:
    """The app on a clean database (every backend in turn)."""
    application = build_app(request.param)
    reset_database(application)
    ctx = application.app_context()
    ctx.push()
    try:
        yield application
    finally:
        db.session.rollback()
        db.session.remove()
        ctx.pop()


@pytest.fixture
def sqlite_app() -> Iterator[Flask]:
    """The app on SQLite only (for tests whose subject is not the database)."""
    application = build_app("sqlite")
    reset_database(application)
    with application.app_context():
        yield application
        db.session.remove()


@pytest.fixture
def pg_app() -> Iterator[Flask]:
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL not set")
    application = build_app("postgresql")
    reset_database(application)
    with application.app_context():
        yield application
        db.session.remove()


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


# --- helpers ---------------------------------------------------------------------------------


class Api:
    """A REST client logged in through /api/v1/security/login with a JWT."""

    def __init__(self, app: Flask, username: Optional[str], password: str = TEST_PASSWORD):
        self.client = app.test_client()
        self.headers: dict[str, str] = {}
        if username:
            r = self.client.post(
                "/api/v1/security/login",
                json={"username": username, "password": password, "provider": "db"},
            )
            assert r.status_code == 200, r.get_data(as_text=True)
            self.headers = {"Authorization": f"Bearer {r.json['access_token']}"}

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers=self.headers, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, headers=self.headers, **kw)

    def put(self, url: str, **kw: Any) -> Any:
        return self.client.put(url, headers=self.headers, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.client.delete(url, headers=self.headers, **kw)


@pytest.fixture
def api(app: Flask) -> Any:
    def make(username: Optional[str]) -> Api:
        return Api(app, username)

    return make


def login(client: Any, username: str, password: str = TEST_PASSWORD) -> Any:
    r = client.post("/login/", data={"username": username, "password": password}, follow_redirects=False)
    assert r.status_code in (302, 303), r.get_data(as_text=True)[:500]
    return r


@pytest.fixture
def web(app: Flask) -> Any:
    """A browser-like client: ``web('kefu')`` returns a client with a session cookie."""

    def make(username: str) -> Any:
        c = app.test_client()
        login(c, username)
        return c

    return make


@pytest.fixture
def org(app: Flask) -> Any:
    """Handles on the demo organisation: departments by code, users and staff by login."""
    from app.models import Department, Staff

    class Org:
        def dept(self, code: str) -> Department:
            return db.session.query(Department).filter_by(code=code).one()

        def user(self, login_: str) -> Any:
            return app.appbuilder.sm.find_user(username=login_)

        def staff_of(self, login_: str) -> Staff:
            user = self.user(login_)
            return db.session.query(Staff).filter_by(user_id=user.id).one()

        def staff(self, name: str) -> Staff:
            return db.session.query(Staff).filter_by(name=name).one()

        def principal(self, login_: str) -> Any:
            from app.views.security import principal_for_user

            return principal_for_user(self.user(login_))

    return Org()


@pytest.fixture
def make_complaint(app: Flask, org: Any) -> Any:
    """Register a complaint through the service (defaults: phone channel, 工程部, by kefu)."""
    from app.models import Category, Channel, Level

    counter = {"n": 0}

    def make(
        department: str = "GC",
        by: str = "kefu",
        level: str = "normal",
        category: str = "equipment",
        channel: str = "phone",
        received_at: Optional[datetime] = None,
        now: Optional[datetime] = None,
        staff: tuple[str, ...] = (),
        phone: Optional[str] = None,
        content: str = "电梯停运两天无人维修",
        commit: bool = True,
    ) -> Any:
        counter["n"] += 1
        data = {
            "received_at": received_at,
            "channel": db.session.query(Channel).filter_by(code=channel).one(),
            "customer_name": f"客户{counter['n']}",
            "customer_phone": phone or f"1390000{counter['n']:04d}",
            "content": content,
            "customer_demand": "尽快处理",
            "category": db.session.query(Category).filter_by(code=category).one(),
            "level": db.session.query(Level).filter_by(code=level).one(),
            "department": org.dept(department),
            "staff": [org.staff(s) for s in staff],
        }
        complaint = intake.register_complaint(db.session, org.user(by).id, data, now=now)
        if commit:
            db.session.commit()
        return complaint

    return make


@pytest.fixture
def discipline_kit(app: Flask, org: Any) -> Any:
    """Open penalty cases and take steps through the service, as the demo users."""
    from app.discipline import cases as discipline
    from app.models import PenaltyRule

    class Kit:
        def rule(self, clause: str) -> Any:
            return db.session.query(PenaltyRule).filter_by(clause=clause).one()

        def open(
            self,
            staff: str = "刘强",
            by: str = "zhuguan_a",
            clause: str = "第六条第2款A",
            facts: str = "接待业主时态度冷淡，未按流程登记报修。",
            complaint: Any = None,
            now: Optional[datetime] = None,
            **terms: Any,
        ) -> Any:
            data = {
                "staff": org.staff(staff),
                "rule": self.rule(clause),
                "complaint": complaint,
                "facts": facts,
                **terms,
            }
            penalty = discipline.open_case(db.session, org.principal(by), data, now=now)
            db.session.commit()
            return penalty

        def step(self, penalty: Any, action: str, by: str, now: Optional[datetime] = None, **values: Any) -> Any:
            event = discipline.take_step(db.session, penalty, action, org.principal(by), values, now=now)
            db.session.commit()
            return event

        def issued(self, staff: str = "刘强", by: str = "zhuguan_a", now: Optional[datetime] = None, **kw: Any) -> Any:
            """A case driven to an issued notice: proposed, reviewed, approved, issued."""
            penalty = self.open(staff=staff, by=by, now=now, **kw)
            if by == "zhuguan_a" or by.startswith("zhuguan"):
                self.step(penalty, "propose", by, now=now)
                self.step(penalty, "review", "renshi", now=now)
            else:
                self.step(penalty, "propose", by, now=now)
            self.step(penalty, "approve", "zongjingli", now=now)
            self.step(penalty, "issue_notice", "renshi", now=now)
            return penalty

    return Kit()
