"""Test fixtures: a real database per backend, the demo organisation, and clients.

Integration tests run on SQLite and, when ``TEST_DATABASE_URL`` is set (CI sets it
to the local PostgreSQL), on PostgreSQL as well. The schema is built by the Alembic
migrations, once per backend; every test starts from a clean database holding the
default reference data and the demo organisation (departments, staff, users).

That clean state is built once per backend and process (defaults and organisation
loaded through the real seeding code), saved, and put back before each test: on
SQLite by writing an in-memory copy back with SQLite's backup API, on PostgreSQL by
emptying every table and inserting the saved rows and sequence positions again.
Tests so never see each other's leftovers, at ~5 ms (SQLite) and ~30 ms (PostgreSQL)
per test instead of ~0.1 s and ~0.3 s for emptying and seeding every time.

Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``) every worker has
its own SQLite file (its own temporary directory) and its own PostgreSQL database
``<TEST_DATABASE_URL's database>_<worker id>``, created when the worker starts and
dropped when it ends; the worker's ``TEST_DATABASE_URL`` names that database, so
tests that create scratch databases derive their names from it. Tests marked
``exclusive`` (they stop the PostgreSQL server) run while no other worker runs a test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Optional

import pytest
from browser_support import browser, server  # noqa: F401  (one server and browser for the session)
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app import create_app, db

TEST_PASSWORD = "demo123"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"... under pytest-xdist, else ""


def _worker_url(url: str) -> str:
    """The PostgreSQL database of this xdist worker: ``<database>_<worker>`` on the same server."""
    if not url or not WORKER:
        return url
    base = make_url(url)
    return base.set(database=f"{base.database}_{WORKER}").render_as_string(hide_password=False)


# The run's database as given; kept apart from TEST_DATABASE_URL, which becomes the worker's below.
BASE_PG_URL = os.environ.setdefault("TEST_BASE_DATABASE_URL", os.environ.get("TEST_DATABASE_URL", "").strip())
PG_URL = _worker_url(BASE_PG_URL)
if PG_URL:
    # Test modules read it too (scratch databases of the process and fault tests).
    os.environ["TEST_DATABASE_URL"] = PG_URL
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

_apps: dict[str, Flask] = {}
# In memory where there is a tmpfs: the suite commits thousands of times, and nothing here
# needs to survive a power cut.
_tmpdir = tempfile.mkdtemp(
    prefix=f"complaints-test-{WORKER or 'main'}-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None
)


# --- the application modules the fixtures reach into (kept in one place: their paths may move) --


def _seed(session: Any) -> None:
    """Default reference data and the demo organisation, through the application's own code."""
    from app.seed import defaults as seed
    from app.seed import demo

    seed.seed_defaults(session)
    demo.create_organisation(session, TEST_PASSWORD)


def _forget_cached_rows() -> None:
    """Rows change under the per-process caches (TRUNCATE and a restore fire no ORM events)."""
    from app import settings
    from app.complaints import phrases
    from app.quality import daily
    from app.time_limits import sla
    from app.views import choices

    choices.forget()
    daily.forget_groups()
    settings.invalidate()
    sla.forget_calendar()
    phrases.invalidate()


# --- session: markers, one PostgreSQL database per xdist worker, exclusive tests ----------------


def _is_xdist_controller(config: Any) -> bool:
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


def _admin_engine() -> Any:
    return create_engine(BASE_PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "browser: end-to-end test driving Chromium")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "postgres_only: needs PostgreSQL")
    config.addinivalue_line(
        "markers", "exclusive: stops or restarts the PostgreSQL server; runs while no other xdist worker runs a test"
    )
    if PG_URL and WORKER and not _is_xdist_controller(config):
        name = make_url(PG_URL).database
        admin = _admin_engine()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
            # A commit need not wait for the disk in a throw-away database (crash safety stays).
            c.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        admin.dispose()


