"""The registry of scheduled jobs: ``@job`` declares one, ``REGISTRY`` lists them all.

The job modules (app/jobs/core.py, app/jobs/reports.py) import this module to register
their jobs; app/jobs/__init__.py runs them with APScheduler.

Every job is bounded: it declares a time budget per pass (``budget_seconds``, overridden
by the setting ``jobs.<name>.budget_seconds``) and a batch size (``jobs.<name>.batch_size``);
:func:`in_batches` runs a pass as committed batches until nothing is left or the budget is
spent, and says so (``"more": true``). A batch only picks work not done yet, so the next
pass resumes where this one stopped.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from app import settings
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
    budget_seconds: float = 30.0
    batch_size: int = 500


REGISTRY: dict[str, Job] = {}


def job(
    name: str,
    description: str,
    due: Optional[Callable[[datetime], bool]] = None,
    budget_seconds: float = 30.0,
    batch_size: int = 500,
    **trigger: Any,
) -> Callable:
    """Register a job function ``fn(now) -> summary dict`` with its time budget per pass and batch size."""

    def wrap(fn: Callable[[datetime], dict[str, Any]]) -> Callable[[datetime], dict[str, Any]]:
        REGISTRY[name] = Job(name, description, trigger, fn, due or (lambda now: True), budget_seconds, batch_size)
        return fn

    return wrap


def _positive(key: str, default: float) -> float:
    try:
        value = float(settings.get(db.session, key))
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default


def budget_seconds(name: str) -> float:
    """The job's time budget per pass: the setting ``jobs.<name>.budget_seconds``, else its declared one."""
    return _positive(f"jobs.{name}.budget_seconds", REGISTRY[name].budget_seconds)


def batch_size(name: str) -> int:
    """The job's batch size: the setting ``jobs.<name>.batch_size``, else its declared one."""
    return int(_positive(f"jobs.{name}.batch_size", REGISTRY[name].batch_size))


# One batch of a job: given the batch size and where the previous batch stopped (0 at first),
# do it; return its counts and where the next batch starts, or None when no work is left.
Step = Callable[[int, Any], tuple[dict[str, int], Any]]


def in_batches(name: str, step: Step) -> dict[str, Any]:
    """One pass of job ``name``: ``step`` batch after batch, each committed, until no work is
    left or the time budget is spent; the summed counts, ``more`` (stopped on the budget) and
    the pass's ``seconds``. At least one batch runs, so every pass makes progress."""
    began, budget, size = time.monotonic(), budget_seconds(name), batch_size(name)
    totals: Counter[str] = Counter()
    cursor: Any = 0
    while cursor is not None and (not totals or time.monotonic() - began < budget):
        counts, cursor = step(size, cursor)
        db.session.commit()
        totals.update(counts)
        totals["batches"] += 1
    return {**totals, "more": cursor is not None, "seconds": round(time.monotonic() - began, 3)}


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
