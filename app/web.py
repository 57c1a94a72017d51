"""Application-wide web plumbing: /health, template helpers, JSON errors for the API."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import prison
from flask import Flask, current_app, g, jsonify, redirect, render_template, request
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, InternalServerError

from app import jobs
from app.access.roles import ADMIN, HR_MANAGER
from app.extensions import db
from app.i18n import _
from app.messages import notify
from app.time_limits import sla
from app.time_limits.calendar import uncovered_years
from app.timeutil import format_local, local_date, utcnow
from app.views import lengths
from app.views.errors import HAN, database_unavailable_response, error_page, is_outage, readable_error
from app.views.filter_values import MAX_INT
from app.views.security import current_user

log = logging.getLogger(__name__)


def database_state() -> dict[str, Any]:
    """Reachability and schema revision of the configured database."""
    try:
        db.session.execute(text("SELECT 1"))
        revision = None
        try:
            revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # table missing before the first migration
            db.session.rollback()
        return {"ok": True, "backend": db.engine.dialect.name, "revision": revision}
    except Exception as exc:  # any driver error means "down" for a health check
        db.session.rollback()
        log.warning("health: database unreachable: %s", exc)
        return {"ok": False, "backend": db.engine.dialect.name, "error": exc.__class__.__name__}


csrf = CSRFProtect()

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _check_csrf() -> Any:
    if request.method not in UNSAFE_METHODS:
        return None
    if request.path.startswith("/api/"):
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return None  # a JWT is not sent by browsers on their own: no CSRF exposure
        if request.path.rstrip("/") in ("/api/v1/security/login", "/api/v1/security/refresh"):
            return None
        if current_user() is None:  # no session and no JWT: say so, not "CSRF token missing"
            return _refusal(401, _("Please log in first (a session or a JWT from /api/v1/security/login)."))
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()
    return None


def _unread() -> int:
    user = current_user()
    if user is None:
        return 0
    try:
        return notify.unread_count(db.session, user.id)
    except Exception:  # never break a page for a badge
        db.session.rollback()
        return 0


def menu_html() -> Markup:
    """The navigation menu as the signed-in user's roles show it, in the page's language.

    FAB rendered it on every page, asking for each of its ≈60 items whether the user may see it
    (≈4 ms a page). For roles of config.FAB_ROLES the answer depends on the roles and the
    language only, and both change only with a restart or the user's own roles, which are part
    of the key; a user with a role kept in the database gets FAB's rendering every time."""
    user = current_user()
    roles = tuple(sorted(role.name for role in user.roles)) if user is not None else ()
    builtin = current_app.appbuilder.sm.builtin_roles
    if not roles or any(name not in builtin for name in roles):
        return Markup(render_template(MENU_TEMPLATE, menu=current_app.appbuilder.menu))
    menus = current_app.extensions.setdefault("portal_menus", {})
    key = (roles, str(get_locale()), request.script_root)
    if key not in menus:
        menus[key] = Markup(render_template(MENU_TEMPLATE, menu=current_app.appbuilder.menu))
    return menus[key]


MENU_TEMPLATE = "appbuilder/navbar_menu_items.html"


def _banner_years() -> list[int]:
    """Years whose holiday schedule administrators still have to enter (for them only)."""
    user = current_user()
    if user is None or not {r.name for r in user.roles} & {ADMIN, HR_MANAGER}:
        return []
    try:
        return uncovered_years(sla.load_calendar(db.session), local_date(utcnow()))
    except Exception:
        db.session.rollback()
        return []


