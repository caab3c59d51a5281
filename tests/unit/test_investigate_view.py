"""The Investigate tab's pure parts: what Find does with what was typed, the URL of an
investigation and of a user's events, the drill path below template, and the clicks that
open a notification."""
from dash import no_update

from callbacks.drilldown import drill_filters, event_filters, search_after_cell_click
from callbacks.investigate import BAD_ID, find_search, search_after_timeline_click, span_text
from callbacks.view import ViewState, parse_search, to_search
from layouts.investigate import duration
from services.analysis.investigate import reason_shares, usual_counts

CHANNELS = ("email", "sms", "push")


def test_find_opens_an_id_and_refuses_what_no_id_can_be():
    search, invalid, message = find_search("?tab=drilldown&range=7d&drill=email", "  u-42 ", CHANNELS)
    assert (search, invalid, message) == ("?tab=investigate&range=7d&find=u-42", False, "")
    assert find_search("?tab=overview", "two words", CHANNELS) == (no_update, True, BAD_ID)
    assert find_search("?tab=overview", "x" * 101, CHANNELS) == (no_update, True, BAD_ID)
    assert find_search("?tab=overview", "", CHANNELS) == (no_update, False, "")
    assert find_search("?tab=overview", None, CHANNELS) == (no_update, False, "")


def test_the_url_keeps_find_and_user_only_on_their_tabs():
    state = parse_search("?tab=investigate&range=7d&find=demo42-1", CHANNELS)
    assert state.find == "demo42-1" and parse_search(to_search(state), CHANNELS) == state
    assert parse_search("?tab=overview&find=demo42-1", CHANNELS).find is None
    assert parse_search("?tab=investigate&find=bad%20id", CHANNELS).find is None
    drilled = parse_search("?tab=drilldown&drill=email,bounced&user=u1", CHANNELS)
    assert (drilled.drill, drilled.user) == (("email", "bounced"), "u1")
    assert event_filters(drilled) == {"channel": "email", "status": "bounced", "user_id": "u1"}


def test_a_drill_path_goes_below_template_only_for_failures():
    assert parse_search("?tab=drilldown&drill=sms,failed,6,invalid_number", CHANNELS).drill == (
        "sms", "failed", "6", "invalid_number")
    assert parse_search("?tab=drilldown&drill=sms,failed,6,(none)", CHANNELS).drill[-1] == "(none)"
    assert parse_search("?tab=drilldown&drill=sms,delivered,6,invalid_number", CHANNELS).drill == (
        "sms", "delivered", "6")
    assert parse_search("?tab=drilldown&drill=sms,failed,6,bad%20code", CHANNELS).drill == ("sms", "failed", "6")
    state = ViewState(tab="drilldown", drill=("sms", "failed", "6", "invalid_number"))
    assert drill_filters(state) == {"channel": "sms", "status": "failed", "template_id": 6,
                                    "error_code": "invalid_number"}


def test_clicks_on_ids_open_them():
    search = "?tab=drilldown&range=7d&drill=email,bounced&user=u1"
    assert search_after_cell_click(search, {"colId": "notification_id", "value": "n-9"}, CHANNELS) == \
        "?tab=investigate&range=7d&find=n-9"
    assert search_after_cell_click(search, {"colId": "user_id", "value": "u1"}, CHANNELS) == \
        "?tab=investigate&range=7d&find=u1"
    assert search_after_cell_click(search, {"colId": "status", "value": "bounced"}, CHANNELS) is no_update
    assert search_after_cell_click(search, {"colId": "notification_id", "value": None}, CHANNELS) is no_update
    assert search_after_cell_click(search, None, CHANNELS) is no_update
    timeline = {"points": [{"customdata": ["n-7", 1.5]}]}
    assert search_after_timeline_click("?tab=investigate&find=u1", timeline, CHANNELS) == \
        "?tab=investigate&range=24h&find=n-7"
    assert search_after_timeline_click("?tab=investigate&find=n-7", timeline, CHANNELS) is no_update
    assert search_after_timeline_click("?tab=investigate&find=u1", {"points": [{}]}, CHANNELS) is no_update


def test_spans_and_durations_read_as_people_write_them():
    assert span_text(ViewState(range="7d")) == "in the last 7 days"
    assert span_text(ViewState(range="custom", start="2026-11-20T10:00:00Z", end="2026-11-20T11:00:00Z")) == \
        "from 2026-11-20 10:00:00 to 2026-11-20 11:00:00 UTC"
    assert [duration(s) for s in (0.24, 12.4, 245, 7800, 200_000, None)] == [
        "0.2 s", "12 s", "4 min 5 s", "2 h 10 min", "2 d 7 h", ""]


def test_reason_shares_split_only_the_extra_failures():
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
    times = [t0 + timedelta(hours=h) for h in range(4)]
    counts = {(times[0], "sms", "throttled"): 4, (times[1], "sms", "throttled"): 6,
              (times[3], "sms", "throttled"): 5, (times[3], "sms", "carrier_outage"): 45,
              (times[3], "email", None): 2}
    usual = usual_counts(counts, times, [0, 1, -1])
    assert usual == {("sms", "throttled"): 5.0}
    shares = reason_shares({(c, code): n for (b, c, code), n in counts.items() if b == times[3]}, usual)
    assert [(r["error_code"], r["extra"]) for r in shares] == [("carrier_outage", 45.0), (None, 2.0)]
    assert [round(r["share_percent"], 6) for r in shares] == [round(45 / 47 * 100, 6), round(2 / 47 * 100, 6)]
    assert reason_shares({("sms", "throttled"): 3}, usual) == []  # fewer than usual: nothing extra


def text_of(component) -> str:
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(text_of(c) for c in component)
    return text_of(getattr(component, "children", None))


def test_a_users_rates_say_what_is_missing_behind_an_empty_one():
    from layouts.investigate import user_view

    activity = {"user_id": "u1", "events": 2, "notification_count": 1, "truncated": False,
                "by_channel": [{"channel": "email", "channel_label": "Email", "sent": 1, "bounced": 1}],
                "comparison": [
                    {"channel": "email", "channel_label": "Email", "metric": "delivery_rate", "label": "Delivery rate",
                     "numerator": "delivered", "denominator": "sent", "user_value": 0.0, "user_numerator": 0,
                     "user_denominator": 1, "channel_value": 95.0, "channel_denominator": 200.0},
                    {"channel": "email", "channel_label": "Email", "metric": "open_rate", "label": "Open rate",
                     "numerator": "opened", "denominator": "delivered", "user_value": None, "user_numerator": 0,
                     "user_denominator": 0, "channel_value": 40.0, "channel_denominator": 190.0}],
                "notifications": [{"notification_id": "n1", "channel": "email", "template_id": 3,
                                   "template_name": "Weekly digest", "first_at": "2026-11-20T10:00:00Z",
                                   "outcome": "bounced", "error_code": "hard_bounce", "provider": "ses",
                                   "steps": [{"status": "sent", "time": "2026-11-20T10:00:00Z", "after_seconds": 0.0},
                                             {"status": "bounced", "time": "2026-11-20T10:00:01Z",
                                              "after_seconds": 1.0}]}]}
    shown = text_of(user_view(activity, "in the last 7 days", lambda **k: "?x", "r"))
    assert "0.0 % (0 of 1)" in shown and "95.0 % of 200" in shown
    assert "n/a (none delivered)" in shown and "none sent" not in shown
    assert "1 notification and 2 events in the last 7 days" in shown
    assert "bounced · hard_bounce" in shown and "1 bounced" in shown
