"""Error answers shared by screens, the REST API and the security manager: 503 on outages, 409/422 for bad data."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Optional

from flask import current_app, jsonify, make_response, render_template, request
from markupsafe import escape
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from app import lifecycle
from app.extensions import db
from app.i18n import _, _l

log = logging.getLogger(__name__)


def is_outage(exc: BaseException) -> bool:
    """A lost or refused database connection (not bad data, which is the caller's problem)."""
    return isinstance(exc, (OperationalError, InterfaceError)) or bool(getattr(exc, "connection_invalidated", False))


def database_unavailable_response(exc: Exception) -> Any:
    """503 while the database cannot be reached (the pool reconnects by itself afterwards)."""
    try:
        db.session.rollback()
    except Exception:  # the connection is gone; the pool discards it
        pass
    log.error("database error: %s", exc.__class__.__name__)
    message = _("The database is temporarily unavailable. Please try again in a moment.")
    if request.path.startswith("/api/") or request.path == "/health":
        response = jsonify(message=message)
    else:
        response = error_page(503, message)
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


ERROR_TITLES = {
    400: _l("The request is not valid"),
    401: _l("Please log in"),
    403: _l("No access"),
    404: _l("Page not found"),
    405: _l("Not allowed here"),
    409: _l("Conflict"),
    413: _l("Too large"),
    422: _l("The data cannot be processed"),
    429: _l("Too many requests"),
    500: _l("Something went wrong"),
    503: _l("Temporarily unavailable"),
}
ERROR_MESSAGES = {
    403: _l("You do not have access to this page."),
    404: _l("The page or record does not exist, or it is outside what you may see."),
    405: _l("This page cannot be used like that."),
    409: _l("The record was changed at the same time by someone else, or it is in a state that does not allow this."),
    500: _l("An unexpected error occurred. It has been logged; please try again or tell the administrator."),
}


def error_page(status: int, message: Optional[str] = None) -> Any:
    """The portal's own error page: in the user's language, with the menu and a way back.

    When the page cannot be drawn (the database is gone, so no menu), a bare page says the same.
    """
    title = str(ERROR_TITLES.get(status, ERROR_TITLES[400 if status < 500 else 500]))
    text = message or str(ERROR_MESSAGES.get(status, title))
    referrer = request.referrer or ""
    back = referrer if referrer.startswith(request.host_url) and referrer != request.url else None
    try:
        body = render_template(
            "portal_error.html",
            appbuilder=current_app.appbuilder,
            base_template=current_app.appbuilder.base_template,
            code=status,
            title=title,
            message=text,
            back=back,
        )
    except Exception:  # no menu without the database: the bare page
        db.session.rollback()
        body = (
            f"<!DOCTYPE html><html lang='zh'><meta charset='utf-8'><title>{status}</title>"
            f"<body style='font-family:sans-serif;padding:3em'><h2>{status} · {escape(title)}</h2>"
            f"<p>{escape(text)}</p><p><a href='/'>{escape(_('Back to the home page'))}</a></p></body></html>"
        )
    return make_response(body, status)


def outage_or_500(fallback: Any, message: Optional[str]) -> Any:
    """FAB's @safe turns every exception into 500; a database outage is a 503."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DBAPIError):
        if is_outage(exc):
            return database_unavailable_response(exc)
        db.session.rollback()
        if isinstance(exc, IntegrityError):
            return json_error(
                409, _("A record with the same unique value exists already, or a linked record is missing.")
            )
        if isinstance(exc, DataError):
            return json_error(422, _("A value is out of range or of the wrong kind."))
    if isinstance(exc, lifecycle.ValidationFailed):
        db.session.rollback()
        return json_error(422, exc.errors)
    if isinstance(exc, OverflowError):  # SQLite's driver refuses integers beyond 64 bits
        db.session.rollback()
        return json_error(422, _("A value is out of range or of the wrong kind."))
    return fallback(message)


# FAB's own 400 messages (rison, ordering, JSON bodies, werkzeug's BadRequest) in the caller's language.
FAB_400 = (
    ("Not a valid rison schema", _l("The q argument holds a part that this resource does not accept.")),
    ("Not a valid rison", _l("The q argument is not valid rison.")),
    ("Invalid order by column", _l("The list cannot be sorted by that column.")),
    ("Cannot use both select", _l("The q argument holds a part that this resource does not accept.")),
    ("Request is not JSON", _l("The request body must be JSON.")),
    ("400 Bad Request", _l("The request body is not valid JSON (UTF-8).")),
)
HAN = re.compile(r"[\u4e00-\u9fff]")


def readable_400(message: Any) -> Any:
    """A 400's message in the caller's language; FAB and werkzeug write theirs in English."""
    if not isinstance(message, str) or HAN.search(message):
        return message
    for prefix, readable in FAB_400:
        if message.startswith(prefix):
            return str(readable)
    return str(_l("The request is not valid."))


def readable_error(status: int, message: str) -> str:
    """An HTTP error's message for the API in the caller's language (werkzeug's are English)."""
    if status == 400:
        return readable_400(message)
    if message and HAN.search(message):
        return message
    return str(ERROR_MESSAGES.get(status) or ERROR_TITLES.get(status) or _l("The request is not valid."))


# marshmallow's (and FAB's generated schemas') English field messages, by pattern.
FIELD_MESSAGES = (
    (r"Not a valid date\.", _l("Not a valid date (YYYY-MM-DD).")),
    (r"Not a valid datetime\.", _l("Not a valid date and time (ISO 8601, e.g. 2026-09-30T15:00:00+08:00).")),
    (r"Not a valid (integer|number)\.|cannot convert float .*", _l("Give a number.")),
    (r"Not a valid (string|email address|URL)\.", _l("Not a valid value.")),
    (r"Not a valid boolean\.", _l("Give true or false.")),
    (r"Not a valid list\.|Invalid input type\.|Not a valid mapping type\.", _l("Not a valid value.")),
    (r"Missing data for required field\.|Field may not be null\.", _l("This field is required.")),
    (r"Unknown field\.", _l("This field is not accepted here.")),
    (r"Longer than maximum length (?P<n>\d+)\.", _l("At most %(n)s characters.")),
    (r"Shorter than minimum length (?P<n>\d+)\.", _l("At least %(n)s characters.")),
    (r"Must be one of: .*", _l("Not one of the allowed values.")),
    (
        r"Must be greater than or equal to (?P<min>\S+) and less than or equal to (?P<max>\S+)\.",
        _l("Between %(min)s and %(max)s."),
    ),
    (r"Must be greater than or equal to (?P<min>\S+)\.", _l("At least %(min)s.")),
    (r"Must be less than or equal to (?P<max>\S+)\.", _l("At most %(max)s.")),
)
MAX_MESSAGE = 300


def readable_field_errors(errors: Any) -> Any:
    """Field messages in the caller's language, never quoting a huge value back whole."""
    if isinstance(errors, dict):
        return {key: readable_field_errors(value) for key, value in errors.items()}
    if isinstance(errors, (list, tuple)):
        return [readable_field_errors(value) for value in errors]
    if not isinstance(errors, str) and not errors.__class__.__name__ == "LazyString":
        return errors
    text = str(errors)
    if not HAN.search(text):
        for pattern, readable in FIELD_MESSAGES:
            match = re.fullmatch(pattern, text)
            if match:
                text = str(readable) % match.groupdict() if match.groupdict() else str(readable)
                break
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


def json_error(status: int, message: str) -> Any:
    response = jsonify(message=message)
    response.status_code = status
    return response
