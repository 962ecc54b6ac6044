"""Companies, products, orders with lines, inventory levels.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from interchange.store import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def _keys(table: str) -> list:
    return [
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
    ]


def _tail(table: str) -> list:
    return [
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("source", "source_id", name=f"uq_{table}_source"),
    ]


def upgrade() -> None:
    op.create_table(
        "companies", *_keys("companies"),
        sa.Column("name", sa.String(255)),
        sa.Column("domain", sa.String(255)),
        sa.Column("country", sa.String(2)),
        sa.Column("industry", sa.String(100)),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        _ts("source_updated_at", True),
        *_tail("companies"),
    )
    op.create_index("ix_companies_domain", "companies", ["domain"])
    op.create_index("ix_companies_updated_at", "companies", ["updated_at"])

    op.create_table(
        "products", *_keys("products"),
        sa.Column("sku", sa.String(100)),
        sa.Column("name", sa.String(255)),
        sa.Column("price_minor", sa.Integer()),
        sa.Column("currency", sa.String(3)),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("source_updated_at", True),
        *_tail("products"),
    )
    op.create_index("ix_products_sku", "products", ["sku"])
    op.create_index("ix_products_updated_at", "products", ["updated_at"])

    op.create_table(
        "orders", *_keys("orders"),
        sa.Column("number", sa.String(64)),
        sa.Column("customer_id", sa.String(40)),
        sa.Column("customer_source_id", sa.String(255)),
        sa.Column("email", sa.String(320)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("total_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _ts("placed_at", True),
        _ts("source_updated_at", True),
        *_tail("orders"),
    )
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])
    op.create_index("ix_orders_customer_source_id", "orders", ["customer_source_id"])
    op.create_index("ix_orders_updated_at", "orders", ["updated_at"])

    op.create_table(
        "order_lines", *_keys("order_lines"),
        sa.Column("order_source_id", sa.String(255), nullable=False),
        sa.Column("sku", sa.String(100)),
        sa.Column("name", sa.String(255)),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.UniqueConstraint("source", "source_id", name="uq_order_lines_source"),
    )
    op.create_index("ix_order_lines_order_source_id", "order_lines", ["order_source_id"])

    op.create_table(
        "inventory_levels", *_keys("inventory_levels"),
        sa.Column("sku", sa.String(100)),
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        _ts("source_updated_at", True),
        *_tail("inventory_levels"),
    )
    op.create_index("ix_inventory_levels_sku", "inventory_levels", ["sku"])
    op.create_index("ix_inventory_levels_updated_at", "inventory_levels", ["updated_at"])


def downgrade() -> None:
    for table in ("inventory_levels", "order_lines", "orders", "products", "companies"):
        op.drop_table(table)
