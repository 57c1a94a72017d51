"""Scheduled jobs and the APScheduler that runs them.

Each job is a plain function of "now" that is safe to run more than once: what it
records is unique in the database, so several schedulers (web workers, a separate
``jobs serve`` process, the ``jobs run --now`` CLI) never double anything. The
scheduler only decides *when*; :func:`run_due` runs whatever is due at an instant,
which is also how operators and tests travel in time.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Optional

from flask import Flask

from app.extensions import db
from app.jobs import core, reports  # noqa: F401  (importing the job modules registers their jobs)
from app.jobs.registry import HEARTBEAT_KEY, REGISTRY, Job, heartbeat, job
from app.models import Setting
from app.timeutil import LOCAL_TZ, utcnow

log = logging.getLogger(__name__)

__all__ = [
    "HEARTBEAT_KEY",
    "REGISTRY",
    "Job",
    "build_scheduler",
    "heartbeat",
    "job",
    "run_due",
    "scheduler_state",
    "start_scheduler",
]


def run_due(app: Flask, now: Optional[datetime] = None, only: Optional[list[str]] = None) -> dict[str, Any]:
    """Run every job due at ``now`` once; return what each did."""
    now = now or utcnow()
    results: dict[str, Any] = {}
    with app.app_context():
        for name, spec in REGISTRY.items():
            if only and name not in only:
                continue
            try:
                if not spec.due(now):
                    results[name] = {"skipped": "not due"}
                    continue
                results[name] = spec.run(now)
                db.session.commit()
            except Exception as exc:  # one failing job must not stop the others
                db.session.rollback()
                log.exception("job %s failed", name)
                results[name] = {"error": f"{exc.__class__.__name__}: {exc}"}
    return {"now": now.isoformat(), "jobs": results}


# --- The scheduler -----------------------------------------------------------------------

_lock = threading.Lock()


def build_scheduler(app: Flask) -> Any:
    # Imported here: only a process that runs the scheduler needs APScheduler loaded.
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(
        timezone=LOCAL_TZ,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
    )
    for name, spec in REGISTRY.items():
        trigger = dict(spec.trigger)
        if trigger.get("trigger") == "interval" and name == "deadline_scan":
            trigger["seconds"] = app.config.get("SCHEDULER_SCAN_SECONDS", trigger.get("seconds", 60))
        if trigger.get("trigger") == "interval" and name == "heartbeat":
            trigger["seconds"] = app.config.get("SCHEDULER_HEARTBEAT_SECONDS", trigger.get("seconds", 60))
        if trigger.get("trigger") == "interval":
            trigger.setdefault("next_run_time", datetime.now(LOCAL_TZ))
        scheduler.add_job(_runner(app, name), id=name, name=spec.description, replace_existing=True, **trigger)
    return scheduler


def _runner(app: Flask, name: str) -> Callable[[], None]:
    def run() -> None:
        summary = run_due(app, utcnow(), only=[name])
        log.info("job %s: %s", name, json.dumps(summary["jobs"].get(name), ensure_ascii=False, default=str))

    return run


def start_scheduler(app: Flask) -> Any:
    """Start the in-process scheduler once per process (no-op if disabled or running)."""
    with _lock:
        existing = app.extensions.get("portal_scheduler")
        if existing is not None:
            return existing
        if not app.config.get("SCHEDULER_ENABLED", True):
            log.info("scheduler disabled in this process (SCHEDULER_ENABLED=0)")
            return None
        scheduler = build_scheduler(app)
        scheduler.start()
        app.extensions["portal_scheduler"] = scheduler
        log.info("scheduler started: %s", ", ".join(REGISTRY))
        return scheduler


def scheduler_state(app: Flask, database_ok: bool = True) -> dict[str, Any]:
    scheduler = app.extensions.get("portal_scheduler")
    state: dict[str, Any] = {
        "enabled_here": bool(app.config.get("SCHEDULER_ENABLED", True)),
        "running_here": bool(scheduler is not None and scheduler.running),
    }
    if scheduler is not None and scheduler.running:
        state["jobs"] = [
            {"id": j.id, "next_run": j.next_run_time.isoformat() if j.next_run_time else None}
            for j in scheduler.get_jobs()
        ]
    if database_ok:
        try:
            row = db.session.get(Setting, HEARTBEAT_KEY)
            state["last_heartbeat"] = row.value.get("at") if row and row.value else None
        except Exception:
            db.session.rollback()
            state["last_heartbeat"] = None
    if state["running_here"]:
        state["state"] = "running"
    elif state.get("last_heartbeat"):
        last = datetime.fromisoformat(state["last_heartbeat"])
        state["state"] = "running elsewhere" if (utcnow() - last).total_seconds() < 180 else "stale"
    else:
        state["state"] = "stopped"
    return state
