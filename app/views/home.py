"""The landing page."""

from __future__ import annotations

from typing import Any

from flask import redirect, url_for
from flask_appbuilder import IndexView, expose
from sqlalchemy import and_, select

from app import labels
from app.access import scope
from app.extensions import db
from app.models import (
    Complaint,
    ComplaintStatus,
)
from app.timeutil import format_local
from app.views import todo
from app.views.base import CappedCount, capped_counts
from app.views.security import current_principal, current_user


class HomeView(IndexView):
    """Landing page: what needs the user's attention, inside the user's scope."""

    index_template = "home.html"

    @expose("/")
    def index(self) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for(self.appbuilder.sm.auth_view.__class__.__name__ + ".login"))
        principal = current_principal()
        in_scope = scope.criterion(Complaint, principal)
        counts = status_counts_in_scope(in_scope)
        status_counts = [
            (labels.status_label(status), counts.get(status, 0), status.value) for status in labels_order()
        ]
        latest = list(
            db.session.scalars(select(Complaint).where(in_scope).order_by(Complaint.received_at.desc()).limit(8))
        )
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
            total=_total(counts.values()),
            latest=latest,
            status_label=labels.status_label,
            format_local=format_local,
        )


def status_counts_in_scope(in_scope: Any) -> dict[ComplaintStatus, int]:
    """Cases in scope per status, each counted up to the lists' cap (shown "10,000+"), not a count
    of every case of the company on every visit to the home page."""
    named = [(status.value, and_(in_scope, Complaint.status == status)) for status in ComplaintStatus]
    return {ComplaintStatus(s): n for s, n in capped_counts(Complaint.id, named).items()}


def _total(counts: Any) -> int:
    total = sum(counts)
    return CappedCount(total) if any(isinstance(c, CappedCount) for c in counts) else total


def labels_order() -> list[Any]:
    return list(ComplaintStatus)
