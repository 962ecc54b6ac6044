"""CRM enrichment: what was last pushed to HubSpot per golden customer.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from interchange.store import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrichment_pushes",
        sa.Column("golden_id", sa.String(40), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("hubspot_id", sa.String(40)),
        sa.Column("pushed_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("enrichment_pushes")
