"""Fault survival on PostgreSQL with real processes.

- The database server restarts while gunicorn workers answer requests and a scheduler
  runs: during the outage the portal answers 503 (never 500, never hangs), afterwards
  it recovers by itself (pool pre-ping) and the scheduler goes on.
- A scheduler killed in the middle of a deadline scan loses and duplicates nothing:
  the next run records every event exactly once.
- Two gunicorn workers take the same step on the same case at once: one wins, the
  other answers 409.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
BASE = os.environ.get("TEST_DATABASE_URL", "").strip()
# Scratch databases are named after the run's (and xdist worker's) test database, so that
# two runs on one server never share one.
PREFIX = make_url(BASE).database if BASE else ""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres_only,
    pytest.mark.skipif(not BASE, reason="TEST_DATABASE_URL not set"),
    # One xdist worker runs the module: its gunicorn server and database serve all its tests.
    pytest.mark.xdist_group("pg_faults"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL",)}
    env.update(DATABASE_URL=url, DEMO_MODE="1", DEMO_PASSWORD="demo123", PYTHONUNBUFFERED="1", **extra)
    return env


def _flask(url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=_env(url, SCHEDULER_ENABLED="0"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _admin() -> Any:
    return create_engine(BASE, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _drop(name: str) -> None:
    _wait_for_postgres()
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def _url(name: str) -> str:
    return BASE.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def template() -> Iterator[str]:
    """The migrated schema with the demo data, built once through the CLI; each test database is a copy."""
    name = f"{PREFIX}_fault_tpl"
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        c.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = _url(name)
    _flask(url, "db", "upgrade")
    _flask(url, "init")
    _flask(url, "demo", "load", "--complaints", "30")
    try:
        yield name
    finally:
        _drop(name)


def _fresh_database(template: str, name: str) -> Iterator[str]:
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        c.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    admin.dispose()
    try:
        yield _url(name)
    finally:
        _drop(name)


@pytest.fixture(scope="module")
def database(template: str) -> Iterator[str]:
    """The database the gunicorn server of this module works on."""
    yield from _fresh_database(template, f"{PREFIX}_fault")


@pytest.fixture
def quiet_database(template: str) -> Iterator[str]:
    """A database no scheduler touches but the test's own processes."""
    yield from _fresh_database(template, f"{PREFIX}_fault_scan")


