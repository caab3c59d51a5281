"""Alerts: rules, the transitions each rule went through, and the outbox of notifications.

Revision ID: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade():
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("filters", sa.JSON, nullable=False),
        sa.Column("granularity", sa.String(8), nullable=False),
        sa.Column("condition", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("min_severity", sa.String(8)),
        sa.Column("threshold", sa.Float),
        sa.Column("for_buckets", sa.Integer, nullable=False),
        sa.Column("min_volume", sa.Float, nullable=False),
        sa.Column("webhook_url", sa.String(2000)),
        sa.Column("notify", sa.String(16), nullable=False),
        sa.Column("silenced_from", TIME),
        sa.Column("silenced_until", TIME),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("state_since", TIME),
        sa.Column("evaluated_through", TIME),
        sa.Column("last_value", sa.Float),
        sa.Column("last_error", sa.String(500)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "alert_transitions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.Integer, sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False),
        sa.Column("bucket", TIME, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("previous_state", sa.String(10), nullable=False),
        sa.Column("recorded_at", TIME, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("expected", sa.Float),
        sa.Column("lower", sa.Float),
        sa.Column("upper", sa.Float),
        sa.Column("score", sa.Float),
        sa.Column("severity", sa.String(8)),
        sa.Column("explanation", sa.String(2000), nullable=False),
        sa.Column("drilldown", sa.String(1000), nullable=False),
        sa.UniqueConstraint("rule_id", "bucket", name="uq_alert_transitions_rule_bucket"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.Integer, sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dedupe_key", sa.String(64), nullable=False, unique=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=False),
        sa.Column("last_error", sa.String(500)),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("sent_at", TIME),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alert_deliveries_rule_id", "alert_deliveries", ["rule_id"])
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["status", "next_attempt_at"])


def downgrade():
    op.drop_table("alert_deliveries")
    op.drop_table("alert_transitions")
    op.drop_table("alert_rules")
