"""The raw events' lookup indexes (by user and time, by notification, by channel, status,
template and time) move from the partitioned parent to each daily partition on Postgres, so a
partition a backfill makes can be written without them and indexed in one sorted build once
its day is rolled up (services.rollup.fold.index_rebuilt_days). Every existing partition gets
them here. SQLite keeps them on its one table.

Revision ID: 0007
"""
from alembic import op

from services.store import dialect

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PARENT = {"ix_events_user_time": "user_id, created_at", "ix_events_notification": "notification_id",
          "ix_events_dims_time": "channel, status, template_id, created_at"}


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for name in PARENT:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    for day in sorted(dialect.existing_partition_days(bind)):
        dialect.index_partition(bind, day)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for day in sorted(dialect.existing_partition_days(bind)):
        dialect.drop_lookup_indexes(bind, day)
    for name, columns in PARENT.items():
        op.execute(f"CREATE INDEX {name} ON notification_events ({columns})")
