from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, IdMixin, JSONType, TimestampMixin, UTCDateTime, VersionedMixin


class Role(StrEnum):
    admin = "admin"
    seller = "seller"
    buyer = "buyer"


class User(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "user_account"

    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=Role.buyer.value)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        CheckConstraint("role IN ('admin', 'seller', 'buyer')", name="role"),
        # Emails are unique case-insensitively.
        Index("uq_user_account_email_lower", func.lower(email), unique=True),
    )


class RefreshToken(IdMixin, Base):
    """One refresh token of a session family. Rotation marks it used and issues the next one;
    presenting a used token again revokes the whole family (stolen-token detection)."""

    __tablename__ = "refresh_token"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ApiKey(IdMixin, TimestampMixin, Base):
    """A credential for a third-party integration, acting for its owner within its scopes.
    Only a SHA-256 digest of the secret is stored (the secret is random and long, so a slow
    password hash adds nothing)."""

    __tablename__ = "api_key"

    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