def pytest_unconfigure(config: Any) -> None:
    for application in _apps.values():
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
    shutil.rmtree(_tmpdir, ignore_errors=True)
    lock = _run_lock_path(config)
    for suffix in (".gate", ".run") if lock else ():
        # This worker takes no lock any more; another still running opens a fresh file if need be.
        with contextlib.suppress(OSError):
            os.unlink(lock + suffix)
    if PG_URL and WORKER and not _is_xdist_controller(config):
        admin = _admin_engine()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(PG_URL).database}" WITH (FORCE)'))
        admin.dispose()


def _set_nodeid(item: Any, nodeid: str) -> None:
    # pytest 9 derives ``nodeid`` from the structured ``_id``; earlier versions stored ``_nodeid``.
    if hasattr(item, "_id"):
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(nodeid)
    else:
        item._nodeid = nodeid


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Give every test a node id of its own, and the ``@group`` suffix xdist's loadgroup reads.

    - schemathesis names its items ``test_x[GET /path]`` but, under pytest 9, leaves them
      all the node id ``test_x``; xdist schedules by node id, so it ran one item per function.
    - pytest-xdist 3.8 writes the ``@group`` suffix of ``--dist loadgroup`` to ``item._nodeid``,
      which pytest 9 no longer reads: the groups were silently ignored.
    """
    counts: dict[str, int] = {}
    for item in items:
        counts[item.nodeid] = counts.get(item.nodeid, 0) + 1
    for item in items:
        if counts[item.nodeid] > 1 and not item.nodeid.endswith(item.name):
            _set_nodeid(item, item.nodeid.rsplit("::", 1)[0] + "::" + item.name)
    if getattr(config.option, "loadgroup", False):  # set by xdist on its workers
        for item in items:
            groups = sorted(
                {
                    str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                    for m in item.iter_markers("xdist_group")
                }
            )
            if groups and "@" not in item.nodeid:
                _set_nodeid(item, f"{item.nodeid}@{'_'.join(groups)}")
    seen: set[str] = set()
    duplicates = sorted({item.nodeid for item in items if item.nodeid in seen or seen.add(item.nodeid)})
    if duplicates:
        raise pytest.UsageError(f"tests share a node id (xdist would run only one of each): {duplicates[:5]}")


def _run_lock_path(config: Any) -> str | None:
    """A lock file shared by the workers of this run only (None without xdist)."""
    workerinput = getattr(config, "workerinput", None)
    if not workerinput:
        return None
    return os.path.join(tempfile.gettempdir(), f"complaints-tests-{workerinput['testrunuid']}")


@contextlib.contextmanager
def _run_lock(item: Any, exclusive: bool) -> Iterator[None]:
    """A readers-writer lock over the workers of this run (nothing without xdist).

    Readers take the "gate" briefly before the "run" lock, so a waiting exclusive holder
    gets in ahead of the other worker's next tests: it waits for one test at most.
    """
    path = _run_lock_path(item.config)
    if path is None:
        yield
        return
    with open(path + ".gate", "a") as gate, open(path + ".run", "a") as run:
        if exclusive:
            fcntl.flock(gate, fcntl.LOCK_EX)
            fcntl.flock(run, fcntl.LOCK_EX)
        else:
            fcntl.flock(gate, fcntl.LOCK_SH)
            fcntl.flock(run, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(run, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


def _is_exclusive(item: Any) -> bool:
    return item.get_closest_marker("exclusive") is not None


_last_finished = {"nodeid": ""}


def last_finished_test() -> str:
    """The node id of the test this process ran last (set once its teardown is over)."""
    return _last_finished["nodeid"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Any:
    """Every test but an ``exclusive`` one holds the shared lock from setup to teardown."""
    try:
        if _is_exclusive(item):
            return (yield)
        with _run_lock(item, exclusive=False):
            return (yield)
    finally:
        _last_finished["nodeid"] = item.nodeid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: Any) -> Any:
    """An ``exclusive`` test's body runs alone (its fixtures are set up while others run)."""
    if not _is_exclusive(item):
        return (yield)
    with _run_lock(item, exclusive=True):
        return (yield)


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


