"""Tables, as SQLAlchemy Core. Alembic migrations (`migrations/`) create them; this module
is what the queries are written against.

Times are UTC everywhere: `UTCDateTime` returns aware UTC datetimes on every dialect.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

CHANNELS = ("email", "sms", "push")
STATUSES = ("sent", "delivered", "failed", "bounced", "opened", "clicked")
OUTCOME_STATUSES = ("delivered", "failed", "bounced")  # the events that carry processing time
FAILURE_STATUSES = ("failed", "bounced")                # the events that may carry an error code
_CHANNEL_LABELS = {"sms": "SMS"}


def channel_label(channel: str) -> str:
    """How a channel is written for people: Email, SMS, Push (CHANNELS is configurable)."""
    return _CHANNEL_LABELS.get(channel, str(channel).capitalize())

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out; stored naive-UTC where the dialect has no zones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC time is required")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.__class__ is datetime and value.tzinfo is timezone.utc:  # Postgres, in the session's UTC
            return value
        if isinstance(value, str):  # computed SQLite expressions come back as text
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


metadata = MetaData()

notification_events = Table(
    "notification_events", metadata,
    Column("created_at", UTCDateTime, primary_key=True),
    Column("event_id", String(100), primary_key=True),
    Column("notification_id", String(100)),
    Column("ingested_at", UTCDateTime, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("template_id", Integer),
    Column("user_id", String(100)),
    Column("status", String(16), nullable=False),
    Column("processing_time_ms", Integer),
    Column("latency_bucket", SmallInteger),  # services.store.latency.bucket_index(processing_time_ms)
    Column("metadata", JSON().with_variant(JSONB(), "postgresql")),
    Column("error_code", String(64)),   # why a failed or bounced event failed ("invalid_number")
    Column("provider", String(64)),     # who carried it ("twilio")
)
EVENT_COLUMNS = tuple(str(c.name) for c in notification_events.columns)  # plain str: JSON keys

# The hours whose rollup rows must be rebuilt from raw events (a full rebuild, a repair);
# the rollup job recomputes them and deletes the entries it consumed.
rollup_invalidations = Table(
    "rollup_invalidations", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("bucket_hour", UTCDateTime, nullable=False, index=True),
    Column("logged_at", UTCDateTime, nullable=False),
)

# What each ingest batch added, pre-aggregated by minute (and latency bucket), written in
# the batch's own transaction for the rows it really inserted (duplicates excluded). The
# rollup folds these into the tables and deletes them in one transaction, so rollup rows
# plus pending deltas are, at every commit, exactly the raw events.
rollup_deltas = Table(
    "rollup_deltas", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("bucket", UTCDateTime, nullable=False, index=True),   # minute
    Column("channel", String(16), nullable=False),
    Column("template_id", Integer, nullable=False),               # NO_TEMPLATE for none
    Column("status", String(16), nullable=False),
    Column("latency_bucket", SmallInteger),
    Column("event_count", BigInteger, nullable=False),
    Column("processing_sum", BigInteger, nullable=False),
    Column("processing_min", Integer),
    Column("processing_max", Integer),
    Column("ingested_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

# A batch holding events older than the sealing margin marks the minutes it touched, so
# cached answers over those minutes (keyed by the newest mark overlapping them) expire.
late_marks = Table(
    "late_marks", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("bucket_start", UTCDateTime, nullable=False),
    Column("bucket_end", UTCDateTime, nullable=False, index=True),
    Column("marked_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

templates = Table(
    "notification_templates", metadata,
    Column("template_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("channel", String(16)),
)


# ---------------------------------------------------------------- rollups
# Each granularity has a full table keyed by (bucket, channel, template_id, status) and a
# narrow one without template, so top-level charts read a few rows per bucket. Events
# without a template are rolled up under NO_TEMPLATE (a primary key cannot hold NULL).
NO_TEMPLATE = -1
GRANULARITIES = ("minute", "hour", "day")
MEASURES = ("event_count", "processing_sum", "processing_count", "processing_min", "processing_max",
            "latency_histogram")


def _rollup_table(name: str, with_template: bool) -> Table:
    keys = [Column("bucket", UTCDateTime, primary_key=True),
            Column("channel", String(16), primary_key=True)]
    if with_template:
        keys.append(Column("template_id", Integer, primary_key=True, autoincrement=False))
    keys.append(Column("status", String(16), primary_key=True))
    return Table(
        name, metadata, *keys,
        Column("event_count", BigInteger, nullable=False),
        Column("processing_sum", BigInteger, nullable=False),
        Column("processing_count", BigInteger, nullable=False),
        Column("processing_min", Integer),
        Column("processing_max", Integer),
        Column("latency_histogram", LargeBinary),  # services.store.latency.encode
    )


ROLLUP_TABLE_NAMES = {
    ("minute", True): "metrics_minute", ("hour", True): "metrics_hourly", ("day", True): "metrics_daily",
    ("minute", False): "metrics_minute_channel", ("hour", False): "metrics_hourly_channel",
    ("day", False): "metrics_daily_channel",
}
ROLLUP_TABLES: dict[tuple[str, bool], Table] = {
    key: _rollup_table(name, with_template=key[1]) for key, name in ROLLUP_TABLE_NAMES.items()
}

rollup_runs = Table(
    "rollup_runs", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("hours", Integer, nullable=False, default=0),
    Column("events", BigInteger, nullable=False, default=0),
    Column("duration_ms", Integer),
    Column("error", String(1000)),
)

# Named counters: "fold" grows with every committed fold of deltas, "rebuild" with every
# rebuild from raw; cache keys carry them where an answer depends on them.
rollup_state = Table(
    "rollup_state", metadata,
    Column("name", String(32), primary_key=True),
    Column("generation", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

custom_metrics = Table(
    "custom_metrics", metadata,
    Column("name", String(40), primary_key=True),
    Column("display_name", String(100), nullable=False),
    Column("formula", String(500), nullable=False),
    Column("unit", String(8), nullable=False),
    Column("description", String(1000), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# ---------------------------------------------------------------- alerts
# A rule watches one metric; the scheduler judges each complete bucket once (`version` is
# the optimistic lock that makes "once" hold with two evaluators), records every state
# change as a transition, and queues what must be sent in alert_deliveries (an outbox
# written in the same transaction, so a transition and its notification exist together).
alert_rules = Table(
    "alert_rules", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("metric", String(40), nullable=False),
    Column("filters", JSON, nullable=False),               # {"channel": ["sms"], ...}
    Column("granularity", String(8), nullable=False),
    Column("condition", String(16), nullable=False),       # "anomaly" | "threshold"
    Column("direction", String(8), nullable=False),        # "above" | "below" | "both" (anomaly only)
    Column("min_severity", String(8)),                     # anomaly: "low" | "medium" | "high"
    Column("threshold", Float),                            # threshold: the value
    Column("for_buckets", Integer, nullable=False),        # threshold: consecutive buckets past it
    Column("min_volume", Float, nullable=False),
    Column("webhook_url", String(2000)),
    Column("notify", String(16), nullable=False),          # "immediate" | "daily_digest"
    Column("silenced_from", UTCDateTime),
    Column("silenced_until", UTCDateTime),
    Column("enabled", Boolean, nullable=False),
    Column("state", String(10), nullable=False),           # "ok" | "firing" | "resolved"
    Column("state_since", UTCDateTime),
    Column("evaluated_through", UTCDateTime),              # start of the last bucket judged
    Column("last_value", Float),
    Column("last_error", String(500)),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

alert_transitions = Table(
    "alert_transitions", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("rule_id", Integer, nullable=False),
    Column("bucket", UTCDateTime, nullable=False),
    Column("state", String(10), nullable=False),           # the state entered
    Column("previous_state", String(10), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("value", Float),
    Column("expected", Float),
    Column("lower", Float),
    Column("upper", Float),
    Column("score", Float),
    Column("severity", String(8)),
    Column("explanation", String(2000), nullable=False),
    Column("drilldown", String(1000), nullable=False),
    UniqueConstraint("rule_id", "bucket", name="uq_alert_transitions_rule_bucket"),
    sqlite_autoincrement=True,
)

alert_deliveries = Table(
    "alert_deliveries", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("rule_id", Integer, nullable=False, index=True),
    Column("dedupe_key", String(64), nullable=False, unique=True),  # "transition:<id>" | "digest:<rule>:<day>"
    Column("url", String(2000), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(10), nullable=False),          # "pending" | "sent" | "failed" | "silenced"
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(500)),
    Column("last_status_code", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    sqlite_autoincrement=True,
)
