"""Cache invalidation tied to the transaction: services name what a write changes, and the
generations are bumped once the request's transaction has committed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from catalog.db import after_commit

# Namespaces of cached answers.
PRODUCTS = "products"  # product list pages
SEARCH = "search"  # search results and suggestions
REFS = "refs"  # brand and category names embedded in product details
CATEGORIES = "categories"  # category tree and lists
BRANDS = "brands"  # brand lists


def product_ns(product_id: object) -> str:
    return f"product:{product_id}"


def slug_ns(slug: str) -> str:
    return f"slug:{slug}"


def invalidate(session: AsyncSession, *namespaces: str) -> None:
    """Bump `namespaces` after this session's transaction commits (nothing when it rolls back)."""
    cache = session.info.get("cache")
    if cache is None:
        return
    pending: set[str] | None = session.info.get("cache_bumps")
    if pending is None:
        pending = set()
        session.info["cache_bumps"] = pending

        async def bump() -> None:
            names = session.info.pop("cache_bumps", set())
            if names:
                await cache.bump(*sorted(names))

        after_commit(session, bump)
    pending.update(namespaces)


def invalidate_product(session: AsyncSession, product_id: object, *slugs: str) -> None:
    invalidate(session, product_ns(product_id), *(slug_ns(s) for s in slugs if s), PRODUCTS, SEARCH)
