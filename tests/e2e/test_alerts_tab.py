"""The Alerts tab in a real browser: a rule created through the form (a bad threshold refused
with the service's sentence, naming the field), edited and deleted; a rule the real evaluation
set firing over the planted SMS drop, in the navbar and in its history with the explanation,
its drill-down link staying inside the app; and "Alert me when this…" on Trends drafting the
form from the view."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from dashapp import create_app
from services.alerts import evaluation as alerts
from services.alerts import rules as alert_rules
from tests.alert_data import seeded_demo, without_alerts
from tests.conftest import TEST_NOW

SETTLE = timedelta(seconds=60)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def demo(pg_url):
    """Twelve days of demo data up to the session's frozen now, rolled up once for the module."""
    for engine, incidents in seeded_demo(pg_url, TEST_NOW):
        yield engine, datetime.fromisoformat(incidents["sms_delivery_drop"].start)


@pytest.fixture
def engine(demo):
    return without_alerts(demo[0])


@pytest.fixture
def app(engine):
    return create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})


@pytest.fixture
def server(live_server, app):
    return live_server(app)


def wait_url(browser, fragment: str, timeout: float = 15) -> None:
    WebDriverWait(browser.driver, timeout).until(lambda d: fragment in d.current_url,
                                                 message=f"the URL never held {fragment!r}")


def scroll_to(browser, element) -> None:
    """Bootstrap scrolls smoothly, so a click right after a scroll would land where the
    element was: jump instead."""
    browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)


def click(browser, element) -> None:
    scroll_to(browser, element)
    element.click()


def replace_text(element, value: str) -> None:
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.BACKSPACE)
    element.send_keys(value)


def pick_condition(browser, condition: str) -> None:
    radio = next(e for e in browser.find_elements("#alert-condition input") if e.get_attribute("value") == condition)
    scroll_to(browser, radio)
    radio.click()


def test_create_refuse_fix_edit_and_delete_a_rule_through_the_form(dash_br, server, app):
    dash_br.driver.get(server.url + "/analytics/?tab=alerts&range=24h")
    dash_br.wait_for_contains_text("#alert-rules", "No alert rules yet", timeout=20)
    dash_br.wait_for_text_to_equal("#alert-save", "Create rule")

    dash_br.find_element("#alert-name").send_keys("SMS delivery under 80")
    pick_condition(dash_br, "threshold")
    WebDriverWait(dash_br.driver, 10).until(lambda d: d.find_element(By.ID, "alert-threshold").is_displayed())
    Select(dash_br.find_element("#alert-direction")).select_by_value("below")
    dash_br.find_element("#alert-threshold").send_keys("150")
    click(dash_br, dash_br.find_element("#alert-save"))

    # the service's sentence, under the form label of the field it names, and that field marked
    dash_br.wait_for_contains_text("#alert-form-message", "Threshold: delivery_rate is a percentage from 0 to 100; a threshold of 150 is outside it", timeout=15)
    assert "a percentage from 0 to 100" in dash_br.find_element("#alert-form-message").text
    dash_br.wait_for_element("#alert-threshold.is-invalid")
    dash_br.wait_for_contains_text("#alert-rules", "No alert rules yet")

    replace_text(dash_br.find_element("#alert-threshold"), "80")
    click(dash_br, dash_br.find_element("#alert-save"))
    dash_br.wait_for_contains_text("#alert-form-message", "Rule “SMS delivery under 80” created: below 80", timeout=15)
    dash_br.wait_for_contains_text("#alert-rules", "SMS delivery under 80", timeout=15)
    dash_br.wait_for_contains_text("#alert-rules", "Delivery rate · by hour")
    wait_url(dash_br, "alert=1")  # the saved rule is picked: its history shows
    dash_br.wait_for_contains_text("#alert-history", "No change of state yet", timeout=15)
    dash_br.wait_for_text_to_equal("#alert-save", "Save changes")
    assert not dash_br.find_elements("#alert-threshold.is-invalid")

    client = app.test_client()
    saved = client.get("/api/analytics/alerts").json["rules"]
    assert [(r["name"], r["condition"], r["direction"], r["threshold"]) for r in saved] == [
        ("SMS delivery under 80", "threshold", "below", 80.0)]

    # the form edits the rule it saved: a second save changes it instead of adding one
    replace_text(dash_br.find_element("#alert-threshold"), "75")
    click(dash_br, dash_br.find_element("#alert-save"))
    dash_br.wait_for_contains_text("#alert-form-message", "changed: below 75", timeout=15)
    dash_br.wait_for_contains_text("#alert-rules", "below 75 % in an hour", timeout=15)
    assert [r["threshold"] for r in client.get("/api/analytics/alerts").json["rules"]] == [75.0]

    click(dash_br, dash_br.find_element("#alert-rules .btn-outline-danger"))
    confirm = WebDriverWait(dash_br.driver, 10).until(expected_conditions.alert_is_present())
    assert "SMS delivery under 80" in confirm.text
    confirm.accept()
    dash_br.wait_for_contains_text("#alerts-message", "deleted", timeout=15)
    dash_br.wait_for_contains_text("#alert-rules", "No alert rules yet", timeout=15)
    wait_url(dash_br, "tab=alerts")
    assert "alert=1" not in dash_br.driver.current_url
    assert client.get("/api/analytics/alerts").json["rules"] == []
    assert dash_br.get_logs() == []


