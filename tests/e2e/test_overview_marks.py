"""The Overview's time chart in a real browser, on a generated week with a two-hour SMS
outage: the anomalies the trend report finds are marked on it, their hover reads the
report's numbers, a refresh redraws the chart with its marks rather than blinking them
away, and the chart shows while its marks are still being worked out."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dashapp import create_app
from services.rollup.fold import rollup_pending
from services.store.ingest import ingest_events
from tests.factories import iso, outage_scenario

GRAPH = "#timeseries .js-plotly-plot"


END = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
START = END - timedelta(days=5)


@pytest.fixture
def served(live_server, pg_engine):
    """Five past days (history from the range start), SMS failing in two hours of day 3."""
    with pg_engine.begin() as conn:
        ingest_events(conn, outage_scenario(21, START, 5 * 24, (60, 61)), raw_retention_days=120)
    rollup_pending(pg_engine, raw_retention_days=120)
    app = create_app({"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False)})
    return live_server(app), app.test_client()


def marks(driver) -> list[str]:
    return driver.execute_script(f"const g = document.querySelector('{GRAPH}');"
                                 "return g && g.layout ? (g.layout.annotations || []).map(a => a.hovertext || '') : [];")


def shown(driver) -> bool:
    """The time chart has drawn its lines and nothing hides it (a loading overlay hides what
    it covers)."""
    return driver.execute_script(
        f"const g = document.querySelector('{GRAPH}');"
        "if (!g || !g.querySelector('.scatterlayer .trace')) return false;"
        "for (let e = g; e; e = e.parentElement) { const s = getComputedStyle(e);"
        "  if (s.visibility === 'hidden' || s.display === 'none' || s.opacity === '0') return false; }"
        "return true;")


def test_the_chart_shows_while_its_marks_are_worked_out(dash_br, served, monkeypatch):
    import callbacks.overview

    asked, answer = threading.Event(), threading.Event()
    real = callbacks.overview.timeseries_marks

    def held(*args):  # the marks' work takes as long as the test likes
        asked.set()
        answer.wait(60)
        return real(*args)
    monkeypatch.setattr(callbacks.overview, "timeseries_marks", held)
    server, _ = served
    dash_br.driver.get(server.url + f"/analytics/?tab=overview&range=custom&start={iso(START)}&end={iso(END)}"
                                    "&channel=sms&metric=delivery_rate")
    try:
        assert asked.wait(30), "the marks were never asked for"
        WebDriverWait(dash_br.driver, 20).until(shown)  # while they are still being worked out
        assert marks(dash_br.driver) == []
    finally:
        answer.set()
    WebDriverWait(dash_br.driver, 30).until(lambda d: marks(d) or False)
    assert shown(dash_br.driver)
    assert dash_br.get_logs() == []


def test_anomalies_are_marked_with_the_reports_numbers_and_survive_a_refresh(dash_br, served):
    server, client = served
    start, end = START, END
    report = client.get(f"/api/analytics/trends?metric=delivery_rate&channel=sms&start={iso(start)}&end={iso(end)}"
                        ).get_json()
    expected = {a["time"] for a in report["anomalies"]}
    assert expected == {iso(START + timedelta(hours=h)) for h in (60, 61)}
    dash_br.driver.get(server.url + f"/analytics/?tab=overview&range=custom&start={iso(start)}&end={iso(end)}"
                                    "&channel=sms&metric=delivery_rate")
    wait = WebDriverWait(dash_br.driver, 30)
    hovers = wait.until(lambda d: marks(d) or False)
    marked = {line.split(" UTC:")[0] for text in hovers for line in text.split("<br>")[1:]}
    assert marked == {f"{datetime.fromisoformat(t.replace('Z', '+00:00')):%Y-%m-%d %H:%M}" for t in expected}
    for anomaly in report["anomalies"]:
        when = datetime.fromisoformat(anomaly["time"].replace("Z", "+00:00"))
        line = f"{when:%Y-%m-%d %H:%M} UTC: {anomaly['value']:.1f} % against an expected {anomaly['expected']:.1f} %"
        assert any(line in text for text in hovers), line

    # the marker's hover, as a user sees it
    marker = dash_br.driver.find_elements(By.CSS_SELECTOR, "#timeseries .annotation")[0]
    dash_br.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", marker)
    ActionChains(dash_br.driver).move_to_element(marker).perform()
    wait.until(lambda d: "against an expected" in " ".join(
        e.text for e in d.find_elements(By.CSS_SELECTOR, "#timeseries .hoverlayer .hovertext")))

    # every redraw after this one carries the marks
    dash_br.driver.execute_script(f"const g = document.querySelector('{GRAPH}'); window.__shapes = [];"
                                  "g.on('plotly_afterplot', () => window.__shapes.push((g.layout.shapes || []).length));")
    dash_br.find_element("#refresh-choice").click()
    option = wait.until(lambda d: next((o for o in d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
                                        if o.text == "Every 10 s"), None))
    dash_br.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});"
                                  "arguments[0].click()", option)
    redraws = WebDriverWait(dash_br.driver, 40).until(
        lambda d: (lambda s: s if s and len(s) >= 1 else False)(d.execute_script("return window.__shapes")))
    assert all(count > 0 for count in redraws), redraws
    assert dash_br.get_logs() == []
