"""Helpers for the time-limit tests: time travel, timelines, real SMTP and webhook servers.

Nothing here mocks the database or the transports: the jobs run against the test
database (in-process through ``jobs.run_due`` or as the ``flask jobs run`` CLI in a
subprocess), mail goes to an aiosmtpd server on a free local port and webhooks to
an ``http.server`` in a thread.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flask import Flask

from app import db
from app.complaints import intake
from app.timeutil import LOCAL_TZ

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
SLA_KINDS = ("warning", "overdue", "escalation")


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """An instant given in Asia/Shanghai wall time."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=LOCAL_TZ)


def travel(app: Flask, when: datetime, only: list[str] | None = None) -> dict[str, Any]:
    """Run every job due at ``when`` (as the scheduler would), then forget cached rows."""
    from app import jobs

    db.session.commit()  # nothing of the test's may hold a lock while the jobs write
    summary = jobs.run_due(app, when, only=only)
    db.session.expire_all()
    for name, result in summary["jobs"].items():
        assert "error" not in (result or {}), (name, result)
    return summary


def flask_env(app: Flask, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        FLASK_APP="app",
        SCHEDULER_ENABLED="0",
        MAIL_SERVER=app.config.get("MAIL_SERVER") or "",
        WEBHOOK_WECOM_URL="",
        WEBHOOK_DINGTALK_URL="",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def flask_bin() -> str:
    return os.path.join(os.path.dirname(sys.executable), "flask")


def cli_run(app: Flask, when: datetime | str) -> dict[str, Any]:
    """``flask --app app jobs run --now <ISO>`` through Flask's CLI runner: the command as the shell
    runs it (arguments, time parsing, JSON on the last line), without starting an interpreter per
    call; test_cli_rejects_a_bad_time and the scheduler and fault tests run the real process."""
    db.session.commit()
    iso = when if isinstance(when, str) else when.isoformat()
    result = app.test_cli_runner().invoke(args=["jobs", "run", "--now", iso])
    assert result.exit_code == 0, (result.output[-3000:], result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines, "no output"
    summary = json.loads(lines[-1])
    db.session.expire_all()
    return summary


def sla_events(timeline: list[dict[str, Any]]) -> Counter:
    """(stage, kind) -> how many warning/overdue/escalation entries the timeline shows."""
    return Counter((e["data"]["stage"], e["action"]) for e in timeline if e["action"] in SLA_KINDS)


def get_timeline(client: Any, complaint_id: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/complaint/{complaint_id}/timeline")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    return r.json


def get_case(client: Any, complaint_id: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/complaint/{complaint_id}")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    return r.json["result"]


def iso_local(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(LOCAL_TZ) if value else None


def take(client: Any, complaint_id: int, action: str, expect: int = 200, **fields: Any) -> dict[str, Any]:
    r = client.post(f"/api/v1/complaint/{complaint_id}/transition", json={"action": action, **fields})
    assert r.status_code == expect, (action, r.status_code, r.get_json())
    return r.get_json()


def act(app: Flask, org: Any, complaint: Any, action: str, login: str, now: datetime, **values: Any) -> Any:
    """Take a lifecycle step through the service layer at a chosen instant, and commit."""
    from app.complaints import steps as services

    event = services.take_transition(db.session, complaint, action, org.principal(login), values, now=now)
    db.session.commit()
    return event


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def config(app: Flask, **values: Any) -> Iterator[None]:
    """Set app.config keys for the duration of a block and restore them."""
    missing = object()
    saved = {k: app.config.get(k, missing) for k in values}
    app.config.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is missing:
                app.config.pop(key, None)
            else:
                app.config[key] = value


# --- real SMTP ------------------------------------------------------------------------------


class SmtpSink:
    """An aiosmtpd server on a free local port that keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        self.port = free_port()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                from email import message_from_bytes, policy

                sink.messages.append(
                    {
                        "from": envelope.mail_from,
                        "to": list(envelope.rcpt_tos),
                        "message": message_from_bytes(envelope.content, policy=policy.default),
                    }
                )
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def recipients(self) -> list[str]:
        return [to for m in self.messages for to in m["to"]]


# --- real webhook receiver --------------------------------------------------------------------


class WebhookSink:
    """An HTTP server in a thread recording every POST; ``status`` decides the answer."""

    def __init__(self, status: int = 200, answer: dict[str, Any] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = status
        self.answer = answer if answer is not None else {"errcode": 0, "errmsg": "ok"}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                sink.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(raw.decode("utf-8"))}
                )
                payload = json.dumps(sink.answer).encode()
                self.send_response(sink.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webhook/send?key=test"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- a client whose every request runs in its own application context ---------------------------


class FreshContextClient:
    """A browser (session cookie) or API (JWT) client in which every request gets a fresh
    application context, hence its own database session that is removed at the end of the
    request, as in a real server. (The ``app`` fixture keeps one context pushed for the
    whole test; a request would otherwise share the test's session and whatever it left
    uncommitted.)"""

    def __init__(self, app: Flask, username: str, api: bool = False, password: str = "demo123") -> None:
        self.app = app
        self.http = app.test_client()
        self.headers: dict[str, str] = {}
        if api:
            r = self.open(
                "POST", "/api/v1/security/login", json={"username": username, "password": password, "provider": "db"}
            )
            assert r.status_code == 200, r.get_data(as_text=True)[:300]
            self.headers = {"Authorization": f"Bearer {r.json['access_token']}"}
        else:
            r = self.open("POST", "/login/", data={"username": username, "password": password})
            assert r.status_code in (302, 303) and "/login" not in (r.headers.get("Location") or ""), username

    def open(self, method: str, url: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        db.session.commit()  # the test's own session holds no lock while the request runs
        with self.app.app_context():
            r = self.http.open(url, method=method, headers=headers, **kw)
            r.get_data()
        db.session.expire_all()
        return r

    def get(self, url: str, **kw: Any) -> Any:
        return self.open("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.open("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> Any:
        return self.open("PUT", url, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.open("DELETE", url, **kw)


_serial = {"n": 0}


def register_case(
    app: Flask,
    department: str = "GC",
    level: str = "normal",
    received_at: datetime | None = None,
    now: datetime | None = None,
    by: str = "kefu",
    commit: bool = True,
) -> Any:
    """Register a complaint through the service without the ``app``-parametrised fixtures
    (for tests bound to one backend, such as ``pg_app``)."""
    from app.models import Category, Channel, Department, Level

    _serial["n"] += 1
    n = _serial["n"]
    data = {
        "received_at": received_at,
        "channel": db.session.query(Channel).filter_by(code="phone").one(),
        "customer_name": f"并发客户{n}",
        "customer_phone": f"1370000{n % 10000:04d}",
        "content": "空调不制冷，多次报修无人处理",
        "customer_demand": "尽快维修",
        "category": db.session.query(Category).filter_by(code="equipment").one(),
        "level": db.session.query(Level).filter_by(code=level).one(),
        "department": db.session.query(Department).filter_by(code=department).one(),
        "staff": [],
    }
    user = app.appbuilder.sm.find_user(username=by)
    complaint = intake.register_complaint(db.session, user.id, data, now=now)
    if commit:
        db.session.commit()
    return complaint
