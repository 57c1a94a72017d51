"""Account lock-out: after N consecutive failed sign-ins the account is locked for M minutes.

Both the login form and the JWT login refuse even the right password while locked, with
the reason; every failure, the lock and an administrator's unlock are in the access log.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from http_clients import PASSWORD, Client
from sqlalchemy import select

from app import db, settings
from app.models import AccessLog
from app.timeutil import utcnow


def _api_login(app, username, password):
    with app.app_context():
        r = app.test_client().post(
            "/api/v1/security/login", json={"username": username, "password": password, "provider": "db"}
        )
        r.get_data()
        return r


def _form_login(app, username, password):
    """Post the login form; return (signed in?, the page shown next)."""
    with app.app_context():
        c = app.test_client()
        r = c.post("/login/", data={"username": username, "password": password})
        signed_in = r.status_code in (302, 303) and "/login" not in (r.headers.get("Location") or "")
        page = c.get("/login/").get_data(as_text=True) if not signed_in else ""
        return signed_in, page


def _log(action=None):
    db.session.expire_all()
    stmt = select(AccessLog).order_by(AccessLog.id)
    if action:
        stmt = stmt.where(AccessLog.action == action)
    return db.session.scalars(stmt).all()


def _user(app, name):
    db.session.expire_all()
    return app.appbuilder.sm.find_user(username=name)


def test_api_login_locks_after_five_failures_and_refuses_the_right_password(app):
    for attempt in range(4):
        assert _api_login(app, "kefu", "wrong-password").status_code == 401, attempt
    fifth = _api_login(app, "kefu", "wrong-password")
    assert fifth.status_code == 403 and fifth.json["message"] and fifth.json["locked_until"]
    refused = _api_login(app, "kefu", PASSWORD)
    assert refused.status_code == 403 and refused.json["message"] == fifth.json["message"]
    assert "access_token" not in refused.json
    failures = _log("login_failed")
    assert len(failures) == 6 and {f.username for f in failures} == {"kefu"}
    assert failures[-1].detail == "account locked" and failures[0].ip
    locks = _log("account_locked")
    assert len(locks) == 1 and locks[0].user_id == _user(app, "kefu").id
    # Another account is not affected.
    assert _api_login(app, "renshi", PASSWORD).status_code == 200


def test_login_form_shows_the_lock_and_refuses_the_right_password(app):
    for _ in range(5):
        signed_in, _page = _form_login(app, "zhuguan_a", "wrong-password")
        assert not signed_in
    signed_in, page = _form_login(app, "zhuguan_a", PASSWORD)
    assert not signed_in
    assert "锁定" in page or "locked" in page
    assert len(_log("account_locked")) == 1


def test_success_before_the_limit_resets_the_count(app):
    for _ in range(4):
        _api_login(app, "kefu", "wrong-password")
    assert _api_login(app, "kefu", PASSWORD).status_code == 200
    for _ in range(4):
        assert _api_login(app, "kefu", "wrong-password").status_code == 401
    assert _api_login(app, "kefu", PASSWORD).status_code == 200
    assert _log("account_locked") == []


def test_lock_ends_after_the_configured_minutes(app):
    settings.put(db.session, "security.lockout_attempts", 3)
    settings.put(db.session, "security.lockout_minutes", 30)
    user = _user(app, "kefu")
    # Locked 31 minutes ago (rows are append-only, so the past lock is written as it was).
    user.fail_login_count = 3
    db.session.add(
        AccessLog(at=utcnow() - timedelta(minutes=31), user_id=user.id, username="kefu", action="account_locked")
    )
    db.session.commit()
    assert _api_login(app, "kefu", PASSWORD).status_code == 200
    # Locked 29 minutes ago: still refused.
    user = _user(app, "kefu")
    user.fail_login_count = 3
    db.session.add(
        AccessLog(at=utcnow() - timedelta(minutes=29), user_id=user.id, username="kefu", action="account_locked")
    )
    db.session.commit()
    assert _api_login(app, "kefu", PASSWORD).status_code == 403


def test_admin_unlocks_from_the_user_list_and_the_command_line(app):
    for _ in range(5):
        _api_login(app, "kefu", "wrong-password")
    assert _api_login(app, "kefu", PASSWORD).status_code == 403
    admin = Client(app, "admin")
    assert admin.get("/users/list/").status_code == 200
    assert Client(app, "renshi").get("/users/userinfo/").status_code == 200
    r = admin.post(f"/users/action/unlock/{_user(app, 'kefu').id}")
    assert r.status_code in (302, 303), r.status_code
    assert _api_login(app, "kefu", PASSWORD).status_code == 200
    unlocked = _log("account_unlocked")
    assert len(unlocked) == 1 and unlocked[0].username == "kefu" and "admin" in unlocked[0].detail

    for _ in range(5):
        _api_login(app, "kefu", "wrong-password")
    assert _api_login(app, "kefu", PASSWORD).status_code == 403
    result = app.test_cli_runner().invoke(args=["users", "unlock", "kefu"])
    assert result.exit_code == 0, result.output
    assert _api_login(app, "kefu", PASSWORD).status_code == 200
    assert len(_log("account_unlocked")) == 2


def test_non_admin_cannot_unlock(app):
    for _ in range(5):
        _api_login(app, "kefu", "wrong-password")
    r = Client(app, "renshi").post(f"/users/action/unlock/{_user(app, 'kefu').id}")
    assert r.status_code in (302, 403)
    assert _api_login(app, "kefu", PASSWORD).status_code == 403
    assert _log("account_unlocked") == []


def test_unknown_user_failures_are_logged(app):
    assert _api_login(app, "nobody", "whatever1").status_code == 401
    rows = _log("login_failed")
    assert [(r.username, r.user_id) for r in rows] == [("nobody", None)]


def test_locked_until_is_always_iso_8601_in_beijing_time(app):
    for _ in range(4):
        _api_login(app, "kefu", "wrong-password")
    first = _api_login(app, "kefu", "wrong-password").json["locked_until"]
    later = _api_login(app, "kefu", PASSWORD).json["locked_until"]
    assert first.endswith("+08:00") and later.endswith("+08:00")
    assert datetime.fromisoformat(first) == datetime.fromisoformat(later)
