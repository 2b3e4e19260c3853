"""a category's and a brand's products in each list order

A product list filtered by a category reads, for the category and each of its descendants,
the first products in the list's order from a (category_id, sort column, id) index, and merges
them; one filtered by a brand reads a range of a (brand_id, sort column, id) index. These
replace the plain `category_id` and `brand_id` indexes (the first of each serves the foreign
key).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLACED = {"category_id": "ix_product_category_id", "brand_id": "ix_product_brand_id"}
SORT_COLUMNS = ("created_at", "price_min", "name")


def _name(column: str, sort: str) -> str:
    return f"ix_product_{column.removesuffix('_id')}_{sort}_id"


def upgrade() -> None:
    with op.batch_alter_table("product", schema=None) as batch_op:
        for column, old in REPLACED.items():
            for sort in SORT_COLUMNS:
                batch_op.create_index(_name(column, sort), [column, sort, "id"], unique=False)
            batch_op.drop_index(old)


def downgrade() -> None:
    with op.batch_alter_table("product", schema=None) as batch_op:
        for column, old in REPLACED.items():
            batch_op.create_index(old, [column], unique=False)
            for sort in SORT_COLUMNS:
                batch_op.drop_index(_name(column, sort))
