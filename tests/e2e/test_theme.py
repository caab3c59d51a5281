"""The dark theme and the compact density in a real browser: chosen in the navbar, kept in
the URL across tabs and a reload, and the charts' text follows the theme."""
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import serve_demo

AXIS_TEXT = "#channel-bar .js-plotly-plot .xtick text"


def test_dark_and_compact_are_chosen_in_the_navbar_and_kept(dash_br, live_server, pg_engine):
    server, _ = serve_demo(live_server, pg_engine, days=3, per_hour=30, seed=2)
    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=24h")
    dash_br.wait_for_element(AXIS_TEXT, timeout=20)
    fill = lambda d: d.execute_script(f"return getComputedStyle(document.querySelector('{AXIS_TEXT}')).fill")  # noqa: E731
    light_fill = fill(dash_br.driver)

    dash_br.find_element("label[for='theme-dark']").click()
    dash_br.find_element("label[for='density-compact']").click()
    wait = WebDriverWait(dash_br.driver, 15)
    wait.until(lambda d: "theme=dark" in d.current_url and "density=compact" in d.current_url)
    wait.until(lambda d: d.find_element("id", "page").get_attribute("data-bs-theme") == "dark")
    assert "density-compact" in dash_br.find_element("#page").get_attribute("class")
    wait.until(lambda d: fill(d) != light_fill)
    assert fill(dash_br.driver) == "rgb(222, 226, 230)"

    next(e for e in dash_br.find_elements(".nav-link") if e.text == "Trends").click()
    wait.until(lambda d: "tab=trends" in d.current_url)
    assert "theme=dark" in dash_br.driver.current_url and "density=compact" in dash_br.driver.current_url
    dash_br.driver.refresh()
    wait.until(lambda d: d.find_element("id", "page").get_attribute("data-bs-theme") == "dark")
    assert dash_br.find_element("#theme-dark").is_selected()
    assert dash_br.get_logs() == []
