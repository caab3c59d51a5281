"""Incremental rollups: each ingest batch writes what it added, pre-aggregated by minute, to
rollup_deltas; the rollup folds those into the tables. late_marks names the ranges that
late events changed, for cache keys. The invalidation log becomes the queue of hours to
rebuild from raw (full rebuilds and repairs): the hours it holds now are rebuilt by the
next rollup run. Day generations give way to late marks. Latency histograms are re-encoded
big-endian (network order), the order Postgres writes them in when it builds them in SQL.

Revision ID: 0004
"""
import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rollup_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("template_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("latency_bucket", sa.SmallInteger),
        sa.Column("event_count", sa.BigInteger, nullable=False),
        sa.Column("processing_sum", sa.BigInteger, nullable=False),
        sa.Column("processing_min", sa.Integer),
        sa.Column("processing_max", sa.Integer),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_rollup_deltas_bucket", "rollup_deltas", ["bucket"])
    if op.get_bind().dialect.name == "postgresql":
        # a queue: rows live seconds; vacuum it after thousands of deletes, not 20 % of the table
        op.execute("ALTER TABLE rollup_deltas SET (autovacuum_vacuum_scale_factor = 0, "
                   "autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0)")
    op.create_table(
        "late_marks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bucket_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_late_marks_bucket_end", "late_marks", ["bucket_end"])
    op.drop_table("rollup_day_generations")
    for name, with_template in ROLLUPS.items():
        _reencode(op.get_bind(), name, with_template)


ROLLUPS = {"metrics_minute": True, "metrics_hourly": True, "metrics_daily": True,
           "metrics_minute_channel": False, "metrics_hourly_channel": False, "metrics_daily_channel": False}


def _reencode(bind, name: str, with_template: bool, chunk: int = 5000) -> None:
    """Little-endian histograms (count, int16 indexes, int64 counts) to big-endian."""
    keys = ["bucket", "channel"] + (["template_id"] if with_template else []) + ["status"]
    table = sa.table(name, *[sa.column(k) for k in keys], sa.column("latency_histogram", sa.LargeBinary))
    rows = bind.execute(sa.select(*[table.c[k] for k in keys], table.c.latency_histogram)
                        .where(table.c.latency_histogram.is_not(None))).all()
    update = (sa.update(table).where(*[table.c[k] == sa.bindparam(f"k_{k}") for k in keys])
              .values(latency_histogram=sa.bindparam("blob")))
    for i in range(0, len(rows), chunk):
        batch = []
        for row in rows[i:i + chunk]:
            old = row[-1]
            n = int.from_bytes(old[:4], "little")
            idx = np.frombuffer(old, dtype="<i2", count=n, offset=4)
            cnt = np.frombuffer(old, dtype="<i8", count=n, offset=4 + 2 * n)
            blob = n.to_bytes(4, "big") + idx.astype(">i2").tobytes() + cnt.astype(">i8").tobytes()
            batch.append({**{f"k_{k}": v for k, v in zip(keys, row[:-1])}, "blob": blob})
        bind.execute(update, batch)


def downgrade():
    op.create_table(
        "rollup_day_generations",
        sa.Column("day", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.drop_table("late_marks")
    op.drop_table("rollup_deltas")
