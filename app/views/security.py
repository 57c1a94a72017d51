"""Security manager of the portal: who the caller is, and the scope filter views use.

Role permissions are declared in ``config.FAB_ROLES``; row scope lives in
``app/scope.py``. This module connects both to Flask-AppBuilder.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Optional

from flask import (
    current_app,
    flash,
    g,
    has_request_context,
    jsonify,
    make_response,
    redirect,
    request,
    session,
    url_for,
)
from flask_appbuilder.actions import action
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import AuthDBView, UserDBModelView
from flask_appbuilder.utils.limit import Limit
from flask_limiter.util import get_remote_address
from flask_login import user_logged_in
from sqlalchemy import bindparam, exists, func, inspect, select
from sqlalchemy.orm import aliased, joinedload

from app import settings
from app.access import login_limits, privacy, scope, units
from app.access.roles import DEPARTMENT_HEAD
from app.extensions import db
from app.i18n import _, _l
from app.models import AccessLog, Department, SessionCutoff, Staff, Unit
from app.timeutil import format_local, to_local, utcnow
from app.views.errors import outage_or_500

log = logging.getLogger(__name__)


def password_policy(password: str) -> None:
    """At least 8 characters, with both letters and digits (raised in the user's language)."""
    if len(password or "") < 8 or not any(c.isdigit() for c in password) or not any(c.isalpha() for c in password):
        raise PasswordComplexityValidationError(_("A password needs at least 8 characters, with letters and digits."))


# --- Sign-in rate limits ------------------------------------------------------------------------
# Counted in shared storage (the database, or Redis: RATELIMIT_STORAGE_URI, see
# app/access/login_limits.py), per name typed and client address, with a looser ceiling per
# address: the employees of an office behind one address do not lock each other out.


def _login_limit() -> str:
    return current_app.config.get("AUTH_RATE_LIMIT", "10 per minute")


def _address_login_limit() -> str:
    return current_app.config.get("AUTH_RATE_LIMIT_PER_ADDRESS", "300 per minute")


def _login_name() -> str:
    """The user name a sign-in request carries (JSON body or form), normalised."""
    body = request.get_json(silent=True) if request.is_json else None
    name = body.get("username") if isinstance(body, dict) else request.form.get("username")
    return str(name or "").strip().lower()[:100]


def _name_and_address() -> str:
    return f"{_login_name()}|{get_remote_address()}"


def _too_many_sign_ins() -> str:
    return _("Too many sign-in attempts. Please wait a minute and try again.")


LOGIN_LIMITS = [
    Limit(_login_limit, key_func=_name_and_address, methods=("POST",), error_message=_too_many_sign_ins),
    Limit(_address_login_limit, key_func=get_remote_address, methods=("POST",), error_message=_too_many_sign_ins),
]


# --- Account lock-out ------------------------------------------------------------------------
# FAB counts consecutive failures in ab_user.fail_login_count (reset on success). When it
# reaches the ``security.lockout_attempts`` setting the account is locked: an
# ``account_locked`` line goes to the access log, and for ``security.lockout_minutes``
# from that line even the right password is refused. An administrator unlocks earlier.


def _client_ip() -> Optional[str]:
    return request.remote_addr if has_request_context() else None


def _lockout_policy() -> tuple[int, int]:
    attempts = int(settings.get(db.session, "security.lockout_attempts") or 0)
    minutes = int(settings.get(db.session, "security.lockout_minutes") or 0)
    return attempts, minutes


def locked_until(user: Any, now: Optional[datetime] = None) -> Optional[datetime]:
    """When the account's lock ends, or None when it is not locked now."""
    attempts, minutes = _lockout_policy()
    if attempts <= 0 or (user.fail_login_count or 0) < attempts:
        return None
    locked_at = db.session.scalar(
        select(func.max(AccessLog.at)).where(AccessLog.user_id == user.id, AccessLog.action == "account_locked")
    )
    if locked_at is None:
        return None
    until = locked_at + timedelta(minutes=minutes)
    return until if until > (now or utcnow()) else None


def lock_message(until: datetime) -> str:
    attempts, _minutes = _lockout_policy()
    return _(
        "The account is locked after %(n)d failed sign-ins. Try again after %(time)s, "
        "or ask the administrator to unlock it.",
        n=attempts,
        time=format_local(until),
    )


def unlock_account(user: Any, actor: Optional[Any] = None) -> bool:
    """Clear the failure count of an account (logged); False when it was not counting failures."""
    was = bool(user.fail_login_count)
    user.fail_login_count = 0
    privacy.log_access(
        db.session,
        "account_unlocked",
        user_id=user.id,
        username=user.username,
        target=("user", user.id),
        ip=_client_ip(),
        detail=f"by {getattr(actor, 'username', None) or 'cli'}",
    )
    return was


class PortalAuthDBView(AuthDBView):
    """The login form, telling a locked-out user why and until when."""

    limits = LOGIN_LIMITS

    @property
    def invalid_login_message(self) -> Any:  # type: ignore[override]
        until = g.get("_login_locked_until")
        if until is not None:
            return lock_message(until)
        return _l("Invalid login. Please try again.")


class PortalUserDBModelView(UserDBModelView):
    """FAB's user list, with the failure count and an unlock action for administrators."""

    # Same permission name as FAB's view, so config.FAB_ROLES applies unchanged.
    class_permission_name = "UserDBModelView"
    list_columns = ["first_name", "last_name", "username", "email", "active", "roles", "fail_login_count"]
    label_columns = {**UserDBModelView.label_columns, "fail_login_count": _l("Failed sign-ins")}

    def get_action_permission_name(self, name: str) -> str:
        # can_unlock on UserDBModelView, which FAB_ROLES grants to Admin.
        return "can_unlock" if name == "unlock" else super().get_action_permission_name(name)

    @action("unlock", _l("Unlock account"), None, "fa-unlock")
    def unlock(self, items: Any) -> Any:
        items = items if isinstance(items, list) else [items]
        actor = current_user()
        for user in items:
            unlock_account(user, actor)
        db.session.commit()
        flash(_("%(n)d account(s) unlocked.", n=len(items)), "success")
        return redirect(url_for(f"{type(self).__name__}.list"))


class PortalSecurityApi(SecurityApi):
    """FAB's JWT login API, answering 503 (not 500) while the database is unreachable."""

    # The JWT login is rate limited like the login form.
    limits = LOGIN_LIMITS

    def response_401(self) -> Any:
        # A locked account is refused with the reason (403), not a bare 401.
        until = g.get("_login_locked_until")
        if until is not None:
            return self.response(403, message=lock_message(until), locked_until=to_local(until).isoformat())
        return super().response_401()

    def response_500(self, message: Optional[str] = None) -> Any:

        return outage_or_500(super().response_500, message)


class PortalSecurityManager(SecurityManager):
    """FAB's SQLAlchemy security manager, without creating tables behind Alembic's back."""

    security_api = PortalSecurityApi
    authdbview = PortalAuthDBView
    userdbmodelview = PortalUserDBModelView

    def get_user_by_id(self, pk: Any) -> Any:
        """The signed-in user of a request with its roles, groups and lock-out cut-off in one
        statement (FAB loads them lazily: three statements on every request, four with the cut-off)."""
        return _user_and_cutoff(self.user_model, pk)[0]

    def auth_user_db(self, username: Any, password: Any) -> Any:
        """FAB's password check, refusing a locked account and logging every failure.

        A name that is no account (or an inactive one) is counted and locked exactly like an
        account, so neither the status nor the message tells which names exist.
        """
        now = utcnow()
        user = None
        if username:
            user = self.find_user(username=username) or self.find_user(email=username)
        account = user if user is not None and user.is_active else None
        until = locked_until(account, now) if account is not None else self._unknown_locked_until(username, now)
        if until is not None:
            g._login_locked_until = until
            self._log_login("login_failed", user, username, "account locked")
            db.session.commit()
            return None
        attempts, minutes = _lockout_policy()
        if account is not None and attempts > 0 and (account.fail_login_count or 0) >= attempts:
            account.fail_login_count = 0  # the lock has run out: a fresh set of attempts
        result = super().auth_user_db(username, password)
        if result is not None or not username:
            return result
        self._log_login("login_failed", user, username, None)
        if account is not None and attempts > 0 and (account.fail_login_count or 0) >= attempts:
            self._log_login("account_locked", user, username, f"{account.fail_login_count} failures", now)
            login_limits.end_sessions(db.session, account.id, now)
            g._login_locked_until = now + timedelta(minutes=minutes)
        elif account is None and password:
            # Counted like an account's failure (FAB counts none for an empty password).
            until = login_limits.unknown_failed(db.session, str(username), attempts, minutes, now)
            if until is not None:
                self._log_login("account_locked", user, username, f"{attempts} failures", now)
                g._login_locked_until = until
        db.session.commit()
        return None

    @staticmethod
    def _unknown_locked_until(username: Any, now: datetime) -> Optional[datetime]:
        return login_limits.unknown_locked_until(db.session, str(username), now) if username else None

    # --- A lock-out ends the account's sessions and tokens ---------------------------------------

    def create_login_manager(self, app: Any) -> Any:
        lm = super().create_login_manager(app)
        lm.user_loader(self.load_user_session)
        user_logged_in.connect(_stamp_session)
        return lm

    def load_user_session(self, pk: Any) -> Any:
        """The user of a session cookie, unless a lock-out ended the session after it began."""
        user = self.load_user(pk)
        if user is not None and login_limits.ended(
            _user_and_cutoff(self.user_model, user.id)[1], session.get("_signed_in_at")
        ):
            return None
        return user

    def create_jwt_manager(self, app: Any) -> Any:
        jwt_manager = super().create_jwt_manager(app)
        jwt_manager.token_in_blocklist_loader(_token_ended)
        jwt_manager.revoked_token_loader(_token_ended_response)
        return jwt_manager

    def _log_login(
        self, action_: str, user: Any, username: Any, detail: Optional[str], now: Optional[datetime] = None
    ) -> None:
        privacy.log_access(
            db.session,
            action_,
            user_id=user.id if user is not None else None,
            username=str(username)[:100],
            ip=_client_ip(),
            detail=detail,
            now=now,
        )

    def _has_access_builtin_roles(self, role: Any, permission_name: str, view_name: str) -> bool:
        """FAB's check of a config.FAB_ROLES role, remembered per (role, permission, view).

        FAB matches every regular expression of the role on each call, and a page asks ≈40 times
        (menu, buttons, actions). The roles of FAB_ROLES change only with the configuration, that
        is with a restart, so the answers are kept for the process; a user's roles are still read
        on every request, and roles kept in the database are still asked of the database."""
        answers = self.__dict__.setdefault("_builtin_answers", {})  # this app's FAB_ROLES only
        key = (role.name, permission_name, view_name)
        known = answers.get(key)
        if known is None:
            known = answers[key] = super()._has_access_builtin_roles(role, permission_name, view_name)
        return known

    def is_item_public(self, permission_name: str, view_name: str) -> bool:
        # Nothing in the portal is public (default deny); FAB would ask the database on
        # every request whether the Public role was granted something.
        return False

    def create_db(self) -> None:
        # Tables belong to the Alembic migrations. Roles are created by
        # `flask --app app init` (run by `make run`), not by every worker at start-up.
        return None

    def sync_builtin_roles(self) -> None:
        """Create the role rows of FAB_ROLES plus Public, so users can be assigned to them.

        Their permissions are the regular expressions of config.FAB_ROLES, checked in
        memory; no permission rows are written for them.
        """
        if not inspect(db.engine).has_table("ab_role"):
            raise RuntimeError("database schema missing: run `flask --app app db upgrade`")
        for name in [*self.builtin_roles, self.auth_role_public]:
            if self.find_role(name) is None:
                self.add_role(name)


def _stamp_session(_app: Any, user: Any = None, **_kw: Any) -> None:
    """Remember when the session signed in (a later lock-out of the account ends it)."""
    session["_signed_in_at"] = time.time()


def _token_ended(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    """A JWT (access or refresh) issued before a lock-out of its user is refused."""
    user_id = payload.get("sub")
    if not str(user_id or "").isdecimal():
        return False
    model = current_app.appbuilder.sm.user_model
    return login_limits.ended(_user_and_cutoff(model, int(user_id))[1], payload.get("iat"))


def _user_and_cutoff(model: Any, pk: Any) -> tuple[Any, Any]:
    """(user with roles and groups, the not-before of its sessions or None), one statement a request."""
    cached = g.get("_user_and_cutoff") if has_request_context() else None
    if cached is not None and cached[0] == pk:
        return cached[1]
    row = db.session.execute(_user_statement(model), {"user_id": pk}).unique().first()
    found = (row[0], row[1]) if row is not None else (None, None)
    if has_request_context():
        g._user_and_cutoff = (pk, found)
    return found


@functools.cache
def _user_statement(model: Any) -> Any:
    """The user with roles and groups and its sessions' cut-off, built once per process: every
    request with a JWT or a session runs it, and building it with its eager loads and working out
    its cache key cost more than running it."""
    return (
        select(model, SessionCutoff.not_before)
        .outerjoin(SessionCutoff, SessionCutoff.user_id == model.id)
        .where(model.id == bindparam("user_id"))
        .options(joinedload(model.roles), joinedload(model.groups))
    )


def _token_ended_response(_header: dict[str, Any], _payload: dict[str, Any]) -> Any:
    return make_response(jsonify(message=_("Your sign-in has ended. Please sign in again.")), 401)


@functools.cache
def _principal_statement() -> Any:
    """The staff record, the departments it heads and what the unit tree says of them, in one
    query; the tree itself is read only for the head of a unit (app/access/units.py).

    Built once per process: four aliased joins cost more to construct than to run."""
    head_unit, own, own_unit = aliased(Unit), aliased(Department), aliased(Unit)
    return (
        select(
            Staff.id,
            Staff.department_id,
            Department.id,
            head_unit.kind,
            own_unit.kind,
            exists().where(Unit.head_id == Staff.id, Unit.active.is_(True)),
            exists().where(Unit.id.isnot(None)),
        )
        .outerjoin(Department, Department.head_id == Staff.id)
        .outerjoin(head_unit, head_unit.id == Department.unit_id)
        .outerjoin(own, own.id == Staff.department_id)
        .outerjoin(own_unit, own_unit.id == own.unit_id)
        .where(Staff.user_id == bindparam("user_id"), Staff.active.is_(True))
    )


def principal_for_user(user: Any) -> scope.Principal:
    """Build the scope principal of a FAB user (roles, staff record, departments)."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "id", None):
        return scope.NOBODY
    roles = frozenset(role.name for role in user.roles)
    rows = db.session.execute(_principal_statement(), {"user_id": user.id}).all()
    if not rows:
        return scope.Principal(user_id=user.id, roles=roles)
    staff_id, own_department = rows[0][0], rows[0][1]
    heads_of = frozenset(row[2] for row in rows if row[2] is not None)  # department.head_id is his
    headed = {own_department} | heads_of
    if DEPARTMENT_HEAD not in roles:
        return scope.Principal(
            user_id=user.id, roles=roles, staff_id=staff_id, department_ids=frozenset({own_department})
        )
    # A head of a unit reads all departments of the unit and its sub-units (app/units.py).
    through_units = _unit_scope(staff_id, headed, rows)
    return scope.Principal(
        user_id=user.id,
        roles=roles,
        staff_id=staff_id,
        department_ids=frozenset(headed) | through_units.department_ids,
        unit_ids=through_units.unit_ids,
        unit_department_ids=through_units.department_ids - frozenset(headed),
        head_office=through_units.head_office,
        headed_department_ids=heads_of,
    )


def _unit_scope(staff_id: int, headed: set[int], rows: list[Any]) -> units.UnitScope:
    """:func:`units.scope_of_head` from the principal query's columns: without a unit tree
    everything is the company; a department is of the head office when it has no unit or
    the company's; only the head of a unit needs the tree."""
    _, _, _, _, own_kind, heads_a_unit, any_unit = rows[0]
    if not any_unit:
        return units.UnitScope(frozenset(), frozenset(), True)
    if heads_a_unit:
        return units.scope_of_head(db.session, staff_id, headed)
    kinds = [own_kind] + [row[3] for row in rows if row[2] is not None]
    head_office = any(kind is None or getattr(kind, "value", kind) == units.COMPANY for kind in kinds)
    return units.UnitScope(frozenset(), frozenset(), head_office)


def current_user() -> Optional[Any]:
    """The logged-in user, by session cookie or JWT; None when anonymous."""
    if not has_request_context():
        return None
    user = current_app.appbuilder.sm.current_user
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user


def current_principal() -> scope.Principal:
    """The caller's scope principal, computed once per request."""
    if not has_request_context():
        return scope.NOBODY
    user = current_user()
    key = (id(request._get_current_object()), getattr(user, "id", None))
    cached = g.get("_principal")
    if cached is None or cached[0] != key:
        cached = (key, principal_for_user(user))
        g._principal = cached
    return cached[1]


class ScopeFilter(BaseFilter):
    """FAB base filter applying :func:`app.scope.criterion` to a view's model."""

    name = "In scope"
    arg_name = "in_scope"

    def apply(self, query: Any, value: Any) -> Any:
        return query.filter(scope.criterion(self.model, current_principal()))


SCOPED = [["id", ScopeFilter, lambda: None]]
"""``base_filters`` value for every view or API over a scoped model."""
