"""list items stored with their products

`product.item_json` (PostgreSQL) keeps each product's list item, the JSON a product list page
returns for it, so a page reads its items instead of building them. `catalog_product_item(id)`
builds one (`catalog.products.reads.item_function_body`, frozen here: a change to the item's
shape replaces the function in a new migration and clears the column). Pages build the items
whose stored copy is missing and store them afterwards; triggers clear it on every write that
changes the item: an update of the product's row (its variant writes update it too), a change
to its variants (a statement trigger, for writes that would not), a brand's or category's new
name or slug. The column starts empty: items are stored as pages read them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ITEM_FUNCTION_BODY = (
    "BEGIN RETURN (SELECT json_build_object('id', p.id, 'sku', p.sku, 'slug', p.slug, "
    "'name', p.name, 'description', p.description, 'status', p.status, 'brand_id', "
    "p.brand_id, 'brand', CASE WHEN b.id IS NULL THEN NULL ELSE json_build_object('id', "
    "b.id, 'name', b.name, 'slug', b.slug) END, 'category_id', p.category_id, 'category', "
    "CASE WHEN c.id IS NULL THEN NULL ELSE json_build_object('id', c.id, 'name', c.name, "
    "'slug', c.slug) END, 'attributes', p.attributes, 'options', p.options, 'currency', "
    "p.currency, 'price_min', round(p.price_min, p.money_exponent)::text, 'price_max', "
    "round(p.price_max, p.money_exponent)::text, 'total_stock', p.total_stock, "
    "'in_stock', p.total_stock > 0, 'rating_avg', p.rating_avg, 'rating_count', "
    "p.rating_count, 'owner_id', p.owner_id, 'thumbnail_url', p.thumbnail_url, "
    "'variants', (SELECT coalesce(json_agg(json_build_object('id', v.id, 'product_id', "
    "v.product_id, 'sku', v.sku, 'price', round(v.price, p.money_exponent)::text, "
    "'stock', v.stock, 'option_values', (SELECT coalesce(json_object_agg(o.key, o.value "
    "ORDER BY o.key COLLATE \"C\"), '{}') FROM jsonb_each(v.option_values) AS o), "
    "'position', v.position, 'version', v.version, 'created_at', to_char(v.created_at AT "
    "TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), 'updated_at', "
    "to_char(v.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')) "
    "ORDER BY v.position, v.id), '[]') FROM product_variant v WHERE v.product_id = p.id), "
    "'version', p.version, 'created_at', to_char(p.created_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), 'updated_at', to_char(p.updated_at AT TIME "
    "ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), 'deleted_at', CASE WHEN "
    "p.deleted_at IS NULL THEN NULL ELSE to_char(p.deleted_at AT TIME ZONE 'UTC', "
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\') END)::text FROM (SELECT p.*, CASE WHEN '
    "p.currency IN ('ADP', 'AFN', 'ALL', 'BIF', 'BYR', 'CLP', 'DJF', 'ESP', 'GNF', 'IQD', "
    "'IRR', 'ISK', 'ITL', 'JPY', 'KMF', 'KPW', 'KRW', 'LAK', 'LBP', 'LUF', 'MGA', 'MGF', "
    "'MMK', 'MRO', 'PYG', 'RSD', 'RWF', 'SLL', 'SOS', 'STD', 'SYP', 'TMM', 'TRL', 'UGX', "
    "'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF', 'YER', 'ZMK', 'ZWD') THEN 0 WHEN "
    "p.currency IN ('BHD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN 3 WHEN p.currency IN "
    "('CLF', 'UYW') THEN 4 ELSE 2 END AS money_exponent FROM product p WHERE p.id = $1) "
    "AS p LEFT JOIN brand b ON b.id = p.brand_id LEFT JOIN category c ON c.id = "
    "p.category_id); END"
)

PG_UP = [
    "ALTER TABLE product ADD COLUMN item_json text",
    "CREATE FUNCTION catalog_product_item(uuid) RETURNS text LANGUAGE plpgsql STABLE AS $item$"
    + ITEM_FUNCTION_BODY
    + "$item$",
    r"""
-- Any update of a product's row clears its stored item, except the one that stores it (the
-- stored item is still missing then).
CREATE FUNCTION catalog_product_item_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.item_json := NULL;
  RETURN NEW;
END
$$
""",
    r"""
CREATE TRIGGER product_item_clear BEFORE UPDATE ON product
FOR EACH ROW WHEN (OLD.item_json IS NOT NULL) EXECUTE FUNCTION catalog_product_item_clear()
""",
    r"""
-- Variants changed by a statement: their products' stored items are cleared. The write paths
-- also update the product's row in the same transaction (its aggregates, version or
-- timestamp), which is what a concurrent store of the item conflicts with; this covers a
-- write that would change variants alone.
CREATE FUNCTION catalog_variant_item_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE product SET item_json = NULL
  WHERE id IN (SELECT product_id FROM changed_variants) AND item_json IS NOT NULL;
  RETURN NULL;
END
$$
""",
    r"""
CREATE TRIGGER variant_inserted_item_clear AFTER INSERT ON product_variant
REFERENCING NEW TABLE AS changed_variants
FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_item_clear()
""",
    r"""
CREATE TRIGGER variant_updated_item_clear AFTER UPDATE ON product_variant
REFERENCING NEW TABLE AS changed_variants
FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_item_clear()
""",
    r"""
CREATE TRIGGER variant_deleted_item_clear AFTER DELETE ON product_variant
REFERENCING OLD TABLE AS changed_variants
FOR EACH STATEMENT EXECUTE FUNCTION catalog_variant_item_clear()
""",
    r"""
-- A brand's or category's name and slug are part of its products' items.
CREATE FUNCTION catalog_brand_item_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE product SET item_json = NULL WHERE brand_id = NEW.id AND item_json IS NOT NULL;
  RETURN NULL;
END
$$
""",
    r"""
CREATE TRIGGER brand_item_clear AFTER UPDATE OF name, slug ON brand
FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.slug IS DISTINCT FROM NEW.slug)
EXECUTE FUNCTION catalog_brand_item_clear()
""",
    r"""
CREATE FUNCTION catalog_category_item_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE product SET item_json = NULL WHERE category_id = NEW.id AND item_json IS NOT NULL;
  RETURN NULL;
END
$$
""",
    r"""
CREATE TRIGGER category_item_clear AFTER UPDATE OF name, slug ON category
FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.slug IS DISTINCT FROM NEW.slug)
EXECUTE FUNCTION catalog_category_item_clear()
""",
]

PG_DOWN = [
    "DROP TRIGGER IF EXISTS category_item_clear ON category",
    "DROP FUNCTION IF EXISTS catalog_category_item_clear()",
    "DROP TRIGGER IF EXISTS brand_item_clear ON brand",
    "DROP FUNCTION IF EXISTS catalog_brand_item_clear()",
    "DROP TRIGGER IF EXISTS variant_deleted_item_clear ON product_variant",
    "DROP TRIGGER IF EXISTS variant_updated_item_clear ON product_variant",
    "DROP TRIGGER IF EXISTS variant_inserted_item_clear ON product_variant",
    "DROP FUNCTION IF EXISTS catalog_variant_item_clear()",
    "DROP TRIGGER IF EXISTS product_item_clear ON product",
    "DROP FUNCTION IF EXISTS catalog_product_item_clear()",
    "DROP FUNCTION IF EXISTS catalog_product_item(uuid)",
    "ALTER TABLE product DROP COLUMN IF EXISTS item_json",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_DOWN:
            op.execute(statement)
