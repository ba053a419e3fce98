"""Consultation bookings (相談の予約): the consultant, the mode (in person / online) and the topic of a booking.

Revision ID: 0005_consult_booking
Revises: 0004_consultation
"""
from alembic import op
import sqlalchemy as sa

revision = "0005_consult_booking"
down_revision = "0004_consultation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consultant", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("mode", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("topic", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_column("topic")
        batch_op.drop_column("mode")
        batch_op.drop_column("consultant")
