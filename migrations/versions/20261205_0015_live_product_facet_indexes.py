"""covering indexes of the visible products by category and by brand, for searches without words

A search without words (browsing a category or a brand) counts its facets over every visible
product of the category's subtree or of the brand, and the facet of its own filter over every
visible product. These partial indexes (`status = 'active' AND deleted_at IS NULL`) hold the
columns those counts, the filters and the sort orders read, so PostgreSQL answers them with
index-only scans instead of visiting the table's rows, which are wide (descriptions, search
vectors, stored list items) and of a category scattered over the whole table. Attribute facets
and filters still read the rows. SQLite has no included columns: there they are plain partial
indexes on the key.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "status = 'active' AND deleted_at IS NULL"
SHARED = [
    "id",
    "price_min",
    "price_max",
    "total_stock",
    "rating_avg",
    "rating_count",
    "popularity",
    "created_at",
]
INDEXES = {
    "ix_product_live_category_facets": ("category_id", "brand_id"),
    "ix_product_live_brand_facets": ("brand_id", "category_id"),
}


def upgrade() -> None:
    for name, (key, other) in INDEXES.items():
        op.create_index(
            name,
            "product",
            [key],
            postgresql_include=[other, *SHARED],
            postgresql_where=sa.text(LIVE),
            sqlite_where=sa.text(LIVE),
        )


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="product")
