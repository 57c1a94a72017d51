"""Responsibility disputes (责任异议) in statistics: how often each department objected, and the rulings.

The lifecycle steps (``object_dispatch``, ``rule_dispute``) live in app/workflow.py and
app/services.py; this module only counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Department, Dispute

STATES = ("open", "upheld", "reassigned")


def dispute_counts(
    session: Session, start: datetime, end: datetime, department_ids: Optional[Iterable[int]] = None
) -> dict[str, Any]:
    """Disputes raised in [start, end) per objecting department, by state of the ruling.

    ``department_ids`` limits the count to those departments (None: the whole company).
    """
    stmt = (
        select(Dispute.from_department_id, Department.name, Dispute.state, func.count(Dispute.id))
        .join(Department, Department.id == Dispute.from_department_id)
        .where(Dispute.at >= start, Dispute.at < end)
        .group_by(Dispute.from_department_id, Department.name, Dispute.state)
    )
    if department_ids is not None:
        stmt = stmt.where(Dispute.from_department_id.in_(list(department_ids)))
    rows: dict[int, dict[str, Any]] = {}
    for department_id, name, state, n in session.execute(stmt).all():
        row = rows.setdefault(
            department_id,
            {"department_id": department_id, "department": name, "count": 0, **{s: 0 for s in STATES}},
        )
        row["count"] += int(n)
        row[state] = row.get(state, 0) + int(n)
    by_department = sorted(rows.values(), key=lambda r: (-r["count"], r["department"]))
    return {
        "total": sum(r["count"] for r in by_department),
        **{s: sum(r[s] for r in by_department) for s in STATES},
        "by_department": by_department,
    }
