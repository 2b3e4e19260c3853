"""search text folding on PostgreSQL: accents removed and punctuation split like queries

Queries are folded to ASCII words split on anything that is not a letter or digit; the index
now sees product text the same way ("Café" -> "cafe", "USB 3.0" -> "usb 3 0"), as SQLite's FTS5
tokenizer already does.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 11:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UP = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    r"""
CREATE FUNCTION catalog_search_text(source text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT regexp_replace(unaccent(coalesce(source, '')), '[^[\:alnum\:]]+', ' ', 'g')
$$
""",
    r"""
CREATE OR REPLACE FUNCTION catalog_product_search_vector() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  brand_name text;
  category_name text;
BEGIN
  SELECT name INTO brand_name FROM brand WHERE id = NEW.brand_id;
  SELECT name INTO category_name FROM category WHERE id = NEW.category_id;
  NEW.search_vector :=
      setweight(to_tsvector('english', catalog_search_text(NEW.name)), 'A')
   || setweight(to_tsvector('english', catalog_search_text(
          coalesce(brand_name, '') || ' ' || coalesce(category_name, ''))), 'B')
   || setweight(to_tsvector('english', catalog_search_text(NEW.description)), 'C')
   || setweight(to_tsvector('english',
          catalog_search_text(catalog_attribute_text(NEW.attributes))), 'D');
  RETURN NEW;
END
$$
""",
    r"""
CREATE OR REPLACE FUNCTION catalog_add_terms(source text) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO search_term (term)
  SELECT DISTINCT w
  FROM regexp_split_to_table(lower(catalog_search_text(source)), '\s+') AS w
  WHERE length(w) BETWEEN 2 AND 40
  ON CONFLICT DO NOTHING
$$
""",
    "UPDATE product SET name = name",
    "SELECT catalog_add_terms(name) FROM brand",
    "SELECT catalog_add_terms(name) FROM category",
]

DOWN = [
    r"""
CREATE OR REPLACE FUNCTION catalog_add_terms(source text) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO search_term (term)
  SELECT DISTINCT w FROM regexp_split_to_table(lower(coalesce(source, '')), '[^[\:alnum\:]]+') AS w
  WHERE length(w) BETWEEN 2 AND 40
  ON CONFLICT DO NOTHING
$$
""",
    r"""
CREATE OR REPLACE FUNCTION catalog_product_search_vector() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  brand_name text;
  category_name text;
BEGIN
  SELECT name INTO brand_name FROM brand WHERE id = NEW.brand_id;
  SELECT name INTO category_name FROM category WHERE id = NEW.category_id;
  NEW.search_vector :=
      setweight(to_tsvector('english', coalesce(NEW.name, '')), 'A')
   || setweight(to_tsvector('english', coalesce(brand_name, '') || ' ' || coalesce(category_name, '')), 'B')
   || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C')
   || setweight(to_tsvector('english', catalog_attribute_text(NEW.attributes)), 'D');
  RETURN NEW;
END
$$
""",
    "UPDATE product SET name = name",
    "DROP FUNCTION IF EXISTS catalog_search_text(text)",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWN:
            op.execute(statement)
