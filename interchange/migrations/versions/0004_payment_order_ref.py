"""Payments name the order they pay (Stripe ``metadata.order_id`` and the like).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("order_ref", sa.String(255)))
        batch.create_index("ix_payments_order_ref", ["order_ref"])


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_index("ix_payments_order_ref")
        batch.drop_column("order_ref")
