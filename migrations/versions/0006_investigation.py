"""Investigation: why an event failed (error_code, provider), and lookups by user and by
notification.

Postgres builds each index on every daily partition (present and future):
- hash (user_id): a user's events over a range are one probe per day of the range;
- hash (notification_id): a notification's lifecycle is one probe per day, whatever its time;
- (created_at) INCLUDE (channel, template_id, status, error_code, provider) WHERE status is
  failed or bounced: failure reasons over a range are read from an index holding only the
  failures (a few percent of the events), never from the whole table.

Revision ID: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FAILURES = "status IN ('failed', 'bounced')"
# Hash, not B-tree, for the two id lookups: only equality is asked of them, and a hash entry is
# a 4-byte code inserted without a single collation-aware string comparison, where a B-tree on
# random ids costs bulk ingest more than half its speed (measured: bench/README.md, Lookups).


def upgrade():
    op.add_column("notification_events", sa.Column("error_code", sa.String(64)))
    op.add_column("notification_events", sa.Column("provider", sa.String(64)))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_events_user ON notification_events USING hash (user_id)")
        op.execute("CREATE INDEX ix_events_notification ON notification_events USING hash (notification_id)")
        op.execute("CREATE INDEX ix_events_failures ON notification_events (created_at) "
                   f"INCLUDE (channel, template_id, status, error_code, provider) WHERE {FAILURES}")
    else:
        op.create_index("ix_events_user", "notification_events", ["user_id", "created_at"])
        op.create_index("ix_events_notification", "notification_events", ["notification_id"])
        op.create_index("ix_events_failures", "notification_events", ["created_at", "channel", "status"],
                        sqlite_where=sa.text(FAILURES))


def downgrade():
    op.drop_index("ix_events_failures", "notification_events")
    op.drop_index("ix_events_notification", "notification_events")
    op.drop_index("ix_events_user", "notification_events")
    op.drop_column("notification_events", "provider")
    op.drop_column("notification_events", "error_code")
