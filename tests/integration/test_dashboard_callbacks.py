"""Dashboard callbacks called as plain functions against demo data: the figures and
components they return, and the URLs clicks lead to."""
from __future__ import annotations

from urllib.parse import parse_qs

import plotly.graph_objects as go
import pytest

from callbacks import drilldown, overview, shell
from callbacks.view import parse_search
from dashapp import create_app
from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo

CHANNELS = ("email", "sms", "push")


@pytest.fixture
def app(engine):
    seed_demo(engine.begin, days=3, per_hour=60, seed=5)
    rollup_pending(engine)
    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    with app.test_request_context():
        yield app


def view(search):
    return parse_search(search, CHANNELS)


def test_kpi_tiles_show_values_and_changes(app):
    tiles, problem = overview.kpi_row(view("?range=24h"))
    assert problem is None and len(tiles) == 5
    text = str(tiles)
    assert "SENT" not in text and "Sent" in text and "vs previous period" in text
    assert "percentage point" in text  # the rates' changes, in points

def test_a_rate_a_channel_never_reports_reads_n_a_not_zero(app, engine):
    """SMS reports no opens or clicks: its open and click rates are not measured, so the tiles
    say n/a; email's are real measurements."""
    from services.analysis.kpis import kpis

    with engine.connect() as conn:
        sms = {k.metric: k for k in kpis(conn, ["open_rate", "click_rate", "delivery_rate"], "now-24h",
                                         filters={"channel": ["sms"]})}
        email = {k.metric: k for k in kpis(conn, ["open_rate"], "now-24h", filters={"channel": ["email"]})}
    assert (sms["open_rate"].value, sms["open_rate"].untracked) == (None, "opened")
    assert (sms["click_rate"].value, sms["click_rate"].untracked) == (None, "clicked")
    assert sms["delivery_rate"].untracked is None and sms["delivery_rate"].value > 50
    assert email["open_rate"].untracked is None and email["open_rate"].value > 0
    tiles, problem = overview.kpi_row(view("?range=24h&channel=sms"))
    text = str(tiles)
    assert problem is None and "n/a" in text and "no opened events recorded for this selection" in text
    assert "0.0 %" not in text


def test_figures_have_units_and_one_trace_per_channel(app):
    figure = go.Figure(overview.timeseries_figure(view("?range=7d&metric=delivery_rate"))[0])
    assert {t.name for t in figure.data} == {"Email", "SMS", "Push"}
    assert figure.layout.yaxis.title.text == "Delivery rate (%)"
    bars = go.Figure(overview.channel_figure(view("?range=7d&metric=sent")))
    assert list(bars.data[0].customdata) and bars.layout.yaxis.title.text == "Sent (events)"
    by_status = go.Figure(overview.status_figure(view("?range=7d")))
    assert by_status.layout.yaxis.title.text == "Events"  # the unit once, not "Events (events)"
    heat = go.Figure(overview.heatmap_figure(view("?range=7d")))
    assert len(heat.data[0].z) == 7 and len(heat.data[0].z[0]) == 24


def test_empty_selection_says_so_instead_of_a_blank_axis(app):
    figure = go.Figure(overview.timeseries_figure(view("?range=custom&start=2020-01-01&end=2020-01-02"))[0])
    assert figure.layout.annotations[0].text == "No events in this range"


def test_a_bad_metric_in_the_url_falls_back_and_a_query_error_becomes_a_sentence(app):
    assert view("?metric=DROP TABLE").metric == "delivery_rate"
    figure = go.Figure(overview.timeseries_figure(view("?range=custom&start=2020-01-01&end=2021-12-31"))[0])
    assert "at most 400 days" in figure.layout.annotations[0].text


def test_clicking_a_channel_bar_drills_into_it(app):
    search = overview.search_after_channel_click("?tab=overview&range=24h", {"points": [{"customdata": "sms"}]},
                                                 CHANNELS)
    assert parse_qs(search[1:])["drill"] == ["sms"] and parse_qs(search[1:])["tab"] == ["drilldown"]