def _wait_for_postgres(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("PostgreSQL did not come back")


def _cluster() -> str:
    return sorted(os.listdir("/etc/postgresql"))[0]


_SERVER_LOGS: dict[str, Any] = {}  # base URL -> the gunicorn log of that server


def _server_log_tail(base: str, size: int = 6000) -> str:
    """The end of a server's log, for a failure's message (the temporary folder does not outlive the run)."""
    log = _SERVER_LOGS.get(base)
    return log.read_text(errors="replace")[-size:] if log is not None and log.exists() else ""


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: Any) -> Iterator[str]:
    """gunicorn with two workers and the scheduler in each (the DB lock keeps it single)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    env = _env(
        database,
        SCHEDULER_ENABLED="1",
        SCHEDULER_SCAN_SECONDS="2",
        SCHEDULER_HEARTBEAT_SECONDS="2",
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="4",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_TIMEOUT="30",
    )
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    _SERVER_LOGS[base] = log
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _request(url: str, data: Any = None, token: str | None = None, timeout: float = 10) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            payload = json.loads(e.read() or b"null")
        except ValueError:
            payload = None
        return e.code, payload


def _token(base: str, username: str) -> str:
    status, body = _request(
        base + "/api/v1/security/login", {"username": username, "password": "demo123", "provider": "db"}
    )
    assert status == 200, body
    return body["access_token"]


@pytest.mark.exclusive  # the server stops for every database: no other xdist worker may run a test meanwhile
def test_database_restart_gives_503_then_recovers_by_itself(server: str, database: str):
    token = _token(server, "renshi")
    seen: list[tuple[float, str, int]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            for path in ("/health", "/api/v1/complaint/?q=(page_size:5)"):
                started = time.monotonic()
                try:
                    status, _ = _request(server + path, token=token, timeout=15)
                except OSError:
                    status = -1  # a connection the server dropped
                seen.append((time.monotonic() - started, path, status))
            time.sleep(0.05)

    worker = threading.Thread(target=hammer, daemon=True)
    worker.start()
    time.sleep(1.5)
    cluster = _cluster()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "stop", "-m", "fast"], check=True)
    try:
        time.sleep(4)
        during = list(seen)
    finally:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "start"], check=True)
        _wait_for_postgres()
    # Recovery without restarting anything.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _request(server + "/api/v1/complaint/?q=(page_size:5)", token=token)[0] == 200:
            break
        time.sleep(0.5)
    time.sleep(1)
    stop.set()
    worker.join(timeout=30)
    statuses = {status for _, _, status in seen}
    assert 503 in {s for _, _, s in during}, f"no 503 during the outage: {sorted(statuses)}"
    assert 500 not in statuses, "a request failed with 500 during or after the outage\n" + _server_log_tail(server)
    assert max(elapsed for elapsed, _, _ in seen) < 12, "a request hung during the outage"
    assert seen[-1][2] == 200 and _request(server + "/health")[0] == 200
    # The scheduler survived the outage: its heartbeat moves on.
    first = _request(server + "/health")[1]["scheduler"]["last_heartbeat"]
    deadline = time.monotonic() + 15  # it beats every 2 s here
    while True:
        later = _request(server + "/health")[1]["scheduler"]
        if (later["last_heartbeat"] and later["last_heartbeat"] > (first or "")) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert later["last_heartbeat"] and later["last_heartbeat"] > (first or ""), later


def test_two_workers_taking_the_same_step_at_once_one_wins(server: str, database: str):
    kefu = _token(server, "kefu")
    status, created = _request(
        server + "/api/v1/complaint/",
        {
            "content": "并发测试",
            "customer_name": "并发",
            "customer_phone": "13900001111",
            "channel": 1,
            "category": 1,
            "level": 1,
            "department": 2,
        },
        token=kefu,
    )
    assert status == 201, created
    case_id = created["id"]
    token = _token(server, "renshi")
    results: list[int] = []
    barrier = threading.Barrier(4)

    def judge() -> None:
        barrier.wait()
        results.append(
            _request(
                f"{server}/api/v1/complaint/{case_id}/transition",
                {"action": "judge_valid", "note": "并发"},
                token=token,
            )[0]
        )

    threads = [threading.Thread(target=judge) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [200, 409, 409, 409], results
    engine = create_engine(database)
    with engine.connect() as c:
        judged = c.scalar(
            text("SELECT count(*) FROM complaint_event WHERE complaint_id = :i AND action = 'judge_valid'"),
            {"i": case_id},
        )
    engine.dispose()
    assert judged == 1


def test_scheduler_killed_mid_scan_loses_and_duplicates_nothing(quiet_database: str):
    database = quiet_database
    # Many clocks due at once, so that a scan takes a while.
    _flask(database, "demo", "generate", "--complaints", "8000", "--open", "8000", "--open-days", "20", "--seed", "11")
    engine = create_engine(database)
    with engine.connect() as c:
        due = c.scalar(text("SELECT count(*) FROM deadline WHERE state = 'open' AND next_check_at <= now()"))
    assert due > 3000
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "jobs", "run", "--job", "deadline_scan"],
        cwd=ROOT,
        env=_env(database, SCHEDULER_ENABLED="0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # Kill it once its scan has written events inside its (uncommitted) transaction.
    deadline = time.monotonic() + 60
    writing = False
    while not writing and time.monotonic() < deadline and process.poll() is None:
        with engine.connect() as c:
            writing = bool(
                c.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'complaint-portal' "
                        "AND datname = current_database() AND xact_start IS NOT NULL AND backend_xid IS NOT NULL"
                    )
                )
            )
        time.sleep(0.05)
    time.sleep(0.3)
    killed = process.poll() is None
    process.kill()
    process.wait()
    assert writing and killed, "the scan finished before it could be killed: make the backlog larger"
    with engine.connect() as c:
        after_kill = c.scalar(
            text("SELECT count(*) FROM complaint_event WHERE action IN ('warning','overdue','escalation')")
        )
    # The killed scan's transaction never committed: nothing half-written.
    # The next scheduler finishes the work (a pass stops after its time budget, the next goes on).
    recorded = 0
    for _ in range(10):
        summary = json.loads(_flask(database, "jobs", "run", "--job", "deadline_scan").strip().splitlines()[-1])
        done = sum(summary["jobs"]["deadline_scan"].get(k, 0) for k in ("warning", "overdue", "escalation"))
        if done == 0:
            break
        recorded += done
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT count(*), count(DISTINCT dedup_key) FROM complaint_event "
                "WHERE action IN ('warning','overdue','escalation')"
            )
        ).one()
        still_due = c.scalar(text("SELECT count(*) FROM deadline WHERE state = 'open' AND next_check_at <= now()"))
    engine.dispose()
    assert rows[0] == rows[1], "an event was recorded twice"
    assert rows[0] == after_kill + recorded
    assert recorded > 0 and done == 0
    assert still_due == 0
