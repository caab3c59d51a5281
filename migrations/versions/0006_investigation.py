"""Investigation: why an event failed (error_code, provider), and lookups by user and by
notification.

Postgres builds each index on every daily partition (present and future):
- (user_id, created_at): a user's events over a range are one index range per day;
- (notification_id): a notification's lifecycle is one probe per day, whatever its time;
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


def upgrade():
    op.add_column("notification_events", sa.Column("error_code", sa.String(64)))
    op.add_column("notification_events", sa.Column("provider", sa.String(64)))
    op.create_index("ix_events_user_time", "notification_events", ["user_id", "created_at"])
    op.create_index("ix_events_notification", "notification_events", ["notification_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_events_failures ON notification_events (created_at) "
                   f"INCLUDE (channel, template_id, status, error_code, provider) WHERE {FAILURES}")
    else:
        op.create_index("ix_events_failures", "notification_events", ["created_at", "channel", "status"],
                        sqlite_where=sa.text(FAILURES))


def downgrade():
    op.drop_index("ix_events_failures", "notification_events")
    op.drop_index("ix_events_notification", "notification_events")
    op.drop_index("ix_events_user_time", "notification_events")
    op.drop_column("notification_events", "provider")
    op.drop_column("notification_events", "error_code")
