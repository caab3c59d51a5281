from dash import no_update

from callbacks.shell import sync_view
from callbacks.view import ViewState, parse_search, to_search
from layouts import ids

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


def test_url_drives_controls_on_load():
    out = sync_view("?tab=trends&range=7d&channel=sms", None, None, None, None, None, CHANNELS, ids.URL)
    assert out[1:6] == ("trends", "7d", None, None, ["sms"])
    assert out[0] is no_update  # the URL already says it


def test_controls_drive_the_url():
    out = sync_view("?tab=overview", "drilldown", "30d", None, None, ["push", "email"], CHANNELS, ids.TABS)
    assert out[0] == "?tab=drilldown&range=30d&channel=email,push"


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


def test_leaving_the_alerts_tab_drops_the_alert_from_the_url():
    out = sync_view("?tab=alerts&range=7d&alert=new", "trends", "7d", None, None, [], CHANNELS, ids.TABS)
    assert out[0] == "?tab=trends&range=7d"
