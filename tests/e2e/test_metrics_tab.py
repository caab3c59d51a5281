"""A user types a formula, sees a typo underlined, fixes it, sees the preview, saves it as
ctr, and the chart API answers ctr with the numbers of click_rate."""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from dashapp import create_app
from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo


@pytest.fixture
def app(pg_engine):
    seed_demo(pg_engine.begin, days=2, per_hour=60, seed=9)
    rollup_pending(pg_engine)
    return create_app({"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False)})


def test_type_fix_preview_save_and_chart(dash_br, live_server, app):
    server = live_server(app)
    dash_br.driver.get(server.url + "/analytics/?tab=metrics&range=24h")
    dash_br.wait_for_element("#formula-text", timeout=20)
    dash_br.find_element("#formula-name").send_keys("ctr")
    formula = dash_br.find_element("#formula-text")
    formula.send_keys("(clikced / delivered) * 100")
    dash_br.wait_for_contains_text(".formula-message", "did you mean 'clicked'", timeout=15)
    dash_br.wait_for_text_to_equal(".formula-error", "clikced", timeout=15)  # the typo is underlined
    formula.send_keys(Keys.CONTROL, "a")
    formula.send_keys(Keys.BACKSPACE)
    formula.send_keys("(clicked / delivered) * 100")
    dash_br.wait_for_contains_text("#formula-feedback", "✓ valid", timeout=15)
    WebDriverWait(dash_br.driver, 15).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#formula-preview .scatterlayer .trace")) >= 2)
    Select(dash_br.find_element("#formula-unit")).select_by_value("%")
    dash_br.find_element("#formula-save").click()
    dash_br.wait_for_contains_text("#formula-message", "use metric=ctr", timeout=15)
    dash_br.wait_for_contains_text("#saved-metrics", "(clicked / delivered) * 100", timeout=15)

    client = app.test_client()
    ctr = client.get("/api/analytics/chart?metric=ctr&group_by=time,channel&start=now-1d").json["data"]
    rate = client.get("/api/analytics/chart?metric=click_rate&group_by=time,channel&start=now-1d").json["data"]
    assert [r["value"] for r in ctr] == pytest.approx([r["value"] for r in rate], nan_ok=True)

    # deleting asks first: dismissed, the metric stays; accepted, it goes
    delete = lambda: dash_br.driver.execute_script(  # noqa: E731 (below the fold: scroll, then click)
        "arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();",
        dash_br.find_element("#saved-metrics .btn-outline-danger"))
    delete()
    WebDriverWait(dash_br.driver, 10).until(expected_conditions.alert_is_present()).dismiss()
    assert client.get("/api/analytics/metrics/ctr").status_code == 200
    delete()
    confirm = WebDriverWait(dash_br.driver, 10).until(expected_conditions.alert_is_present())
    assert "Delete the custom metric “ctr”?" in confirm.text
    confirm.accept()
    dash_br.wait_for_contains_text("#formula-message", "ctr deleted", timeout=15)
    assert client.get("/api/analytics/metrics/ctr").status_code == 404  # deleted: nothing by that name
    assert dash_br.get_logs() == []
