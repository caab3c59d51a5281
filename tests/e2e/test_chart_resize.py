"""Charts fit their boxes without redrawing for nothing: a resize notice for a chart already
the size of its box draws nothing (dcc.Graph sends several on every page load), and a chart
whose box changes size is redrawn at the new size."""
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import serve_demo

SIZES = ("return [...document.querySelectorAll('.js-plotly-plot')].map(g =>"
         " [g.parentElement.id, g._fullLayout.width, Math.round(parseFloat(getComputedStyle(g).width)),"
         " g.__draws || 0])")


def test_a_chart_redraws_only_when_its_box_changes_size(dash_br, live_server, pg_engine):
    server, _ = serve_demo(live_server, pg_engine, days=2, per_hour=30, seed=4)
    dash_br.driver.set_window_size(1440, 1000)
    dash_br.driver.get(server.url + "/analytics/?tab=overview&range=24h")
    for selector in ("#timeseries .trace", "#channel-bar .trace", "#status-bar .trace", "#heatmap .hm"):
        dash_br.wait_for_element(selector, timeout=20)
    dash_br.driver.execute_script(  # count each chart's draws from now on
        "document.querySelectorAll('.js-plotly-plot').forEach(g => {"
        "  g.__draws = 0; g.on('plotly_afterplot', () => { g.__draws += 1; }); });")

    before = {name: (drawn, box) for name, drawn, box, _ in dash_br.driver.execute_script(SIZES)}
    assert all(abs(drawn - box) <= 1 for drawn, box in before.values()), before  # each fits its box
    resized = dash_br.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([...document.querySelectorAll('.js-plotly-plot')].map(g => Plotly.Plots.resize(g)))"
        "  .then(() => setTimeout(() => done(document.querySelectorAll('.js-plotly-plot').length), 300));")
    assert resized == len(before)
    assert all(draws == 0 for *_, draws in dash_br.driver.execute_script(SIZES))  # nothing drawn

    dash_br.driver.set_window_size(1000, 1000)  # every box narrows: each chart is redrawn to fit
    WebDriverWait(dash_br.driver, 10).until(lambda d: all(
        draws >= 1 and abs(drawn - box) <= 1 and box < before[name][1]
        for name, drawn, box, draws in d.execute_script(SIZES)), "the charts did not follow their boxes")
    assert dash_br.get_logs() == []
