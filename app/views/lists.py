"""List screens with case numbers: the number opens the row's page, identifiers and names never wrap."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_appbuilder.widgets import ListWidget
from markupsafe import Markup, escape

# Columns that hold identifiers or people's and departments' names: kept on one line.
NOWRAP_COLUMNS = frozenset(
    {
        "number",
        "complaint",
        "customer",
        "staff",
        "department",
        "received_at",
        "created_at",
        "issued_at",
        "issued_by",
        "recorded_by",
        "status",
        "deadline_status",
        "level",
        "category",
        "dispatched_at",
    }
)


class CaseListWidget(ListWidget):
    """FAB's list where ``number`` links to the row's page and identifier columns do not wrap."""

    template = "widgets/case_list.html"
    link_endpoint: str | None = None  # default: the list's own show page

    def __init__(self, **kwargs: Any):
        super().__init__(
            link_columns=("number",), nowrap_columns=NOWRAP_COLUMNS, link_endpoint=self.link_endpoint, **kwargs
        )


class ComplaintListWidget(CaseListWidget):
    """A list of complaints shown on another screen's tab: the number opens the case page."""

    link_endpoint = "ComplaintView.show"


def complaint_link(complaint: Any) -> Any:
    """A related complaint shown as its number, a link to its case page."""
    if complaint is None:
        return ""
    href = url_for("ComplaintView.show", pk=complaint.id)
    return Markup('<a class="case-number" href="{}">{}</a>').format(href, escape(complaint.number or complaint.id))
