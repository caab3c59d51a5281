"""The dashboard shell in a real browser: tabs switch and the URL follows."""
import json

from selenium.webdriver.support.ui import WebDriverWait

from dashapp import create_app


def test_switching_tabs_changes_the_url_and_reload_keeps_it(dash_br, live_server, pg_engine):
    server = live_server(create_app({"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False)}))
    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=7d")
    dash_br.wait_for_text_to_equal(".nav-link.active", "Overview")
    dash_br.wait_for_element("#kpi-row .kpi-tile", timeout=20)

    trends = next(e for e in dash_br.find_elements(".nav-link") if e.text == "Trends")
    trends.click()
    dash_br.wait_for_contains_text("#trend-headline", "Delivery rate", timeout=20)
    WebDriverWait(dash_br.driver, 5).until(lambda d: "tab=trends" in d.current_url)
    assert "range=7d" in dash_br.driver.current_url

    dash_br.driver.refresh()
    dash_br.wait_for_text_to_equal(".nav-link.active", "Trends")
    dash_br.wait_for_contains_text("#trend-headline", "Delivery rate", timeout=20)
    assert dash_br.get_logs() == []


def test_a_dead_database_shows_a_readable_alert_not_a_stack_trace(dash_br, live_server):
    server = live_server(create_app({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/test"}))
    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=24h")
    dash_br.wait_for_contains_text("#status-alert", "analytics database is not answering", timeout=20)
    dash_br.wait_for_contains_text("#overview-alert", "database is not answering", timeout=20)
    assert "Traceback" not in dash_br.driver.page_source


def test_the_tab_being_left_asks_nothing(dash_br, live_server, pg_engine):
    """On a tab click the old tab's charts are still on the page for a moment and see the new
    URL: they answer "nothing to update" (204) instead of computing for a view nobody sees."""
    from tests.e2e.conftest import serve_demo

    server, _ = serve_demo(live_server, pg_engine, days=2, per_hour=30, seed=3)
    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=24h")
    dash_br.wait_for_element("#timeseries .trace", timeout=20)
    dash_br.driver.execute_script(  # every callback answer from now on: (its outputs, HTTP status)
        "window.__answers = []; const f = window.fetch; window.fetch = function(u, o) {"
        "  const p = f.apply(this, arguments); let out = ''; try { out = JSON.parse(o.body).output; } catch (e) {}"
        "  p.then(r => window.__answers.push([out, r.status])); return p; };")
    next(e for e in dash_br.find_elements(".nav-link") if e.text == "Trends").click()
    dash_br.wait_for_contains_text("#trend-headline", "Delivery rate", timeout=20)
    answers = dash_br.driver.execute_script("return window.__answers")
    left = [(out, status) for out, status in answers if "kpi-row" in out or out in ("channel-bar.figure",
                                                                                   "heatmap.figure")]
    assert left and all(status == 204 for _, status in left), left
    assert any("trend-headline" in out and status == 200 for out, status in answers)
    assert dash_br.get_logs() == []


def test_a_page_opened_on_a_tab_comes_with_it_and_asks_each_chart_once(dash_br, live_server, pg_engine):
    """The tab a page's address names is in the page's layout: the callback that fills tabs
    has nothing to update and each chart is asked for once, in the first wave (the filters
    are set in the layout too, so no chart waits for the URL callback, which is not asked
    at all). The page runs
    without Dash's Babel polyfill (regeneratorRuntime, which Dash's bundles use, is there) and
    logs nothing."""
    from tests.e2e.conftest import serve_demo

    server, _ = serve_demo(live_server, pg_engine, days=2, per_hour=30, seed=5)
    dash_br.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (  # before Dash starts
        "window.__answers = []; const f = window.fetch; window.fetch = function(u, o) {"
        "  const p = f.apply(this, arguments); let out = null; try { out = JSON.parse(o.body).output; } catch (e) {}"
        "  if (out) p.then(r => r.clone().text().then(t => window.__answers.push([out, r.status, t]))); return p; };")})
    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=24h")
    for selector in ("#timeseries .trace", "#channel-bar .trace", "#status-bar .trace", "#kpi-row .kpi-tile"):
        dash_br.wait_for_element(selector, timeout=20)
    answers = dash_br.driver.execute_script("return window.__answers")
    filling = [json.loads(body)["response"] for out, status, body in answers if "tab-content.children" in out]
    assert filling == [{}], filling  # updated nothing
    assert not [out for out, _, _ in answers if "range.value" in out], answers  # the URL callback
    for chart in ("channel-bar.figure", "status-bar.figure", "heatmap.figure"):
        asked = [json.loads(body)["response"] for out, status, body in answers if out == chart and status == 200]
        assert len(asked) == 1 and asked[0], (chart, answers)
    scripts = dash_br.driver.execute_script("return [...document.scripts].map(s => s.src)")
    assert not [s for s in scripts if "polyfill" in s]
    assert dash_br.driver.execute_script("return typeof regeneratorRuntime") == "object"
    assert dash_br.get_logs() == []


def test_the_address_bar_shows_the_view_and_back_leaves_the_dashboard(dash_br, live_server, pg_engine):
    """An address that leaves parts out (or says them another way) is shown as the view's
    canonical address, in place: Back goes to the page before, not to the same view."""
    from tests.e2e.conftest import serve_demo

    server, _ = serve_demo(live_server, pg_engine, days=2, per_hour=30, seed=6)
    dash_br.driver.get(server.url + "/health")
    dash_br.driver.get(server.url + "/analytics/?channel=sms&range=7d")
    WebDriverWait(dash_br.driver, 20).until(
        lambda d: d.current_url.endswith("/analytics/?tab=overview&range=7d&channel=sms"), "address not shown whole")
    dash_br.wait_for_element("#channel-bar .trace", timeout=20)
    assert dash_br.find_element("#range").text == "Last 7 days"
    assert "SMS" in dash_br.find_element("#channels").text
    dash_br.driver.back()
    WebDriverWait(dash_br.driver, 10).until(lambda d: d.current_url == server.url + "/health")
    assert [e for e in dash_br.get_logs() if not e["message"].startswith(server.url + "/favicon.ico")] == []


def test_without_a_referer_the_filters_still_follow_the_address(dash_br, live_server, pg_engine):
    """A portal may send no Referer at all: the layout cannot read the page's address, and
    the URL callback sets the filters and the address bar once the page is in the browser."""
    from tests.e2e.conftest import serve_demo

    server, _ = serve_demo(live_server, pg_engine, days=2, per_hour=30, seed=8)
    dash_br.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (  # the layout: no Referer
        "window.__layouts = []; const f = window.fetch; window.fetch = function(u, o) {"
        "  if (!String(u).includes('_dash-layout')) return f.apply(this, arguments);"
        "  const p = f.call(this, u, Object.assign({}, o, {referrerPolicy: 'no-referrer'}));"
        "  p.then(r => r.clone().text().then(t => window.__layouts.push(t))); return p; };")})
    dash_br.driver.get(server.url + "/analytics/?range=30d&channel=email")
    WebDriverWait(dash_br.driver, 20).until(
        lambda d: d.current_url.endswith("/analytics/?tab=overview&range=30d&channel=email"), "address not shown")
    dash_br.wait_for_text_to_equal("#range", "Last 30 days", timeout=20)
    assert "Email" in dash_br.find_element("#channels").text
    dash_br.wait_for_element("#channel-bar .trace", timeout=20)
    layouts = dash_br.driver.execute_script("return window.__layouts")
    assert layouts and '"rendered-tab"' in layouts[0] and "range=30d" not in layouts[0]  # it could not read it
    assert dash_br.get_logs() == []
