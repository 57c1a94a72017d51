"""Several scheduler processes against one PostgreSQL database never double anything.

Two ``flask --app app jobs serve`` processes (deadline scan every second) and the
``flask --app app jobs run`` CLI run at the same time on a database holding many
cases whose warnings, overdue marks and escalations are already due. Afterwards
every such event exists exactly once per deadline and kind, every inbox message
once per recipient, and every e-mail and robot message reached the (real, local)
SMTP server and webhook receiver once.

The test builds its own database on the PostgreSQL server of TEST_DATABASE_URL
(the shared test database is emptied by other tests' fixtures), migrates and
initialises it with the real commands, and drops it at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sla_support import ROOT, SmtpSink, WebhookSink, flask_bin, register_case
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from app import create_app, db
from app.timeutil import utcnow

PG_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
URGENT = 40
OLD = 20
SPACING = 0.15
LEAD = 2  # seconds from their arrival until the first urgent deadline

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres_only,
    pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL not set"),
]


def _admin_engine():
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture
def scratch_db():
    """A fresh PostgreSQL database migrated with ``flask db upgrade`` and ``flask init``."""
    base = make_url(PG_URL)
    name = f"{base.database}_procs_{os.getpid()}"
    url = base.set(database=name).render_as_string(hide_password=False)
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "app", "SCHEDULER_ENABLED": "0"}
    try:
        for args in (["db", "upgrade"], ["init"]):
            proc = subprocess.run(
                [flask_bin(), "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
            )
            assert proc.returncode == 0, (args, proc.stderr[-3000:])
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _app_for(url: str, smtp_port: int) -> Any:
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
            "SCHEDULER_ENABLED": False,
            "DEMO_MODE": True,
            "DEMO_PASSWORD": "demo123",
            "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            "SECRET_KEY": "test-secret-key-for-the-test-suite-only-0123456789",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp_port,
        }
    )


def _wait_for(path: str, needle: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8", errors="replace") as fh:
            if needle in fh.read():
                return True
        time.sleep(0.2)
    return False


def test_two_schedulers_and_the_cli_record_everything_once(scratch_db):
    from app import settings
    from app.models import ComplaintEvent, Deadline, Delivery, JobRun, Notification
    from app.seed import demo

    with SmtpSink() as smtp, WebhookSink() as hook:
        app = _app_for(scratch_db, smtp.port)
        now = utcnow()
        with app.app_context():
            demo.create_organisation(db.session, "demo123")
            settings.put(db.session, "notify.wecom_webhook", hook.url)
            db.session.commit()
            for i in range(OLD):  # a month old: every warning, overdue mark and escalation is due
                received = now - timedelta(days=30, minutes=i)
                register_case(app, department=("GC", "BA")[i % 2], received_at=received, now=received, commit=False)
            for i in range(5):  # major cases from half an hour ago: the minute chain is all due
                received = now - timedelta(minutes=30 + i)
                register_case(
                    app, level="major", department=("GC", "BA")[i % 2], received_at=received, now=received, commit=False
                )
            db.session.commit()
            db.session.remove()
            db.engine.dispose()

        env = {
            **os.environ,
            "DATABASE_URL": scratch_db,
            "FLASK_APP": "app",
            "SCHEDULER_SCAN_SECONDS": "1",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(smtp.port),
            "WEBHOOK_WECOM_URL": "",
            "WEBHOOK_DINGTALK_URL": "",
            "PYTHONUNBUFFERED": "1",
        }
        logs = tempfile.mkdtemp(prefix="scheduler-procs-")
        servers: list[tuple[subprocess.Popen, str, str]] = []
        first: list[subprocess.Popen] = []
        second: list[subprocess.Popen] = []
        try:

            def cli() -> subprocess.Popen:
                return subprocess.Popen(
                    [
                        flask_bin(),
                        "--app",
                        "app",
                        "jobs",
                        "run",
                        "--now",
                        utcnow().isoformat(),
                        "--job",
                        "deadline_scan",
                        "--job",
                        "deliver_notifications",
                        "--job",
                        "daily_digest",
                    ],
                    cwd=ROOT,
                    env={**env, "SCHEDULER_ENABLED": "0"},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )

            # Two schedulers and two CLI runs start at once on the backlog.
            summaries = []
            first = [cli()]
            for n in range(2):
                out, err = os.path.join(logs, f"serve{n}.out"), os.path.join(logs, f"serve{n}.err")
                proc = subprocess.Popen(
                    [flask_bin(), "--app", "app", "jobs", "serve"],
                    cwd=ROOT,
                    env=env,
                    stdout=open(out, "w"),
                    stderr=open(err, "w"),
                )
                servers.append((proc, out, err))
            first.append(cli())
            for _proc, out, err in servers:
                assert _wait_for(out, "scheduler running", 90), open(err).read()[-3000:]
            # New urgent cases arrive while the schedulers run: their "notify the department"
            # deadline (3 min) and "report to the leader" warning (60 % of 5 min) fall due one
            # every SPACING seconds from LEAD seconds on; two more CLI runs join in.
            with app.app_context():
                arrived = utcnow()
                for i in range(URGENT):
                    received = arrived - timedelta(minutes=3) + timedelta(seconds=LEAD + SPACING * i)
                    register_case(
                        app,
                        level="urgent",
                        department=("GC", "BA")[i % 2],
                        received_at=received,
                        now=received,
                        commit=False,
                    )
                db.session.commit()
                db.session.remove()
            second = [cli(), cli()]
            for proc in first + second:
                stdout, stderr = proc.communicate(timeout=120)
                assert proc.returncode == 0, stderr[-3000:]
                summaries.append(json.loads(stdout.strip().splitlines()[-1]))
            while utcnow() < arrived + timedelta(seconds=LEAD + SPACING * URGENT + 2):
                time.sleep(0.5)
        finally:
            for proc in first + second:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            for proc, _, _ in servers:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc, _, err in servers:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    pytest.fail(f"jobs serve did not stop on SIGTERM: {open(err).read()[-2000:]}")
        stopped = utcnow()
        for proc, _, err in servers:
            assert proc.returncode == 0, open(err).read()[-3000:]
        errors = [line for _, _, err in servers for line in open(err, encoding="utf-8") if " ERROR " in line]
        recorded: Counter = Counter()  # what each process says it recorded
        for n, (_, _, err) in enumerate(servers):
            for line in open(err, encoding="utf-8"):
                if "job deadline_scan: " in line:
                    result = json.loads(line.split("job deadline_scan: ", 1)[1])
                    recorded[f"serve{n}"] += sum(result.get(k, 0) for k in ("warning", "overdue", "escalation"))
        for i, summary in enumerate(summaries):
            result = summary["jobs"]["deadline_scan"]
            recorded[f"cli{i}"] += sum(result.get(k, 0) for k in ("warning", "overdue", "escalation"))

        # A last CLI pass records what fell due since the schedulers' last scan; then the
        # deliveries they queued after their last delivery run (once a minute, at most 200
        # a run) are sent here.
        last = subprocess.run(
            [flask_bin(), "--app", "app", "jobs", "run", "--now", stopped.isoformat(), "--job", "deadline_scan"],
            cwd=ROOT,
            env={**env, "SCHEDULER_ENABLED": "0"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert last.returncode == 0, last.stderr[-3000:]
        result = json.loads(last.stdout.strip().splitlines()[-1])["jobs"]["deadline_scan"]
        recorded["last"] = sum(result.get(k, 0) for k in ("warning", "overdue", "escalation"))
        from app import jobs

        for _ in range(20):
            result = jobs.run_due(app, utcnow(), only=["deliver_notifications"])["jobs"]["deliver_notifications"]
            assert result["retrying"] == 0 and result["failed"] == 0, result
            if result["sent"] == 0:
                break

        with app.app_context():
            deadlines = db.session.scalars(select(Deadline)).all()
            events = db.session.execute(
                select(ComplaintEvent.complaint_id, ComplaintEvent.action, ComplaintEvent.data).where(
                    ComplaintEvent.action.in_(("warning", "overdue", "escalation"))
                )
            ).all()
            per_deadline = Counter((e.complaint_id, e.data["stage"], e.data["cycle"], e.action) for e in events)
            assert per_deadline and max(per_deadline.values()) == 1, per_deadline.most_common(3)
            # Everything due when the schedulers stopped is on record.
            missing = []
            for d in deadlines:
                for kind, instant in (("warning", d.warn_at), ("overdue", d.due_at), ("escalation", d.escalate_at)):
                    if instant is not None and instant <= stopped:
                        if per_deadline[(d.complaint_id, d.stage, d.cycle, kind)] != 1:
                            missing.append((d.complaint_id, d.stage, kind))
            assert missing == []
            assert len(events) >= OLD * 6 + 5 * 9 + URGENT * 2
            # The processes' own counts add up to the rows: nobody believed it recorded something
            # another process had recorded too, and the work was shared.
            assert sum(recorded.values()) == len(events), recorded
            assert recorded["serve0"] + recorded["serve1"] > 0, recorded
            # Inbox: once per recipient and event.
            notes = db.session.execute(
                select(Notification.user_id, Notification.complaint_id, Notification.kind, Notification.body)
            ).all()
            dupes = [k for k, n in Counter(notes).items() if n > 1]
            assert dupes == []
            digests = db.session.execute(
                select(JobRun.period, func.count()).where(JobRun.job == "daily_digest").group_by(JobRun.period)
            ).all()
            assert all(n == 1 for _, n in digests)
            # Deliveries: each sent once, and each message arrived once.
            deliveries = db.session.scalars(select(Delivery)).all()
            assert deliveries and all(d.status == "sent" for d in deliveries), Counter(d.status for d in deliveries)
            assert all(d.attempts == 1 for d in deliveries), [d.attempts for d in deliveries if d.attempts != 1]
            mails = Counter(
                (tuple(m["to"]), str(m["message"]["Subject"]), m["message"].get_content()) for m in smtp.messages
            )
            assert max(mails.values()) == 1, mails.most_common(2)
            assert len(smtp.messages) == sum(1 for d in deliveries if d.channel == "email")
            robots = Counter(r["body"]["markdown"]["content"] for r in hook.requests)
            assert robots and max(robots.values()) == 1, robots.most_common(2)
            assert len(hook.requests) == sum(1 for d in deliveries if d.channel == "wecom")
            db.session.remove()
            db.engine.dispose()
        assert errors == [], errors[:5]
