"""The example portal: the dashboard and API sit behind its login."""
import importlib

import pytest


@pytest.fixture
def portal(monkeypatch, sqlite_url):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("SECRET_KEY", "portal-test-secret-0123456789abcdef")
    import examples.portal
    return importlib.reload(examples.portal).app


def signed_in(portal):
    client = portal.test_client()
    client.post("/login", data={"username": "ops", "password": "ops"})
    return client


@pytest.mark.parametrize("path", ["/ops/analytics/", "/ops/analytics/assets/app.css"])
def test_anonymous_visitor_is_sent_to_login(portal, path):
    response = portal.test_client().get(path, headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path, method", [("/ops/analytics/_dash-layout", "get"),
                                          ("/ops/analytics/_dash-update-component", "post")])
def test_dash_requests_without_a_session_get_401_json_not_the_login_page(portal, path, method):
    response = getattr(portal.test_client(), method)(path)
    assert response.status_code == 401 and response.is_json
    assert "sign in again" in response.json["error"] and response.json["login"] == "/login"


def test_the_portal_refuses_to_start_without_a_secret_key(monkeypatch, sqlite_url):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("SECRET_KEY", "x")
    import examples.portal
    monkeypatch.delenv("SECRET_KEY")
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        examples.portal.create_portal()


@pytest.mark.parametrize("target, expected", [
    ("/ops/analytics/?tab=trends", "/ops/analytics/?tab=trends"),
    ("/%09/evil.example", "/"), ("/\\evil.example", "/"), ("//evil.example", "/"), ("/%0d/x", "/"),
    ("https://evil.example/", "/"), ("/%0a/x", "/"), ("/ /evil.example", "/"),
])
def test_login_redirects_only_to_this_site(portal, target, expected):
    response = portal.test_client().post(f"/login?next={target}", data={"username": "ops", "password": "ops"})
    assert response.status_code == 302 and response.headers["Location"] == expected


def test_the_session_cookie_is_samesite_lax_httponly_and_secure_over_tls(portal):
    plain = portal.test_client().post("/login", data={"username": "ops", "password": "ops"})
    cookie = plain.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie and "Secure" not in cookie
    tls = portal.test_client().post("/login", data={"username": "ops", "password": "ops"},
                                    base_url="https://localhost")
    assert "Secure" in tls.headers["Set-Cookie"]


def test_a_signed_in_cross_site_form_cannot_create_a_metric(portal):
    client = signed_in(portal)
    forged = client.post("/api/analytics/metrics", data='{"name": "forged", "formula": "sent"}',
                         content_type="text/plain", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    plain = client.post("/api/analytics/metrics", data='{"name": "forged", "formula": "sent"}',
                        content_type="text/plain")
    assert plain.status_code == 415


def test_signed_in_user_sees_the_dashboard(portal):
    client = portal.test_client()
    assert client.post("/login", data={"username": "ops", "password": "wrong"}).status_code == 200
    assert client.get("/ops/analytics/").status_code == 302
    response = client.post("/login?next=/ops/analytics/", data={"username": "ops", "password": "ops"})
    assert response.headers["Location"] == "/ops/analytics/"
    page = client.get("/ops/analytics/")
    assert page.status_code == 200 and b"Notification Analytics" in page.data


def test_health_stays_open_for_load_balancers(portal):
    assert portal.test_client().get("/health").status_code == 200


@pytest.mark.parametrize("path", ["/api/analytics/chart?metric=sent", "/api/analytics/events",
                                  "/api/aggregation/status", "/api/analytics/openapi.json"])
def test_the_api_is_behind_the_portal_login_too(portal, path):
    response = portal.test_client().get(path)
    assert response.status_code == 401 and response.is_json and response.json["login"] == "/login"


def test_ingest_keeps_its_own_token_check_behind_the_portal(portal):
    response = portal.test_client().post("/api/events", data=b"[]")
    assert response.status_code in (401, 403)  # the token decides, not the portal's login


def test_embedding_leaves_the_portals_logging_alone(sqlite_url):
    import logging

    from flask import Flask

    from dashapp import init_dashboard

    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    saved = (root.level, list(root.handlers), alembic.level)
    root.handlers.clear()  # a portal that has not configured logging (yet)
    alembic.setLevel(logging.NOTSET)
    try:
        portal_app = Flask("some_portal")
        portal_app.config.update(DATABASE_URL=sqlite_url, SECRET_KEY="k" * 32)
        init_dashboard(portal_app, url_base_pathname="/ops/analytics/")
        assert root.handlers == [] and alembic.level == logging.NOTSET
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        alembic.setLevel(saved[2])
