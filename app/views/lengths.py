"""Overlong input is refused before any view sees it: every text value of a JSON body or a
form (POST/PUT/PATCH) longer than its field's maximum (``validation.max_length``) is
answered 400 with a message naming the field and its limit, never echoing the value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

from flask import jsonify, request
from markupsafe import escape

from app import validation
from app.i18n import _l
from app.views.complaint_common import COMPLAINT_LABELS

LABELS = {
    **COMPLAINT_LABELS,
    "name": _l("Name"),
    "phone": _l("Phone"),
    "email": _l("E-mail"),
    "address": _l("Address"),
    "note": _l("Note"),
}


def _strings(value: Any, field: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """(field, text) of every string in a JSON value; a list's items belong to its field."""
    if depth > 20:
        return
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, str(key), depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, field, depth + 1)


def _submitted() -> Iterator[tuple[str, str]]:
    if request.is_json:
        yield from _strings(request.get_json(silent=True), "")
    elif request.form:
        for field, values in request.form.lists():
            for value in values:
                yield field, value


def overlong() -> Optional[str]:
    """The refusal message for the first overlong field of the request, else None."""
    for field, value in _submitted():
        message = validation.check_length(field, value, str(LABELS.get(field, field)))
        if message:
            return message
    return None


def refuse_overlong_input() -> Any:
    """``before_request``: 400 for a request with an overlong text field."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    message = overlong()
    if message is None:
        return None
    if request.path.startswith("/api/"):
        return jsonify(message=message), 400
    return f"<!doctype html><meta charset=utf-8><p>{escape(message)}</p>", 400
