"""product images: pictures of products, their stored renditions and variant links

The product row keeps its primary image's thumbnail URL so summaries need no join.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 12:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "product_image",
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("alt_text", sa.String(length=500), nullable=True),
        sa.Column("source_format", sa.String(length=8), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("placeholder", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source_format IN ('jpeg', 'png', 'webp', 'gif')",
            name=op.f("ck_product_image_source_format"),
        ),
        sa.CheckConstraint(
            "width > 0 AND height > 0", name=op.f("ck_product_image_dimensions_positive")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["product.id"],
            name=op.f("fk_product_image_product_id_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_image")),
    )
    with op.batch_alter_table("product_image", schema=None) as batch_op:
        batch_op.create_index(
            "ix_product_image_product_id_position", ["product_id", "position"], unique=False
        )
        batch_op.create_index(
            "uq_product_image_primary",
            ["product_id"],
            unique=True,
            postgresql_where=sa.text("is_primary"),
            sqlite_where=sa.text("is_primary"),
        )

    op.create_table(
        "image_rendition",
        sa.Column("image_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "format IN ('jpeg', 'png', 'webp')", name=op.f("ck_image_rendition_format")
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["product_image.id"],
            name=op.f("fk_image_rendition_image_id_product_image"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_rendition")),
        sa.UniqueConstraint(
            "image_id", "name", "format", name=op.f("uq_image_rendition_image_id_name_format")
        ),
    )
    with op.batch_alter_table("image_rendition", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_image_rendition_image_id"), ["image_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_image_rendition_storage_key"), ["storage_key"], unique=False
        )

    op.create_table(
        "product_image_variant",
        sa.Column("image_id", sa.Uuid(), nullable=False),
        sa.Column("variant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["product_image.id"],
            name=op.f("fk_product_image_variant_image_id_product_image"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["product_variant.id"],
            name=op.f("fk_product_image_variant_variant_id_product_variant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "variant_id", name=op.f("pk_product_image_variant")),
    )
    with op.batch_alter_table("product_image_variant", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_product_image_variant_variant_id"), ["variant_id"], unique=False
        )

    # Plain ALTER TABLE on both databases: a batch copy of `product` would drop SQLite's
    # full-text triggers.
    op.add_column("product", sa.Column("thumbnail_url", sa.String(length=2048), nullable=True))


def downgrade() -> None:
    op.drop_column("product", "thumbnail_url")

    with op.batch_alter_table("product_image_variant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_image_variant_variant_id"))

    op.drop_table("product_image_variant")
    with op.batch_alter_table("image_rendition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_rendition_storage_key"))
        batch_op.drop_index(batch_op.f("ix_image_rendition_image_id"))

    op.drop_table("image_rendition")
    with op.batch_alter_table("product_image", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_product_image_primary",
            postgresql_where=sa.text("is_primary"),
            sqlite_where=sa.text("is_primary"),
        )
        batch_op.drop_index("ix_product_image_product_id_position")

    op.drop_table("product_image")
