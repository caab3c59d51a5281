"""The Alerts tab's pure parts: the sparkline, the words around a rule, the form's draft from
a view and its fields as the rule service takes them, links kept inside the dashboard."""
from __future__ import annotations

from urllib.parse import unquote

from dash import html

from callbacks.alerts import (
    DEFAULT_FORM,
    condition_fields,
    draft_from_view,
    error_message,
    form_fields,
    in_app_link,
    view_granularity,
)
from callbacks.shell import content_key, firing_link, tab_content
from callbacks.trends import alert_me_search
from callbacks.view import ViewState, parse_search
from layouts import alerts, shell
from services.query.custom_metrics import CustomMetric

CHANNELS = ("email", "sms", "push")


# ---------------------------------------------------------------- sparkline

def test_the_sparkline_spans_its_box_highest_value_on_top():
    runs, threshold_y = alerts.sparkline_geometry([1.0, 3.0, 2.0], width=104, height=24, pad=2)
    assert threshold_y is None
    assert runs == [[(2.0, 22.0), (52.0, 2.0), (102.0, 12.0)]]


def test_gaps_split_the_line_and_a_threshold_widens_the_scale():
    values = [5.0, None, 5.0, float("nan"), 5.0, 7.0]
    runs, threshold_y = alerts.sparkline_geometry(values, threshold=10.0, width=56, height=24, pad=2)
    assert [len(r) for r in runs] == [1, 1, 2]
    assert threshold_y == 2.0  # the threshold is the highest value drawn
    assert runs[0][0] == (2.0, 22.0)  # 5, the lowest, at the bottom


def test_a_flat_series_sits_in_the_middle_and_no_value_draws_nothing():
    runs, _ = alerts.sparkline_geometry([4.0, 4.0], width=20, height=20, pad=0)
    assert runs == [[(0.0, 10.0), (20.0, 10.0)]]
    assert alerts.sparkline_geometry([None, float("nan")]) == ([], None)
    assert alerts.sparkline_svg([None, None]) is None


def test_the_svg_holds_the_line_the_last_point_and_the_threshold():
    svg = alerts.sparkline_svg([1.0, 2.0, 3.0], threshold=2.5)
    assert svg.startswith("<svg") and svg.count("<polyline") == 1
    assert svg.count("<circle") == 1 and 'stroke-dasharray="3,2"' in svg


def test_the_sparkline_says_its_numbers_in_words():
    image = alerts.sparkline([90.0, None, 45.5, 91.0], "%", "hour")
    assert image.title == "Last 4 hours: from 45.5 % to 91.0 %, last 91.0 %"
    assert unquote(image.src).startswith("data:image/svg+xml;utf8,<svg")
    empty = alerts.sparkline([], "%", "hour", error="unknown metric 'gone'")
    assert isinstance(empty, html.Span) and empty.children == "unknown metric 'gone'"


# ---------------------------------------------------------------- words

def test_what_a_rule_watches():
    assert alerts.watches("Delivery rate", {"channel": ["sms"]}, "hour") == "Delivery rate · SMS · by hour"
    assert alerts.watches("Bounce rate", {"channel": ["email"], "template_id": [3, 99]}, "day", {3: "Weekly digest"}) \
        == "Bounce rate · Email · Weekly digest, template 99 · by day"
    assert alerts.watches("Failed", {"status": ["failed"]}, "minute") == "Failed · status failed · by minute"


def test_times_and_states():
    assert alerts.when("2026-11-23T17:00:00Z") == "2026-11-23 17:00 UTC"
    assert alerts.when(None) == "—"
    assert [alerts.state_badge(s).color for s in ("firing", "resolved", "ok")] == ["danger", "success", "secondary"]


def test_a_transition_shows_its_value_against_the_band_or_the_threshold():
    def text(lines):
        return " ".join(line.children for line in lines)
    anomaly = {"value": 45.0, "expected": 91.25, "lower": 88.0, "upper": 94.0}
    assert text(alerts._value_against(anomaly, "%")) == "45.0 % expected 91.2 % band 88.0 % to 94.0 %"
    assert text(alerts._value_against({"value": 2500.0, "expected": 2000.0}, "ms")) == "2,500.0 ms threshold 2,000.0 ms"


