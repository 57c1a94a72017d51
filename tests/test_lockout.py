"""Account lock-out: after N consecutive failed sign-ins the account is locked for M minutes.

Both the login form and the JWT login refuse even the right password while locked, with
the reason; every failure, the lock and an administrator's unlock are in the access log.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import datetime, timedelta

from conftest import test_config as app_config
from http_clients import PASSWORD, Client
from sqlalchemy import select

from app import create_app, db, settings
from app.models import AccessLog
from app.timeutil import utcnow
from app.views.security import unlock_account


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


# --- Issue 13 (9): limits shared by every worker, per name and address; lock-out ends sessions


def _strip_times(message: str) -> str:
    return re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "<time>", message)


def test_unknown_and_real_user_names_get_identical_answers_and_lock_outs(app):
    real, unknown = [], []
    for _ in range(7):
        for name, seen in (("kefu", real), ("no-such-user", unknown)):
            r = _api_login(app, name, "wrong-password")
            seen.append((r.status_code, sorted(r.json), _strip_times(r.json.get("message", ""))))
    assert real == unknown
    assert [status for status, _keys, _message in real] == [401] * 4 + [403] * 3
    # The right password of the locked account is refused the same way as any password of an unknown name.
    r, u = _api_login(app, "kefu", PASSWORD), _api_login(app, "no-such-user", PASSWORD)
    assert (r.status_code, _strip_times(r.json["message"])) == (u.status_code, _strip_times(u.json["message"]))
    assert u.json["locked_until"].endswith("+08:00")
    # The login form too (another unknown name, case-insensitively the same name throughout).
    pages = []
    for name in ("zhuguan_b", "Nobody-Here"):
        for attempt in range(6):
            signed_in, page = _form_login(app, name if attempt % 2 else name.upper(), "wrong-password")
            assert not signed_in
        pages.append([_strip_times(m) for m in re.findall(r'<div class="alert[^"]*">(.*?)</div>', page, re.DOTALL)])
    assert pages[0] == pages[1] and "锁定" in "".join(pages[0])


def test_a_lock_out_ends_the_accounts_session_and_refresh_token(app):
    browser = Client(app, "kefu")
    with app.app_context():
        tokens = (
            app.test_client()
            .post(
                "/api/v1/security/login",
                json={"username": "kefu", "password": PASSWORD, "provider": "db", "refresh": True},
            )
            .json
        )
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    assert browser.get("/complaintview/list/").status_code == 200
    assert browser.get("/api/v1/complaint/", headers=bearer).status_code == 200
    other = Client(app, "renshi")
    time.sleep(1.1)  # a token's issue time is in whole seconds
    for _ in range(5):
        _api_login(app, "kefu", "wrong-password")
    page = browser.get("/complaintview/list/")
    assert page.status_code in (302, 303) and "/login" in page.headers["Location"]
    refused = browser.get("/api/v1/complaint/", headers=bearer)
    assert refused.status_code == 401 and refused.json["message"] == "您的登录已失效，请重新登录。"
    assert browser.post("/api/v1/security/refresh", headers=refresh).status_code == 401
    assert other.get("/complaintview/list/").status_code == 200  # others keep theirs
    # After the lock (an administrator unlocks), a new sign-in works again.
    unlock_account(_user(app, "kefu"))
    db.session.commit()
    assert Client(app, "kefu").get("/complaintview/list/").status_code == 200


def _limited_app(app):
    """Another application on the same database with the sign-in limits on, as another worker."""
    return create_app({**app_config(app.config["SQLALCHEMY_DATABASE_URI"]), "RATELIMIT_ENABLED": True})


def _login_from(worker, username, address="10.0.0.1", password="wrong-password"):
    with worker.app_context():
        r = worker.test_client().post(
            "/api/v1/security/login",
            json={"username": username, "password": password, "provider": "db"},
            environ_base={"REMOTE_ADDR": address},
        )
        return r.status_code, r.get_json(silent=True) or {}


def test_sign_in_limits_are_counted_once_for_all_workers(app):
    first, second = _limited_app(app), _limited_app(app)
    statuses = [_login_from(first if n % 2 else second, "no-such-user")[0] for n in range(10)]
    assert 429 not in statuses
    status, body = _login_from(first, "no-such-user")
    assert status == 429 and body["message"] == "登录尝试过于频繁，请稍候一分钟再试。"
    assert _login_from(second, "no-such-user")[0] == 429
    # Counted per name and address: the same name from another address, another name from this one.
    assert _login_from(second, "no-such-user", address="10.0.0.2")[0] != 429
    assert _login_from(first, "kefu", password=PASSWORD)[0] == 200


def test_two_hundred_colleagues_behind_one_address_do_not_lock_each_other_out(app):
    worker = _limited_app(app)
    # An empty password is refused (400) without the slow password hash; the limits count it all the same.
    statuses = Counter(_login_from(worker, f"colleague{n:03d}", "10.9.9.9", password="")[0] for n in range(200))
    assert statuses == Counter({400: 200})  # refused as bad input, never 429
    assert _login_from(worker, "kefu", address="10.9.9.9", password=PASSWORD)[0] == 200
    # The looser ceiling per address still holds.
    worker.config["AUTH_RATE_LIMIT_PER_ADDRESS"] = "20 per minute"
    statuses = [_login_from(worker, f"guess{n:02d}", "10.8.8.8", password="")[0] for n in range(21)]
    assert statuses == [400] * 20 + [429]
