"""The time range in a real browser: a drag-zoom on the Overview becomes the range and
survives the auto-refresh; a typed date-time window is looked at exactly; 30 days is drawn by
the hour."""
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest
from selenium.common.exceptions import JavascriptException
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import serve_demo

GRAPH = "#timeseries .js-plotly-plot"


@pytest.fixture
def server(live_server, pg_engine):
    return serve_demo(live_server, pg_engine, days=8, per_hour=40, seed=9)[0]


def url_params(driver) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(driver.current_url).query).items()}


def drawn(driver) -> dict | None:
    """The time chart as Plotly holds it: the x range and the x values of the first line."""
    try:
        return driver.execute_script(
            f"const g = document.querySelector('{GRAPH}');"
            "if (!g || !g.data || !g.data.length || !g.data[0].x) return null;"
            "return {range: g.layout.xaxis.range, x: g.data[0].x, plots: window.__plots || 0};")
    except JavascriptException:
        return None


def count_redraws(driver) -> None:
    driver.execute_script(f"const g = document.querySelector('{GRAPH}');"
                          "window.__plots = 0; g.on('plotly_afterplot', () => { window.__plots += 1; });")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00")[:19]).replace(tzinfo=timezone.utc)


def test_a_drag_zoom_becomes_the_range_and_survives_the_refresh(dash_br, server):
    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=7d")
    wait = WebDriverWait(dash_br.driver, 20)
    wait.until(lambda d: (drawn(d) or {}).get("x"))
    box = dash_br.driver.execute_script(  # the plot area, in viewport coordinates
        f"const g = document.querySelector('{GRAPH}'); g.scrollIntoView({{block: 'center', behavior: 'instant'}});"
        "const r = g.getBoundingClientRect(), s = g._fullLayout._size;"
        "return [r.left + s.l, r.top + s.t, s.w, s.h];")
    left, top, width, height = (int(v) for v in box)
    actions = ActionBuilder(dash_br.driver)  # viewport coordinates: a third of the way in, a fifth wide
    x, y = left + width // 3, top + height // 2
    actions.pointer_action.move_to_location(x, y).pointer_down()
    for step in range(1, 11):  # Plotly follows the mouse as it moves, as a hand would
        actions.pointer_action.pause(0.03).move_to_location(x + step * width // 50, y)
    actions.pointer_action.pause(0.05).pointer_up()
    actions.perform()
    wait.until(lambda d: url_params(d).get("range") == "custom")
    params = url_params(dash_br.driver)
    start, end = utc(params["start"]), utc(params["end"])
    assert end > start and (end - start).days < 7
    # From and To say the window, and the chart is drawn over it
    dash_br.wait_for_element("#range-from")
    wait.until(lambda d: d.find_element(By.ID, "range-from").get_attribute("value") == f"{start:%Y-%m-%d %H:%M}")
    assert dash_br.find_element("#range-to").get_attribute("value") == f"{end:%Y-%m-%d %H:%M}"
    inside = lambda x: start - timedelta(hours=1) < utc(x) < end  # noqa: E731  (buckets: whole hours)
    wait.until(lambda d: (drawn(d) or {}).get("x") and all(inside(x) for x in drawn(d)["x"]))

    count_redraws(dash_br.driver)
    dash_br.driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'})")  # the page scrolls smoothly
    dash_br.find_element("#refresh-choice").click()
    option = wait.until(lambda d: next((o for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
                                        if o.text == "Every 10 s"), None))
    dash_br.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});"
                                  "arguments[0].click()", option)
    wait.until(lambda d: "Every 10 s" in d.find_element(By.ID, "refresh-choice").text)
    redrawn = WebDriverWait(dash_br.driver, 30).until(  # a refresh redrew it
        lambda d: (lambda c: c if c and c.get("plots", 0) >= 1 and c.get("x") else False)(drawn(d)))
    assert url_params(dash_br.driver) == params
    assert all(inside(x) for x in redrawn["x"])
    assert dash_br.get_logs() == []


def test_a_typed_window_is_looked_at_and_a_bad_one_is_refused(dash_br, server):
    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=7d")
    wait = WebDriverWait(dash_br.driver, 20)
    wait.until(lambda d: (drawn(d) or {}).get("x"))
    first = utc(drawn(dash_br.driver)["x"][0])
    start = first.replace(hour=6, minute=0)
    start = start if start > first else start.replace(day=start.day + 1)
    typed_from, typed_to = f"{start:%Y-%m-%d} 06:00", f"{start:%Y-%m-%d} 09:00"
    box = dash_br.find_element("#range-from")
    box.clear()
    box.send_keys(typed_from + Keys.TAB)
    box = dash_br.find_element("#range-to")
    box.clear()
    box.send_keys(typed_to + Keys.ENTER)
    wait.until(lambda d: url_params(d).get("start") == f"{start:%Y-%m-%d}T06:00:00Z"
               and url_params(d).get("end") == f"{start:%Y-%m-%d}T09:00:00Z")
    # three hours: drawn by the minute, inside the window
    def in_window(d):
        chart = drawn(d)
        inside = chart and chart.get("x") and all(start <= utc(x) < start.replace(hour=9) for x in chart["x"])
        return chart["x"] if inside else False

    x = [utc(v) for v in wait.until(in_window)]
    assert min(b - a for a, b in zip(x, x[1:])).total_seconds() == 60

    before = dash_br.driver.current_url
    box = dash_br.find_element("#range-from")
    box.clear()
    box.send_keys("yesterday" + Keys.ENTER)
    wait.until(lambda d: "is-invalid" in d.find_element(By.ID, "range-from").get_attribute("class"))
    assert dash_br.driver.current_url == before
    assert dash_br.get_logs() == []


def test_thirty_days_are_drawn_by_the_hour(dash_br, server):
    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=30d")
    drawn_x = WebDriverWait(dash_br.driver, 20).until(
        lambda d: (lambda x: x if len(x) > 24 else False)((drawn(d) or {}).get("x") or []))
    x = [utc(v) for v in drawn_x]
    assert {(b - a).total_seconds() for a, b in zip(x, x[1:])} == {3600.0}