def test_the_rules_table_marks_the_picked_rule_and_says_when_there_is_none():
    assert "No alert rules yet" in str(alerts.rules_table([], None).children)
    rule = {"id": 7, "name": "SMS", "description": "anomaly", "state": "firing", "state_since": None,
            "last_value": None, "enabled": False, "silenced_until": None, "last_error": "boom"}
    table = alerts.rules_table([{"rule": rule, "unit": "%", "watches": "x", "spark": None, "silenced": False}], "7")
    row = table.children[1].children[0]
    assert row.className == "table-active"
    assert "paused" in str(row) and "Could not be evaluated: boom" in str(row)


def test_the_navbar_badge_names_what_fires():
    assert shell.firing_badge([], "/x") is None
    badge = shell.firing_badge(["SMS delivery", "Push p95"], "/analytics/?tab=alerts")
    assert badge.children == "2 firing" and badge.title == "Firing: SMS delivery, Push p95"
    many = shell.firing_badge([f"r{i}" for i in range(23)], "/a")
    assert many.title.endswith("r19 and 3 more")


def test_the_badge_links_to_the_alerts_tab_in_the_same_view():
    state = ViewState(tab="trends", range="7d", channels=("sms",))
    assert firing_link(state, [{"id": 4}], "/analytics/") == "/analytics/?tab=alerts&range=7d&channel=sms&alert=4"
    assert firing_link(state, [{"id": 4}, {"id": 5}], "/analytics/") == \
        "/analytics/?tab=alerts&range=7d&channel=sms"


def test_a_stored_link_becomes_a_link_inside_the_dashboard():
    stored = "https://ops.example.com/analytics/?tab=drilldown&range=custom&drill=sms"
    assert in_app_link(stored, "/portal/analytics/") == "/portal/analytics/?tab=drilldown&range=custom&drill=sms"
    assert in_app_link(None, "/a/") is None and in_app_link("/analytics/", "/a/") is None


def test_a_refusal_is_shown_under_its_field_label():
    shown = error_message("threshold is required for a threshold rule", "threshold")
    assert shown.children == ["Threshold: ", "threshold is required for a threshold rule"]
    assert error_message("boom", None).children == ["boom"]


# ---------------------------------------------------------------- the form

def test_the_granularity_of_a_view_is_that_of_its_chart():
    assert [view_granularity(ViewState(range=r)) for r in ("1h", "6h", "24h", "7d", "30d", "90d")] == \
        ["minute", "minute", "hour", "hour", "hour", "day"]
    assert view_granularity(ViewState(range="custom", start="2026-11-01", end="2026-11-20")) == "hour"
    assert view_granularity(ViewState(range="custom", start="2026-10-01", end="2026-11-20")) == "day"
    assert view_granularity(ViewState(range="custom", start="2026-11-01T10:00:00Z",
                                      end="2026-11-01T14:00:00Z")) == "minute"


def test_a_view_drafts_an_anomaly_rule_on_the_bad_side():
    draft = draft_from_view(ViewState(tab="alerts", range="7d", channels=("sms",), metric="delivery_rate"))
    assert draft == {**DEFAULT_FORM, "name": "Delivery rate, SMS", "metric": "delivery_rate", "channel": ["sms"],
                     "granularity": "hour", "condition": "anomaly", "min_severity": "medium", "direction": "below"}
    assert draft_from_view(ViewState(metric="failure_rate", range="30d"))["direction"] == "above"
    assert draft_from_view(ViewState(metric="sent"))["direction"] == "both"
    custom = [CustomMetric("ctr", "Click-through", "(clicked / delivered) * 100", "%", "", None, None)]
    assert draft_from_view(ViewState(metric="ctr"), custom)["name"] == "Click-through"
    assert draft_from_view(ViewState(metric="gone"))["name"] == "gone"


def test_the_form_sends_only_what_its_condition_uses():
    anomaly = form_fields(" SMS ", "delivery_rate", ["sms"], "hour", "anomaly", "high", "below", 150, 3, None,
                          "  ", "immediate", "", True)
    assert anomaly == {"name": "SMS", "metric": "delivery_rate", "channel": ["sms"], "granularity": "hour",
                       "condition": "anomaly", "direction": "below", "min_severity": "high", "threshold": None,
                       "for_buckets": 1, "min_volume": 0, "webhook_url": None, "notify": "immediate",
                       "silenced_until": None, "enabled": True, "silenced_from": None}
    threshold = form_fields("p95", "p95_processing_time", [], "minute", "threshold", "medium", "above", 2000.0,
                            3.0, 10.5, "https://hooks.example.com/x", "daily_digest", "2026-12-01T09:00", False)
    assert threshold["threshold"] == 2000 and isinstance(threshold["threshold"], int)
    assert threshold["for_buckets"] == 3 and isinstance(threshold["for_buckets"], int)
    assert (threshold["min_severity"], threshold["channel"], threshold["min_volume"]) == (None, None, 10.5)
    assert threshold["silenced_until"] == "2026-12-01T09:00" and "silenced_from" not in threshold
    assert threshold["enabled"] is False


