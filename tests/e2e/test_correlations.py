"""Correlations in a real browser: clicking a cell of the matrix opens that pair — its sentence
is the API's sentence for the same pair."""
import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.support.ui import WebDriverWait

from layouts.correlations import DEFAULT_SET
from tests.e2e.conftest import serve_demo

MATRIX = "#corr-matrix .js-plotly-plot"


@pytest.fixture
def served(live_server, pg_engine):
    return serve_demo(live_server, pg_engine, days=8, per_hour=80, seed=4)


def click_cell(driver, x_label: str, y_label: str) -> None:
    """Plotly's drag layer takes the click: find the cell's centre in viewport coordinates
    from the axes themselves, then press the mouse there."""
    x, y = driver.execute_script(
        f"const g = document.querySelector('{MATRIX}'); g.scrollIntoView({{block: 'center', behavior: 'instant'}});"
        "const r = g.getBoundingClientRect(), s = g._fullLayout._size, xa = g._fullLayout.xaxis,"
        " ya = g._fullLayout.yaxis;"
        "return [r.left + s.l + xa.d2p(arguments[0]), r.top + s.t + ya.d2p(arguments[1])];", x_label, y_label)
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(x), int(y)).pause(0.2).pointer_down().pause(0.05).pointer_up()
    actions.perform()


def test_clicking_a_cell_opens_that_pair(dash_br, served):
    live, api = served
    report = api.get("/api/analytics/correlations?start=now-7d&lag_max=3&metrics=" + ",".join(DEFAULT_SET)).get_json()
    labels = dict(zip(report["matrix"]["metrics"], report["matrix"]["labels"]))
    shown_first = report["findings"][0] if report["findings"] else None
    pair = next(p for p in report["pairs"] if [p["a"], p["b"]] != shown_first and p["sentence"])

    dash_br.driver.get(live.url + "/analytics/?tab=correlations&range=7d")
    WebDriverWait(dash_br.driver, 30).until(lambda d: d.execute_script(
        f"const g = document.querySelector('{MATRIX}'); return g && g._fullLayout && g.data.length > 0"))
    dash_br.wait_for_element("#corr-sentence", timeout=20)
    click_cell(dash_br.driver, labels[pair["b"]], labels[pair["a"]])
    dash_br.wait_for_text_to_equal("#corr-sentence", pair["sentence"], timeout=20)
    # and the other way round: the mirror cell is the same pair
    other = next(p for p in report["pairs"] if p is not pair and p["sentence"] and p["sentence"] != pair["sentence"])
    click_cell(dash_br.driver, labels[other["a"]], labels[other["b"]])
    dash_br.wait_for_text_to_equal("#corr-sentence", other["sentence"], timeout=20)
    assert dash_br.get_logs() == []