def _csp_nonce() -> str:
    """One random nonce per response for FAB's and our inline scripts."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


# The endpoints serving the portal's and FAB's static files, and how long a browser keeps one before
# it asks again (the files have no version in their names: an upgrade shows within minutes).
STATIC_ENDPOINTS = frozenset({"static", "appbuilder.static"})
STATIC_MAX_AGE = 300


def security_headers(response: Any) -> Any:
    """Browsers may load and run only what the portal itself serves."""
    nonce = g.get("csp_nonce")
    script = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; script-src {script}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if request.endpoint in STATIC_ENDPOINTS:
        # The portal's own stylesheets, scripts and images (Werkzeug names every file it sends in
        # Content-Disposition): the browser keeps them a few minutes and then asks whether they
        # changed, instead of fetching all of them again on every page.
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}"
    elif response.headers.get("Content-Disposition"):
        # Every download (PDFs, workbooks, attachments, evidence) may hold personal data: no
        # browser or proxy cache keeps a copy, whatever the sending view chose.
        response.headers["Cache-Control"] = "private, no-store"
    return response


def check_production_settings(app: Flask) -> None:
    if app.config.get("PRODUCTION") and app.config.get("SECRET_KEY") == app.config.get("DEV_SECRET_KEY"):
        raise RuntimeError(
            "PORTAL_ENV=production needs its own SECRET_KEY (a long random string shared by all servers)"
        )


def _refuse_impossible_input() -> Any:
    """Ids beyond any database integer are "not found"; NUL characters are refused outright.

    Both would otherwise reach the database driver and fail there (500).
    """
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
            return _refusal(404, _("Not found."))
        # isdecimal, not isdigit: '²' is a digit that int() cannot read (it raised here: 500).
        if isinstance(value, str) and value.lstrip("-").isdecimal() and not -MAX_INT <= int(value) <= MAX_INT:
            return _refusal(404, _("Not found."))
    texts = [v for values in request.args.listvalues() for v in values]
    if request.method in UNSAFE_METHODS:
        if request.is_json:
            texts.extend(_strings(request.get_json(silent=True)))
        else:
            texts.extend(v for values in request.form.listvalues() for v in values)
    if any("\x00" in t for t in texts):
        return _refusal(400, _("The request contains a NUL character, which no field accepts."))
    if request.path.rstrip("/") == "/api/v1/security/login" and request.method == "POST":
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) and body.get(k) for k in ("username", "password", "provider")
        ):
            return _refusal(400, _('Log in with JSON: username, password and provider ("db").'))
    if request.path.startswith("/api/") and "q" in request.args and not _takes_search_text():
        try:
            prison.loads(request.args["q"])
        except Exception:  # prison raises several kinds for malformed input
            return _refusal(400, _("The q argument is not valid rison."))
    return None


# Endpoints whose ``q`` is the text typed into a search box, not rison.
SEARCH_TEXT_ENDPOINTS = ("/lookup",)


def _takes_search_text() -> bool:
    return request.path.rstrip("/").endswith(SEARCH_TEXT_ENDPOINTS)


MAX_JSON_DEPTH = 32


def _refuse_unreadable_json() -> Any:
    """A JSON body that is empty, not UTF-8, not JSON, nested too deep or holding lone
    surrogates is refused in the caller's language before any endpoint reads it."""
    if request.method not in UNSAFE_METHODS or not request.is_json:
        return None
    raw = request.get_data(cache=True)
    if not raw.strip():
        return _refusal(400, _("The request body is empty: send JSON."))
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _refusal(400, _("The request body is not valid JSON (UTF-8)."))
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return _refusal(400, _("The JSON body is nested too deeply."))
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in [*value.keys(), *value.values()])
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str) and not _is_valid_unicode(value):
            return _refusal(400, _("The text holds an invalid character (a lone surrogate)."))
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: Python accepts them, JSON does not


def _is_valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (_strings(k) + _strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _refusal(status: int, message: str) -> Any:
    if request.path.startswith("/api/"):
        response = jsonify(message=message)
        response.status_code = status
        return response
    return message, status


def init_app(app: Flask) -> None:
    check_production_settings(app)
    csrf.init_app(app)
    app.before_request(_refuse_unreadable_json)
    app.before_request(_refuse_impossible_input)
    app.before_request(lengths.refuse_overlong_input)
    app.before_request(_check_csrf)
    app.after_request(security_headers)
    app.jinja_env.globals["csp_nonce"] = _csp_nonce
    app.jinja_env.globals["portal_menu"] = menu_html

    @app.route("/health")
    def health() -> Any:
        database = database_state()
        body = {
            "status": "ok" if database["ok"] else "unavailable",
            "time": utcnow().isoformat(),
            "database": database,
            "scheduler": jobs.scheduler_state(app, database_ok=database["ok"]),
        }
        return jsonify(body), (200 if database["ok"] else 503)

    @app.route("/favicon.ico")
    def favicon() -> Any:
        return redirect("/static/portal/img/favicon.svg", code=301)

    @app.context_processor
    def portal_context() -> dict[str, Any]:
        return {"portal_unread": _unread(), "portal_banner_years": _banner_years()}

    @app.template_filter("localtime")
    def localtime_filter(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return format_local(value, fmt)

    _register_error_handlers(app)
    _register_jwt_refusals(app)


def _register_jwt_refusals(app: Flask) -> None:
    """flask-jwt-extended answers ``{"msg": "Missing Authorization Header"}``: say it in the user's language."""
    jwt = app.appbuilder.sm.jwt_manager
    if jwt is None:
        return

    def not_logged_in(_reason: str) -> Any:
        return jsonify(message=_("Please log in first (a session or a JWT from /api/v1/security/login).")), 401

    def expired(_header: Any, _payload: Any) -> Any:
        return jsonify(message=_("Your login has expired: please log in again.")), 401

    jwt.unauthorized_loader(not_logged_in)
    jwt.invalid_token_loader(not_logged_in)
    jwt.expired_token_loader(expired)


def _register_error_handlers(app: Flask) -> None:
    """JSON for the API, the portal's own pages for the screens, in the user's language."""

    @app.errorhandler(413)
    def too_large(exc: HTTPException) -> Any:
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        message = _("The upload is too large (at most %(mb)d MB).", mb=limit // 1048576)
        if request.path.startswith("/api/"):
            return jsonify(message=message), 413
        return error_page(413, message)

    @app.errorhandler(DBAPIError)
    def database_unavailable(exc: DBAPIError) -> Any:
        if not is_outage(exc):
            raise exc
        return database_unavailable_response(exc)

    @app.errorhandler(CSRFError)
    def csrf_refused(exc: CSRFError) -> Any:
        message = _("The page has expired or its security token is missing. Reload the page and try again.")
        if request.path.startswith("/api/"):
            return jsonify(message=message), 400
        return error_page(400, message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.code is None or exc.code < 400:
            return exc
        message = exc.description or ""
        if request.path.startswith("/api/"):
            return jsonify(message=readable_error(exc.code, message)), exc.code
        return error_page(exc.code, message if HAN.search(message) else None)

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError) -> Any:
        db.session.rollback()
        if request.path.startswith("/api/"):
            return jsonify(message=_("An unexpected error occurred. It has been logged.")), 500
        return error_page(500)
