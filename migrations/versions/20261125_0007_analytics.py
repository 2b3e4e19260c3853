"""analytics: product views, ratings, stock events (written by triggers), daily aggregates and
the per-variant low-stock threshold

Stock events are written by the database in the transaction of the write, whatever made it
(API, import, script). PostgreSQL uses statement-level triggers with transition tables, so a
bulk import adds one INSERT ... SELECT per statement rather than one per row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 13:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from catalog.db import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

POSTGRES_TRIGGERS = [
    r"""
CREATE FUNCTION catalog_stock_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO stock_event (product_id, variant_id, sku, old_stock, new_stock, created_at)
  SELECT product_id, id, sku, NULL, stock, now() FROM inserted_variant;
  RETURN NULL;
END
$$
""",
    r"""
CREATE FUNCTION catalog_stock_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO stock_event (product_id, variant_id, sku, old_stock, new_stock, created_at)
  SELECT n.product_id, n.id, n.sku, o.stock, n.stock, now()
  FROM new_variant n JOIN old_variant o ON o.id = n.id
  WHERE n.stock IS DISTINCT FROM o.stock;
  RETURN NULL;
END
$$
""",
    r"""
CREATE TRIGGER product_variant_stock_inserted AFTER INSERT ON product_variant
REFERENCING NEW TABLE AS inserted_variant
FOR EACH STATEMENT EXECUTE FUNCTION catalog_stock_inserted()
""",
    r"""
CREATE TRIGGER product_variant_stock_updated AFTER UPDATE ON product_variant
REFERENCING OLD TABLE AS old_variant NEW TABLE AS new_variant
FOR EACH STATEMENT EXECUTE FUNCTION catalog_stock_updated()
""",
]
# The text SQLAlchemy stores for a UTC timestamp on SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff'.
SQLITE_NOW = (
    "strftime('%Y-%m-%d %H:%M:%S', 'now') || '.' || substr(strftime('%f', 'now'), 4) || '000'"
)
SQLITE_TRIGGERS = [
    f"""
CREATE TRIGGER product_variant_stock_inserted AFTER INSERT ON product_variant
BEGIN
  INSERT INTO stock_event (product_id, variant_id, sku, old_stock, new_stock, created_at)
  VALUES (NEW.product_id, NEW.id, NEW.sku, NULL, NEW.stock, {SQLITE_NOW});
END
""",
    f"""
CREATE TRIGGER product_variant_stock_updated AFTER UPDATE OF stock ON product_variant
WHEN NEW.stock IS NOT OLD.stock
BEGIN
  INSERT INTO stock_event (product_id, variant_id, sku, old_stock, new_stock, created_at)
  VALUES (NEW.product_id, NEW.id, NEW.sku, OLD.stock, NEW.stock, {SQLITE_NOW});
END
""",
]


def upgrade() -> None:
    op.create_table(
        "analytics_rollup",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("through_day", sa.Date(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_rollup")),
    )
    op.create_table(
        "product_daily_stat",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "product_id", name=op.f("pk_product_daily_stat")),
    )
    op.create_index(
        "ix_product_daily_stat_product_id_day", "product_daily_stat", ["product_id", "day"]
    )
    op.create_table(
        "product_view",
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_view")),
    )
    op.create_index("ix_product_view_created_at", "product_view", ["created_at"])
    op.create_index(
        "ix_product_view_product_id_created_at", "product_view", ["product_id", "created_at"]
    )
    op.create_table(
        "stock_event",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("variant_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("old_stock", sa.Integer(), nullable=True),
        sa.Column("new_stock", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_event")),
    )
    op.create_index("ix_stock_event_created_at", "stock_event", ["created_at"])
    op.create_index(
        "ix_stock_event_product_id_created_at", "stock_event", ["product_id", "created_at"]
    )
    op.create_table(
        "product_rating",
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name=op.f("ck_product_rating_score_range")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_product_rating_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_product_rating_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_rating")),
        sa.UniqueConstraint("product_id", "user_id", name="uq_product_rating_product_id_user_id"),
    )
    op.create_index("ix_product_rating_updated_at", "product_rating", ["updated_at"])
    op.create_index(op.f("ix_product_rating_user_id"), "product_rating", ["user_id"])

    if op.get_bind().dialect.name == "postgresql":
        op.add_column(
            "product_variant",
            sa.Column("low_stock_threshold", sa.Integer(), server_default="5", nullable=False),
        )
        op.create_check_constraint(
            op.f("ck_product_variant_low_stock_threshold_non_negative"),
            "product_variant",
            "low_stock_threshold >= 0",
        )
        for statement in POSTGRES_TRIGGERS:
            op.execute(statement)
    else:
        # A column constraint: SQLite adds it without rebuilding the table.
        op.execute(
            "ALTER TABLE product_variant ADD COLUMN low_stock_threshold INTEGER DEFAULT 5 "
            "NOT NULL CONSTRAINT ck_product_variant_low_stock_threshold_non_negative "
            "CHECK (low_stock_threshold >= 0)"
        )
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS product_variant_stock_updated ON product_variant")
        op.execute("DROP TRIGGER IF EXISTS product_variant_stock_inserted ON product_variant")
        op.execute("DROP FUNCTION IF EXISTS catalog_stock_updated()")
        op.execute("DROP FUNCTION IF EXISTS catalog_stock_inserted()")
        op.drop_constraint(
            op.f("ck_product_variant_low_stock_threshold_non_negative"),
            "product_variant",
            type_="check",
        )
        op.drop_column("product_variant", "low_stock_threshold")
    else:
        op.execute("DROP TRIGGER IF EXISTS product_variant_stock_updated")
        op.execute("DROP TRIGGER IF EXISTS product_variant_stock_inserted")
        with op.batch_alter_table("product_variant") as batch_op:
            batch_op.drop_constraint(
                op.f("ck_product_variant_low_stock_threshold_non_negative"), type_="check"
            )
            batch_op.drop_column("low_stock_threshold")
    op.drop_index(op.f("ix_product_rating_user_id"), table_name="product_rating")
    op.drop_index("ix_product_rating_updated_at", table_name="product_rating")
    op.drop_table("product_rating")
    op.drop_index("ix_stock_event_product_id_created_at", table_name="stock_event")
    op.drop_index("ix_stock_event_created_at", table_name="stock_event")
    op.drop_table("stock_event")
    op.drop_index("ix_product_view_product_id_created_at", table_name="product_view")
    op.drop_index("ix_product_view_created_at", table_name="product_view")
    op.drop_table("product_view")
    op.drop_index("ix_product_daily_stat_product_id_day", table_name="product_daily_stat")
    op.drop_table("product_daily_stat")
    op.drop_table("analytics_rollup")