def test_a_rule_fired_by_the_sms_drop_shows_in_the_navbar_and_its_history(dash_br, server, engine, demo):
    _, drop = demo
    with engine.begin() as conn:
        rule = alert_rules.create_rule(conn, {"name": "SMS delivery", "metric": "delivery_rate", "channel": "sms",
                                              "condition": "anomaly", "min_severity": "medium"})
    # judged as the scheduler would have, a minute after the drop's first hour closed
    report = alerts.evaluate_due(engine, drop + HOUR + SETTLE, settle=SETTLE, since=drop - timedelta(days=1))
    assert report.transitions[-1]["state"] == "firing" and report.transitions[-1]["bucket"].startswith(
        drop.strftime("%Y-%m-%dT%H"))

    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=7d")
    dash_br.wait_for_text_to_equal("#firing-badge a", "1 firing", timeout=20)
    badge = dash_br.find_element("#firing-badge a")
    assert badge.get_attribute("title") == "Firing: SMS delivery"
    dash_br.driver.execute_script("window.stillTheSamePage = true;")
    badge.click()
    wait_url(dash_br, f"tab=alerts&range=7d&alert={rule.id}")
    dash_br.wait_for_text_to_equal(".nav-link.active", "Alerts")
    dash_br.wait_for_contains_text("#alert-rules .alert-state", "firing", timeout=20)
    assert "Delivery rate · SMS · by hour" in dash_br.find_element("#alert-rules").text
    dash_br.wait_for_element("#alert-rules img.sparkline")

    dash_br.wait_for_contains_text("#alert-history", "SMS delivery rate was", timeout=20)
    history = dash_br.find_element("#alert-history .alert-transitions").text
    assert drop.strftime("%Y-%m-%d\n%H:00 UTC") in history and "expected" in history
    assert "No webhook set" in dash_br.find_element("#alert-history").text

    drill = dash_br.find_element("#alert-history .alert-transitions a[href*='tab=drilldown']")
    click(dash_br, drill)
    wait_url(dash_br, "tab=drilldown")
    dash_br.wait_for_text_to_equal(".nav-link.active", "Drill-down")
    assert "drill=sms" in dash_br.driver.current_url
    assert dash_br.driver.execute_script("return window.stillTheSamePage === true;")  # no page reload
    assert dash_br.get_logs() == []


def test_alert_me_on_trends_drafts_the_form_from_the_view(dash_br, server):
    dash_br.driver.get(server.url + "/analytics/?tab=trends&range=7d&channel=sms&metric=delivery_rate")
    dash_br.wait_for_contains_text("#trend-headline", "delivery rate", timeout=30)
    click(dash_br, dash_br.find_element("#trend-alert-me"))

    wait_url(dash_br, "tab=alerts")
    assert "alert=new" in dash_br.driver.current_url and "channel=sms" in dash_br.driver.current_url
    dash_br.wait_for_text_to_equal(".nav-link.active", "Alerts")
    name = dash_br.wait_for_element("#alert-name")
    WebDriverWait(dash_br.driver, 10).until(lambda d: name.get_attribute("value") == "Delivery rate, SMS")
    assert dash_br.find_element("#alert-metric").text.startswith("Delivery rate")
    assert "SMS" in dash_br.find_element("#alert-channel").text
    assert Select(dash_br.find_element("#alert-granularity")).first_selected_option.get_attribute("value") == "hour"
    checked = [e.get_attribute("value") for e in dash_br.find_elements("#alert-condition input") if e.is_selected()]
    assert checked == ["anomaly"]
    assert Select(dash_br.find_element("#alert-severity")).first_selected_option.get_attribute("value") == "medium"
    assert Select(dash_br.find_element("#alert-direction")).first_selected_option.get_attribute("value") == "below"
    assert "Drafted from the view" in dash_br.find_element("#alert-draft-note").text

    click(dash_br, dash_br.find_element("#alert-preview"))  # the planted drop, found before saving
    dash_br.wait_for_contains_text("#alert-preview-result", "this rule would have fired 1 time.", timeout=30)
    result = dash_br.find_element("#alert-preview-result").text
    assert "firing" in result and "SMS delivery rate was" in result and "resolved" in result
    assert "No alert rules yet" in dash_br.find_element("#alert-rules").text  # nothing saved by a preview

    click(dash_br, dash_br.find_element("#alert-save"))
    dash_br.wait_for_contains_text("#alert-form-message", "Rule “Delivery rate, SMS” created", timeout=15)
    dash_br.wait_for_contains_text("#alert-rules", "Delivery rate · SMS · by hour", timeout=15)
    assert dash_br.find_element("#alert-draft-note").text == ""
    assert dash_br.get_logs() == []
