"""a full-text vector of product names on PostgreSQL, for autocomplete

Product suggestions look for names with the typed words, the last one a prefix. They matched
the name's lexemes of `search_vector` (weight A), which its GIN index cannot tell apart from the
description's: a prefix common in descriptions but in no name ("mari": marine, marinade) made
PostgreSQL expect thousands of matches, walk the products by popularity for the first ten, and
read every visible product (about 100 ms on 100,000 products) to find none. `name_vector` holds
the name's lexemes only (the same words and stemming as weight A), kept by a trigger, with a
GIN index over the visible products; its statistics describe names, so the planner looks names
up by the index when few match and walks by popularity only when many do.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UP = [
    "ALTER TABLE product ADD COLUMN name_vector tsvector",
    r"""
CREATE FUNCTION catalog_product_name_vector() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.name_vector := to_tsvector('english', catalog_search_text(NEW.name));
  RETURN NEW;
END
$$
""",
    """
CREATE TRIGGER product_name_vector
BEFORE INSERT OR UPDATE OF name ON product
FOR EACH ROW EXECUTE FUNCTION catalog_product_name_vector()
""",
    "UPDATE product SET name_vector = to_tsvector('english', catalog_search_text(name))",
    """
CREATE INDEX ix_product_live_name_vector ON product USING gin (name_vector)
WHERE status = 'active' AND deleted_at IS NULL
""",
]

DOWN = [
    "DROP INDEX IF EXISTS ix_product_live_name_vector",
    "DROP TRIGGER IF EXISTS product_name_vector ON product",
    "DROP FUNCTION IF EXISTS catalog_product_name_vector()",
    "ALTER TABLE product DROP COLUMN IF EXISTS name_vector",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWN:
            op.execute(statement)
