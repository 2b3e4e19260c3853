"""search: full-text structures kept up to date by the database, vocabulary, synonyms, analytics

PostgreSQL: a weighted `search_vector` (name A, brand + category B, description C, attribute
values D) maintained by triggers, a GIN index, and a `search_term` vocabulary with a trigram index
(pg_trgm) for typo correction.
SQLite: an FTS5 table (porter stemming) and an unstemmed FTS5 vocabulary, both maintained by
triggers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_UP = [
    r"""
CREATE EXTENSION IF NOT EXISTS pg_trgm
""",
    r"""

ALTER TABLE product ADD COLUMN search_vector tsvector
""",
    r"""

CREATE FUNCTION catalog_attribute_text(attrs jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(string_agg(
           CASE jsonb_typeof(value)
             WHEN 'array' THEN (SELECT string_agg(x, ' ') FROM jsonb_array_elements_text(value) x)
             ELSE value #>> '{}'
           END, ' '), '')
  FROM jsonb_each(coalesce(attrs, '{}'::jsonb))
$$
""",
    r"""

CREATE FUNCTION catalog_product_search_vector() RETURNS trigger
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
    r"""

CREATE TRIGGER product_search_vector
BEFORE INSERT OR UPDATE OF name, description, brand_id, category_id, attributes ON product
FOR EACH ROW EXECUTE FUNCTION catalog_product_search_vector()
""",
    r"""

CREATE INDEX ix_product_search_vector ON product USING gin (search_vector)
""",
    r"""

-- Renaming a brand or category re-indexes its products.
CREATE FUNCTION catalog_brand_renamed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE product SET brand_id = brand_id WHERE brand_id = NEW.id;
  RETURN NULL;
END
$$
""",
    r"""
CREATE TRIGGER brand_renamed AFTER UPDATE OF name ON brand
FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION catalog_brand_renamed()
""",
    r"""

CREATE FUNCTION catalog_category_renamed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE product SET category_id = category_id WHERE category_id = NEW.id;
  RETURN NULL;
END
$$
""",
    r"""
CREATE TRIGGER category_renamed AFTER UPDATE OF name ON category
FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION catalog_category_renamed()
""",
    r"""

-- The vocabulary of words shoppers can mean: product, brand and category names.
CREATE TABLE search_term (term text PRIMARY KEY)
""",
    r"""
CREATE INDEX ix_search_term_trgm ON search_term USING gin (term gin_trgm_ops)
""",
    r"""

CREATE FUNCTION catalog_add_terms(source text) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO search_term (term)
  SELECT DISTINCT w FROM regexp_split_to_table(lower(coalesce(source, '')), '[^[\:alnum\:]]+') AS w
  WHERE length(w) BETWEEN 2 AND 40
  ON CONFLICT DO NOTHING
$$
""",
    r"""

CREATE FUNCTION catalog_name_terms() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM catalog_add_terms(NEW.name);
  RETURN NULL;
END
$$
""",
    r"""
CREATE TRIGGER product_terms AFTER INSERT OR UPDATE OF name ON product
FOR EACH ROW EXECUTE FUNCTION catalog_name_terms()
""",
    r"""
CREATE TRIGGER brand_terms AFTER INSERT OR UPDATE OF name ON brand
FOR EACH ROW EXECUTE FUNCTION catalog_name_terms()
""",
    r"""
CREATE TRIGGER category_terms AFTER INSERT OR UPDATE OF name ON category
FOR EACH ROW EXECUTE FUNCTION catalog_name_terms()
""",
    r"""

UPDATE product SET name = name
""",
    r"""
SELECT catalog_add_terms(name) FROM brand
""",
    r"""
SELECT catalog_add_terms(name) FROM category
""",
    r"""

CREATE INDEX ix_product_attributes ON product USING gin (attributes jsonb_path_ops)
""",
    r"""
CREATE INDEX ix_product_name_trgm ON product USING gin (lower(name) gin_trgm_ops)
""",
]

PG_DOWN = [
    r"""
DROP INDEX IF EXISTS ix_product_name_trgm
""",
    r"""
DROP INDEX IF EXISTS ix_product_attributes
""",
    r"""
DROP TRIGGER IF EXISTS category_terms ON category
""",
    r"""
DROP TRIGGER IF EXISTS brand_terms ON brand
""",
    r"""
DROP TRIGGER IF EXISTS product_terms ON product
""",
    r"""
DROP FUNCTION IF EXISTS catalog_name_terms()
""",
    r"""
DROP FUNCTION IF EXISTS catalog_add_terms(text)
""",
    r"""
DROP TABLE IF EXISTS search_term
""",
    r"""
DROP TRIGGER IF EXISTS category_renamed ON category
""",
    r"""
DROP FUNCTION IF EXISTS catalog_category_renamed()
""",
    r"""
DROP TRIGGER IF EXISTS brand_renamed ON brand
""",
    r"""
DROP FUNCTION IF EXISTS catalog_brand_renamed()
""",
    r"""
DROP INDEX IF EXISTS ix_product_search_vector
""",
    r"""
DROP TRIGGER IF EXISTS product_search_vector ON product
""",
    r"""
DROP FUNCTION IF EXISTS catalog_product_search_vector()
""",
    r"""
DROP FUNCTION IF EXISTS catalog_attribute_text(jsonb)
""",
    r"""
ALTER TABLE product DROP COLUMN IF EXISTS search_vector
""",
]

