"""Operator commands: ``flask --app app <group> <command>``."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any, Optional

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from app import backup, jobs
from app.extensions import db
from app.models import Complaint, StatDaily
from app.quality import stats
from app.seed import defaults as seed
from app.seed import demo, generate
from app.time_limits import sla
from app.timeutil import parse_iso
from app.views import security


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, default=str))


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create roles, permissions and default reference data (idempotent)."""
    sm = current_app.appbuilder.sm
    sm.sync_builtin_roles()
    current_app.appbuilder.add_permissions(update_perms=True)

    added = seed.seed_defaults(db.session)
    db.session.commit()
    clocks = sla.backfill(db.session)
    db.session.commit()

    rebuilt = 0
    if db.session.query(StatDaily).first() is None and db.session.query(Complaint.id).first() is not None:
        rebuilt = stats.rebuild(db.session)  # a database from before the aggregates existed
        db.session.commit()
    _echo_json(
        {
            "roles": sorted(current_app.config["FAB_ROLES"]),
            "defaults_added": added,
            "clocks_started": clocks,
            "stat_rows_rebuilt": rebuilt,
        }
    )


demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("load")
@click.option("--complaints", default=300, show_default=True, help="Number of demo complaints.")
@click.option("--force-mode", is_flag=True, help="Load even when DEMO_MODE is off.")
@with_appcontext
def demo_load(complaints: int, force_mode: bool) -> None:
    """Load the demo company into an EMPTY database (only in demo mode)."""
    if not (current_app.config.get("DEMO_MODE") or force_mode):
        _echo_json({"loaded": False, "reason": "DEMO_MODE is off"})
        return
    result = demo.load(db.session, complaints=complaints)
    db.session.commit()
    _echo_json(result)


@demo_cli.command("generate")
@click.option("--complaints", type=int, required=True, help="How many complaints to add.")
@click.option("--open", "open_cases", type=int, default=None, help="How many of them are still open (default 10%).")
@click.option("--days", type=int, default=730, show_default=True, help="Spread over the last N days.")
@click.option(
    "--open-days",
    type=float,
    default=None,
    help="Open cases arrived in the last N days (default: the newest arrivals).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@with_appcontext
def demo_generate(complaints: int, open_cases: Optional[int], days: int, open_days: Optional[float], seed: int) -> None:
    """Fill the database with realistic history in bulk (load tests, benchmarks)."""
    result = generate.generate(db.session, complaints, days=days, open_cases=open_cases, seed=seed, open_days=open_days)
    result["stat_rows"] = stats.rebuild(db.session)
    db.session.commit()
    _echo_json(result)


stats_cli = AppGroup("stats", help="Dashboard aggregates.")


@stats_cli.command("rebuild")
@with_appcontext
def stats_rebuild() -> None:
    """Recompute every daily aggregate from the cases (after imports or repairs)."""
    rows = stats.rebuild(db.session)
    db.session.commit()
    _echo_json({"stat_rows": rows})


jobs_cli = AppGroup("jobs", help="Scheduled jobs.")


@jobs_cli.command("run")
@click.option("--now", "now_text", default=None, help="ISO time to run at (time travel); default: now.")
@click.option("--job", "only", multiple=True, help="Run only this job (repeatable).")
def jobs_run(now_text: Optional[str], only: tuple[str, ...]) -> None:
    """Run every job due at --now once and print a JSON summary (last line)."""
    try:
        now = parse_iso(now_text) if now_text else None
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {now_text}", param_hint="--now")
    summary = jobs.run_due(current_app._get_current_object(), now, only=list(only) or None)
    _echo_json(summary)


@jobs_cli.command("list")
def jobs_list() -> None:
    """List the jobs with their schedule and next run time."""
    scheduler = jobs.build_scheduler(current_app._get_current_object())
    scheduler.start(paused=True)
    rows = [
        {
            "id": j.id,
            "description": j.name,
            "trigger": str(j.trigger),
            "next_run": j.next_run_time.isoformat() if j.next_run_time else None,
        }
        for j in scheduler.get_jobs()
    ]
    scheduler.shutdown(wait=False)
    _echo_json(rows)


@jobs_cli.command("serve")
def jobs_serve() -> None:
    """Run the scheduler in the foreground (for a dedicated scheduler process)."""
    app = current_app._get_current_object()
    app.config["SCHEDULER_ENABLED"] = True
    scheduler = jobs.start_scheduler(app)
    stop = threading.Event()

    def _stop(*_args: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"scheduler running: {', '.join(j.id for j in scheduler.get_jobs())}")
    sys.stdout.flush()
    while not stop.is_set():
        stop.wait(1)
    scheduler.shutdown(wait=True)


@click.command("backup")
@click.option("--output", "-o", default=None, help="Backup file (default: instance/backups/complaints-<time>.<ext>).")
@with_appcontext
def backup_command(output: Optional[str]) -> None:
    """Write a consistent copy of the whole database (pg_dump on PostgreSQL)."""
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    target = output or backup.default_path(current_app.instance_path, db.engine.dialect.name)
    try:
        _echo_json(backup.backup(url, target))
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("restore")
@click.argument("source")
@click.option("--yes", is_flag=True, help="Confirm replacing the current database.")
@with_appcontext
def restore_command(source: str, yes: bool) -> None:
    """Replace the whole database with a backup made by `flask --app app backup`."""
    if not yes:
        raise click.ClickException("restore replaces every row of the current database: add --yes to confirm")
    db.session.remove()
    db.engine.dispose()  # no pooled connection may hold the tables during the restore
    try:
        _echo_json(backup.restore(current_app.config["SQLALCHEMY_DATABASE_URI"], source))
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc


users_cli = AppGroup("users", help="Login accounts.")


@users_cli.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """Unlock an account locked after too many failed sign-ins (logged)."""
    user = current_app.appbuilder.sm.find_user(username=username)
    if user is None:
        raise click.ClickException(f"no such user: {username}")
    was = security.unlock_account(user)
    db.session.commit()
    _echo_json({"username": username, "unlocked": True, "had_failures": was})


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(init_command)
    app.cli.add_command(demo_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(stats_cli)