def test_clicking_a_time_point_narrows_the_range_to_its_bucket(app):
    click = {"points": [{"x": "2026-11-27 14:00", "customdata": "email"}]}
    state = view(overview.search_after_time_click("?range=7d", click, CHANNELS))
    assert (state.tab, state.range, state.drill) == ("drilldown", "custom", ("email",))
    assert (state.start, state.end) == ("2026-11-27T14:00:00Z", "2026-11-27T15:00:00Z")


def test_levels_breadcrumbs_and_the_events_grid(app):
    crumbs, title, figure, chart_style, events_style, href, grid, count, problem = drilldown.level_view(
        view("?tab=drilldown&range=7d&drill=email"), "/analytics/", None)
    assert problem is None and title == "Events by status" and events_style == {"display": "none"}
    assert [c["label"] for c in crumbs] == ["All", "Email"] and crumbs[0]["href"].startswith("/analytics/?")
    assert "drill=" not in crumbs[0]["href"]
    assert set(go.Figure(figure).data[0].customdata) <= {"sent", "delivered", "failed", "bounced", "opened", "clicked"}
    *_, events_style, href, grid, count, problem = drilldown.level_view(
        view("?tab=drilldown&range=7d&drill=email,delivered,2"), "/analytics/", None)
    assert events_style == {} and "format=csv" in href and "template_id=2" in href
    assert count.endswith(" events") and grid is not None
    key = drilldown.selection_key(view("?tab=drilldown&range=7d&drill=email,delivered,2"))
    *_, grid_again, _, _ = drilldown.level_view(view("?tab=drilldown&range=7d&drill=email,delivered,2"),
                                                "/analytics/", key)
    assert grid_again is drilldown.no_update  # a refresh keeps the grid and its scroll


def test_grid_blocks_page_with_cursors_and_jumps(app):
    state = view("?tab=drilldown&range=7d&drill=email,sent,2")
    first, cursors = drilldown.rows_for(state, {"startRow": 0, "endRow": 50}, {})
    second, cursors = drilldown.rows_for(state, {"startRow": 50, "endRow": 100}, cursors)
    jumped, _ = drilldown.rows_for(state, {"startRow": 50, "endRow": 100}, {})
    assert len(first["rowData"]) == 50 and second["rowData"] == jumped["rowData"]
    assert first["rowData"][-1]["created_at"] >= second["rowData"][0]["created_at"]
    assert {r["template"] for r in first["rowData"]} == {"Order confirmation (#2)"}  # by name, not a bare id
    ascending, _ = drilldown.rows_for(state, {"startRow": 0, "endRow": 5,
                                              "sortModel": [{"colId": "created_at", "sort": "asc"}]}, {})
    times = [r["created_at"] for r in ascending["rowData"]]
    assert times == sorted(times)


def test_bar_click_appends_to_the_drill_path(app):
    search = drilldown.search_after_bar_click("?tab=drilldown&drill=email", {"points": [{"customdata": "bounced"}]},
                                              CHANNELS)
    assert view(search).drill == ("email", "bounced")


def test_data_as_of_line(app):
    text = shell.data_as_of_text({"watermark": "2026-11-28T06:00:00+00:00", "lag_seconds": 12}, view("?range=24h"))
    assert text == "Rolled up to 2026-11-28 06:00:00 UTC (12 s ago) · newest bucket still filling"
    assert shell.data_as_of_text({"watermark": None}, view("")).startswith("No rollup has run yet")
    idle = shell.data_as_of_text({"watermark": "2026-11-28T06:00:00+00:00", "lag_seconds": 0.0}, view("?range=24h"))
    assert idle == "Everything ingested is rolled up (last fold 2026-11-28 06:00:00 UTC) · newest bucket still filling"


def test_trends_tab_shows_headline_band_anomalies_and_profiles(app):
    from callbacks import trends

    head, chart, table, hours, weekdays, problem = trends.trend_view(view("?tab=trends&range=7d&metric=events"),
                                                                     "/analytics/")
    assert problem is None and "Events" in str(head)
    chart, hours, weekdays = (go.Figure(f) for f in (chart, hours, weekdays))
    names = {t.name for t in chart.data}
    assert {"Events", "moving average", "expected band"} <= names
    assert len(hours.data[0].y) == 24 and len(weekdays.data[0].y) == 7


