"""Behind the portal's login, in a real browser: when the session ends, the page says so
instead of keeping stale charts."""
import importlib

from selenium.webdriver.common.by import By


def test_an_expired_session_says_log_in_again(dash_br, live_server, pg_engine, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SECRET_KEY", "portal-e2e-secret-0123456789abcdef")
    import examples.portal
    server = live_server(importlib.reload(examples.portal).app)
    driver = dash_br.driver
    driver.get(server.url + "/login?next=/ops/analytics/?tab=overview")
    driver.find_element(By.NAME, "username").send_keys("ops")
    driver.find_element(By.NAME, "password").send_keys("ops")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    dash_br.wait_for_element("#kpi-row .kpi-tile", timeout=20)

    driver.delete_all_cookies()  # the session ends (expired, or logged out in another tab)
    next(e for e in dash_br.find_elements(".nav-link") if e.text == "Trends").click()
    dash_br.wait_for_contains_text("#session-expired", "Your session has expired", timeout=20)
    link = driver.find_element(By.CSS_SELECTOR, "#session-expired a")
    assert link.get_attribute("href").startswith(server.url + "/login?next=")
    assert "Traceback" not in driver.page_source
