from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.brands.schemas import BrandCreate, BrandReplace, BrandUpdate
from catalog.errors import Conflict
from catalog.kit.crud import ensure_unique, get_or_404, unique_slug
from catalog.kit.invalidation import BRANDS, PRODUCTS, REFS, SEARCH, invalidate
from catalog.kit.pagination import decode_cursor, encode_cursor
from catalog.models import Brand, Product


async def get(session: AsyncSession, brand_id: uuid.UUID) -> Brand:
    return await get_or_404(session, Brand, brand_id, "Brand")


async def list_brands(
    session: AsyncSession, *, limit: int, cursor: str | None, q: str | None = None
) -> tuple[list[Brand], str | None]:
    stmt = select(Brand).order_by(Brand.name, Brand.id).limit(limit + 1)
    if q:
        stmt = stmt.where(Brand.name.ilike(f"%{_escape_like(q)}%", escape="\\"))
    if cursor:
        name, last_id = decode_cursor(cursor, "name", str)
        stmt = stmt.where((Brand.name > name) | ((Brand.name == name) & (Brand.id > last_id)))
    rows = list((await session.execute(stmt)).scalars())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor("name", rows[-1].name, rows[-1].id)
    return rows, next_cursor


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def create(session: AsyncSession, data: BrandCreate) -> Brand:
    await ensure_unique(session, Brand.name, data.name, field="name")
    if data.slug:
        await ensure_unique(session, Brand.slug, data.slug, field="slug")
        slug = data.slug
    else:
        slug = await unique_slug(session, Brand.slug, data.name, max_length=140)
    brand = Brand(name=data.name, slug=slug, description=data.description, logo_url=data.logo_url)
    session.add(brand)
    await session.flush()
    invalidate(session, BRANDS, SEARCH)
    return brand


async def update(session: AsyncSession, brand: Brand, data: BrandUpdate | BrandReplace) -> Brand:
    changes: dict[str, Any] = data.changes() if isinstance(data, BrandUpdate) else data.model_dump()
    if "name" in changes and changes["name"] != brand.name:
        await ensure_unique(session, Brand.name, changes["name"], field="name", exclude_id=brand.id)
    if "slug" in changes and changes["slug"] != brand.slug:
        await ensure_unique(session, Brand.slug, changes["slug"], field="slug", exclude_id=brand.id)
    for key, value in changes.items():
        setattr(brand, key, value)
    await session.flush()
    # Product details and search results show the brand's name.
    invalidate(session, BRANDS, REFS, PRODUCTS, SEARCH)
    return brand


async def delete(session: AsyncSession, brand: Brand) -> None:
    in_use = await session.execute(select(Product.id).where(Product.brand_id == brand.id).limit(1))
    if in_use.first() is not None:
        raise Conflict("The brand still has products (including deleted ones); reassign them first")
    await session.delete(brand)
    await session.flush()
    invalidate(session, BRANDS, SEARCH)
