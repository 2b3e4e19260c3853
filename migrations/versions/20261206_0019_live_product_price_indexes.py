"""narrow covering indexes of the visible products by lowest and by highest price

A search without words counts the facet of its own filter over the other filters only: the
category facet of a category page, the brand facet of a brand page. With a price range that is
a count over every visible product in the range, which PostgreSQL answered by reading all
85,000 entries of a category/brand covering index of migration 0017 (those hold the attributes
and the sort keys too: about 3,300 pages) and dropping those out of the range (15 ms). These
indexes are keyed on a price bound and hold only what such counts read (the other price, the
brand, the category, stock and rating: about 880 pages each), so a price range is a range of
index entries: "500 and more" reads the 10,700 products with price_max >= 500 (2 ms), "25 and
less" those with price_min <= 25 (3.5 ms), and a count without a price filter reads a quarter
of the pages it read before. SQLite has no included columns: there they are plain partial
indexes on the key.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "status = 'active' AND deleted_at IS NULL"
INCLUDED = ["brand_id", "category_id", "total_stock", "rating_avg"]
INDEXES = {
    "ix_product_live_price_min": ("price_min", "price_max"),
    "ix_product_live_price_max": ("price_max", "price_min"),
}


def upgrade() -> None:
    for name, (key, other) in INDEXES.items():
        op.create_index(
            name,
            "product",
            [key],
            postgresql_include=[other, *INCLUDED],
            postgresql_where=sa.text(LIVE),
            sqlite_where=sa.text(LIVE),
        )


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="product")
