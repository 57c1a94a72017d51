"""Security manager of the portal: who the caller is, and the scope filter views use.

Role permissions are declared in ``config.FAB_ROLES``; row scope lives in
``app/scope.py``. This module connects both to Flask-AppBuilder.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Optional

from flask import current_app, flash, g, has_request_context, redirect, request, url_for
from flask_appbuilder.actions import action
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import AuthDBView, UserDBModelView
from flask_appbuilder.utils.limit import Limit
from flask_limiter.util import get_remote_address
from sqlalchemy import func, inspect, select

from app import settings
from app.access import privacy, scope, units
from app.access.roles import DEPARTMENT_HEAD
from app.extensions import db
from app.i18n import _, _l
from app.models import AccessLog, Department, Staff
from app.timeutil import format_local, to_local, utcnow
from app.views.errors import outage_or_500

log = logging.getLogger(__name__)


def password_policy(password: str) -> None:
    """At least 8 characters, with both letters and digits (raised in the user's language)."""
    if len(password or "") < 8 or not any(c.isdigit() for c in password) or not any(c.isalpha() for c in password):
        raise PasswordComplexityValidationError(_("A password needs at least 8 characters, with letters and digits."))


def _login_limit() -> str:
    return current_app.config.get("AUTH_RATE_LIMIT", "10 per minute")


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
    limits = [Limit(_login_limit, key_func=get_remote_address, methods=("POST",))]

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

    def auth_user_db(self, username: Any, password: Any) -> Any:
        """FAB's password check, refusing a locked account and logging every failure."""
        now = utcnow()
        user = None
        if username:
            user = self.find_user(username=username) or self.find_user(email=username)
        if user is not None:
            until = locked_until(user, now)
            if until is not None:
                g._login_locked_until = until
                self._log_login("login_failed", user, username, "account locked")
                db.session.commit()
                return None
            attempts, _minutes = _lockout_policy()
            if attempts > 0 and (user.fail_login_count or 0) >= attempts:
                user.fail_login_count = 0  # the lock has run out: a fresh set of attempts
        result = super().auth_user_db(username, password)
        if result is not None or not username:
            return result
        self._log_login("login_failed", user, username, None)
        attempts, minutes = _lockout_policy()
        if user is not None and attempts > 0 and (user.fail_login_count or 0) >= attempts:
            self._log_login("account_locked", user, username, f"{user.fail_login_count} failures", now)
            g._login_locked_until = now + timedelta(minutes=minutes)
        db.session.commit()
        return None

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


def principal_for_user(user: Any) -> scope.Principal:
    """Build the scope principal of a FAB user (roles, staff record, departments)."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "id", None):
        return scope.NOBODY
    roles = frozenset(role.name for role in user.roles)
    # The staff record and the departments it heads, in one query.
    rows = db.session.execute(
        select(Staff.id, Staff.department_id, Department.id)
        .outerjoin(Department, Department.head_id == Staff.id)
        .where(Staff.user_id == user.id, Staff.active.is_(True))
    ).all()
    if not rows:
        return scope.Principal(user_id=user.id, roles=roles)
    staff_id, own_department = rows[0][0], rows[0][1]
    headed = {own_department} | {row[2] for row in rows if row[2] is not None}
    if DEPARTMENT_HEAD not in roles:
        return scope.Principal(
            user_id=user.id, roles=roles, staff_id=staff_id, department_ids=frozenset({own_department})
        )
    # A head of a unit reads all departments of the unit and its sub-units (app/units.py).
    through_units = units.scope_of_head(db.session, staff_id, headed)
    return scope.Principal(
        user_id=user.id,
        roles=roles,
        staff_id=staff_id,
        department_ids=frozenset(headed) | through_units.department_ids,
        unit_ids=through_units.unit_ids,
        unit_department_ids=through_units.department_ids - frozenset(headed),
        head_office=through_units.head_office,
    )


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