def test_trends_tab_draws_a_saved_custom_metric(app, engine):
    from callbacks import trends
    from services.query.custom_metrics import create_metric

    with engine.begin() as conn:
        create_metric(conn, {"name": "undelivered_pct", "formula": "(failed + bounced) / sent * 100", "unit": "%"})
    head, chart, table, hours, weekdays, problem = trends.trend_view(
        view("?tab=trends&range=7d&metric=undelivered_pct"), "/analytics/")
    assert problem is None and "Undelivered_pct: not enough history" in str(head)
    assert go.Figure(chart).layout.yaxis.title.text == "undelivered_pct (%)"


def test_the_anomaly_tables_link_each_row_into_the_drill_down():
    from layouts.trends import anomaly_tables

    anomaly = {"time": "2026-11-23T10:00:00Z", "value": 10.1, "expected": 3.4, "score": 6.1, "severity": "medium",
               "explanation": "Email bounce rate was 10.1 % …", "drilldown": "?tab=drilldown&drill=email,bounced,3"}
    segment = {"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T12:00:00Z", "severity": "high",
               "sentence": "Weekly digest bounce rate 30.2 % against a usual 3.4 % …",
               "drilldown": "?tab=drilldown&drill=email,bounced,3"}
    both = str(anomaly_tables([anomaly], [segment], "%", "/analytics/"))
    assert "10.1 % (expected 3.4 %)" in both and "Inside single templates" in both
    assert both.count("/analytics/?tab=drilldown&drill=email,bounced,3") == 2
    assert anomaly_tables([], [], "%", "/analytics/") is None


def test_clicking_an_anomaly_drills_into_its_hour():
    from callbacks import trends

    click = {"points": [{"customdata": ["high", 90.0, "SMS fell", "?tab=drilldown&range=custom&drill=sms"]}]}
    assert trends.search_after_anomaly_click("?tab=trends", click, CHANNELS) == "?tab=drilldown&range=custom&drill=sms"
    assert trends.search_after_anomaly_click("?tab=trends", {"points": [{"x": 1}]}, CHANNELS) is trends.no_update


def test_compare_tab_highlights_best_and_worst_and_ranks_templates(app):
    from callbacks import compare

    summary, cards, overlay, period, table, problem = compare.compare_view(view("?tab=compare&range=24h"))
    assert problem is None
    text = str(summary)
    assert " is best (" in text and " worst (" in text and "Against the previous period" in text
    borders = [c.children.className for c in cards]
    assert sum("border-success" in b for b in borders) == 1 and sum("border-danger" in b for b in borders) == 1
    assert {t.name for t in go.Figure(overlay).data} == {"Email", "SMS", "Push"}
    assert {t.name for t in go.Figure(period).data} == {"this period", "compared period"}
    assert "Template" in str(table)


def test_correlations_tab_matrix_and_pair(app):
    from callbacks import correlations

    figure, report, problem = correlations.matrix_view(view("?tab=correlations&range=7d"))
    assert problem is None and len(report["matrix"]["metrics"]) == 6
    sentence, overlay, scatter, lags = correlations.pair_view(report, ["email:bounce_rate", "email:delivery_rate"], "")
    assert "Email bounce rate" in sentence and len(go.Figure(overlay).data) == 2
    assert len(go.Figure(lags).data[0].x) >= 7 and go.Figure(scatter).data
    assert correlations.pair_view(None, None, "")[0] == ""


def test_the_page_links_each_stylesheet_and_script_once(app):
    """Bootstrap is linked once (the assets folder's copy is not served a second time), and
    the page's own scripts are there."""
    page = app.test_client().get("/analytics/").get_data(as_text=True)
    assert page.count("bootstrap.min.css") == 1
    assert page.count("hover_sync.js") == 1 and page.count("session.js") == 1
