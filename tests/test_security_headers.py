"""Every response tells browsers to run only what the portal serves; accounts need decent passwords."""

import pytest


def test_pages_carry_a_strict_content_security_policy_with_a_fresh_nonce(client):
    first = client.get("/login/")
    second = client.get("/login/")
    policy = first.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in first.get_data(as_text=True)
    assert nonce not in second.headers["Content-Security-Policy"]


@pytest.mark.parametrize("url", ["/login/", "/health", "/api/v1/complaint/"])
def test_every_response_forbids_sniffing_and_framing(client, url):
    r = client.get(url)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "same-origin"


def test_api_answers_are_not_cached(api):
    r = api("renshi").get("/api/v1/complaint/")
    assert r.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("url", ["/static/appbuilder/js/ab.js", "/static/portal/css/portal.css"])
def test_static_files_are_kept_by_the_browser_and_revalidated(web, url):
    """Every static file went out as "private, no-store" (Werkzeug names each file it sends in
    Content-Disposition, which marked them as downloads): a browser fetched the ~25 stylesheets and
    scripts again on every page. They are kept a few minutes, then asked for with their ETag."""
    client = web("kefu")
    r = client.get(url)
    assert r.status_code == 200 and r.data
    assert r.headers["Cache-Control"] == "public, max-age=300"
    assert "no-store" not in r.headers["Cache-Control"] and r.headers.get("ETag")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    again = client.get(url, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    page = client.get("/complaintview/list/")
    assert page.status_code == 200 and "public" not in page.headers.get("Cache-Control", "")


@pytest.mark.parametrize("password", ["short1", "onlyletters", "12345678"])
def test_weak_passwords_are_refused_in_chinese(sqlite_app, password):
    from flask_appbuilder.exceptions import PasswordComplexityValidationError

    from app.views.security import password_policy

    with sqlite_app.test_request_context():
        with pytest.raises(PasswordComplexityValidationError, match="至少 8 位"):
            password_policy(password)


def test_a_decent_password_passes(sqlite_app):
    from app.views.security import password_policy

    password_policy("投诉处理2026")


def test_production_refuses_the_development_secret_key():
    from app import create_app

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"PRODUCTION": True, "SCHEDULER_ENABLED": False, "SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_logins_are_rate_limited_per_address(tmp_path):
    from conftest import test_config

    from app import create_app

    config = test_config(f"sqlite:///{tmp_path / 'limits.db'}")
    config.update(RATELIMIT_ENABLED=True, AUTH_RATE_LIMIT="3 per minute")
    app = create_app(config)
    client = app.test_client()
    body = {"username": "nobody", "password": "wrong", "provider": "db"}
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    codes = [client.post("/api/v1/security/login", json=body).status_code for _ in range(4)]
    assert codes[:3] == [401, 401, 401] and codes[3] == 429
    form = [client.post("/login/", data={"username": "nobody", "password": "wrong"}).status_code for _ in range(4)]
    assert form[3] == 429
