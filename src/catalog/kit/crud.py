"""Small helpers shared by the domain services."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from catalog.db import Base
from catalog.errors import DuplicateField, NotFound
from catalog.kit.slugs import slugify

M = TypeVar("M", bound=Base)


async def get_or_404(
    session: AsyncSession, model: type[M], obj_id: uuid.UUID, what: str, **options: Any
) -> M:
    obj = await session.get(model, obj_id, **options)
    if obj is None:
        raise NotFound(f"{what} {obj_id} not found")
    return obj


async def ensure_unique(
    session: AsyncSession,
    column: InstrumentedAttribute[Any],
    value: object,
    *,
    field: str,
    exclude_id: uuid.UUID | None = None,
    extra: list[Any] | None = None,
) -> None:
    """409 naming `field` when another row already has `value` (the unique index still guards
    against races; this gives the caller a precise message in the common case)."""
    model = column.class_
    stmt = select(model.id).where(column == value)
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    for clause in extra or []:
        stmt = stmt.where(clause)
    if (await session.execute(stmt.limit(1))).first() is not None:
        raise DuplicateField(field, value)


async def unique_slug(
    session: AsyncSession,
    column: InstrumentedAttribute[Any],
    source: str,
    *,
    max_length: int = 180,
    extra: list[Any] | None = None,
) -> str:
    """A slug derived from `source`, suffixed -2, -3, ... until it is free (the base leaves
    room for the suffix within `max_length`)."""
    base = slugify(source, max_length=max_length - 8)
    stmt = select(column).where((column == base) | column.like(f"{base}-%"))
    for clause in extra or []:
        stmt = stmt.where(clause)
    taken = set((await session.execute(stmt)).scalars())
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def count(session: AsyncSession, stmt: Any) -> int:
    return int(
        (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    )
