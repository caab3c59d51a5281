"""Rollups: minute, hour and day tables (full and without template), runs, generations.

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = {
    "metrics_minute": True, "metrics_hourly": True, "metrics_daily": True,
    "metrics_minute_channel": False, "metrics_hourly_channel": False, "metrics_daily_channel": False,
}


def upgrade():
    for name, with_template in TABLES.items():
        keys = [sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
                sa.Column("channel", sa.String(16), nullable=False)]
        if with_template:
            keys.append(sa.Column("template_id", sa.Integer, nullable=False, autoincrement=False))
        keys.append(sa.Column("status", sa.String(16), nullable=False))
        op.create_table(
            name, *keys,
            sa.Column("event_count", sa.BigInteger, nullable=False),
            sa.Column("processing_sum", sa.BigInteger, nullable=False),
            sa.Column("processing_count", sa.BigInteger, nullable=False),
            sa.Column("processing_min", sa.Integer),
            sa.Column("processing_max", sa.Integer),
            sa.Column("latency_histogram", sa.LargeBinary),
            sa.PrimaryKeyConstraint(*[c.name for c in keys]),
        )
    op.create_table(
        "rollup_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("hours", sa.Integer, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("error", sa.String(1000)),
    )
    op.create_table(
        "rollup_day_generations",
        sa.Column("day", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
