"""The landing page."""

from __future__ import annotations

import functools
from typing import Any

from flask import redirect, url_for
from flask_appbuilder import IndexView, expose
from sqlalchemy import select

from app import labels
from app.access import scope
from app.extensions import db
from app.models import (
    Complaint,
    ComplaintStatus,
    Department,
)
from app.timeutil import format_local
from app.views import datamodel, todo
from app.views.datamodel import capped_counts_of_statement, capped_sum, summed
from app.views.security import current_principal, current_user

# The newest cases as the home page shows them: their own columns and the department's name, not
# whole cases with five joined relations (PostgreSQL spent 2.3 ms planning that for 0.1 ms of work).
_LATEST_COLUMNS = (
    Complaint.id,
    Complaint.number,
    Complaint.received_at,
    Complaint.subject,
    Complaint.status,
    Department.name.label("department_name"),
)


class HomeView(IndexView):
    """Landing page: what needs the user's attention, inside the user's scope."""

    index_template = "home.html"

    @expose("/")
    def index(self) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for(self.appbuilder.sm.auth_view.__class__.__name__ + ".login"))
        principal = current_principal()
        cap = datamodel.HOME_CAP
        tiles, newest = _statements(principal, db.session.get_bind().dialect.name, cap)
        counts = {ComplaintStatus(s): n for s, n in summed(db.session.execute(tiles).all(), cap).items()}
        status_counts = [
            (labels.status_label(status), counts.get(status, 0), status.value) for status in labels_order()
        ]
        latest = db.session.execute(newest).all()
        items, kinds = todo.awaiting(principal, url_for)
        due_today, late = todo.due_today_and_late(principal, url_for)
        return self.render_template(
            self.index_template,
            awaiting=items,
            awaiting_kinds=kinds,
            due_today=due_today,
            late=late,
            appbuilder=self.appbuilder,
            principal=principal,
            status_counts=status_counts,
            total=capped_sum(counts.values()),
            latest=latest,
            status_label=labels.status_label,
            format_local=format_local,
        )


@functools.lru_cache(maxsize=512)
def _statements(p: scope.Principal, dialect: str, cap: int) -> tuple[Any, Any]:
    """The status tiles' and the newest cases' statements of ``p``, built once per principal, database
    and cap, and process, as 待我处理's are (``todo.statements``): they depend on nothing else.

    The tiles count the cases in scope per status, each up to the home page's cap (shown "999+"),
    not every case of the company on every visit to the home page."""
    branches = scope.branches(Complaint, p)
    tiles = capped_counts_of_statement(Complaint.status, [s.value for s in ComplaintStatus], cap, branches, dialect)
    newest = (
        select(*_LATEST_COLUMNS)
        .outerjoin(Department, Department.id == Complaint.department_id)
        .where(scope.criterion(Complaint, p))
        .order_by(Complaint.received_at.desc())
        .limit(8)
    )
    return tiles, newest


def labels_order() -> list[Any]:
    return list(ComplaintStatus)
