"""Custom metrics: formulas users save by name.

Revision ID: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "custom_metrics",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("formula", sa.String(500), nullable=False),
        sa.Column("unit", sa.String(8), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