# FTS5 rows share the product's rowid. Brand/category names are copied in, and re-copied when
# they are renamed. `attrs` holds the attribute values (keys are not searchable words).
SQLITE_FTS_COLUMNS = "name, brand, category, description, attrs"
SQLITE_SELECT = """
  NEW.name,
  coalesce((SELECT name FROM brand WHERE id = NEW.brand_id), ''),
  coalesce((SELECT name FROM category WHERE id = NEW.category_id), ''),
  coalesce(NEW.description, ''),
  coalesce((SELECT group_concat(CASE WHEN j.type = 'array'
                                     THEN (SELECT group_concat(a.value, ' ') FROM json_each(j.value) a)
                                     ELSE CAST(j.value AS TEXT) END, ' ')
            FROM json_each(NEW.attributes) j), '')
"""

SQLITE_UP = [
    f"""CREATE VIRTUAL TABLE product_fts USING fts5(
        {SQLITE_FTS_COLUMNS}, tokenize = 'porter unicode61 remove_diacritics 2')""",
    # Unstemmed words of names, for typo correction and suggestions.
    """CREATE VIRTUAL TABLE product_terms USING fts5(
        name, brand, category, tokenize = 'unicode61 remove_diacritics 2')""",
    "CREATE VIRTUAL TABLE product_terms_vocab USING fts5vocab(product_terms, 'row')",
    f"""CREATE TRIGGER product_fts_insert AFTER INSERT ON product BEGIN
        INSERT INTO product_fts (rowid, {SQLITE_FTS_COLUMNS}) VALUES (NEW.rowid, {SQLITE_SELECT});
        INSERT INTO product_terms (rowid, name, brand, category) VALUES (NEW.rowid, NEW.name,
          coalesce((SELECT name FROM brand WHERE id = NEW.brand_id), ''),
          coalesce((SELECT name FROM category WHERE id = NEW.category_id), ''));
    END""",
    f"""CREATE TRIGGER product_fts_update
        AFTER UPDATE OF name, description, brand_id, category_id, attributes ON product BEGIN
        DELETE FROM product_fts WHERE rowid = OLD.rowid;
        INSERT INTO product_fts (rowid, {SQLITE_FTS_COLUMNS}) VALUES (NEW.rowid, {SQLITE_SELECT});
        DELETE FROM product_terms WHERE rowid = OLD.rowid;
        INSERT INTO product_terms (rowid, name, brand, category) VALUES (NEW.rowid, NEW.name,
          coalesce((SELECT name FROM brand WHERE id = NEW.brand_id), ''),
          coalesce((SELECT name FROM category WHERE id = NEW.category_id), ''));
    END""",
    """CREATE TRIGGER product_fts_delete AFTER DELETE ON product BEGIN
        DELETE FROM product_fts WHERE rowid = OLD.rowid;
        DELETE FROM product_terms WHERE rowid = OLD.rowid;
    END""",
    """CREATE TRIGGER brand_fts_rename AFTER UPDATE OF name ON brand
        WHEN OLD.name IS NOT NEW.name BEGIN
        UPDATE product SET brand_id = brand_id WHERE brand_id = NEW.id;
    END""",
    """CREATE TRIGGER category_fts_rename AFTER UPDATE OF name ON category
        WHEN OLD.name IS NOT NEW.name BEGIN
        UPDATE product SET category_id = category_id WHERE category_id = NEW.id;
    END""",
    f"""INSERT INTO product_fts (rowid, {SQLITE_FTS_COLUMNS})
        SELECT NEW.rowid, {SQLITE_SELECT} FROM product AS NEW""",
    """INSERT INTO product_terms (rowid, name, brand, category)
        SELECT NEW.rowid, NEW.name,
          coalesce((SELECT name FROM brand WHERE id = NEW.brand_id), ''),
          coalesce((SELECT name FROM category WHERE id = NEW.category_id), '')
        FROM product AS NEW""",
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS category_fts_rename",
    "DROP TRIGGER IF EXISTS brand_fts_rename",
    "DROP TRIGGER IF EXISTS product_fts_delete",
    "DROP TRIGGER IF EXISTS product_fts_update",
    "DROP TRIGGER IF EXISTS product_fts_insert",
    "DROP TABLE IF EXISTS product_terms_vocab",
    "DROP TABLE IF EXISTS product_terms",
    "DROP TABLE IF EXISTS product_fts",
]


def upgrade() -> None:
    op.create_table(
        "search_synonym",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("input", sa.String(length=100), nullable=True),
        sa.Column("terms", JSON_TYPE, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('group', 'oneway')", name=op.f("ck_search_synonym_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_synonym")),
    )
    op.create_table(
        "search_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("query", sa.String(length=200), nullable=False),
        sa.Column("filters", JSON_TYPE, nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_event")),
    )
    with op.batch_alter_table("search_event", schema=None) as batch_op:
        batch_op.create_index("ix_search_event_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_search_event_query", ["query"], unique=False)
    op.create_table(
        "search_click",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("search_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_click")),
    )
    with op.batch_alter_table("search_click", schema=None) as batch_op:
        batch_op.create_index("ix_search_click_search_id", ["search_id"], unique=False)
        batch_op.create_index("ix_search_click_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_search_click_product_id", ["product_id"], unique=False)

    op.create_index(
        "ix_product_live_popularity",
        "product",
        [sa.literal_column("popularity DESC")],
        unique=False,
        postgresql_where=sa.text("status = 'active' AND deleted_at IS NULL"),
        sqlite_where=sa.text("status = 'active' AND deleted_at IS NULL"),
    )

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in PG_UP:
            op.execute(statement)
    elif bind.dialect.name == "sqlite":
        for statement in SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in PG_DOWN:
            op.execute(statement)
    elif bind.dialect.name == "sqlite":
        for statement in SQLITE_DOWN:
            op.execute(statement)
    op.drop_index("ix_product_live_popularity", table_name="product")
    op.drop_table("search_click")
    op.drop_table("search_event")
    op.drop_table("search_synonym")
