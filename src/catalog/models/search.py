from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, Float, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, IdMixin, JSONType, TimestampMixin, UTCDateTime, VersionedMixin


class SearchSynonym(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A two-way group (`terms` are interchangeable) or a one-way rule (`input` also finds
    `terms`)."""

    __tablename__ = "search_synonym"

    kind: Mapped[str] = mapped_column(String(8))
    input: Mapped[str | None] = mapped_column(String(100))
    terms: Mapped[list[str]] = mapped_column(JSONType)

    __table_args__ = (CheckConstraint("kind IN ('group', 'oneway')", name="kind"),)


class SearchEvent(IdMixin, Base):
    """One search as a shopper made it; `id` is the `search_id` clicks refer to."""

    __tablename__ = "search_event"

    query: Mapped[str] = mapped_column(String(200))
    filters: Mapped[dict[str, object]] = mapped_column(JSONType)
    result_count: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    session_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_search_event_created_at", "created_at"),
        Index("ix_search_event_query", "query"),
    )


class SearchQuery(Base):
    """How many searches of each (normalised) query found something: what autocomplete offers
    as popular past queries. Kept by the event recorder as it writes `search_event` rows
    (one upsert per query and write), so a suggestion reads the queries starting with its
    prefix instead of counting every recorded search."""

    __tablename__ = "search_query"

    query: Mapped[str] = mapped_column(String(200), primary_key=True)
    searches: Mapped[int] = mapped_column(Integer)
    last_searched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # Prefix matches (`LIKE 'cha%'`) of the queries worth suggesting, whatever the
        # database's collation (PostgreSQL; SQLite's case-insensitive LIKE uses no index).
        Index(
            "ix_search_query_popular_prefix",
            "query",
            postgresql_ops={"query": "varchar_pattern_ops"},
            postgresql_where=text("searches >= 2"),
        ),
    )


class SearchClick(IdMixin, Base):
    __tablename__ = "search_click"

    search_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    position: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_search_click_search_id", "search_id"),
        Index("ix_search_click_created_at", "created_at"),
        Index("ix_search_click_product_id", "product_id"),
    )