def test_what_the_form_cannot_read_is_passed_on_for_the_service_to_name():
    fields = form_fields(None, "delivery_rate", "sms", "hour", "threshold", None, "above", "lots", 2.5, None,
                         None, None, None, "yes")
    assert (fields["threshold"], fields["for_buckets"], fields["enabled"]) == ("lots", 2.5, "yes")
    assert fields["channel"] == "sms" and fields["notify"] == "immediate"


def test_the_condition_shows_its_fields_and_keeps_a_direction_it_allows():
    shown = condition_fields("threshold", "both")
    assert shown[:3] == (alerts.HIDDEN, None, None)
    assert [o["value"] for o in shown[3]] == ["above", "below"] and shown[4] == "above"
    assert condition_fields("threshold", "below")[4] == "below"
    assert condition_fields("anomaly", "below")[:3] == (None, alerts.HIDDEN, alerts.HIDDEN)
    assert condition_fields(None, 5)[4] == "both"


def find(component, component_id):
    """The component of that id inside a layout tree."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            found = find(child, component_id)
            if found is not None:
                return found
    return None


def test_the_form_layout_starts_from_the_values_it_is_given():
    values = {**DEFAULT_FORM, "condition": "threshold", "direction": "below", "threshold": 80}
    drafted = alerts.rule_form(values, None, CHANNELS, drafted=True)
    assert find(drafted, "alert-name").autoFocus is True
    assert "Drafted from the view" in str(find(drafted, "alert-draft-note"))
    assert find(drafted, "alert-threshold").value == 80
    assert find(drafted, "alert-threshold-fields").style is None
    assert find(drafted, "alert-anomaly-fields").style == alerts.HIDDEN
    assert [o["value"] for o in find(drafted, "alert-direction").options] == ["above", "below"]
    plain = alerts.rule_form(DEFAULT_FORM, None, CHANNELS)
    assert find(plain, "alert-name").autoFocus is False and find(plain, "alert-draft-note").children is None
    assert find(plain, "alert-threshold-fields").style == alerts.HIDDEN


# ---------------------------------------------------------------- the shell and Trends

def test_alert_me_opens_the_alerts_tab_on_the_same_view():
    assert alert_me_search("?tab=trends&range=7d&channel=sms&metric=failure_rate", CHANNELS) == \
        "?tab=alerts&range=7d&channel=sms&metric=failure_rate&alert=new"


def test_a_tab_is_rebuilt_only_when_what_it_was_built_from_changes():
    def key(search):
        return content_key(parse_search(search, CHANNELS))

    # the Alerts tab keeps its form while the URL changes
    assert key("?tab=alerts&range=7d&alert=new") == key("?tab=alerts&range=24h&alert=3")
    # a range, channel or drill change leaves a tab in place; its metric rebuilds it
    assert key("?tab=overview&range=7d") == key("?tab=overview&range=30d&channel=sms")
    assert key("?tab=drilldown&drill=sms") == key("?tab=drilldown&drill=sms,failed")
    assert key("?tab=overview&metric=sent") != key("?tab=overview&metric=delivery_rate")
    assert key("?tab=trends&detector=seasonal") != key("?tab=trends") != key("?tab=compare")
    assert key("?tab=correlations&lag=5") != key("?tab=correlations&lag=2")


def test_the_tab_list_holds_alerts_last():
    assert shell.TABS[-1] == ("alerts", "Alerts") and "alerts" in shell.TAB_IDS
    assert parse_search("?tab=alerts", CHANNELS).tab == "alerts"


def test_tab_content_drafts_the_form_only_for_alert_new(monkeypatch):
    import callbacks.shell as shell_callbacks
    monkeypatch.setattr(shell_callbacks, "ask", lambda service, *a, **k: ([], None))
    drafted = tab_content("alerts", parse_search("?tab=alerts&alert=new&channel=sms", CHANNELS), CHANNELS)
    plain = tab_content("alerts", parse_search("?tab=alerts&alert=3", CHANNELS), CHANNELS)
    assert "Delivery rate, SMS" in str(drafted) and "Drafted from the view" in str(drafted)
    assert "Delivery rate, SMS" not in str(plain) and "Drafted from the view" not in str(plain)
