from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.db import Base, IdMixin, JSONType, TimestampMixin, UTCDateTime, VersionedMixin
from catalog.models.brand import Brand
from catalog.models.category import Category

# Up to 12 integer digits and 4 decimals: enough for every ISO 4217 minor unit.
Money = Numeric(16, 4, asdecimal=True)


_FACET_INCLUDED = (
    "id",
    "price_min",
    "price_max",
    "total_stock",
    "rating_avg",
    "rating_count",
    "popularity",
    "created_at",
    "attributes",
)


class ProductStatus(StrEnum):
    draft = "draft"
    active = "active"
    archived = "archived"


class Product(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A sellable item. Price and stock live on its variants; `price_min`, `price_max` and
    `total_stock` are kept in step with them by the product service for filtering and sorting."""

    __tablename__ = "product"

    sku: Mapped[str] = mapped_column(String(64), unique=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ProductStatus.draft.value)
    brand_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("brand.id", ondelete="RESTRICT")
    )
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("category.id", ondelete="RESTRICT")
    )
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    currency: Mapped[str] = mapped_column(String(3))
    price_min: Mapped[Decimal] = mapped_column(Money)
    price_max: Mapped[Decimal] = mapped_column(Money)
    total_stock: Mapped[int] = mapped_column(Integer, default=0)
    rating_avg: Mapped[float] = mapped_column(Float, default=0.0)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    popularity: Mapped[float] = mapped_column(Float, default=0.0)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The primary image's smallest rendition, kept in step by the media service so that
    # summaries and search results need no extra query.
    thumbnail_url: Mapped[str | None] = mapped_column(String(2048))

    brand: Mapped[Brand | None] = relationship(lazy="raise")
    category: Mapped[Category | None] = relationship(lazy="raise")
    variants: Mapped[list[ProductVariant]] = relationship(
        back_populates="product",
        lazy="raise",
        order_by="(ProductVariant.position, ProductVariant.id)",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (
        CheckConstraint("status IN ('draft', 'active', 'archived')", name="status"),
        CheckConstraint("total_stock >= 0", name="total_stock_non_negative"),
        Index("ix_product_created_at_id", "created_at", "id"),
        Index("ix_product_price_min_id", "price_min", "id"),
        # Multi-price products only: the price-sorted list filtered by `price_min` reads those
        # whose prices span the bound from here (migration 0008), with an index-only scan
        # (migration 0012).
        Index(
            "ix_product_price_spread",
            "price_min",
            "id",
            postgresql_include=["price_max", "status", "deleted_at"],
            postgresql_where=text("price_min <> price_max"),
            sqlite_where=text("price_min <> price_max"),
        ),
        Index("ix_product_name_id", "name", "id"),
        # A category's and a brand's products in each list order (migration 0010); the first
        # of each also serves the foreign key. A category's are read with index-only scans
        # (migration 0012).
        Index(
            "ix_product_category_created_at_id",
            "category_id",
            "created_at",
            "id",
            postgresql_include=["status", "deleted_at"],
        ),
        Index(
            "ix_product_category_price_min_id",
            "category_id",
            "price_min",
            "id",
            postgresql_include=["status", "deleted_at"],
        ),
        Index(
            "ix_product_category_name_id",
            "category_id",
            "name",
            "id",
            postgresql_include=["status", "deleted_at"],
        ),
        Index("ix_product_brand_created_at_id", "brand_id", "created_at", "id"),
        Index("ix_product_brand_price_min_id", "brand_id", "price_min", "id"),
        Index("ix_product_brand_name_id", "brand_id", "name", "id"),
        Index(
            "ix_product_live_popularity",
            popularity.desc(),
            postgresql_where=text("status = 'active' AND deleted_at IS NULL"),
            sqlite_where=text("status = 'active' AND deleted_at IS NULL"),
        ),
        Index(
            "ix_product_live_status",
            "status",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
        # Searches without words count facets, attribute facets included, with index-only
        # scans of these (migrations 0015 and 0017).
        *(
            Index(
                f"ix_product_live_{key.removesuffix('_id')}_facets",
                key,
                postgresql_include=[other, *_FACET_INCLUDED],
                postgresql_where=text("status = 'active' AND deleted_at IS NULL"),
                sqlite_where=text("status = 'active' AND deleted_at IS NULL"),
            )
            for key, other in (("category_id", "brand_id"), ("brand_id", "category_id"))
        ),
        # The counts of a price range over every visible product (the category facet of a
        # category page with a price filter) read a range of one of these (migration 0019).
        *(
            Index(
                f"ix_product_live_{key}",
                key,
                postgresql_include=[other, "brand_id", "category_id", "total_stock", "rating_avg"],
                postgresql_where=text("status = 'active' AND deleted_at IS NULL"),
                sqlite_where=text("status = 'active' AND deleted_at IS NULL"),
            )
            for key, other in (("price_min", "price_max"), ("price_max", "price_min"))
        ),
    )


class ProductVariant(IdMixin, TimestampMixin, VersionedMixin, Base):
    """One purchasable combination of option values, with its own SKU, price and stock."""

    __tablename__ = "product_variant"

    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("product.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    price: Mapped[Decimal] = mapped_column(Money)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    option_values: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # At or below this stock the variant is reported as low on stock (analytics inventory).
    low_stock_threshold: Mapped[int] = mapped_column(Integer, default=5, server_default="5")

    product: Mapped[Product] = relationship(back_populates="variants", lazy="raise")

    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        CheckConstraint("low_stock_threshold >= 0", name="low_stock_threshold_non_negative"),
        CheckConstraint("price >= 0", name="price_non_negative"),
    )
