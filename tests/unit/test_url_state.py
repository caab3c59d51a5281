from datetime import datetime, timezone

from dash import no_update

from callbacks.shell import sync_view
from callbacks.view import ViewState, parse_search, to_search
from layouts import ids
from layouts.shell import TAB_IDS

CHANNELS = ("email", "sms", "push")


def test_round_trip_of_a_view():
    state = ViewState(tab="compare", range="custom", start="2026-11-01", end="2026-11-07",
                      channels=("email", "push"))
    assert parse_search(to_search(state), CHANNELS) == state


def test_unknown_values_fall_back_to_defaults():
    state = parse_search("?tab=admin&range=forever&channel=fax,sms", CHANNELS)
    assert state == ViewState(tab="overview", range="24h", channels=("sms",))


def test_custom_range_without_valid_dates_is_the_default_range():
    assert parse_search("?range=custom&start=2026-11-09&end=2026-11-01", CHANNELS).range == "24h"
    assert parse_search("?range=custom&start=yesterday", CHANNELS).range == "24h"


NOW = datetime(2026, 11, 25, 13, 5, 30, tzinfo=timezone.utc)


def test_url_drives_controls_on_load():
    out = sync_view("?tab=trends&range=7d&channel=sms", None, None, None, None, CHANNELS, ids.URL, NOW)
    # From and To show the window on show, in UTC
    assert out[1:] == ("7d", "2026-11-18 13:05:30", "2026-11-25 13:05:30", False, False, ["sms"])
    assert out[0] is no_update  # the URL already says it
    # said another way, it is the same view: no new address (the address bar shows the
    # canonical one in place, from the ADDRESS store)
    assert sync_view("?channel=sms&range=7d", None, None, None, None, CHANNELS, ids.URL, NOW)[0] is no_update


def test_controls_drive_the_url():
    out = sync_view("?tab=drilldown", "30d", None, None, ["push", "email"], CHANNELS, ids.CHANNELS, NOW)
    assert out[0] == "?tab=drilldown&range=30d&channel=email,push"


def test_each_tab_link_carries_the_view_to_its_tab():
    from callbacks.shell import tab_links

    hrefs, active = tab_links(parse_search("?tab=overview&range=7d&channel=sms&theme=dark", CHANNELS))
    assert hrefs[TAB_IDS.index("drilldown")] == "?tab=drilldown&range=7d&channel=sms&theme=dark"
    assert active == [tab == "overview" for tab in TAB_IDS]
    hrefs, _ = tab_links(parse_search("?tab=alerts&range=7d&alert=new", CHANNELS))
    assert hrefs[TAB_IDS.index("trends")] == "?tab=trends&range=7d"  # leaving the Alerts tab drops its draft


def test_a_typed_window_is_looked_at_exactly_and_a_bad_one_is_marked():
    out = sync_view("?tab=overview&range=7d", None, "2026-11-24 06:00", "2026-11-24T09:30:00Z", [], CHANNELS,
                    ids.RANGE_TO, NOW)
    assert out[0] == "?tab=overview&range=custom&start=2026-11-24T06:00:00Z&end=2026-11-24T09:30:00Z"
    assert out[1:6] == ("custom", "2026-11-24 06:00", "2026-11-24 09:30", False, False)
    assert sync_view("?range=7d", None, "2026-11-24", "2026-11-25", [], CHANNELS, ids.RANGE_FROM, NOW)[2:4] == (
        "2026-11-24 00:00", "2026-11-25 00:00")  # a date alone is its midnight
    assert sync_view("?range=7d", None, "yesterday", "2026-11-24 09:00", [], CHANNELS, ids.RANGE_FROM,
                     NOW)[4:6] == (True, False)
    assert sync_view("?range=7d", None, "2026-11-24 10:00", "2026-11-24 09:00", [], CHANNELS, ids.RANGE_TO,
                     NOW)[4:6] == (False, True)  # the end before the start
    refused = sync_view("?range=7d", None, "2026-11-24 10:00", "", [], CHANNELS, ids.RANGE_TO, NOW)
    assert refused[0] is no_update and refused[5] is True


def test_picking_custom_keeps_the_window_on_show_as_fixed_times():
    out = sync_view("?tab=overview&range=24h", "custom", "", "", [], CHANNELS, ids.RANGE, NOW)
    assert out[0] == "?tab=overview&range=custom&start=2026-11-24T13:05:30Z&end=2026-11-25T13:05:30Z"
    back = sync_view(out[0], "7d", out[2], out[3], [], CHANNELS, ids.RANGE, NOW)
    assert back[0] == "?tab=overview&range=7d"


