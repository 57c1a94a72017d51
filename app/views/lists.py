"""List screens with case numbers: the number opens the row's page, identifiers and names never wrap."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import current_app, url_for
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

    def __call__(self, **kwargs: Any) -> Any:
        """The rows' cells are formatted here, each row one piece of HTML for the template: a Jinja
        loop over 25 rows of ten columns made some 800 template calls a page, a third of the list's
        time. Each cell reads as the template wrote it, escaped the same way (markupsafe)."""
        args = {**self.template_args, **kwargs}

        def rows_html(can_show: bool, can_edit: bool, can_delete: bool) -> list[tuple[Any, Markup, Markup]]:
            # The template knows the caller's permissions on the view (FAB's is_item_visible).
            allowed = {**args, "can_show": can_show, "can_edit": can_edit, "can_delete": can_delete}
            return _rows_html(allowed, _row_buttons(allowed))

        return super().__call__(rows_html=rows_html, **kwargs)


# The row buttons are FAB's macro rendered once a page for this stand-in key, which each row's own
# key then replaces (25 renderings of the macro, each translating its titles, cost 2 ms a page).
_KEY = "__row_key__"


def _row_buttons(args: dict[str, Any]) -> str:
    if not (args.get("can_show") or args.get("can_edit") or args.get("can_delete")):
        return ""
    template = current_app.jinja_env.get_template("widgets/row_buttons.html")
    return template.render({**args, "pk": _KEY})


def _rows_html(args: dict[str, Any], buttons: str) -> list[tuple[Any, Markup, Markup]]:
    """(pk, its buttons, its cells) of each row of the list's page, as HTML."""
    formatters = args.get("formatters_columns") or {}
    links, nowrap = args.get("link_columns") or (), args.get("nowrap_columns") or ()
    endpoint = args.get("link_endpoint") or f"{args.get('modelview_name')}.show"
    linked = bool(args.get("can_show"))
    # The row's link is the route built once for a stand-in key, which each row's own key replaces
    # (url_for for each of 25 rows was a twentieth of a list page's time).
    href = url_for(endpoint, pk=_KEY) if linked and links else ""
    columns = [
        (name, formatters.get(name), '<td class="nowrap">' if name in nowrap else "<td>", name in links)
        for name in args.get("include_columns") or ()
    ]
    rows = []
    for pk, item in zip(args.get("pks") or [], args.get("value_columns") or [], strict=True):
        cells = []
        for name, formatter, opening, link in columns:
            value = item[name] if name in item else ""
            shown = formatter(value) if formatter and name in item else value
            if link and linked and shown:
                shown = Markup('<a class="case-number" href="{}">{}</a>').format(
                    href.replace(_KEY, quote(str(pk), safe="")), shown
                )
            cells.append(f"{opening}{escape(shown)}</td>")
        rows.append((pk, Markup(buttons.replace(_KEY, str(escape(pk)))), Markup("".join(cells))))
    return rows


class ComplaintListWidget(CaseListWidget):
    """A list of complaints shown on another screen's tab: the number opens the case page."""

    link_endpoint = "ComplaintView.show"


def complaint_link(complaint: Any) -> Any:
    """A related complaint shown as its number, a link to its case page."""
    if complaint is None:
        return ""
    href = url_for("ComplaintView.show", pk=complaint.id)
    return Markup('<a class="case-number" href="{}">{}</a>').format(href, escape(complaint.number or complaint.id))
