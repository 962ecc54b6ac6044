"""Customer 360: golden customers and the links from source customers to them.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from interchange.store import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "golden_customers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("email", sa.String(320)),
        sa.Column("name", sa.String(255)),
        sa.Column("phone", sa.String(20)),
        sa.Column("country", sa.String(2)),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("merged_into", sa.String(40)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_golden_customers_email", "golden_customers", ["email"])
    op.create_index("ix_golden_customers_updated_at", "golden_customers", ["updated_at"])
    op.create_table(
        "customer_links",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("golden_id", sa.String(40), nullable=False),
        sa.Column("matched_by", sa.String(16), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_customer_links_golden_id", "customer_links", ["golden_id"])


def downgrade() -> None:
    op.drop_table("customer_links")
    op.drop_table("golden_customers")
