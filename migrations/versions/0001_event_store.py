"""Event store: raw events (partitioned by day on Postgres), the invalidation log, templates.

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

POSTGRES_EVENTS = """
CREATE TABLE notification_events (
    created_at          timestamptz  NOT NULL,
    event_id            varchar(100) NOT NULL,
    notification_id     varchar(100),
    ingested_at         timestamptz  NOT NULL DEFAULT now(),
    channel             varchar(16)  NOT NULL,
    template_id         integer,
    user_id             varchar(100),
    status              varchar(16)  NOT NULL,
    processing_time_ms  integer,
    latency_bucket      smallint,
    metadata            jsonb,
    PRIMARY KEY (created_at, event_id)
) PARTITION BY RANGE (created_at)
"""


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(POSTGRES_EVENTS)
        op.execute("CREATE INDEX ix_events_created_brin ON notification_events USING brin (created_at)")
    else:
        op.create_table(
            "notification_events",
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("event_id", sa.String(100), nullable=False),
            sa.Column("notification_id", sa.String(100)),
            sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("channel", sa.String(16), nullable=False),
            sa.Column("template_id", sa.Integer),
            sa.Column("user_id", sa.String(100)),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("processing_time_ms", sa.Integer),
            sa.Column("latency_bucket", sa.SmallInteger),
            sa.Column("metadata", sa.JSON),
            sa.PrimaryKeyConstraint("created_at", "event_id"),
        )
    # drill-down lists events by dimensions, newest first, with keyset paging
    op.create_index("ix_events_dims_time", "notification_events",
                    ["channel", "status", "template_id", "created_at"])
    op.create_table(
        "rollup_invalidations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("bucket_hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rollup_invalidations_bucket_hour", "rollup_invalidations", ["bucket_hour"])
    op.create_table(
        "notification_templates",
        sa.Column("template_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16)),
    )
