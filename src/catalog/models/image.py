from __future__ import annotations

import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.db import Base, IdMixin, TimestampMixin


class ProductImage(IdMixin, TimestampMixin, Base):
    """One picture of a product. The files live in media storage, one per rendition; the row
    keeps what a page needs to show them (sizes, placeholder, alt text, order)."""

    __tablename__ = "product_image"

    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("product.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    alt_text: Mapped[str | None] = mapped_column(String(500))
    source_format: Mapped[str] = mapped_column(String(8))
    source_sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    placeholder: Mapped[str] = mapped_column(Text)

    renditions: Mapped[list[ImageRendition]] = relationship(
        back_populates="image",
        lazy="raise",
        order_by="(ImageRendition.width, ImageRendition.format)",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    variant_links: Mapped[list[ProductImageVariant]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (
        CheckConstraint("source_format IN ('jpeg', 'png', 'webp', 'gif')", name="source_format"),
        CheckConstraint("width > 0 AND height > 0", name="dimensions_positive"),
        Index("ix_product_image_product_id_position", "product_id", "position"),
        # Exactly one primary image per product, enforced by the database as well.
        Index(
            "uq_product_image_primary",
            "product_id",
            unique=True,
            postgresql_where=text("is_primary"),
            sqlite_where=text("is_primary"),
        ),
    )


class ImageRendition(IdMixin, Base):
    """One stored file of an image: the re-encoded original or a resized copy."""

    __tablename__ = "image_rendition"

    image_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("product_image.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(300), index=True)

    image: Mapped[ProductImage] = relationship(back_populates="renditions", lazy="raise")

    __table_args__ = (
        UniqueConstraint("image_id", "name", "format"),
        CheckConstraint("format IN ('jpeg', 'png', 'webp')", name="format"),
    )


class ProductImageVariant(Base):
    """An image shown for particular variants (the red shirt's photos for the red variants)."""

    __tablename__ = "product_image_variant"

    image_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("product_image.id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("product_variant.id", ondelete="CASCADE"), primary_key=True, index=True
    )
