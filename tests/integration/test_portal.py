"""The example portal: the dashboard and API sit behind its login."""
import importlib

import pytest


@pytest.fixture
def portal(monkeypatch, sqlite_url):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    import examples.portal
    return importlib.reload(examples.portal).app


@pytest.mark.parametrize("path, method", [
    ("/ops/analytics/", "get"), ("/ops/analytics/_dash-layout", "get"),
    ("/ops/analytics/_dash-update-component", "post"), ("/ops/analytics/assets/app.css", "get"),
])
def test_anonymous_visitor_is_sent_to_login(portal, path, method):
    response = getattr(portal.test_client(), method)(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


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
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_ingest_keeps_its_own_token_check_behind_the_portal(portal):
    response = portal.test_client().post("/api/events", data=b"[]")
    assert response.status_code in (401, 403)  # the token decides, not the portal's login
