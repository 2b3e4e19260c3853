"""index of the products whose variants have different prices

A product list filtered by `price_min` and sorted by price reads, in price order, the products
whose lowest price is at or above `price_min` (the price index, from that value on) and those
whose prices span `price_min` (lowest below it, highest at or above it). The second kind are
multi-price products only: this partial index holds just those, so the list never walks the
index through every cheaper product to find them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.create_index(
            "ix_product_price_spread",
            ["price_min", "id"],
            unique=False,
            postgresql_where=sa.text("price_min <> price_max"),
            sqlite_where=sa.text("price_min <> price_max"),
        )


def downgrade() -> None:
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_index("ix_product_price_spread")
