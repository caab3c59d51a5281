"""From All to the individual bounced emails of one template and one reason in five clicks, back in one,
and the same view after a reload — in a real browser."""
import pytest
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import serve_demo


@pytest.fixture
def server(live_server, pg_engine):
    return serve_demo(live_server, pg_engine, days=8, per_hour=60, seed=3)[0]


def click_bar(browser, graph_id: str, label: str) -> None:
    """Plotly's drag layer intercepts plain clicks: move onto the bar, then click."""
    def find(driver):
        graph = driver.find_element(By.ID, graph_id)
        ticks = [t.text for t in graph.find_elements(By.CSS_SELECTOR, ".xtick text")]
        bars = graph.find_elements(By.CSS_SELECTOR, ".bars .point path")
        return bars[ticks.index(label)] if label in ticks and len(bars) == len(ticks) else False

    for _ in range(5):  # the chart may redraw between finding the bar and clicking it
        try:
            bar = WebDriverWait(browser.driver, 15, ignored_exceptions=(StaleElementReferenceException,)).until(find)
            ActionChains(browser.driver).move_to_element(bar).click().perform()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"could not click the {label!r} bar of #{graph_id}")


def wait_for(browser, condition, timeout: float = 20):
    """Wait until `condition(driver)` is truthy, retrying while the grid re-renders the
    element under it."""
    return WebDriverWait(browser.driver, timeout, ignored_exceptions=(StaleElementReferenceException,
                                                                      NoSuchElementException)).until(condition)


def wait_url(browser, fragment: str, timeout: float = 15) -> None:
    WebDriverWait(browser.driver, timeout).until(lambda d: fragment in d.current_url)


def drill_by_clicking(browser, graph_id: str, label: str, fragment: str) -> None:
    """Click a bar until the URL says the drill happened: a chart that redraws between
    finding the bar and the click swallows the click."""
    for _ in range(4):
        if fragment in browser.driver.current_url:  # a slow answer to the previous click
            return
        click_bar(browser, graph_id, label)
        try:
            wait_url(browser, fragment, timeout=8)
            return
        except TimeoutException:
            continue
    raise AssertionError(f"clicking {label!r} on #{graph_id} never led to {fragment!r}")


def crumbs(browser) -> list[str]:
    return [e.text for e in browser.find_elements(".breadcrumb-item")]


def test_five_clicks_down_one_click_back_and_reload(dash_br, server):
    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=7d")
    dash_br.wait_for_element("#kpi-row .kpi-tile", timeout=20)

    drill_by_clicking(dash_br, "channel-bar", "Email", "drill=email")     # 1: Email
    dash_br.wait_for_text_to_equal(".nav-link.active", "Drill-down")
    dash_br.wait_for_text_to_equal("#drill-title", "Events by status")
    drill_by_clicking(dash_br, "drill-chart", "Bounced", "drill=email,bounced")  # 2: Bounced
    dash_br.wait_for_text_to_equal("#drill-title", "Events by template")
    assert crumbs(dash_br) == ["All", "Email", "Bounced"]
    drill_by_clicking(dash_br, "drill-chart", "Weekly digest", "drill=email,bounced,3")  # 3: one template
    dash_br.wait_for_text_to_equal("#drill-title", "Events by error code")
    drill_by_clicking(dash_br, "drill-chart", "hard_bounce", "drill=email,bounced,3,hard_bounce")  # 4: one reason
    dash_br.wait_for_text_to_equal("#drill-title", "Individual events, newest first")
    first_row = wait_for(dash_br, lambda d: d.find_element(By.CSS_SELECTOR, ".ag-row").text)  # 5: the events
    assert "bounced" in first_row and "email" in first_row and "hard_bounce" in first_row
    wait_for(dash_br, lambda d: d.find_element(By.ID, "events-count").text.endswith(" events"))
    assert crumbs(dash_br) == ["All", "Email", "Bounced", "Weekly digest", "hard_bounce"]

    dash_br.driver.refresh()                                          # reload: same view
    dash_br.wait_for_text_to_equal("#drill-title", "Individual events, newest first", timeout=20)
    dash_br.wait_for_element(".ag-row", timeout=20)
    assert crumbs(dash_br) == ["All", "Email", "Bounced", "Weekly digest", "hard_bounce"]

    dash_br.driver.find_element(By.LINK_TEXT, "All").click()          # back in one click
    dash_br.wait_for_text_to_equal("#drill-title", "Events by channel")
    WebDriverWait(dash_br.driver, 10).until(lambda d: "drill=" not in d.current_url)
    assert crumbs(dash_br) == ["All"]
    logs = dash_br.get_logs()
    assert logs == [], logs


def test_the_events_grid_pages_from_the_server(dash_br, server):
    dash_br.driver.get(server.url + "/analytics/?tab=drilldown&range=7d&drill=email,sent,2")
    dash_br.wait_for_element(".ag-row", timeout=20)
    viewport = dash_br.find_element(".ag-body-viewport")
    ids_seen = set()
    for _ in range(12):  # scroll down block by block; each block is a keyset page from the server
        dash_br.driver.execute_script("arguments[0].scrollTop = arguments[0].scrollHeight", viewport)
        WebDriverWait(dash_br.driver, 10).until(
            lambda d: not d.find_elements(By.CSS_SELECTOR, ".ag-loading"))
        ids_seen |= wait_for(dash_br, lambda d: {e.get_attribute("row-index")
                                                 for e in d.find_elements(By.CSS_SELECTOR, ".ag-row")})
    assert max(int(i) for i in ids_seen) >= 150