def _seed_from_scratch(app: Flask) -> None:
    """Empty every table but the migration marker, then load defaults and the organisation."""
    db.session.remove()
    tables = _tables()
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in reversed(tables))
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        db.session.execute(text("PRAGMA foreign_keys=OFF"))
        for table in reversed(tables):
            db.session.execute(table.delete())
        db.session.execute(text("DELETE FROM sqlite_sequence")) if _has_sqlite_sequence() else None
    db.session.commit()
    _forget_cached_rows()
    app.appbuilder.sm.sync_builtin_roles()
    _seed(db.session)
    db.session.commit()
    db.session.remove()


def _tables() -> list[Any]:
    return [t for t in db.metadata.sorted_tables if t.name != "alembic_version"]


def _has_sqlite_sequence() -> bool:
    return bool(db.session.execute(text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")).first())


class _Pristine:
    """The seeded database of one backend, saved once and put back before every test."""

    def __init__(self, app: Flask):
        self.sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
        self.copy: Optional[sqlite3.Connection] = None
        self.script = ""
        _seed_from_scratch(app)
        if self.sqlite:
            # An in-memory copy, written back with SQLite's backup API: it goes through the
            # pager's locks, so every connection of the pool sees the new content at once.
            self.copy = sqlite3.connect(":memory:", check_same_thread=False)
            raw = db.engine.raw_connection()
            try:
                raw.driver_connection.backup(self.copy)
            finally:
                raw.close()
        else:
            self.script = self._postgres_script()
            db.session.rollback()

    @staticmethod
    def _postgres_script() -> str:
        """One SQL script that puts the seeded rows and sequence positions back in one round trip.

        Each table's rows are kept as PostgreSQL's own JSON of them and read back with
        ``json_populate_recordset``, so every type (JSON, timestamps, enums) round-trips as the
        server wrote it. Replica mode: no triggers (the append-only guards refuse DELETE on
        audit tables) and no foreign-key checks while the rows go back (needs a superuser, as in CI).
        """
        quote = db.engine.dialect.identifier_preparer.quote
        names = [quote(t.name) for t in _tables()]
        parts = ["SET LOCAL session_replication_role = replica"]
        parts += [f"DELETE FROM {name}" for name in reversed(names)]  # much faster than TRUNCATE here
        for name in names:
            rows = db.session.execute(text(f"SELECT json_agg(t)::text FROM {name} AS t")).scalar()
            if rows:
                assert "$pristine$" not in rows
                parts.append(
                    f"INSERT INTO {name} SELECT * FROM json_populate_recordset(NULL::{name}, $pristine${rows}$pristine$)"
                )
        sequences = db.session.execute(
            text("SELECT schemaname, sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")
        ).all()
        if sequences:
            parts.append(
                "SELECT "
                + ", ".join(
                    f'setval(\'"{schema}"."{name}"\', {value or 1}, {"true" if value is not None else "false"})'
                    for schema, name, value in sequences
                )
            )
        return ";\n".join(parts)

    def restore(self) -> None:
        db.session.remove()
        if self.copy is not None:
            raw = db.engine.raw_connection()
            try:
                self.copy.backup(raw.driver_connection)
            finally:
                raw.close()
        else:
            with db.engine.begin() as conn:
                conn.exec_driver_sql(self.script)
        _forget_cached_rows()


_pristine: dict[str, _Pristine] = {}


def reset_database(app: Flask) -> None:
    """Put back the clean state: default reference data and the demo organisation, nothing else.

    The state is seeded once per backend (through the application's seeding code) and
    restored from that copy before every test, which gives the same rows, ids and
    sequence positions as seeding an empty database each time, in a fraction of the time.
    """
    backend = db_backend(app)
    with app.app_context():
        if backend not in _pristine:
            _pristine[backend] = _Pristine(app)
        else:
            _pristine[backend].restore()
        db.session.remove()


def db_backend(app: Flask) -> str:
    return "sqlite" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else "postgresql"


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
    from app.complaints import intake
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
