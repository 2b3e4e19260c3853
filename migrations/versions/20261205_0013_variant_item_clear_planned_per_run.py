"""variant writes clear their products' stored items with a statement planned at each run

The statement triggers on `product_variant` (migration 0009) clear the stored list items of
the products whose variants changed. PL/pgSQL kept the plan of that statement from its first
run in a session; a bulk import into an empty catalog planned it on an empty `product` table
(a sequential scan), then kept scanning the whole, growing table at every batch: a quarter of
the database's time of a 100,000-product import. The statement is now run with `EXECUTE`, so
it is planned for the table as it is (an index lookup per changed product).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UP = r"""
CREATE OR REPLACE FUNCTION catalog_variant_item_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'UPDATE product SET item_json = NULL '
    'WHERE id IN (SELECT product_id FROM changed_variants) AND item_json IS NOT NULL';
  RETURN NULL;
END
$$
"""

DOWN = r"""
CREATE OR REPLACE FUNCTION catalog_variant_item_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE product SET item_json = NULL
  WHERE id IN (SELECT product_id FROM changed_variants) AND item_json IS NOT NULL;
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(UP)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DOWN)
