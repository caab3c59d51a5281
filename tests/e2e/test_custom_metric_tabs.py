"""A saved custom metric works in every tab that takes a metric: picked on Overview, Trends,
Compare and Correlations, it draws charts labelled with its name, and no tab shows an alert."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dashapp import create_app
from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo

NAME, LABEL = "undelivered_pct", "Undelivered %"
TABS = [
    ("overview", f"metric={NAME}", "#timeseries"),
    ("trends", f"metric={NAME}", "#trend-chart"),
    ("compare", f"metric={NAME}", "#compare-chart"),
    ("correlations", f"corr=email:{NAME},sms:{NAME}", "#corr-overlay"),
]
ALERTS = "#overview-alert .alert, #trend-alert .alert, #compare-alert .alert, #corr-alert .alert"


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
    assert dash_br.get_logs() == []
