"""Searching masked personal fields (客户电话、邮箱、地址): by exact match only, and logged.

A masked column (``privacy.MASKED_COLUMNS``) keeps one filter, "equal to", in the REST
filters and in the screens' search widgets; a prefix, substring or any other operator is
refused with a 400, because 72 prefix searches rebuilt a masked phone number. Each
exact-match search is written to the access log like a reveal.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from flask import request
from flask_appbuilder.models.sqla.filters import FilterEqual

from app.access import privacy
from app.extensions import db
from app.i18n import _
from app.views.security import current_user

EXACT_OPERATOR = "eq"


def restrict_filters(filters: Any, datamodel: Any) -> tuple[str, ...]:
    """Leave only "equal to" on the view's masked columns (search widget and REST alike)."""
    columns = privacy.masked_columns(datamodel.obj)
    for column in columns:
        for table in (filters._search_filters, filters._all_filters):
            if column in table:
                table[column] = [FilterEqual(column, datamodel)]
    return columns


def refusal(column: str) -> str:
    labels = {"phone": _("Phone"), "email": _("E-mail"), "address": _("Address")}
    return _("%(field)s can only be searched by its complete value (exact match).", field=labels.get(column, column))


def api_filters(rison: Any, columns: tuple[str, ...]) -> tuple[Optional[str], list[tuple[str, Any]]]:
    """(refusal message, exact searches) of a REST list request's ``filters``."""
    exact: list[tuple[str, Any]] = []
    filters = rison.get("filters") if isinstance(rison, dict) else None
    for item in filters if isinstance(filters, list) else []:
        if not isinstance(item, dict) or item.get("col") not in columns:
            continue
        if item.get("opr") != EXACT_OPERATOR:
            return refusal(item["col"]), []
        exact.append((item["col"], item.get("value")))
    return None, exact


def screen_filters(columns: tuple[str, ...]) -> tuple[Optional[str], list[tuple[str, Any]]]:
    """(refusal message, exact searches) of a list screen's ``_flt_<n>_<column>`` arguments."""
    exact: list[tuple[str, Any]] = []
    for arg in request.args:
        match = re.fullmatch(r"_flt_(\d+)_(.*)", arg)
        if not match or match.group(2) not in columns:
            continue
        if match.group(1) != "0":  # the only filter left on a masked column is "equal to"
            return refusal(match.group(2)), []
        exact.extend((match.group(2), value) for value in request.args.getlist(arg))
    return None, exact


def log_searches(searches: list[tuple[str, Any]], matches: list[int], source: str) -> None:
    """One access-log line per exact search of a masked column (committed here)."""
    if not searches:
        return
    user = current_user()
    for column, value in searches:
        privacy.log_exact_search(
            db.session,
            column,
            value,
            matches,
            user_id=user.id if user else None,
            username=user.username if user else None,
            ip=request.remote_addr,
            source=source,
        )
    db.session.commit()
