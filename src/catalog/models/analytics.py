"""Analytics tables: raw events indexed by time (product views, stock changes), ratings, and the
daily aggregates that `catalog analytics rollup` folds old raw events into."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, IdMixin, TimestampMixin, UTCDateTime

# SQLite only numbers its rows itself for a column typed exactly INTEGER PRIMARY KEY.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class ProductView(Base):
    """Reads of a product page (by id or slug) by a user or an anonymous session: `views` reads
    of one product by one viewer within one write of the event recorder (about a second), at
    `created_at`, the first of them. No foreign key: events outlive purged products and are
    written in batches. The database numbers the rows: the busiest event table gets the
    smallest key, and no id is made per view."""

    __tablename__ = "product_view"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    session_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    views: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    __table_args__ = (
        Index("ix_product_view_created_at", "created_at"),
        Index("ix_product_view_product_id_created_at", "product_id", "created_at"),
    )


class ProductRating(IdMixin, TimestampMixin, Base):
    """A buyer's rating of a product: one per buyer and product, a new one replaces it."""

    __tablename__ = "product_rating"

    product_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("product.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("product_id", "user_id", name="uq_product_rating_product_id_user_id"),
        CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),
        Index("ix_product_rating_updated_at", "updated_at"),
    )


class StockEvent(Base):
    """A variant's stock set or changed. Written by database triggers on `product_variant`
    (migration 0007), in the transaction of the write, whatever made it: the API, an import or
    a script."""

    __tablename__ = "stock_event"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    variant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    sku: Mapped[str] = mapped_column(String(64))
    old_stock: Mapped[int | None] = mapped_column(Integer)
    new_stock: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_stock_event_created_at", "created_at"),
        Index("ix_stock_event_product_id_created_at", "product_id", "created_at"),
    )


class ProductDailyStat(Base):
    """Views, distinct sessions and search-result clicks of a product on one UTC day, for the
    days `catalog analytics rollup` has folded (see `AnalyticsRollup`)."""

    __tablename__ = "product_daily_stat"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    views: Mapped[int] = mapped_column(Integer, default=0)
    sessions: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_product_daily_stat_product_id_day", "product_id", "day"),)


class AnalyticsRollup(Base):
    """How far the rollup went: days up to `through_day` are in the daily tables, and their raw
    events are no longer counted (they are deleted once older than the retention)."""

    __tablename__ = "analytics_rollup"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    through_day: Mapped[dt.date] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
