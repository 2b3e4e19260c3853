from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, IdMixin, TimestampMixin, VersionedMixin


class Category(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A node of the category tree; `slug` is unique among siblings."""

    __tablename__ = "category"

    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("category.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140))
    description: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # Partial indexes, because NULL parents are distinct in a plain unique constraint.
        Index(
            "uq_category_parent_id_slug",
            "parent_id",
            "slug",
            unique=True,
            postgresql_where=text("parent_id IS NOT NULL"),
            sqlite_where=text("parent_id IS NOT NULL"),
        ),
        Index(
            "uq_category_root_slug",
            "slug",
            unique=True,
            postgresql_where=text("parent_id IS NULL"),
            sqlite_where=text("parent_id IS NULL"),
        ),
    )