def test_the_alerts_tab_carries_a_draft_or_a_picked_rule():
    for alert in ("new", "12"):
        state = ViewState(tab="alerts", range="7d", channels=("sms",), alert=alert)
        assert parse_search(to_search(state), CHANNELS) == state
    assert to_search(ViewState(tab="alerts", alert="new")) == "?tab=alerts&range=24h&alert=new"


def test_an_alert_parameter_means_nothing_off_the_alerts_tab_or_when_malformed():
    assert parse_search("?tab=trends&alert=new", CHANNELS).alert is None
    assert to_search(ViewState(tab="trends", alert="new")) == "?tab=trends&range=24h"
    for junk in ("old", "-1", "1.5", "١٢", "1234567890", ""):
        assert parse_search(f"?tab=alerts&alert={junk}", CHANNELS).alert is None, junk


def test_the_theme_and_density_live_in_the_url():
    from callbacks.shell import page_look, search_with_look

    state = parse_search("?tab=trends&range=7d&theme=dark&density=compact", CHANNELS)
    assert (state.dark, state.compact) == (True, True) and parse_search(to_search(state), CHANNELS) == state
    assert page_look(state) == ("dark", "analytics-page density-compact", True, True)
    assert page_look(parse_search("?theme=blue", CHANNELS)) == ("light", "analytics-page", False, False)
    assert search_with_look("?tab=trends&range=7d", True, False, CHANNELS) == "?tab=trends&range=7d&theme=dark"
    assert search_with_look("?tab=trends&range=7d&theme=dark", True, None, CHANNELS) is no_update
    # a range change keeps them
    out = sync_view("?tab=overview&range=7d&theme=dark", "30d", None, None, [], CHANNELS, ids.RANGE, NOW)
    assert out[0] == "?tab=overview&range=30d&theme=dark"


def test_a_tab_callback_asks_nothing_for_a_url_on_another_tab():
    import pytest
    from dash.exceptions import PreventUpdate

    from callbacks.view import shown_on

    assert shown_on("?tab=trends&range=7d", CHANNELS, "trends").range == "7d"
    with pytest.raises(PreventUpdate):
        shown_on("?tab=trends&range=7d", CHANNELS, "overview")
    assert shown_on("", CHANNELS, "overview").tab == "overview"  # no tab: the default one


def test_the_drill_down_metric_decides_what_the_drill_path_means():
    from callbacks.drilldown import drill_filters, search_after_bar_click, search_after_metric_pick

    counted = parse_search("?tab=drilldown&drill=email,failed,7,SMTP_550", CHANNELS)
    assert (counted.drill_metric, counted.drill) == ("events", ("email", "failed", "7", "SMTP_550"))
    assert drill_filters(counted) == {"channel": "email", "status": "failed", "template_id": 7, "error_code": "SMTP_550"}
    # a ratio of statuses is drilled channel → template: a status in its path is not a value of it
    rate = parse_search("?tab=drilldown&drill_metric=delivery_rate&drill=email,7", CHANNELS)
    assert drill_filters(rate) == {"channel": "email", "template_id": 7}
    assert parse_search("?tab=drilldown&drill_metric=my_ratio&drill=email,failed", CHANNELS).drill == ("email",)
    assert parse_search(to_search(rate), CHANNELS) == rate
    assert "drill_metric" not in to_search(counted)
    assert parse_search("?tab=drilldown&drill_metric=DROP%20TABLE", CHANNELS).drill_metric == "events"
    # the path is kept while it means the same dimensions, and starts over when it does not
    to_failed = parse_search(search_after_metric_pick(to_search(counted), "failed", CHANNELS), CHANNELS)
    assert (to_failed.drill_metric, to_failed.drill) == ("failed", counted.drill)
    to_rate = parse_search(search_after_metric_pick(to_search(counted), "delivery_rate", CHANNELS), CHANNELS)
    assert (to_rate.drill_metric, to_rate.drill) == ("delivery_rate", ())
    assert search_after_metric_pick(to_search(rate), "delivery_rate", CHANNELS) is no_update
    assert search_after_metric_pick(to_search(rate), None, CHANNELS) is no_update
    # a bar click on the ratio's template level goes no deeper (the events are listed there)
    click = {"points": [{"customdata": 9}]}
    assert search_after_bar_click(to_search(rate), click, CHANNELS) is no_update
    at_channel = to_search(ViewState(tab="drilldown", drill=("email",), drill_metric="delivery_rate"))
    assert parse_search(search_after_bar_click(at_channel, click, CHANNELS), CHANNELS).drill == ("email", "9")
