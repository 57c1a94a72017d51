"""Backup and restore round trip: every row (cases, events, files) comes back as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


def _flask(url: str, *args: str) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "SCHEDULER_ENABLED": "0", "DEMO_MODE": "1", "DEMO_PASSWORD": "demo123"}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


def _snapshot(url: str) -> dict:
    engine = create_engine(url)
    with engine.connect() as c:
        return {
            "complaints": c.execute(text("SELECT number, status, version FROM complaint ORDER BY id")).all(),
            "events": c.scalar(text("SELECT count(*) FROM complaint_event")),
            "deadlines": c.execute(text("SELECT id, due_at, state FROM deadline ORDER BY id")).all(),
            "penalties": c.scalar(text("SELECT count(*) FROM penalty")),
            "users": c.execute(text("SELECT username, password FROM ab_user ORDER BY id")).all(),
        }


def _round_trip(url: str, backup_file: Path) -> None:
    _flask(url, "db", "upgrade")
    _flask(url, "init")
    assert _flask(url, "demo", "load", "--complaints", "25")["loaded"] is True
    before = _snapshot(url)
    made = _flask(url, "backup", "--output", str(backup_file))
    assert made["bytes"] > 0 and len(made["sha256"]) == 64
    # The portal goes on: a case changes and another is lost.
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("UPDATE complaint SET subject = '改动' WHERE id = (SELECT min(id) FROM complaint)"))
        # The history is append-only (a trigger refuses DELETE on PostgreSQL): add a line instead.
        c.execute(
            text(
                "INSERT INTO complaint_event (complaint_id, at, action) "
                "SELECT min(id), CURRENT_TIMESTAMP, 'tampered' FROM complaint"
            )
        )
    engine.dispose()
    assert _snapshot(url) != before
    _flask(url, "restore", str(backup_file), "--yes")
    assert _snapshot(url) == before


def test_sqlite_backup_and_restore_round_trip(tmp_path):
    _round_trip(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path / "portal.sqlite3")


@pytest.mark.postgres_only
def test_postgresql_backup_and_restore_round_trip(tmp_path):
    base = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not base:
        pytest.skip("TEST_DATABASE_URL not set")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"{make_url(base).database}_backup"  # after the run's (and xdist worker's) database: never shared
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        c.execute(text(f"CREATE DATABASE {name}"))
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        _round_trip(url, tmp_path / "portal.dump")
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_restore_needs_confirmation(tmp_path):
    url = f"sqlite:///{tmp_path / 'portal.db'}"
    env = {**os.environ, "DATABASE_URL": url, "SCHEDULER_ENABLED": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "restore", str(tmp_path / "x.sqlite3")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "--yes" in done.stderr
