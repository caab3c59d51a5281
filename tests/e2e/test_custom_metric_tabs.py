"""A saved custom metric works in every tab that takes a metric: picked on Overview, Trends,
Compare, Drill-down and Correlations, it draws charts labelled with its name, and no tab shows an
alert; on Drill-down it is picked from the tab's own menu and a bar click goes on to templates."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dashapp import create_app
from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo
from tests.e2e.test_drilldown import drill_by_clicking, wait_for

NAME, LABEL = "undelivered_pct", "Undelivered %"
TABS = [
    ("overview", f"metric={NAME}", "#timeseries"),
    ("trends", f"metric={NAME}", "#trend-chart"),
    ("compare", f"metric={NAME}", "#compare-chart"),
    ("correlations", f"corr=email:{NAME},sms:{NAME}", "#corr-overlay"),
]
ALERTS = "#overview-alert .alert, #trend-alert .alert, #compare-alert .alert, #corr-alert .alert, #drill-alert .alert"


def test_a_saved_metric_draws_in_every_tab(dash_br, live_server, pg_engine):
    seed_demo(pg_engine.begin, days=3, per_hour=60, seed=5)
    rollup_pending(pg_engine)
    app = create_app({"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False)})
    saved = app.test_client().post("/api/analytics/metrics", json={
        "name": NAME, "display_name": LABEL, "formula": "(failed + bounced) / sent * 100", "unit": "%"})
    assert saved.status_code == 201
    server = live_server(app)
    driver = dash_br.driver
    for tab, params, chart in TABS:
        driver.get(f"{server.url}/analytics/?tab={tab}&range=7d&{params}")
        WebDriverWait(driver, 30).until(
            lambda d, chart=chart: d.find_elements(By.CSS_SELECTOR, f"{chart} .main-svg .scatterlayer .trace"),
            message=f"{tab}: no trace drawn")
        page = driver.find_element(By.CSS_SELECTOR, "body").text
        assert "unknown metric" not in page and "went wrong" not in page, tab
        assert driver.find_elements(By.CSS_SELECTOR, ALERTS) == [], tab
        if tab != "correlations":
            axis = driver.find_element(By.CSS_SELECTOR, f"{chart} .ytitle").text
            assert LABEL in axis, (tab, axis)
    # Drill-down: the bars show events until the tab's menu picks the saved metric
    driver.get(f"{server.url}/analytics/?tab=drilldown&range=7d")
    title = lambda d: d.find_element(By.ID, "drill-title").text  # noqa: E731
    wait_for(dash_br, lambda d: title(d) == "Events by channel", 30)
    driver.find_element(By.CSS_SELECTOR, "#drill-metric").click()  # opens the menu, then its option is clicked
    wait_for(dash_br, lambda d: [o for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
                                 if o.text == f"{LABEL} (custom)"], 10)[0].click()
    WebDriverWait(driver, 30).until(lambda d: f"drill_metric={NAME}" in d.current_url, message="pick not in the URL")
    wait_for(dash_br, lambda d: title(d) == f"{LABEL} by channel", 30)
    wait_for(dash_br, lambda d: LABEL in d.find_element(By.CSS_SELECTOR, "#drill-chart .ytitle").text, 30)
    wait_for(dash_br, lambda d: "Email" in [t.text for t in d.find_elements(By.CSS_SELECTOR, "#drill-chart .xtick text")])
    drill_by_clicking(dash_br, "drill-chart", "Email", "drill=email")
    # a ratio of statuses has no value within one status: the next level is the templates
    wait_for(dash_br, lambda d: title(d) == f"{LABEL} by template", 30)
    assert driver.find_elements(By.CSS_SELECTOR, "#drill-chart .bars .point path")
    assert driver.find_elements(By.CSS_SELECTOR, ALERTS) == []
    assert "unknown metric" not in driver.find_element(By.CSS_SELECTOR, "body").text
    assert dash_br.get_logs() == []
