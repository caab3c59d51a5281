"""From the Overview to the emails that bounced for one user, and from one of them to its
notification's whole lifecycle, in a real browser: each step at most three clicks, and
every row the one the API gives for the same question."""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.e2e.conftest import serve_demo
from tests.e2e.test_drilldown import crumbs, wait_for, wait_url


@pytest.fixture
def server(live_server, pg_engine):
    return serve_demo(live_server, pg_engine, days=8, per_hour=80, seed=5)


def test_a_users_bounced_emails_then_one_notifications_lifecycle(dash_br, server):
    live, api = server
    ranked = api.get("/api/analytics/users?metric=bounced&channel=email&start=now-7d&limit=1").get_json()
    user, bounced = ranked["users"][0]["user_id"], int(ranked["users"][0]["value"])
    assert bounced >= 1
    expected = api.get(f"/api/analytics/events?user_id={user}&channel=email&status=bounced&start=now-7d").get_json()
    assert len(expected["events"]) == bounced

    dash_br.driver.get(live.url + "/analytics/?tab=overview&range=7d")
    dash_br.wait_for_element("#kpi-row .kpi-tile", timeout=20)
    dash_br.find_element("#find-input").send_keys(user)
    dash_br.find_element("#find-button").click()                                   # click 1: Find
    wait_url(dash_br, f"tab=investigate&range=7d&find={user}")
    dash_br.wait_for_element("#user-counts", timeout=20)
    assert f"User {user}" in dash_br.find_element("#tab-content h5").text
    link = wait_for(dash_br, lambda d: next((a for a in d.find_elements(By.CSS_SELECTOR, "#user-counts a")
                                             if a.text == f"{bounced} bounced"), None))
    link.click()                                                                     # click 2: the bounced emails
    wait_url(dash_br, f"drill=email,bounced&user={user}")
    dash_br.wait_for_text_to_equal("#drill-title", f"Events of user {user}, newest first", timeout=20)
    assert crumbs(dash_br) == ["All", "Email", "Bounced", f"User {user} ✕"]
    # the grid draws a row before the text of its cells: wait for every id to be written
    ids = ".ag-center-cols-container .ag-row [col-id='event_id']"
    shown = wait_for(dash_br, lambda d: (lambda found: found if len(found) == bounced and all(found) else False)(
        sorted(c.text for c in d.find_elements(By.CSS_SELECTOR, ids))))
    assert shown == sorted(e["event_id"] for e in expected["events"])
    assert dash_br.find_element("#events-count").text == f"{bounced} events"

    def open_first(driver):  # the grid may redraw its rows between finding the cell and the click
        cell = driver.find_element(By.CSS_SELECTOR, ".ag-center-cols-container .ag-row [col-id='notification_id']")
        text = cell.text
        cell.click()                                                                 # click 3: its lifecycle
        return text

    notification = wait_for(dash_br, open_first)
    wait_url(dash_br, f"tab=investigate&range=7d&find={notification}")
    table = dash_br.wait_for_element("#lifecycle-table", timeout=20)
    lifecycle = api.get(f"/api/analytics/notifications/{notification}").get_json()
    steps = [r.find_elements(By.TAG_NAME, "td") for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert [cells[0].text for cells in steps] == [e["status"].capitalize() for e in lifecycle["events"]]
    assert [cells[6].text for cells in steps] == [e["event_id"] for e in lifecycle["events"]]
    assert "Bounced" in [cells[0].text for cells in steps] and lifecycle["summary"]["user_id"] == user

    dash_br.find_element("#find-input").clear()
    dash_br.find_element("#find-input").send_keys("no such id" + Keys.ENTER)        # a malformed id is refused
    dash_br.wait_for_text_to_equal("#find-message", "Ids are 1–100 letters, digits and . _ : -")
    assert f"find={notification}" in dash_br.driver.current_url
    dash_br.find_element("#find-input").clear()
    dash_br.find_element("#find-input").send_keys("nobody-at-all" + Keys.ENTER)     # an unknown one: nothing found
    dash_br.wait_for_contains_text("#investigate-body", "No user or notification has the id 'nobody-at-all'")
    logs = dash_br.get_logs()
    assert logs == [], logs
