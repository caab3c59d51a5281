"""Every field's validation, and the promise that nothing but EventError comes out."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.store.ingest import (
    _DERIVED_ID_NAMESPACE,
    EventError,
    UnreadableEvent,
    oldest_accepted,
    validate_event,
)
from services.store.latency import bucket_index
from tests.factories import iso, make_event

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def valid(**fields):
    return make_event(**{"created_at": iso(NOW - timedelta(hours=1)), **fields})


def test_a_valid_event_becomes_a_row_in_column_order():
    row = validate_event(valid(event_id="abc", processing_time_ms=250), NOW)
    created, event_id, _nid, ingested, channel, tpl, _user, status, ms, bucket, meta, code, provider = row
    assert (created, event_id, ingested, channel, tpl, status, ms) == (
        NOW - timedelta(hours=1), "abc", NOW, "email", 1, "delivered", 250)
    assert bucket == bucket_index(250) and meta == '{"campaign":"test"}'
    assert (code, provider) == (None, None)


def test_a_failure_carries_its_reason_and_provider():
    row = validate_event(valid(status="bounced", error_code="hard_bounce", provider="sendgrid"), NOW)
    assert row[-2:] == ("hard_bounce", "sendgrid")
    assert validate_event(valid(status="sent", provider="ses"), NOW)[-2:] == (None, "ses")


def test_the_reason_changes_a_derived_event_id_and_its_absence_keeps_the_old_one():
    def derived(**fields):
        return validate_event(valid(event_id=None, notification_id="n1", status="failed", **fields), NOW)[1]

    assert derived() != derived(error_code="throttled") != derived(error_code="throttled", provider="ses")
    assert derived() == derived(error_code=None, provider=None)
    # the id of an event without the new fields is what it was before they existed
    assert derived() == "d-" + uuid.uuid5(
        _DERIVED_ID_NAMESPACE,
        '["2026-11-28T11:00:00+00:00","email","failed","n1",1,"u-1",250,"{\\"campaign\\":\\"test\\"}"]').hex


def test_offsets_are_normalised_to_utc():
    row = validate_event(valid(created_at="2026-11-28T12:30:00+02:00"), NOW)
    assert row[0] == datetime(2026, 11, 28, 10, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("fields, message", [
    ({"created_at": None}, "created_at is required"),
    ({"channel": None}, "channel is required"),
    ({"status": ""}, "status is required"),
    ({"created_at": "2026-11-28 11:00:00"}, "needs a time zone"),
    ({"created_at": "2026-13-40T00:00:00Z"}, "is not an ISO 8601 timestamp"),
    ({"created_at": 1732780800}, "must be an ISO 8601 string"),
    ({"created_at": "2026-11-28T12:06:00Z"}, "more than 5 minutes in the future"),
    ({"created_at": "2026-10-01T00:00:00Z"}, "raw retention"),
    ({"channel": "fax"}, "channel 'fax' is not one of email, sms, push"),
    ({"status": "read"}, "status 'read' is not one of sent, delivered"),
    ({"template_id": -1}, "template_id must be from 0 to"),
    ({"template_id": "7"}, "template_id must be a whole number"),
    ({"template_id": True}, "template_id must be a whole number"),
    ({"processing_time_ms": 1.5}, "processing_time_ms must be a whole number"),
    ({"processing_time_ms": 86_400_001}, "processing_time_ms must be from 0 to 86,400,000"),
    ({"metadata": [1, 2]}, "metadata must be a JSON object"),
    ({"metadata": {"x": "y" * 5000}}, "metadata is larger than 4,096 bytes"),
    ({"event_id": "has space"}, "event_id must be 1–100 characters"),
    ({"user_id": {"id": 1}}, "user_id must be a string"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"status": "delivered", "error_code": "x"}, "error_code is only for failed and bounced events; this one is delivered"),
    ({"status": "failed", "error_code": "has space"}, "error_code must be 1–64 characters"),
    ({"status": "failed", "error_code": 550}, "error_code must be 1–64 characters"),
    ({"provider": "p" * 65}, "provider must be 1–64 characters"),
])
def test_each_bad_field_is_named(fields, message):
    with pytest.raises(EventError, match=message):
        validate_event(valid(**fields), NOW)


def test_non_objects_and_unreadable_lines_are_refused():
    with pytest.raises(EventError, match="must be a JSON object"):
        validate_event(["a"], NOW)
    with pytest.raises(EventError, match="line is not JSON"):
        validate_event(UnreadableEvent("line is not JSON: x"), NOW)


def test_integral_floats_are_accepted_as_integers():
    assert validate_event(valid(processing_time_ms=250.0), NOW)[8] == 250


def test_retention_floor_is_whole_days():
    floor = oldest_accepted(NOW, 30)
    assert floor == datetime(2026, 10, 30, tzinfo=timezone.utc)
    validate_event(valid(created_at=iso(floor)), NOW)
    with pytest.raises(EventError):
        validate_event(valid(created_at=iso(floor - timedelta(microseconds=1))), NOW)


def test_derived_event_id_is_deterministic_and_content_based():
    a = validate_event(valid(event_id=None, notification_id="n1"), NOW)
    b = validate_event(valid(event_id=None, notification_id="n1"), NOW + timedelta(seconds=5))
    c = validate_event(valid(event_id=None, notification_id="n2"), NOW)
    assert a[1] == b[1] and a[1].startswith("d-") and a[1] != c[1]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["event_id", "notification_id", "created_at", "channel", "status",
                                        "template_id", "user_id", "processing_time_ms", "metadata", "error_code",
                                        "provider", "x"]),
                       json_values | st.sampled_from(["email", "sent", iso(NOW)])))
def test_any_input_yields_a_row_or_an_event_error(event):
    try:
        row = validate_event(event, NOW)
    except EventError as exc:
        assert str(exc)
    else:
        assert row[4] in ("email", "sms", "push") and row[0].tzinfo is timezone.utc
