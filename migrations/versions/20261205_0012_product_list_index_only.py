"""list indexes that can reject hidden products alone; stored list items compressed with lz4

The category indexes of the product list (`(category_id, sort column, id)`) and the index of
multi-price products (`price_min <> price_max`) now include the columns the list filters on
besides their keys: `status` and `deleted_at` (and `price_max` for the multi-price one). A
list page reads its ids from them with an index-only scan: the hidden products (drafts,
archived, deleted) and, for the price bound, the products entirely below it are passed over
in the index instead of being fetched from the table one by one. PostgreSQL only (SQLite has
no included columns; its indexes stay as they are).

The stored list items (`product.item_json`) are compressed with lz4 where the server has it: a
page decompresses twenty of them, and lz4 does that several times faster than the default
pglz. Items stored before keep their compression until they are stored again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORY_SORTS = ("created_at", "price_min", "name")
SPREAD = "ix_product_price_spread"
SPREAD_WHERE = "WHERE price_min <> price_max"


def _category(sort: str) -> str:
    return f"ix_product_category_{sort}_id"


# A server built without lz4 keeps the default compression.
LZ4 = """
DO $$
BEGIN
  ALTER TABLE product ALTER COLUMN item_json SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(LZ4)
    for sort in CATEGORY_SORTS:
        op.execute(f"DROP INDEX {_category(sort)}")
        op.execute(
            f"CREATE INDEX {_category(sort)} ON product (category_id, {sort}, id) "
            "INCLUDE (status, deleted_at)"
        )
    op.execute(f"DROP INDEX {SPREAD}")
    op.execute(
        f"CREATE INDEX {SPREAD} ON product (price_min, id) "
        f"INCLUDE (price_max, status, deleted_at) {SPREAD_WHERE}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE product ALTER COLUMN item_json SET COMPRESSION default")
    for sort in CATEGORY_SORTS:
        op.execute(f"DROP INDEX {_category(sort)}")
        op.execute(f"CREATE INDEX {_category(sort)} ON product (category_id, {sort}, id)")
    op.execute(f"DROP INDEX {SPREAD}")
    op.execute(f"CREATE INDEX {SPREAD} ON product (price_min, id) {SPREAD_WHERE}")
