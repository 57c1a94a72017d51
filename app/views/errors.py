"""Error answers shared by screens, the REST API and the security manager: 503 on outages, 409/422 for bad data."""

from __future__ import annotations

import logging
import sys
from typing import Any, Optional

from flask import jsonify, make_response, request
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from app import lifecycle
from app.extensions import db
from app.i18n import _

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
        response = app_response_html(message)
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


def app_response_html(message: str) -> Any:
    return make_response(
        f"<!DOCTYPE html><html lang='zh'><meta charset='utf-8'><title>503</title>"
        f"<body style='font-family:sans-serif;padding:3em'><h2>503</h2><p>{message}</p></body></html>"
    )


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


def json_error(status: int, message: str) -> Any:
    response = jsonify(message=message)
    response.status_code = status
    return response
