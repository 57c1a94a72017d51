"""Who may do what: the role × endpoint matrix of the portal, and its row scope.

The tables below are the permission specification (config.FAB_ROLES plus
app/access/scope.py, as DESIGN.md describes them). Each row is one endpoint; each column
one caller:

    anon      not logged in
    kefu      客服 — registers complaints, sees those it registered, reads reference data
    zg_a      部门主管 of 工程部 (GC) — its department's complaints/staff/customers only
    zg_b      部门主管 of 保安部 (BA)
    renshi    人事行政经理 — all complaints, edits complaints and reference data
    zjl       总经理 — all complaints, read-only
    admin     Admin — users, roles, reference data; no complaint or customer data
    nostaff   人事行政经理 role but no staff record — sees nothing
    norole    a login without any role — may do nothing

Cells: OK 200, MADE 201, DONE 302 (a form saved, redirect), NO 403, AUTH 401,
LOGIN 302 to the login page, HIDDEN 403 or 404 (the row is outside the caller's
scope: never the row itself), None: not part of the specification.
A refused request must leave the database exactly as it was, and its body must not
contain the data of the row it named; an allowed write must change the database.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import BACKENDS, build_app, db_backend, last_finished_test, reset_database
from flask import Flask, current_app
from http_clients import Client, add_login, body_text
from sqlalchemy import LargeBinary, select, text

from app import db
from app.access import privacy
from app.complaints import attachments, intake
from app.models import (
    Category,
    Channel,
    Customer,
    Department,
    Level,
    ReplyScript,
    Setting,
    Staff,
)

# --- the world every read-only row runs against --------------------------------------------

MARKER = "tests.access_matrix.world"
# Columns a request may change without changing data: a login's counters, file bytes
# (covered by their size and SHA-256).
NOT_FINGERPRINTED = {"ab_user": {"last_login", "login_count", "fail_login_count", "changed_on", "changed_by_fk"}}


def _fingerprint_columns(table: Any) -> list[str]:
    skip = NOT_FINGERPRINTED.get(table.name, set())
    return [c.name for c in table.columns if c.name not in skip and not isinstance(c.type, LargeBinary)]


def fingerprint() -> str:
    """A digest of every row of every table, as far as a request could change it (one query).

    The access log is left out: reading personal data (a customer's edit form) writes an
    audit line by design (app/access/privacy.py).
    """
    tables = [t for t in db.metadata.sorted_tables if t.name not in ("alembic_version", "access_log")]
    parts = []
    for t in tables:
        columns = [f'x."{c}"' for c in _fingerprint_columns(t)]
        if db.engine.dialect.name == "postgresql":
            row = "ROW(" + ", ".join(columns) + ")::text"
            parts.append(f"(SELECT md5(coalesce(string_agg({row}, '|' ORDER BY {row}), '')) FROM \"{t.name}\" x)")
        else:
            row = " || ',' || ".join(f"quote({c})" for c in columns)
            parts.append(f"(SELECT group_concat(r, '|') FROM (SELECT {row} AS r FROM \"{t.name}\" x ORDER BY r))")
    values = db.session.execute(text("SELECT " + ", ".join(parts))).one()
    db.session.rollback()  # never hold a snapshot or locks between requests
    return hashlib.sha256(repr(tuple(values)).encode()).hexdigest()


@dataclass
class World:
    """Ids (``ids``) and identifying text (``text``) of the rows the matrix names."""

    ids: dict[str, int]
    text: dict[str, str]
    secrets: dict[str, str]  # placeholder -> text that only a reader of that row may get back
    state: str = ""  # fingerprint() of the database holding this world

    def fill(self, template: str) -> str:
        return template.format(**self.ids, **self.text)


def _register(department: Department, by: str, name: str, phone: str, content: str) -> Any:
    sm = current_app.appbuilder.sm
    data = {
        "received_at": None,
        "channel": db.session.scalars(select(Channel).where(Channel.code == "phone")).one(),
        "customer_name": name,
        "customer_phone": phone,
        "content": content,
        "customer_demand": "请尽快处理",
        "category": db.session.scalars(select(Category).where(Category.code == "equipment")).one(),
        "level": db.session.scalars(select(Level).where(Level.code == "normal")).one(),
        "department": department,
        "staff": [],
    }
    complaint = intake.register_complaint(db.session, sm.find_user(username=by).id, data)
    db.session.flush()
    return complaint


def build_world(app: Flask) -> World:
    """Four complaints (GC and BA, each by 客服 and by 人事行政经理), customers, files, spares."""
    dept = {d.code: d for d in db.session.scalars(select(Department))}
    gc = _register(dept["GC"], "kefu", "甲客户", "13900000001", "工程部投诉：电梯停运")
    gc_hr = _register(dept["GC"], "renshi", "丙客户", "13900000003", "工程部投诉：水管漏水")
    ba = _register(dept["BA"], "kefu", "乙客户", "13900000002", "保安部投诉：门岗态度差")
    ba_hr = _register(dept["BA"], "renshi", "丙客户", "13900000003", "保安部投诉：夜间无人巡逻")
    cust_none = Customer(name="丁客户", phone="13900000004")
    db.session.add(cust_none)
    att = {}
    for key, complaint in (("att_gc", gc), ("att_ba", ba)):
        payload = f"EVIDENCE-{key}-{uuid.uuid4().hex}".encode()
        att[key] = attachments.add_attachment(
            complaint, f"{key}.txt", payload, "text/plain", None, app.config["ATTACHMENT_ALLOWED_TYPES"], 10**6
        )
    spare = {
        "spare_department": Department(name="备用部门", code="SP", sort=99),
        "spare_channel": Channel(name="备用渠道", code="spare", sort=99),
        "spare_category": Category(name="备用类别", code="spare", sort=99),
        "spare_level": Level(name="备用级别", code="spare", rank=99),
        "spare_replyscript": ReplyScript(scenario="备用场景", standard_reply="您好", sort=99),
    }
    db.session.add_all(spare.values())
    db.session.flush()
    spare["spare_staff"] = Staff(employee_no="E9900", name="备用员工", department=dept["GC"])
    db.session.add(spare["spare_staff"])
    db.session.add(Setting(key=MARKER, value=uuid.uuid4().hex))
    db.session.commit()
    add_login(app, "nostaff", ["人事行政经理"], "无档案")
    add_login(app, "norole", [], "无角色")

    staff_gc = db.session.scalars(select(Staff).where(Staff.name == "刘强")).one()
    staff_ba = db.session.scalars(select(Staff).where(Staff.name == "吴刚")).one()
    first = {
        m: db.session.scalars(select(m).order_by(m.id).limit(1)).one() for m in (Channel, Category, Level, ReplyScript)
    }
    ids = {
        "gc": gc.id,
        "gc_hr": gc_hr.id,
        "ba": ba.id,
        "ba_hr": ba_hr.id,
        "cust_gc": gc.customer_id,
        "cust_ba": ba.customer_id,
        "cust_shared": gc_hr.customer_id,
        "cust_none": cust_none.id,
        "att_gc": att["att_gc"].id,
        "att_ba": att["att_ba"].id,
        "dept_gc": dept["GC"].id,
        "dept_ba": dept["BA"].id,
        "head_gc": dept["GC"].head_id,
        "staff_gc": staff_gc.id,
        "staff_ba": staff_ba.id,
        "channel": first[Channel].id,
        "category": first[Category].id,
        "level": first[Level].id,
        "replyscript": first[ReplyScript].id,
        **{k: v.id for k, v in spare.items()},
    }
    texts = {"staff_gc_no": staff_gc.employee_no, "gc_received": "2026-01-05T10:00"}
    secrets = {
        "gc": gc.number,
        "gc_hr": gc_hr.number,
        "ba": ba.number,
        "ba_hr": ba_hr.number,
        # Phones are masked on every path (app/access/privacy.py): the masked form marks the row.
        "cust_gc": "139****0001",
        "cust_ba": "139****0002",
        "cust_none": "139****0004",
        "staff_gc": "刘强",
        "staff_ba": "吴刚",
        "att_gc": att["att_gc"].data.decode(),
        "att_ba": att["att_ba"].data.decode(),
    }
    return World(ids=ids, text=texts, secrets=secrets)


_worlds: dict[str, World] = {}
# PostgreSQL: the world's rows, by table, to put back without rebuilding it.
_pg_rows: dict[str, dict[str, list[dict[str, Any]]]] = {}


def _sqlite_path(app: Flask) -> str | None:
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    return url[len("sqlite:///") :] if url.startswith("sqlite:///") else None


def _tables() -> list[Any]:
    return [t for t in db.metadata.sorted_tables if t.name != "alembic_version"]


def _save(app: Flask, backend: str) -> None:
    path = _sqlite_path(app)
    if path:
        db.session.remove()
        db.engine.dispose()
        shutil.copyfile(path, path + ".world")
    else:
        _pg_rows[backend] = {t.name: [dict(r._mapping) for r in db.session.execute(select(t))] for t in _tables()}
        db.session.rollback()


def _put_back(app: Flask, backend: str) -> bool:
    """Copy the saved world back in place; False when there is none or it cannot be done."""
    from app import settings
    from app.time_limits import sla

    settings.invalidate()  # the rows change under the per-process caches
    sla.forget_calendar()
    path = _sqlite_path(app)
    if path:
        if not os.path.exists(path + ".world"):
            return False
        db.engine.dispose()  # no connection may keep the old file open
        shutil.copyfile(path + ".world", path)
        return True
    saved = _pg_rows.get(backend)
    if saved is None:
        return False
    tables = _tables()
    try:
        with db.engine.begin() as conn:
            # Rows go back in table order; replica mode lets the department <-> staff
            # cycle of foreign keys load in one pass (needs a superuser, as in CI).
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in reversed(tables):  # DELETE: much faster than TRUNCATE on small tables
                conn.execute(table.delete())
            for table in tables:
                if saved[table.name]:
                    conn.execute(table.insert(), saved[table.name])
            for table in tables:
                if "id" in table.c and len(table.primary_key.columns) == 1:
                    conn.execute(
                        text(
                            "SELECT setval(pg_get_serial_sequence(:t, 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL)"
                            f' FROM "{table.name}"'
                        ),
                        {"t": f'"{table.name}"'},
                    )
    except Exception:  # noqa: BLE001 - any failure: rebuild the world instead
        return False
    return True


def _restore(app: Flask, backend: str) -> None:
    """Put the world back after a test changed it (rebuilt when it cannot be copied back)."""
    db.session.remove()
    if backend in _worlds and _put_back(app, backend) and fingerprint() == _worlds[backend].state:
        return
    db.session.remove()
    reset_database(app)
    built = build_world(app)
    built.state = fingerprint()
    _worlds[backend] = built
    _save(app, backend)


# backend -> the test that found the world unchanged when it ended (its last fingerprint was the world's)
_intact_after: dict[str, str] = {}


def _intact(request: Any, backend: str) -> None:
    """The running test found the world as it was: the next test need not fingerprint it again if
    no other test ran in between."""
    _intact_after[backend] = request.node.nodeid


@pytest.fixture(params=BACKENDS)
def world(request: Any) -> Iterator[tuple[Flask, World]]:
    """The matrix world on a backend, restored whenever a test (or a reset) changed it."""
    backend = request.param
    application = build_app(backend)
    with application.app_context():
        cached = _worlds.get(backend)
        checked = cached is not None and _intact_after.get(backend) == last_finished_test() != ""
        if cached is None or (not checked and fingerprint() != cached.state):
            _restore(application, backend)
        _intact_after.pop(backend, None)
        yield application, _worlds[backend]
        db.session.rollback()
        db.session.remove()


# --- the specification ------------------------------------------------------------------------

OK, MADE, DONE, NO, AUTH = 200, 201, 302, 403, 401
HIDDEN = frozenset({403, 404})
LOGIN = "login"


@dataclass(frozen=True)
class Bug:
    """A cell whose specified value the application does not meet yet (strict xfail)."""

    expected: Any
    reason: str


ADMIN_STAFF = (
    "BUG: app/access/scope.py _staff() has no Admin clause (unlike _reference), so Admin, which "
    "config.FAB_ROLES grants read/add/edit/delete on Staff, sees no staff row and cannot "
    "link login users to staff records"
)

Cell = int | frozenset | str | Bug | None
ROLES = ("anon", "kefu", "zg_a", "zg_b", "renshi", "zjl", "admin", "nostaff", "norole")
USERNAMES = {
    "anon": None,
    "kefu": "kefu",
    "zg_a": "zhuguan_a",
    "zg_b": "zhuguan_b",
    "renshi": "renshi",
    "zjl": "zongjingli",
    "admin": "admin",
    "nostaff": "nostaff",
    "norole": "norole",
}


def row(method: str, url: str, *cells: Cell, body: Callable[[World], dict[str, Any]] | None = None) -> tuple:
    assert len(cells) == len(ROLES), f"{method} {url}: {len(cells)} cells"
    return (method, url, cells, body)


def _reference_reads(view: str, resource: str, key: str) -> list[tuple]:
    #                                                   anon   kefu  zg_a  zg_b  renshi zjl  admin nostaff norole
    return [
        row("GET", f"/{view}/list/",                      LOGIN, OK,   OK,   OK,   OK,    OK,  OK,   OK,     NO),
        row("GET", f"/{view}/show/{{{key}}}",             LOGIN, OK,   OK,   OK,   OK,    OK,  OK,   HIDDEN, NO),
        row("GET", f"/{view}/add",                        LOGIN, NO,   NO,   NO,   OK,    NO,  OK,   OK,     NO),
        row("GET", f"/{view}/edit/{{{key}}}",             LOGIN, NO,   NO,   NO,   OK,    NO,  OK,   HIDDEN, NO),
        row("GET", f"/api/v1/{resource}/",                AUTH,  OK,   OK,   OK,   OK,    OK,  OK,   OK,     NO),
        row("GET", f"/api/v1/{resource}/{{{key}}}",       AUTH,  OK,   OK,   OK,   OK,    OK,  OK,   HIDDEN, NO),
        row("GET", f"/api/v1/{resource}/_info",           AUTH,  OK,   OK,   OK,   OK,    OK,  OK,   OK,     NO),
        row("GET", f"/api/v1/{resource}/lookup",          AUTH,  OK,   OK,   OK,   OK,    OK,  OK,   OK,     NO),
    ]  # fmt: skip


ADMIN_STAFF_OK = OK

# fmt: off
READS = [
    #                                                        anon   kefu    zg_a    zg_b    renshi zjl  admin nostaff norole
    # Complaints: 客服 sees what it registered, heads their department, 人事/总经理 all.
    row("GET", "/complaintview/list/",                       LOGIN, OK,     OK,     OK,     OK,    OK,  NO,   OK,     NO),
    row("GET", "/complaintview/show/{gc}",                   LOGIN, OK,     OK,     HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/complaintview/show/{gc_hr}",                LOGIN, HIDDEN, OK,     HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/complaintview/show/{ba}",                   LOGIN, OK,     HIDDEN, OK,     OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/complaintview/add",                         LOGIN, OK,     NO,     NO,     OK,    NO,  NO,   NO,     NO),
    row("GET", "/complaintview/edit/{gc}",                   LOGIN, NO,     NO,     NO,     OK,    NO,  NO,   HIDDEN, NO),
    row("GET", "/complaintview/attachment/{att_gc}",         LOGIN, OK,     OK,     HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/complaintview/attachment/{att_ba}",         LOGIN, OK,     HIDDEN, OK,     OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/complaint/",                         AUTH,  OK,     OK,     OK,     OK,    OK,  NO,   OK,     NO),
    row("GET", "/api/v1/complaint/{gc}",                     AUTH,  OK,     OK,     HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/complaint/{gc_hr}",                  AUTH,  HIDDEN, OK,     HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/complaint/{ba}",                     AUTH,  OK,     HIDDEN, OK,     OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/complaint/_info",                    AUTH,  OK,     OK,     OK,     OK,    OK,  NO,   OK,     NO),
    row("GET", "/api/v1/complaint/lookup?q=TS",              AUTH,  OK,     OK,     OK,     OK,    OK,  NO,   OK,     NO),
    row("GET", "/api/v1/complaint/lookup_caller?phone=13900000003",
                                                             AUTH,  OK,     NO,     NO,     OK,    OK,  NO,   NO,     NO),
    row("GET", "/api/v1/complaint/{gc}/attachments",         AUTH,  OK,     OK,     HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/complaint/{ba}/attachments",         AUTH,  OK,     HIDDEN, OK,     OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/complaint/{gc}/attachments/{att_gc}", AUTH, OK,     OK,     HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/complaint/{ba}/attachments/{att_ba}", AUTH, OK,     HIDDEN, OK,     OK,    OK,  NO,   HIDDEN, NO),
    # Customers: 客服 and the company-wide roles all; a head the customers of its complaints.
    row("GET", "/customerview/list/",                        LOGIN, OK,     OK,     OK,     OK,    OK,  NO,   OK,     NO),
    row("GET", "/customerview/show/{cust_gc}",               LOGIN, OK,     OK,     HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/customerview/show/{cust_ba}",               LOGIN, OK,     HIDDEN, OK,     OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/customerview/show/{cust_none}",             LOGIN, OK,     HIDDEN, HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/customerview/add",                          LOGIN, OK,     NO,     NO,     OK,    NO,  NO,   OK,     NO),
    row("GET", "/customerview/edit/{cust_gc}",               LOGIN, OK,     NO,     NO,     OK,    NO,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/customer/",                          AUTH,  OK,     OK,     OK,     OK,    OK,  NO,   OK,     NO),
    row("GET", "/api/v1/customer/{cust_gc}",                 AUTH,  OK,     OK,     HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/customer/{cust_ba}",                 AUTH,  OK,     HIDDEN, OK,     OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/customer/{cust_none}",               AUTH,  OK,     HIDDEN, HIDDEN, OK,    OK,  NO,   HIDDEN, NO),
    row("GET", "/api/v1/customer/_info",                     AUTH,  OK,     OK,     OK,     OK,    OK,  NO,   OK,     NO),
    row("GET", "/api/v1/customer/lookup",                    AUTH,  OK,     OK,     OK,     OK,    OK,  NO,   OK,     NO),
    # Staff: the roster for 客服 and company-wide roles, a head's own department only.
    row("GET", "/staffview/list/",                           LOGIN, OK,     OK,     OK,     OK,    OK,  OK,   OK,     NO),
    row("GET", "/staffview/show/{staff_gc}",                 LOGIN, OK,     OK,     HIDDEN, OK,    OK,  ADMIN_STAFF_OK, HIDDEN, NO),
    row("GET", "/staffview/show/{staff_ba}",                 LOGIN, OK,     HIDDEN, OK,     OK,    OK,  ADMIN_STAFF_OK, HIDDEN, NO),
    row("GET", "/staffview/add",                             LOGIN, NO,     NO,     NO,     OK,    NO,  OK,   OK,     NO),
    row("GET", "/staffview/edit/{staff_gc}",                 LOGIN, NO,     NO,     NO,     OK,    NO,  ADMIN_STAFF_OK, HIDDEN, NO),
    row("GET", "/api/v1/staff/",                             AUTH,  OK,     OK,     OK,     OK,    OK,  OK,   OK,     NO),
    row("GET", "/api/v1/staff/{staff_gc}",                   AUTH,  OK,     OK,     HIDDEN, OK,    OK,  ADMIN_STAFF_OK, HIDDEN, NO),
    row("GET", "/api/v1/staff/{staff_ba}",                   AUTH,  OK,     HIDDEN, OK,     OK,    OK,  ADMIN_STAFF_OK, HIDDEN, NO),
    row("GET", "/api/v1/staff/_info",                        AUTH,  OK,     OK,     OK,     OK,    OK,  OK,   OK,     NO),
    row("GET", "/api/v1/staff/lookup",                       AUTH,  OK,     OK,     OK,     OK,    OK,  OK,   OK,     NO),
    # Reference data: every business role reads it, 人事行政经理 and Admin maintain it.
    *_reference_reads("departmentview", "department", "dept_ba"),
    *_reference_reads("channelview", "channel", "channel"),
    *_reference_reads("categoryview", "category", "category"),
    *_reference_reads("levelview", "level", "level"),
    *_reference_reads("replyscriptview", "replyscript", "replyscript"),
    # Application-wide.
    row("GET", "/api/v1/_openapi",                           AUTH,  OK,     OK,     OK,     OK,    OK,  OK,   OK,     NO),
    row("GET", "/health",                                    OK,    OK,     OK,     OK,     OK,    OK,  OK,   OK,     OK),
]
# fmt: on


def _intake_json(w: World) -> dict[str, Any]:
    return {
        "json": {
            "content": "矩阵登记的投诉",
            "customer_name": "矩阵客户",
            "customer_phone": "13700001111",
            "channel": w.ids["channel"],
            "category": w.ids["category"],
            "level": w.ids["level"],
            "department": w.ids["dept_gc"],
        }
    }


def _json(payload: dict[str, Any]) -> Callable[[World], dict[str, Any]]:
    def build(w: World) -> dict[str, Any]:
        return {
            "json": {k: (w.ids[v[1:-1]] if isinstance(v, str) and v[1:-1] in w.ids else v) for k, v in payload.items()}
        }

    return build


def _form(payload: dict[str, str]) -> Callable[[World], dict[str, Any]]:
    def build(w: World) -> dict[str, Any]:
        return {"data": {k: w.fill(v) for k, v in payload.items()}}

    return build


def _file(w: World) -> dict[str, Any]:
    return {"data": {"file": (io.BytesIO(b"matrix evidence"), "matrix.txt"), "description": "矩阵"}}


REFERENCE_PAYLOADS = {
    # resource: (key of an existing row, new row, change, spare row to delete)
    "department": ("dept_gc", {"name": "测试部", "code": "TST"}, {"description": "改"}, "spare_department"),
    "channel": ("channel", {"name": "新渠道", "code": "newch"}, {"sort": 42}, "spare_channel"),
    "category": ("category", {"name": "新类别", "code": "newcat"}, {"sort": 42}, "spare_category"),
    "level": ("level", {"name": "新级别", "code": "newlvl", "rank": 9}, {"description": "改"}, "spare_level"),
    "replyscript": (
        "replyscript",
        {"scenario": "新场景", "standard_reply": "您好"},
        {"tone": "亲切"},
        "spare_replyscript",
    ),
}


def _reference_writes(resource: str) -> list[tuple]:
    key, new, change, spare = REFERENCE_PAYLOADS[resource]
    #                                                                    anon  kefu zg_a zg_b renshi zjl admin nostaff norole
    return [
        row("POST", f"/api/v1/{resource}/",               AUTH, NO,  NO,  NO,  MADE,  NO, MADE, None,   NO, body=_json(new)),
        row("PUT", f"/api/v1/{resource}/{{{key}}}",       AUTH, NO,  NO,  NO,  OK,    NO, OK,   HIDDEN, NO, body=_json(change)),
        row("DELETE", f"/api/v1/{resource}/{{{spare}}}",  AUTH, NO,  NO,  NO,  OK,    NO, OK,   HIDDEN, NO),
    ]  # fmt: skip


def _reference_form_writes(view: str, key: str, spare: str, form: dict[str, str]) -> list[tuple]:
    # The edit posts the new row's values over an existing row: a complete, valid form.
    edit = {k: (v + "改" if k in ("name", "scenario") else v) for k, v in form.items()}
    edit.update({k: v + "2" for k, v in form.items() if k == "code"})
    #                                                           anon   kefu zg_a zg_b renshi zjl admin nostaff norole
    return [
        row("POST", f"/{view}/add",                           LOGIN, NO,  NO,  NO,  DONE,  NO, DONE, None,   NO, body=_form(form)),
        row("POST", f"/{view}/edit/{{{key}}}",                LOGIN, NO,  NO,  NO,  DONE,  NO, DONE, HIDDEN, NO, body=_form(edit)),
        row("POST", f"/{view}/delete/{{{spare}}}",            LOGIN, NO,  NO,  NO,  DONE,  NO, DONE, HIDDEN, NO),
    ]  # fmt: skip


ADMIN_STAFF_DONE = DONE

# fmt: off
WRITES = [
    #                                                        anon   kefu  zg_a    zg_b    renshi zjl admin nostaff norole
    # Complaints are registered by 客服 and 人事行政经理, edited by 人事行政经理, never deleted.
    row("POST", "/api/v1/complaint/",                        AUTH,  MADE, NO,     NO,     MADE,  NO, NO,   NO,     NO, body=_intake_json),
    row("PUT", "/api/v1/complaint/{gc}",                     AUTH,  NO,   NO,     NO,     OK,    NO, NO,   HIDDEN, NO, body=_json({"subject": "改过的主题"})),
    row("PUT", "/api/v1/complaint/{ba}",                     AUTH,  NO,   NO,     NO,     OK,    NO, NO,   HIDDEN, NO, body=_json({"subject": "改过的主题"})),
    row("DELETE", "/api/v1/complaint/{gc}",                  AUTH,  NO,   NO,     NO,     NO,    NO, NO,   NO,     NO),
    row("POST", "/complaintview/add",                        LOGIN, DONE, NO,     NO,     DONE,  NO, NO,   NO,     NO, body=_form({
        "channel": "{channel}", "customer_name": "表单客户", "customer_phone": "13700002222",
        "content": "表单登记的投诉", "category": "{category}", "level": "{level}", "department": "{dept_gc}"})),
    row("POST", "/complaintview/edit/{gc}",                  LOGIN, NO,   NO,     NO,     DONE,  NO, NO,   HIDDEN, NO, body=_form({
        "received_at": "{gc_received}", "channel": "{channel}", "subject": "改过的主题", "content": "改过的内容",
        "category": "{category}", "level": "{level}", "department": "{dept_gc}"})),
    row("POST", "/complaintview/delete/{gc}",                LOGIN, NO,   NO,     NO,     NO,    NO, NO,   NO,     NO),
    # Evidence files: whoever works on a case in scope may add one; 总经理 only reads.
    row("POST", "/complaintview/attach/{gc}",                LOGIN, DONE, DONE,   HIDDEN, DONE,  NO, NO,   HIDDEN, NO, body=_file),
    row("POST", "/complaintview/attach/{ba}",                LOGIN, DONE, HIDDEN, DONE,   DONE,  NO, NO,   HIDDEN, NO, body=_file),
    row("POST", "/api/v1/complaint/{gc}/attachments",        AUTH,  MADE, MADE,   HIDDEN, MADE,  NO, NO,   HIDDEN, NO, body=_file),
    row("POST", "/api/v1/complaint/{ba}/attachments",        AUTH,  MADE, HIDDEN, MADE,   MADE,  NO, NO,   HIDDEN, NO, body=_file),
    # Customers: 客服 and 人事行政经理 maintain them; nobody deletes one.
    row("POST", "/api/v1/customer/",                         AUTH,  MADE, NO,     NO,     MADE,  NO, NO,   None,   NO, body=_json({"name": "新客户", "phone": "13700003333"})),
    row("PUT", "/api/v1/customer/{cust_gc}",                 AUTH,  OK,   NO,     NO,     OK,    NO, NO,   HIDDEN, NO, body=_json({"note": "常客"})),
    row("DELETE", "/api/v1/customer/{cust_none}",            AUTH,  NO,   NO,     NO,     NO,    NO, NO,   NO,     NO),
    row("POST", "/customerview/add",                         LOGIN, DONE, NO,     NO,     DONE,  NO, NO,   None,   NO, body=_form({"name": "表单新客户", "phone": "13700004444"})),
    row("POST", "/customerview/edit/{cust_gc}",              LOGIN, DONE, NO,     NO,     DONE,  NO, NO,   HIDDEN, NO, body=_form({"name": "甲客户", "phone": "13900000001", "note": "常客"})),
    row("POST", "/customerview/delete/{cust_none}",          LOGIN, NO,   NO,     NO,     NO,    NO, NO,   NO,     NO),
    # Staff and reference data: 人事行政经理 and Admin.
    row("POST", "/api/v1/staff/",                            AUTH,  NO,   NO,     NO,     MADE,  NO, MADE, None,   NO, body=_json({"employee_no": "E9901", "name": "新员工", "department": "{dept_gc}"})),
    row("PUT", "/api/v1/staff/{staff_gc}",                   AUTH,  NO,   NO,     NO,     OK,    NO, OK, HIDDEN, NO, body=_json({"position": "高级维保工"})),
    row("DELETE", "/api/v1/staff/{spare_staff}",             AUTH,  NO,   NO,     NO,     OK,    NO, OK, HIDDEN, NO),
    row("POST", "/staffview/add",                            LOGIN, NO,   NO,     NO,     DONE,  NO, DONE, None,   NO, body=_form({"employee_no": "E9902", "name": "表单员工", "department": "{dept_gc}", "active": "y"})),
    row("POST", "/staffview/edit/{staff_gc}",                LOGIN, NO,   NO,     NO,     DONE,  NO, ADMIN_STAFF_DONE, HIDDEN, NO, body=_form({
        "employee_no": "{staff_gc_no}", "name": "刘强", "department": "{dept_gc}", "position": "高级维保工", "active": "y"})),
    row("POST", "/staffview/delete/{spare_staff}",           LOGIN, NO,   NO,     NO,     DONE,  NO, ADMIN_STAFF_DONE, HIDDEN, NO),
    row("POST", "/departmentview/add",                       LOGIN, NO,   NO,     NO,     DONE,  NO, DONE, None,   NO, body=_form({"name": "表单部门", "code": "FRM", "active": "y", "sort": "9"})),
    row("POST", "/departmentview/edit/{dept_gc}",            LOGIN, NO,   NO,     NO,     DONE,  NO, DONE, HIDDEN, NO, body=_form({
        "name": "工程部", "code": "GC", "head": "{head_gc}", "description": "改", "active": "y", "sort": "1"})),
    row("POST", "/departmentview/delete/{spare_department}", LOGIN, NO,   NO,     NO,     DONE,  NO, DONE, HIDDEN, NO),
    row("POST", "/channelview/add",                          LOGIN, NO,   NO,     NO,     DONE,  NO, DONE, None,   NO, body=_form({"name": "表单渠道", "code": "frm", "is_regulator": "y", "active": "y", "sort": "9"})),
    row("POST", "/channelview/edit/{channel}",               LOGIN, NO,   NO,     NO,     DONE,  NO, DONE, HIDDEN, NO, body=_form({"name": "电话", "code": "phone", "is_regulator": "y", "active": "y", "sort": "42"})),
    row("POST", "/channelview/delete/{spare_channel}",       LOGIN, NO,   NO,     NO,     DONE,  NO, DONE, HIDDEN, NO),
    *_reference_form_writes("categoryview", "category", "spare_category",
                            {"name": "表单类别", "code": "frmcat", "active": "y", "sort": "9"}),
    *_reference_form_writes("levelview", "level", "spare_level",
                            {"name": "表单级别", "code": "frmlvl", "rank": "9", "is_major": "y", "active": "y"}),
    *_reference_form_writes("replyscriptview", "replyscript", "spare_replyscript",
                            {"scenario": "表单场景", "standard_reply": "您好", "sort": "9"}),
    *_reference_writes("department"),
    *_reference_writes("channel"),
    *_reference_writes("category"),
    *_reference_writes("level"),
    *_reference_writes("replyscript"),
]
# fmt: on


def _expand(rows: list[tuple]) -> list[Any]:
    params = []
    for method, url, cells, body in rows:
        for role, cell in zip(ROLES, cells, strict=True):
            if cell is None:
                continue
            marks = ()
            if isinstance(cell, Bug):
                marks = (pytest.mark.xfail(strict=True, reason=cell.reason),)
                cell = cell.expected
            params.append(pytest.param(role, method, url, cell, body, id=f"{role}-{method}-{url}", marks=marks))
    return params


_logins: dict[tuple[Flask, str, bool], Client] = {}


def _client(app: Flask, role: str, url: str) -> Client:
    """A logged-in client of ``role``; logins are reused (the world keeps every user's id)."""
    key = (app, role, url.startswith("/api/"))
    if key not in _logins:
        _logins[key] = Client(app, USERNAMES[role], api=key[2])
    return _logins[key]


def _check_status(role: str, method: str, url: str, expected: Cell, r: Any) -> None:
    where = f"{role} {method} {url}"
    if expected == LOGIN:
        assert r.status_code == 302, f"{where}: {r.status_code}"
        assert "/login/" in r.headers["Location"], f"{where}: redirected to {r.headers['Location']}"
    elif isinstance(expected, frozenset):
        assert r.status_code in expected, f"{where}: {r.status_code}, expected one of {sorted(expected)}"
    else:
        assert r.status_code == expected, f"{where}: {r.status_code}, expected {expected}"
        if expected == DONE:
            assert "/login/" not in r.headers["Location"], f"{where}: sent to the login page"


def _placeholders(url: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", url)


@pytest.mark.parametrize("role, method, url, expected, body", _expand(READS))
def test_read_access_follows_the_role_matrix(request, world, role, method, url, expected, body):
    app, w = world
    before = w.state  # the fixture checked it
    r = _client(app, role, url).open(method, w.fill(url))

    _check_status(role, method, url, expected, r)
    payload = body_text(r)
    names = _placeholders(url)
    if r.status_code >= 300:
        for name in names:
            if name in w.secrets:
                assert w.secrets[name] not in payload, f"{role} {url}: refused, yet the body holds {name}"
    elif names and re.search(r"(/show/|/api/v1/\w+/|/attachments?/)\{\w+\}$", url):
        # A granted read of one row really returns that row.
        target = names[-1]
        if target in w.secrets:
            assert w.secrets[target] in payload, f"{role} {url}: the row's data is missing"
    assert fingerprint() == before, f"{role} {method} {url} changed the database"
    _intact(request, db_backend(app))


@pytest.mark.parametrize("role, method, url, expected, body", _expand(WRITES))
def test_write_access_follows_the_role_matrix(request, world, role, method, url, expected, body):
    app, w = world
    before = w.state  # the fixture checked it
    kwargs = body(w) if body else {}
    r = _client(app, role, url).open(method, w.fill(url), **kwargs)

    _check_status(role, method, url, expected, r)
    changed = fingerprint() != before
    if expected in (OK, MADE, DONE):
        assert changed, f"{role} {method} {url}: answered {r.status_code} but saved nothing"
    else:
        assert not changed, f"{role} {method} {url}: refused ({r.status_code}) but the database changed"
        _intact(request, db_backend(app))
        payload = body_text(r)
        for name in _placeholders(url):
            if name in w.secrets:
                assert w.secrets[name] not in payload, f"{role} {url}: refused, yet the body holds {name}"


# --- row scope: lists hold exactly the rows in scope ------------------------------------------

COMPLAINTS_IN_SCOPE = {
    "kefu": {"gc", "ba"},  # registered by 客服 itself, whatever the department
    "zg_a": {"gc", "gc_hr"},
    "zg_b": {"ba", "ba_hr"},
    "renshi": {"gc", "gc_hr", "ba", "ba_hr"},
    "zjl": {"gc", "gc_hr", "ba", "ba_hr"},
    "nostaff": set(),
}
CUSTOMERS_IN_SCOPE = {
    "kefu": {"cust_gc", "cust_ba", "cust_shared", "cust_none"},
    "zg_a": {"cust_gc", "cust_shared"},
    "zg_b": {"cust_ba", "cust_shared"},
    "renshi": {"cust_gc", "cust_ba", "cust_shared", "cust_none"},
    "zjl": {"cust_gc", "cust_ba", "cust_shared", "cust_none"},
    "nostaff": set(),
}
# None: every staff member; a department code: that department's staff; "NONE": nobody.
STAFF_IN_SCOPE = [
    pytest.param("kefu", None, id="kefu"),
    pytest.param("zg_a", "GC", id="zg_a"),
    pytest.param("zg_b", "BA", id="zg_b"),
    pytest.param("renshi", None, id="renshi"),
    pytest.param("zjl", None, id="zjl"),
    pytest.param("admin", None, id="admin"),
    pytest.param("nostaff", "NONE", id="nostaff"),
]


def _rest_ids(client: Client, resource: str) -> tuple[set[int], int]:
    r = client.get(f"/api/v1/{resource}/?q=(page_size:100)")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return {item["id"] for item in r.json["result"]}, r.json["count"]


@pytest.mark.parametrize("role", sorted(COMPLAINTS_IN_SCOPE))
def test_complaint_lists_hold_exactly_the_complaints_in_scope(world, role):
    app, w = world
    expected = {w.ids[k] for k in COMPLAINTS_IN_SCOPE[role]}

    ids, count = _rest_ids(Client(app, USERNAMES[role], api=True), "complaint")
    assert ids == expected
    assert count == len(expected)

    page = Client(app, USERNAMES[role]).get("/complaintview/list/").get_data(as_text=True)
    shown = {k for k in ("gc", "gc_hr", "ba", "ba_hr") if w.secrets[k] in page}
    assert shown == COMPLAINTS_IN_SCOPE[role]
    record_count = re.search(r"记录数目:\s*</strong>\s*(\d+)", page)
    assert (int(record_count.group(1)) if record_count else 0) == len(expected)


@pytest.mark.parametrize("role", sorted(CUSTOMERS_IN_SCOPE))
def test_customer_lists_hold_exactly_the_customers_in_scope(world, role):
    app, w = world
    expected = {w.ids[k] for k in CUSTOMERS_IN_SCOPE[role]}

    ids, count = _rest_ids(Client(app, USERNAMES[role], api=True), "customer")
    assert ids == expected
    assert count == len(expected)

    page = Client(app, USERNAMES[role]).get("/customerview/list/").get_data(as_text=True)
    phones = {"13900000001", "13900000002", "13900000003", "13900000004"}
    assert not {p for p in phones if p in page}, "full phone numbers on the customer list"
    assert {p for p in phones if privacy.mask_phone(p) in page} == {
        p for p in phones if db.session.scalar(select(Customer.id).where(Customer.phone == p)) in expected
    }


@pytest.mark.parametrize("role, department", STAFF_IN_SCOPE)
def test_staff_lists_hold_exactly_the_staff_in_scope(world, role, department):
    app, _ = world
    stmt = select(Staff.id)
    if department == "NONE":
        expected: set[int] = set()
    else:
        if department is not None:
            stmt = stmt.join(Department, Staff.department_id == Department.id).where(Department.code == department)
        expected = set(db.session.scalars(stmt))
    db.session.rollback()

    ids, count = _rest_ids(Client(app, USERNAMES[role], api=True), "staff")
    assert ids == expected
    assert count == len(expected)


@pytest.mark.parametrize("resource, model", [
    ("department", Department), ("channel", Channel), ("category", Category), ("level", Level), ("replyscript", ReplyScript),
])  # fmt: skip
@pytest.mark.parametrize("role", ["kefu", "zg_a", "renshi", "zjl", "admin", "nostaff"])
def test_reference_lists_hold_every_row_for_members_and_none_without_staff_record(world, role, resource, model):
    app, _ = world
    expected = set() if role == "nostaff" else set(db.session.scalars(select(model.id)))
    db.session.rollback()

    ids, count = _rest_ids(Client(app, USERNAMES[role], api=True), resource)
    assert ids == expected
    assert count == len(expected)


# --- cross-department leaks, one path at a time ------------------------------------------------

SUBJECTS = {
    "gc": "工程部投诉：电梯停运",
    "gc_hr": "工程部投诉：水管漏水",
    "ba": "保安部投诉：门岗态度差",
    "ba_hr": "保安部投诉：夜间无人巡逻",
}


def test_dept_head_cannot_open_other_department_complaint_by_id(world):
    app, w = world
    web, api = Client(app, "zhuguan_a"), Client(app, "zhuguan_a", api=True)
    number = w.secrets["ba"]
    for client, method, url in (
        (web, "GET", "/complaintview/show/{ba}"),
        (web, "GET", "/complaintview/edit/{ba}"),
        (web, "POST", "/complaintview/edit/{ba}"),
        (web, "GET", "/complaintview/attachment/{att_ba}"),
        (api, "GET", "/api/v1/complaint/{ba}"),
        (api, "PUT", "/api/v1/complaint/{ba}"),
        (api, "GET", "/api/v1/complaint/{ba}/attachments"),
        (api, "GET", "/api/v1/complaint/{ba}/attachments/{att_ba}"),
    ):
        kwargs = {"json": {"subject": "x"}} if method == "PUT" else {}
        r = client.open(method, w.fill(url), **kwargs)
        text_ = body_text(r)
        assert r.status_code in HIDDEN, f"{method} {url}: {r.status_code}"
        assert number not in text_ and SUBJECTS["ba"] not in text_, f"{method} {url} leaked the case"
        assert w.secrets["att_ba"] not in text_


def test_dept_head_list_home_and_search_show_no_other_department_complaint(world):
    app, w = world
    web, api = Client(app, "zhuguan_a"), Client(app, "zhuguan_a", api=True)
    foreign = {w.secrets["ba"], w.secrets["ba_hr"], SUBJECTS["ba"], SUBJECTS["ba_hr"]}
    own = {w.secrets["gc"], SUBJECTS["gc"]}

    for url in ("/complaintview/list/", "/"):
        page = web.get(url).get_data(as_text=True)
        assert own <= {t for t in own if t in page}, f"{url} lacks the department's own case"
        assert not {t for t in foreign if t in page}, f"{url} shows another department's case"

    # Searching for the other department's case by its number finds nothing (the filter
    # echoes the number in the search box, so the subject is what must be absent).
    page = web.get(f"/complaintview/list/?_flt_0_number={w.secrets['ba']}").get_data(as_text=True)
    assert SUBJECTS["ba"] not in page
    r = api.get(f"/api/v1/complaint/?q=(filters:!((col:number,opr:eq,value:'{w.secrets['ba']}')))")
    assert r.status_code == 200 and r.json["count"] == 0 and r.json["result"] == []
    r = api.get(f"/api/v1/complaint/?q=(filters:!((col:department,opr:rel_o_m,value:{w.ids['dept_ba']})))")
    assert r.status_code == 200 and r.json["count"] == 0

    # The same searches find the case for a company-wide role: the filters do work.
    hr = Client(app, "renshi", api=True)
    r = hr.get(f"/api/v1/complaint/?q=(filters:!((col:number,opr:eq,value:'{w.secrets['ba']}')))")
    assert [c["id"] for c in r.json["result"]] == [w.ids["ba"]]
    page = Client(app, "renshi").get(f"/complaintview/list/?_flt_0_number={w.secrets['ba']}").get_data(as_text=True)
    assert SUBJECTS["ba"] in page and SUBJECTS["gc"] not in page


def test_dept_head_lookups_offer_only_rows_of_its_department(world):
    app, w = world
    api = Client(app, "zhuguan_a", api=True)

    def texts(url: str) -> list[str]:
        r = api.get(url)
        assert r.status_code == 200, url
        return [item["text"] for item in r.json["results"]]

    assert texts(f"/api/v1/complaint/lookup?q={w.secrets['ba']}") == []
    assert sorted(t.split()[0] for t in texts("/api/v1/complaint/lookup?q=TS")) == sorted(
        [w.secrets["gc"], w.secrets["gc_hr"]]
    )
    staff = texts("/api/v1/staff/lookup")
    assert staff and not any("吴刚" in t or "李卫东" in t for t in staff)
    assert any("刘强" in t for t in staff)
    assert texts(f"/api/v1/staff/lookup?department={w.ids['dept_ba']}") == []
    customers = " ".join(texts("/api/v1/customer/lookup"))
    assert "139****0001" in customers and "139****0003" in customers
    assert "0002" not in customers and "0004" not in customers


def test_customer_page_lists_only_the_complaints_in_the_callers_scope(world):
    app, w = world
    # 丙客户 complained about both departments.
    head = Client(app, "zhuguan_a").get(w.fill("/customerview/show/{cust_shared}")).get_data(as_text=True)
    assert w.secrets["gc_hr"] in head
    assert w.secrets["ba_hr"] not in head and SUBJECTS["ba_hr"] not in head

    hr = Client(app, "renshi").get(w.fill("/customerview/show/{cust_shared}")).get_data(as_text=True)
    assert w.secrets["gc_hr"] in hr and w.secrets["ba_hr"] in hr


def test_department_page_staff_tab_shows_only_staff_in_scope(world):
    app, w = world
    head = Client(app, "zhuguan_a").get(w.fill("/departmentview/show/{dept_ba}"))
    assert head.status_code == 200
    assert "吴刚" not in head.get_data(as_text=True)

    hr = Client(app, "renshi").get(w.fill("/departmentview/show/{dept_ba}")).get_data(as_text=True)
    assert "吴刚" in hr


def test_customer_service_sees_its_own_registrations_in_any_department_only(world):
    app, w = world
    page = Client(app, "kefu").get("/complaintview/list/").get_data(as_text=True)
    assert w.secrets["gc"] in page and w.secrets["ba"] in page
    assert w.secrets["gc_hr"] not in page and w.secrets["ba_hr"] not in page


def test_customer_service_caller_lookup_returns_summaries_of_the_callers_earlier_complaints(world):
    app, w = world
    r = Client(app, "kefu", api=True).get("/api/v1/complaint/lookup_caller?phone=139 0000 0003")
    assert r.status_code == 200
    assert r.json["phone"] == "13900000003"
    assert sorted(c["number"] for c in r.json["result"]) == sorted([w.secrets["gc_hr"], w.secrets["ba_hr"]])
    # Enough to recognise a repeat caller, not the case file.
    for item in r.json["result"]:
        assert set(item) == {
            "id",
            "number",
            "received_at",
            "status",
            "status_label",
            "subject",
            "department",
            "category",
        }


def test_caller_lookup_refuses_a_malformed_phone_with_a_chinese_message(world):
    app, _ = world
    r = Client(app, "kefu", api=True).get("/api/v1/complaint/lookup_caller?phone=12345")
    assert r.status_code == 400
    assert "手机或固定电话" in r.json["message"]["phone"][0]


def test_admin_sees_no_complaint_or_customer_data(world):
    app, w = world
    web, api = Client(app, "admin"), Client(app, "admin", api=True)
    home = web.get("/")
    assert home.status_code == 200
    text_ = home.get_data(as_text=True)
    for key in ("gc", "gc_hr", "ba", "ba_hr"):
        assert w.secrets[key] not in text_ and SUBJECTS[key] not in text_
    for url in ("/api/v1/complaint/", "/api/v1/customer/", "/api/v1/complaint/lookup?q=TS", "/api/v1/customer/lookup"):
        assert api.get(url).status_code == 403, url


def test_user_without_staff_record_sees_no_complaint_anywhere(world):
    app, w = world
    web, api = Client(app, "nostaff"), Client(app, "nostaff", api=True)
    for url in ("/", "/complaintview/list/", "/customerview/list/"):
        text_ = web.get(url).get_data(as_text=True)
        assert not [k for k in ("gc", "gc_hr", "ba", "ba_hr") if w.secrets[k] in text_], url
    assert api.get("/api/v1/complaint/lookup?q=TS").json["results"] == []
    assert api.get("/api/v1/customer/lookup").json["results"] == []
    assert api.get("/api/v1/staff/lookup").json["results"] == []


INFO_LEAK = (
    "BUG: FAB's /_info returns the choices of add_columns/edit_columns to every reader, and "
    "app/views/ gives DepartmentApi.head and StaffApi.user no scope filter, so a department "
    "head reading /api/v1/department/_info or /api/v1/staff/_info gets the whole staff roster "
    "and every login account of the company"
)


def test_dept_head_department_info_lists_no_staff_of_other_departments(world):
    app, _ = world
    r = Client(app, "zhuguan_a", api=True).get("/api/v1/department/_info")
    assert r.status_code == 200
    text_ = body_text(r)
    assert "吴刚" not in text_ and "李卫东" not in text_


def test_dept_head_staff_info_lists_no_login_accounts_outside_its_department(world):
    app, _ = world
    r = Client(app, "zhuguan_a", api=True).get("/api/v1/staff/_info")
    assert r.status_code == 200
    text_ = body_text(r)
    assert "李卫东" not in text_ and "系统管理员" not in text_


def test_views_expose_no_file_download_outside_the_scoped_attachment_route(world):
    app, _ = world
    r = Client(app, "kefu").get("/complaintview/download/evidence.txt")
    assert r.status_code == 404


BOOLEAN_FORM = (
    "BUG: FAB adds InputRequired to every non-nullable column (flask_appbuilder/forms.py "
    "_convert_simple); on a BooleanField an unticked box is 'missing', so the forms of "
    "app/views/ refuse is_regulator/active/is_major = False (该字段是必填字段): a channel that "
    "is not a regulator transfer cannot be created and nothing can be deactivated in the UI"
)


def test_hr_manager_can_add_a_channel_that_is_not_a_regulator_transfer(world):
    app, _ = world
    r = Client(app, "renshi").post("/channelview/add", data={"name": "短信", "code": "sms", "active": "y", "sort": "9"})
    assert r.status_code == 302
    assert db.session.scalar(select(Channel.is_regulator).where(Channel.code == "sms")) is False


def test_hr_manager_can_deactivate_a_department_through_its_form(world):
    app, w = world
    r = Client(app, "renshi").post(
        w.fill("/departmentview/edit/{spare_department}"), data={"name": "备用部门", "code": "SP", "sort": "99"}
    )
    assert r.status_code == 302
    assert db.session.scalar(select(Department.active).where(Department.code == "SP")) is False
