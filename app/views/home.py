"""The landing page."""

from __future__ import annotations

from typing import Any

from flask import redirect, url_for
from flask_appbuilder import IndexView, expose
from sqlalchemy import func, select

from app import labels
from app.access import scope
from app.extensions import db
from app.models import (
    Complaint,
    ComplaintStatus,
)
from app.timeutil import format_local
from app.views import todo
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
        counts = dict(
            db.session.execute(select(Complaint.status, func.count()).where(in_scope).group_by(Complaint.status)).all()
        )
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
            total=sum(counts.values()),
            latest=latest,
            status_label=labels.status_label,
            format_local=format_local,
        )


def labels_order() -> list[Any]:
    return list(ComplaintStatus)
