"""Bookings made by citizens on the planning page (/plan/): answers, language, department, times.

Revision ID: 0003_bookings
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0003_bookings"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answers", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("lang", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("department", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("created_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("cancelled_at", sa.Float(), nullable=True))
        batch_op.create_index("ix_reservations_site_day", ["site", "day"])


def downgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_reservations_site_day")
        batch_op.drop_column("cancelled_at")
        batch_op.drop_column("created_at")
        batch_op.drop_column("department")
        batch_op.drop_column("lang")
        batch_op.drop_column("answers")
