from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, IdMixin, TimestampMixin, VersionedMixin


class Brand(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "brand"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    slug: Mapped[str] = mapped_column(String(140), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    logo_url: Mapped[str | None] = mapped_column(String(2048))
