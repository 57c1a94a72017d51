"""Security manager of the portal: who the caller is, and the scope filter views use.

Role permissions are declared in ``config.FAB_ROLES``; row scope lives in
``app/scope.py``. This module connects both to Flask-AppBuilder.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from flask import current_app, g, has_request_context, request
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.utils.limit import Limit
from flask_limiter.util import get_remote_address
from sqlalchemy import inspect, select

from app import db, scope
from app.models import Department, Staff

log = logging.getLogger(__name__)


def password_policy(password: str) -> None:
    """At least 8 characters, with both letters and digits (raised in the user's language)."""
    from flask_appbuilder.exceptions import PasswordComplexityValidationError

    from app.i18n import _

    if len(password or "") < 8 or not any(c.isdigit() for c in password) or not any(c.isalpha() for c in password):
        raise PasswordComplexityValidationError(_("A password needs at least 8 characters, with letters and digits."))


def _login_limit() -> str:
    return current_app.config.get("AUTH_RATE_LIMIT", "10 per minute")


class PortalSecurityApi(SecurityApi):
    """FAB's JWT login API, answering 503 (not 500) while the database is unreachable."""

    # The JWT login is rate limited like the login form.
    limits = [Limit(_login_limit, key_func=get_remote_address, methods=("POST",))]

    def response_500(self, message: Optional[str] = None) -> Any:
        from app.views import outage_or_500

        return outage_or_500(super().response_500, message)


class PortalSecurityManager(SecurityManager):
    """FAB's SQLAlchemy security manager, without creating tables behind Alembic's back."""

    security_api = PortalSecurityApi

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
    if scope.DEPARTMENT_HEAD not in roles:
        return scope.Principal(
            user_id=user.id, roles=roles, staff_id=staff_id, department_ids=frozenset({own_department})
        )
    # A head of a unit reads all departments of the unit and its sub-units (app/units.py).
    from app import units

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
