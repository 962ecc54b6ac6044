"""Hub schema: customers, payments, quarantine, watermarks, checkpoints, fingerprints, API keys.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from interchange.store import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("name", sa.String(255)),
        sa.Column("phone", sa.String(20)),
        sa.Column("country", sa.String(2)),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        _ts("source_created_at", True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("source", "source_id", name="uq_customers_source"),
    )
    op.create_index("ix_customers_email", "customers", ["email"])
    op.create_index("ix_customers_updated_at", "customers", ["updated_at"])

    op.create_table(
        "payments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(40)),
        sa.Column("customer_source_id", sa.String(255)),
        sa.Column("related_source_id", sa.String(255)),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        _ts("occurred_at", True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("source", "source_id", name="uq_payments_source"),
    )
    op.create_index("ix_payments_customer_id", "payments", ["customer_id"])
    op.create_index("ix_payments_customer_source_id", "payments", ["customer_source_id"])
    op.create_index("ix_payments_updated_at", "payments", ["updated_at"])

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(40), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("failed_rules", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        _ts("first_seen_at"),
        _ts("last_seen_at"),
        _ts("replayed_at", True),
        sa.UniqueConstraint("entity", "source", "source_id", name="uq_quarantine_record"),
    )
    op.create_index("ix_quarantine_status", "quarantine", ["status"])

    op.create_table(
        "watermarks",
        sa.Column("source", sa.String(40), primary_key=True),
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("source", sa.String(40), primary_key=True),
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("mode", sa.String(16), primary_key=True),
        sa.Column("cursor", sa.String(255)),
        sa.Column("high_water", sa.String(255)),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        _ts("started_at"),
        _ts("updated_at"),
    )
    op.create_table(
        "schema_fingerprints",
        sa.Column("source", sa.String(40), primary_key=True),
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        _ts("created_at"),
        _ts("last_used_at", True),
        _ts("revoked_at", True),
    )


def downgrade() -> None:
    for table in (
        "api_keys", "schema_fingerprints", "checkpoints", "watermarks",
        "quarantine", "payments", "customers",
    ):
        op.drop_table(table)
