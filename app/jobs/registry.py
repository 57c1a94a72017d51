"""The registry of scheduled jobs: ``@job`` declares one, ``REGISTRY`` lists them all.

The job modules (app/jobs/core.py, app/jobs/reports.py) import this module to register
their jobs; app/jobs/__init__.py runs them with APScheduler.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from app.extensions import db, dialect_insert
from app.models import Setting
from app.timeutil import utcnow

HEARTBEAT_KEY = "scheduler.heartbeat"


@dataclass
class Job:
    """A job: its schedule (APScheduler trigger arguments) and what it does at ``now``."""

    name: str
    description: str
    trigger: dict[str, Any]
    run: Callable[[datetime], dict[str, Any]]
    due: Callable[[datetime], bool] = field(default=lambda now: True)


REGISTRY: dict[str, Job] = {}


def job(name: str, description: str, due: Optional[Callable[[datetime], bool]] = None, **trigger: Any) -> Callable:
    """Register a job function ``fn(now) -> summary dict``."""

    def wrap(fn: Callable[[datetime], dict[str, Any]]) -> Callable[[datetime], dict[str, Any]]:
        REGISTRY[name] = Job(name, description, trigger, fn, due or (lambda now: True))
        return fn

    return wrap


def heartbeat(now: datetime) -> dict[str, Any]:
    """Record that a scheduler is alive (read by /health in every process)."""
    value = {"at": now.isoformat(), "host": socket.gethostname(), "pid": os.getpid()}
    # An upsert: two schedulers starting together must not both insert the row.
    insert = dialect_insert(db.session)(Setting.__table__).values(
        key=HEARTBEAT_KEY, value=value, description="last scheduler heartbeat", updated_at=utcnow()
    )
    db.session.execute(
        insert.on_conflict_do_update(index_elements=["key"], set_={"value": value, "updated_at": utcnow()})
    )
    return value
