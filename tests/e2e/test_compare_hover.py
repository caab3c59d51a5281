"""A tab's time charts share the moment under the pointer: hovering a bucket on Compare's
channels chart shows that bucket on the period chart, and leaving clears both."""
import re

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import serve_demo

TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")


@pytest.fixture
def server(live_server, pg_engine):
    return serve_demo(live_server, pg_engine, days=3, per_hour=40, seed=4)[0]


def labels(driver, chart: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, f"#{chart} .hoverlayer .hovertext")]


def test_hovering_one_time_chart_shows_the_same_bucket_on_the_other(dash_br, server):
    dash_br.driver.get(server.url + "/analytics/?tab=compare&range=24h&metric=sent")
    wait = WebDriverWait(dash_br.driver, 30)
    for chart in ("compare-chart", "compare-period"):
        wait.until(lambda d, c=chart: d.execute_script(
            f"const g = document.querySelector('#{c} .js-plotly-plot'); return !!(g && g.data && g.data.length);"))
    wait.until(lambda d: d.find_element(By.ID, "compare-templates").text)  # nothing above moves any more
    for share in (0.3, 0.7):  # two moments, one after the other, as shares of the plot's width
        x, y = dash_br.driver.execute_script(  # a point of the first line, in viewport coordinates
            "const g = document.querySelector('#compare-chart .js-plotly-plot');"
            "g.scrollIntoView({block: 'center', behavior: 'instant'});"
            "const L = g._fullLayout, s = L._size, r = g.getBoundingClientRect(), t = g.data[0];"
            "const i = Math.floor(t.x.length * arguments[0]);"
            "return [r.left + s.l + L.xaxis.l2p(L.xaxis.d2l(t.x[i])), r.top + s.t + L.yaxis.l2p(L.yaxis.d2l(t.y[i]))];",
            share)
        actions = ActionBuilder(dash_br.driver)
        for step in range(4):  # a hand moving onto the point
            actions.pointer_action.move_to_location(int(x) - 6 + 2 * step, int(y)).pause(0.05)
        actions.perform()
        hovered = wait.until(lambda d: labels(d, "compare-chart") or False)
        moment = TIME.search(hovered[0]).group()
        mirrored = wait.until(lambda d: (lambda t: t if any(moment in x for x in t) else False)(
            labels(d, "compare-period")))
        assert any("this period" in x and moment in x for x in mirrored), (moment, mirrored)

    ActionChains(dash_br.driver).move_to_element(dash_br.find_element("#compare-summary")).perform()
    wait.until(lambda d: not labels(d, "compare-period") and not labels(d, "compare-chart"))
    assert dash_br.get_logs() == []
