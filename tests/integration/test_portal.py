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
